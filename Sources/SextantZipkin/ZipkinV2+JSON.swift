import SextantModel
import SextantOTLP

// Zipkin v2 JSON (zipkin-api `zipkin2-api.yaml`, `ListOfSpans`): an array of span objects with
// hex IDs, microsecond numbers and string tags. Unknown keys are skipped and `null` means absent,
// as Zipkin's own reader does.
extension ZipkinV2 {
    /// Decodes a JSON `[Span]` into wire spans; spans with unusable IDs are counted, not returned.
    static func readJSON(_ bytes: UnsafeRawBufferPointer) throws(OTLPDecodingError) -> ([ZipkinSpan], Rejections) {
        var reader = JSONReader(bytes)
        var spans: [ZipkinSpan] = []
        var rejections = Rejections()
        var array = try reader.beginArray()
        var index = 0
        while try reader.nextElement(&array) {
            if try reader.consumeNull() {
                index += 1
                continue
            }
            let (span, problem) = try readJSONSpan(&reader)
            if let problem {
                rejections.reject(1, "span \(index): \(problem)")
            } else {
                spans.append(span)
            }
            index += 1
        }
        try reader.finish()
        return (spans, rejections)
    }

    private static func readJSONSpan(_ r: inout JSONReader) throws(OTLPDecodingError) -> (ZipkinSpan, String?) {
        var span = ZipkinSpan()
        var traceID: String?
        var id: String?
        var parentID: String?
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("traceId") {
                traceID = try r.readString()
            } else if key.is("id") {
                id = try r.readString()
            } else if key.is("parentId") {
                parentID = try r.readString()
            } else if key.is("kind") {
                span.kind = ZipkinKind(jsonName: try r.readString())
            } else if key.is("name") {
                span.name = try r.readString()
            } else if key.is("timestamp") {
                span.timestamp = try r.readUInt64()
            } else if key.is("duration") {
                span.duration = try r.readUInt64()
            } else if key.is("localEndpoint") {
                span.localEndpoint = try readJSONEndpoint(&r)
            } else if key.is("remoteEndpoint") {
                span.remoteEndpoint = try readJSONEndpoint(&r)
            } else if key.is("annotations") {
                var list = try r.beginArray()
                while try r.nextElement(&list) {
                    if try r.consumeNull() { continue }
                    span.annotations.append(try readJSONAnnotation(&r))
                }
            } else if key.is("tags") {
                var tags = try r.beginObject()
                while let tagKey = try r.nextKey(&tags) {
                    if try r.consumeNull() { continue }
                    span.tags.append((tagKey.text, try readTagValue(&r)))
                }
            } else if key.is("debug") {
                span.debug = try r.readBool()
            } else if key.is("shared") {
                span.shared = try r.readBool()
            } else {
                try r.skipValue()
            }
        }
        let problem = applyHexIDs(traceID: traceID, id: id, parentID: parentID, to: &span)
        return (span, problem)
    }

    /// Tag values are strings in the API; numbers and booleans from lenient clients are kept as
    /// their source text rather than failing the request.
    private static func readTagValue(_ r: inout JSONReader) throws(OTLPDecodingError) -> String {
        switch r.peek() {
        case UInt8(ascii: "\""): return try r.readString()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return try r.readBool() ? "true" : "false"
        default:
            let token = try r.readNumberToken()
            return String(decoding: UnsafeBufferPointer(start: token.start, count: token.count), as: UTF8.self)
        }
    }

    private static func readJSONEndpoint(_ r: inout JSONReader) throws(OTLPDecodingError) -> ZipkinEndpoint {
        var endpoint = ZipkinEndpoint()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("serviceName") {
                endpoint.serviceName = try r.readString()
            } else if key.is("ipv4") {
                endpoint.ipv4 = try r.readString()
            } else if key.is("ipv6") {
                endpoint.ipv6 = try r.readString()
            } else if key.is("port") {
                let start = r.pos
                let port = try r.readUInt64()
                guard port <= UInt64(UInt16.max) else { throw r.error("port \(port) is out of range", at: start) }
                endpoint.port = UInt16(port)
            } else {
                try r.skipValue()
            }
        }
        return endpoint
    }

    private static func readJSONAnnotation(_ r: inout JSONReader) throws(OTLPDecodingError) -> ZipkinAnnotation {
        var annotation = ZipkinAnnotation(timestamp: 0, value: "")
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("timestamp") {
                annotation.timestamp = try r.readUInt64()
            } else if key.is("value") {
                annotation.value = try r.readString()
            } else {
                try r.skipValue()
            }
        }
        return annotation
    }

    /// Validates hex IDs (zipkin2-api.yaml: `traceId` 16 or 32, `id`/`parentId` 16 lower-hex
    /// characters; upper case is accepted) and sets them; returns why the span must be dropped.
    private static func applyHexIDs(traceID: String?, id: String?, parentID: String?, to span: inout ZipkinSpan) -> String? {
        guard let traceID else { return "traceId is missing" }
        let t = Array(traceID.utf8)
        guard t.count == 16 || t.count == 32 else { return "traceId must be 16 or 32 hex digits, got \(t.count)" }
        let high = t.count == 32 ? Hex.parseUInt64(t[0..<16]) : 0
        guard let high, let low = Hex.parseUInt64(t[(t.count - 16)...]) else { return "traceId is not hex" }
        guard high != 0 || low != 0 else { return "traceId must not be all zero" }
        span.traceID = TraceID(high: high, low: low)

        guard let id else { return "id is missing" }
        guard id.utf8.count == 16 else { return "id must be 16 hex digits, got \(id.utf8.count)" }
        guard let spanID = SpanID(hex: id) else { return "id is not hex" }
        guard spanID.isValid else { return "id must not be all zero" }
        span.id = spanID

        if let parentID, !parentID.isEmpty {
            guard parentID.utf8.count == 16 else { return "parentId must be 16 hex digits, got \(parentID.utf8.count)" }
            guard let parent = SpanID(hex: parentID) else { return "parentId is not hex" }
            // An all-zero parent means "root", as Zipkin's own span builder normalises it.
            span.parentID = parent.isValid ? parent : nil
        }
        return nil
    }
}

