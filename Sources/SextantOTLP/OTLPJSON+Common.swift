import SextantModel

// common.proto and resource.proto in the OTLP JSON encoding.
extension OTLPJSON {
    // MARK: Decoding

    static func decodeAnyValue(_ r: inout JSONReader, depth: Int) throws(OTLPDecodingError) -> AnyValue {
        guard depth <= OTLPProtobuf.maxAnyValueDepth else {
            throw r.error("AnyValue nested deeper than \(OTLPProtobuf.maxAnyValueDepth)")
        }
        var value = AnyValue.empty
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("stringValue", or: "string_value") {
                value = .string(try r.readString())
            } else if key.is("intValue", or: "int_value") {
                value = .int(try r.readInt64())
            } else if key.is("boolValue", or: "bool_value") {
                value = .bool(try r.readBool())
            } else if key.is("doubleValue", or: "double_value") {
                value = .double(try r.readDouble())
            } else if key.is("arrayValue", or: "array_value") {
                var values: [AnyValue] = []
                var inner = try r.beginObject()
                while let k = try r.nextKey(&inner) {
                    if k.is("values"), try !r.consumeNull() {
                        var array = try r.beginArray()
                        while try r.nextElement(&array) { values.append(try decodeAnyValue(&r, depth: depth + 1)) }
                    } else {
                        try r.skipValue()
                    }
                }
                value = .array(values)
            } else if key.is("kvlistValue", or: "kvlist_value") {
                var values: [KeyValue] = []
                var inner = try r.beginObject()
                while let k = try r.nextKey(&inner) {
                    if k.is("values"), try !r.consumeNull() {
                        values = try decodeKeyValues(&r, depth: depth + 1)
                    } else {
                        try r.skipValue()
                    }
                }
                value = .kvlist(values)
            } else if key.is("bytesValue", or: "bytes_value") {
                value = .bytes(try r.readBase64())
            } else {
                try r.skipValue()
            }
        }
        return value
    }

    /// A `repeated KeyValue` array.
    static func decodeKeyValues(_ r: inout JSONReader, depth: Int = 0) throws(OTLPDecodingError) -> [KeyValue] {
        var values: [KeyValue] = []
        var array = try r.beginArray()
        while try r.nextElement(&array) {
            var key = ""
            var value = AnyValue.empty
            var object = try r.beginObject()
            while let k = try r.nextKey(&object) {
                if try r.consumeNull() { continue }
                if k.is("key") {
                    key = try r.readString()
                } else if k.is("value") {
                    value = try decodeAnyValue(&r, depth: depth + 1)
                } else {
                    try r.skipValue()
                }
            }
            values.append(KeyValue(key, value))
        }
        return values
    }

    static func decodeResource(_ r: inout JSONReader) throws(OTLPDecodingError) -> Resource {
        var resource = Resource()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("attributes") {
                resource.attributes = try decodeKeyValues(&r)
            } else if key.is("droppedAttributesCount", or: "dropped_attributes_count") {
                resource.droppedAttributesCount = try r.readUInt32()
            } else {
                try r.skipValue()
            }
        }
        return resource
    }

    static func decodeScope(_ r: inout JSONReader) throws(OTLPDecodingError) -> InstrumentationScope {
        var scope = InstrumentationScope()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("name") {
                scope.name = try r.readString()
            } else if key.is("version") {
                scope.version = try r.readString()
            } else if key.is("attributes") {
                scope.attributes = try decodeKeyValues(&r)
            } else if key.is("droppedAttributesCount", or: "dropped_attributes_count") {
                scope.droppedAttributesCount = try r.readUInt32()
            } else {
                try r.skipValue()
            }
        }
        return scope
    }

    // MARK: Encoding (members in field-number order)

    static func encodeAnyValue(_ value: AnyValue, _ w: inout JSONWriter) {
        w.beginObject()
        switch value {
        case .string(let s):
            w.key("stringValue")
            w.string(s)
        case .bool(let b):
            w.key("boolValue")
            w.bool(b)
        case .int(let i):
            w.key("intValue")
            w.quoted(i)
        case .double(let d):
            w.key("doubleValue")
            w.double(d)
        case .array(let values):
            w.key("arrayValue")
            w.beginObject()
            if !values.isEmpty {
                w.key("values")
                w.beginArray()
                for v in values {
                    w.element()
                    encodeAnyValue(v, &w)
                }
                w.endArray()
            }
            w.endObject()
        case .kvlist(let values):
            w.key("kvlistValue")
            w.beginObject()
            encodeKeyValuesField("values", values, &w)
            w.endObject()
        case .bytes(let b):
            w.key("bytesValue")
            w.base64(b)
        case .empty:
            break
        }
        w.endObject()
    }

    /// A `repeated KeyValue` member; omitted when empty.
    static func encodeKeyValuesField(_ name: StaticString, _ values: [KeyValue], _ w: inout JSONWriter) {
        guard !values.isEmpty else { return }
        w.key(name)
        w.beginArray()
        // Through the buffer each attribute is borrowed in place; `for kv in` copies it (retains).
        values.withUnsafeBufferPointer { values in
            for i in values.indices {
                w.element()
                w.beginObject()
                w.stringField("key", values[i].key)
                w.key("value")
                encodeAnyValue(values[i].value, &w)
                w.endObject()
            }
        }
        w.endArray()
    }

    static func encodeResourceField(_ resource: Resource, _ w: inout JSONWriter) {
        guard !resource.attributes.isEmpty || resource.droppedAttributesCount != 0 else { return }
        w.key("resource")
        w.beginObject()
        encodeKeyValuesField("attributes", resource.attributes, &w)
        w.int32Field("droppedAttributesCount", resource.droppedAttributesCount)
        w.endObject()
    }

    static func encodeScopeField(_ scope: InstrumentationScope, _ w: inout JSONWriter) {
        guard !scope.name.isEmpty || !scope.version.isEmpty || !scope.attributes.isEmpty
            || scope.droppedAttributesCount != 0
        else { return }
        w.key("scope")
        w.beginObject()
        w.stringField("name", scope.name)
        w.stringField("version", scope.version)
        encodeKeyValuesField("attributes", scope.attributes, &w)
        w.int32Field("droppedAttributesCount", scope.droppedAttributesCount)
        w.endObject()
    }
}
