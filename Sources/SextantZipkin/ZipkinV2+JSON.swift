import SextantModel
import SextantOTLP

// Zipkin v2 JSON (zipkin-api `zipkin2-api.yaml`, `ListOfSpans`): an array of span objects with
// hex IDs, microsecond numbers and string tags. Unknown keys are skipped and `null` means absent,
// as Zipkin's own reader does.
extension ZipkinV2 {
    /// Decodes a JSON `[Span]` into traces; spans with unusable IDs are counted, not returned.
    static func readJSON(_ bytes: UnsafeRawBufferPointer) throws(OTLPDecodingError) -> (TracesData, Rejections) {
        var reader = JSONReader(bytes, sharingStrings: true)
        var assembler = ZipkinTranslation.Assembler()
        var rejections = Rejections()
        var array = try reader.beginArray()
        var index = 0
        while try reader.nextElement(&array) {
            if try reader.consumeNull() {
                index += 1
                continue
            }
            var span = ZipkinSpan()
            if let problem = try readJSONSpan(&reader, into: &span) {
                rejections.reject(1, "span \(index): \(problem)")
            } else {
                assembler.add(&span)
            }
            index += 1
        }
        try reader.finish()
        return (assembler.data, rejections)
    }

    /// Reads one span object; returns why the span must be dropped, if it must.
    private static func readJSONSpan(_ r: inout JSONReader, into span: inout ZipkinSpan) throws(OTLPDecodingError) -> String? {
        var traceID: JSONKey?
        var id: JSONKey?
        var parentID: JSONKey?
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            switch JSONSpanField(key) {
            case .traceId: traceID = try r.readStringToken()
            case .id: id = try r.readStringToken()
            case .parentId: parentID = try r.readStringToken()
            case .kind: span.kind = ZipkinKind(jsonName: try r.readStringToken())
            case .name: span.name = try r.readString()
            case .timestamp: span.timestamp = try r.readUInt64()
            case .duration: span.duration = try r.readUInt64()
            case .localEndpoint: span.localEndpoint = try readJSONEndpoint(&r)
            case .remoteEndpoint: span.remoteEndpoint = try readJSONEndpoint(&r)
            case .annotations:
                var list = try r.beginArray()
                while try r.nextElement(&list) {
                    if try r.consumeNull() { continue }
                    span.annotations.append(try readJSONAnnotation(&r))
                }
            case .tags:
                var tags = try r.beginObject()
                span.tags.reserveCapacity(8)
                while let tagKey = try r.nextKey(&tags) {
                    if try r.consumeNull() { continue }
                    span.tags.set(r.text(of: tagKey), .string(try readTagValue(&r)))
                }
            case .debug: span.debug = try r.readBool()
            case .shared: span.shared = try r.readBool()
            case nil: try r.skipValue()
            }
        }
        return applyHexIDs(traceID: traceID, id: id, parentID: parentID, to: &span)
    }

    /// The members of zipkin2-api.yaml's `Span`.
    private enum JSONSpanField {
        case traceId, id, parentId, kind, name, timestamp, duration, localEndpoint, remoteEndpoint, annotations, tags
        case debug, shared

        /// Found by the key's length first, so most keys are compared with one name.
        init?(_ key: JSONKey) {
            switch key.length {
            case 2 where key.is("id"): self = .id
            case 4 where key.is("name"): self = .name
            case 4 where key.is("kind"): self = .kind
            case 4 where key.is("tags"): self = .tags
            case 5 where key.is("debug"): self = .debug
            case 6 where key.is("shared"): self = .shared
            case 7 where key.is("traceId"): self = .traceId
            case 8 where key.is("parentId"): self = .parentId
            case 8 where key.is("duration"): self = .duration
            case 9 where key.is("timestamp"): self = .timestamp
            case 11 where key.is("annotations"): self = .annotations
            case 13 where key.is("localEndpoint"): self = .localEndpoint
            case 14 where key.is("remoteEndpoint"): self = .remoteEndpoint
            default: return nil
            }
        }
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
    private static func applyHexIDs(traceID: JSONKey?, id: JSONKey?, parentID: JSONKey?, to span: inout ZipkinSpan) -> String? {
        guard let traceID else { return "traceId is missing" }
        let traceHex = HexID(traceID)
        guard traceHex.count == 16 || traceHex.count == 32 else { return "traceId must be 16 or 32 hex digits, got \(traceHex.count)" }
        guard let (high, low) = traceHex.value else { return "traceId is not hex" }
        guard high != 0 || low != 0 else { return "traceId must not be all zero" }
        span.traceID = TraceID(high: high, low: low)

        guard let id else { return "id is missing" }
        let idHex = HexID(id)
        guard idHex.count == 16 else { return "id must be 16 hex digits, got \(idHex.count)" }
        guard let (_, spanID) = idHex.value else { return "id is not hex" }
        guard spanID != 0 else { return "id must not be all zero" }
        span.id = SpanID(spanID)

        if let parentID {
            let parentHex = HexID(parentID)
            if parentHex.count != 0 {
                guard parentHex.count == 16 else { return "parentId must be 16 hex digits, got \(parentHex.count)" }
                guard let (_, parent) = parentHex.value else { return "parentId is not hex" }
                // An all-zero parent means "root", as Zipkin's own span builder normalises it.
                span.parentID = parent != 0 ? SpanID(parent) : nil
            }
        }
        return nil
    }
}