extension JSONKey {
    /// The key's text (already validated as UTF-8 by the reader).
    var text: String {
        unescaped ?? String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    }
}

// MARK: Encoding

extension ZipkinV2 {
    static func writeJSON(_ spans: [ZipkinSpan]) -> [UInt8] {
        JSONWriter.document(estimatedSize: 256 + spans.count * 512) { w in
            w.beginArray()
            for span in spans {
                w.element()
                writeJSONSpan(span, to: &w)
            }
            w.endArray()
        }
    }

    /// Keys in the order of zipkin2-api.yaml's `Span` definition.
    private static func writeJSONSpan(_ span: ZipkinSpan, to w: inout JSONWriter) {
        w.beginObject()
        w.key("traceId")
        // A 64-bit trace ID is written as 16 digits, as Zipkin's own encoders do.
        if span.traceID.high == 0 { w.spanID(SpanID(span.traceID.low)) } else { w.traceID(span.traceID) }
        if let parent = span.parentID {
            w.key("parentId")
            w.spanID(parent)
        }
        w.key("id")
        w.spanID(span.id)
        if let kind = span.kind.jsonName {
            w.key("kind")
            w.string(kind)
        }
        if !span.name.isEmpty {
            w.key("name")
            w.string(span.name)
        }
        if span.timestamp != 0 {
            w.key("timestamp")
            w.number(span.timestamp)
        }
        if span.duration != 0 {
            w.key("duration")
            w.number(span.duration)
        }
        if let local = span.localEndpoint {
            w.key("localEndpoint")
            writeJSONEndpoint(local, to: &w)
        }
        if let remote = span.remoteEndpoint {
            w.key("remoteEndpoint")
            writeJSONEndpoint(remote, to: &w)
        }
        if !span.annotations.isEmpty {
            w.key("annotations")
            w.beginArray()
            for a in span.annotations {
                w.element()
                w.beginObject()
                w.key("timestamp")
                w.number(a.timestamp)
                w.key("value")
                w.string(a.value)
                w.endObject()
            }
            w.endArray()
        }
        if !span.tags.isEmpty {
            w.key("tags")
            w.beginObject()
            for (key, value) in span.tags {
                w.dynamicKey(key)
                w.string(value)
            }
            w.endObject()
        }
        if span.debug {
            w.key("debug")
            w.bool(true)
        }
        if span.shared {
            w.key("shared")
            w.bool(true)
        }
        w.endObject()
    }

    private static func writeJSONEndpoint(_ e: ZipkinEndpoint, to w: inout JSONWriter) {
        w.beginObject()
        if !e.serviceName.isEmpty {
            w.key("serviceName")
            w.string(e.serviceName)
        }
        if !e.ipv4.isEmpty {
            w.key("ipv4")
            w.string(e.ipv4)
        }
        if !e.ipv6.isEmpty {
            w.key("ipv6")
            w.string(e.ipv6)
        }
        if e.port != 0 {
            w.key("port")
            w.number(e.port)
        }
        w.endObject()
    }
}

extension JSONWriter {
    /// Writes `"key":` for a key known only at run time (tag names, attribute keys).
    mutating func dynamicKey(_ key: String) {
        element()
        string(key)
        raw(":")
    }
}
