import SextantModel

// common.proto and resource.proto: AnyValue, KeyValue, InstrumentationScope, Resource.
extension OTLPProtobuf {
    /// How deeply `AnyValue` arrays and key-value lists may nest before a payload is rejected.
    static let maxAnyValueDepth = 64

    // MARK: Decoding

    static func decodeAnyValue(_ r: inout ProtoReader, depth: Int) throws(OTLPDecodingError) -> AnyValue {
        guard depth <= maxAnyValueDepth else { throw r.error("AnyValue nested deeper than \(maxAnyValueDepth)") }
        var value = AnyValue.empty
        // `value` is a oneof: the last member on the wire wins.
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: value = .string(try r.readString(in: "AnyValue"))
            case 2 << 3 | 0: value = .bool(try r.readVarint() != 0)
            case 3 << 3 | 0: value = .int(Int64(bitPattern: try r.readVarint()))
            case 4 << 3 | 1: value = .double(try r.readDouble())
            case 5 << 3 | 2:
                var array = try r.readMessage()
                var values: [AnyValue] = []
                while array.hasMore {
                    let t = try array.readTag()
                    if t == 1 << 3 | 2 {
                        var element = try array.readMessage()
                        values.append(try decodeAnyValue(&element, depth: depth + 1))
                    } else {
                        try array.skip(tag: t, in: "ArrayValue")
                    }
                }
                value = .array(values)
            case 6 << 3 | 2:
                var list = try r.readMessage()
                var values: [KeyValue] = []
                while list.hasMore {
                    let t = try list.readTag()
                    if t == 1 << 3 | 2 {
                        var element = try list.readMessage()
                        values.append(try decodeKeyValue(&element, depth: depth + 1))
                    } else {
                        try list.skip(tag: t, in: "KeyValueList")
                    }
                }
                value = .kvlist(values)
            case 7 << 3 | 2: value = .bytes(try r.readByteArray())
            default: try r.skip(tag: tag, in: "AnyValue")
            }
        }
        return value
    }

    static func decodeKeyValue(_ r: inout ProtoReader, depth: Int) throws(OTLPDecodingError) -> KeyValue {
        var key = ""
        var value = AnyValue.empty
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: key = try r.readString(in: "KeyValue")
            case 2 << 3 | 2:
                var v = try r.readMessage()
                value = try decodeAnyValue(&v, depth: depth + 1)
            default: try r.skip(tag: tag, in: "KeyValue")
            }
        }
        return KeyValue(key, value)
    }

    /// Appends one element of a `repeated KeyValue` field; the first one sizes the array for all.
    @inline(__always)
    static func appendKeyValue(_ r: inout ProtoReader, to attributes: inout [KeyValue]) throws(OTLPDecodingError) {
        if attributes.capacity == 0 { attributes.reserveCapacity(r.countingRepeats()) }
        var kv = try r.readMessage()
        attributes.append(try decodeKeyValue(&kv, depth: 0))
    }

    static func decodeResource(_ r: inout ProtoReader) throws(OTLPDecodingError) -> Resource {
        var resource = Resource()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: try appendKeyValue(&r, to: &resource.attributes)
            case 2 << 3 | 0: resource.droppedAttributesCount = try r.readUInt32()
            default: try r.skip(tag: tag, in: "Resource")  // entity_refs (3) is not modelled
            }
        }
        return resource
    }

    static func decodeScope(_ r: inout ProtoReader) throws(OTLPDecodingError) -> InstrumentationScope {
        var scope = InstrumentationScope()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: scope.name = try r.readString(in: "InstrumentationScope")
            case 2 << 3 | 2: scope.version = try r.readString(in: "InstrumentationScope")
            case 3 << 3 | 2: try appendKeyValue(&r, to: &scope.attributes)
            case 4 << 3 | 0: scope.droppedAttributesCount = try r.readUInt32()
            default: try r.skip(tag: tag, in: "InstrumentationScope")
            }
        }
        return scope
    }

    // MARK: Encoding (fields in descending order; see ProtoWriter)

    static func encodeAnyValue(_ value: AnyValue, _ w: inout ProtoWriter) {
        switch value {
        case .string(let s): w.presentStringField(1, s)
        case .bool(let b):
            w.varint(b ? 1 : 0)
            w.tag(2, 0)
        case .int(let i):
            w.varint(UInt64(bitPattern: i))
            w.tag(3, 0)
        case .double(let d):
            w.fixed64(d.bitPattern)
            w.tag(4, 1)
        case .array(let values):
            let mark = w.count
            for v in values.reversed() {
                let m = w.count
                encodeAnyValue(v, &w)
                w.lengthPrefix(1, since: m)
            }
            w.lengthPrefix(5, since: mark)
        case .kvlist(let values):
            let mark = w.count
            encodeKeyValues(1, values, &w)
            w.lengthPrefix(6, since: mark)
        case .bytes(let b): w.presentBytesField(7, b)
        case .empty: break
        }
    }

    /// A `repeated KeyValue` field.
    @inline(__always)
    static func encodeKeyValues(_ field: UInt64, _ values: [KeyValue], _ w: inout ProtoWriter) {
        var i = values.count
        while i > 0 {
            i -= 1
            let mark = w.count
            // The model always has a value, so `value` is always present (possibly as `AnyValue{}`).
            encodeAnyValue(values[i].value, &w)
            w.lengthPrefix(2, since: mark)
            w.stringField(1, values[i].key)
            w.lengthPrefix(field, since: mark)
        }
    }

    /// A `Resource` message field; omitted when the resource is empty.
    static func encodeResource(_ field: UInt64, _ resource: Resource, _ w: inout ProtoWriter) {
        guard !resource.attributes.isEmpty || resource.droppedAttributesCount != 0 else { return }
        let mark = w.count
        w.uint32Field(2, resource.droppedAttributesCount)
        encodeKeyValues(1, resource.attributes, &w)
        w.lengthPrefix(field, since: mark)
    }

    /// An `InstrumentationScope` message field; omitted when the scope is empty.
    static func encodeScope(_ field: UInt64, _ scope: InstrumentationScope, _ w: inout ProtoWriter) {
        guard !scope.name.isEmpty || !scope.version.isEmpty || !scope.attributes.isEmpty
            || scope.droppedAttributesCount != 0
        else { return }
        let mark = w.count
        w.uint32Field(4, scope.droppedAttributesCount)
        encodeKeyValues(3, scope.attributes, &w)
        w.stringField(2, scope.version)
        w.stringField(1, scope.name)
        w.lengthPrefix(field, since: mark)
    }
}