/// A hex ID string as read: its length in UTF-8 bytes and, for up to 32 hex digits, its value.
private struct HexID {
    var count: Int
    /// `nil` when a character is not a hex digit or there are more than 32.
    var value: (high: UInt64, low: UInt64)?

    init(_ token: JSONKey) {
        if let text = token.unescaped {
            let bytes = Array(text.utf8)
            self = bytes.withUnsafeBufferPointer { HexID($0) }
        } else {
            self.init(UnsafeBufferPointer(start: token.start, count: token.count))
        }
    }

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        count = bytes.count
        guard count <= 32 else {
            value = nil
            return
        }
        if count == 16 || count == 32 {
            value = Hex.parseID(bytes)
            return
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for b in bytes {
            guard let d = Hex.value(of: b) else {
                value = nil
                return
            }
            high = high << 4 | low >> 60
            low = low << 4 | UInt64(d)
        }
        value = (high, low)
    }
}

extension ZipkinKind {
    init(jsonName token: JSONKey) {
        if token.is("SERVER") {
            self = .server
        } else if token.is("CLIENT") {
            self = .client
        } else if token.is("PRODUCER") {
            self = .producer
        } else if token.is("CONSUMER") {
            self = .consumer
        } else {
            self = .unspecified
        }
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
    static func writeJSON(_ traces: TracesData) -> [UInt8] {
        JSONWriter.document(estimatedSize: 256 + traces.spanCount * 512) { w in
            w.beginArray()
            ZipkinOutgoingSpan.forEach(in: traces) { span, z in
                w.element()
                writeJSONSpan(span, z, to: &w)
            }
            w.endArray()
        }
    }

    /// Keys in the order of zipkin2-api.yaml's `Span` definition.
    private static func writeJSONSpan(_ span: Span, _ z: ZipkinOutgoingSpan, to w: inout JSONWriter) {
        w.beginObject()
        w.key("traceId")
        // A 64-bit trace ID is written as 16 digits, as Zipkin's own encoders do.
        if span.traceID.high == 0 { w.spanID(SpanID(span.traceID.low)) } else { w.traceID(span.traceID) }
        if let parent = span.parentSpanID {
            w.key("parentId")
            w.spanID(parent)
        }
        w.key("id")
        w.spanID(span.spanID)
        if let kind = z.kind.jsonName {
            w.key("kind")
            w.string(kind)
        }
        if !span.name.isEmpty {
            w.key("name")
            w.string(span.name)
        }
        if z.timestamp != 0 {
            w.key("timestamp")
            w.number(z.timestamp)
        }
        if z.duration != 0 {
            w.key("duration")
            w.number(z.duration)
        }
        if let local = z.localEndpoint {
            w.key("localEndpoint")
            writeJSONEndpoint(local, to: &w)
        }
        if let remote = z.remoteEndpoint {
            w.key("remoteEndpoint")
            writeJSONEndpoint(remote, to: &w)
        }
        if !span.events.isEmpty {
            w.key("annotations")
            w.beginArray()
            for i in span.events.indices {
                let a = ZipkinOutgoingSpan.annotation(span.events[i])
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
        if !z.tags.entries.isEmpty {
            w.key("tags")
            w.beginObject()
            for e in z.tags.entries {
                w.dynamicKey(z.tags.key(e))
                w.string(z.tags.value(e))
            }
            w.endObject()
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
            w.number(UInt64(e.port))
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
