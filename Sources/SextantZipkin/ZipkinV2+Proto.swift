import SextantModel
import SextantOTLP

// Zipkin v2 protobuf (zipkin-api `zipkin.proto`): `ListOfSpans { repeated Span spans = 1; }`.
extension ZipkinV2 {
    /// Decodes a `ListOfSpans` into traces; spans with unusable IDs are counted, not returned.
    static func readProto(_ bytes: UnsafeRawBufferPointer) throws(OTLPDecodingError) -> (TracesData, Rejections) {
        var reader = ProtoReader(bytes)
        var assembler = ZipkinTranslation.Assembler()
        var rejections = Rejections()
        var index = 0
        while reader.hasMore {
            let tag = try reader.readTag()
            guard tag == 1 << 3 | 2 else {
                try reader.skip(tag: tag, in: "ListOfSpans")
                continue
            }
            var message = try reader.readMessage()
            var span = ZipkinSpan()
            if let problem = try readProtoSpan(&message, into: &span) {
                rejections.reject(1, "span \(index): \(problem)")
            } else {
                assembler.add(&span)
            }
            index += 1
        }
        return (assembler.data, rejections)
    }

    /// Reads one span message; returns why the span must be dropped, if it must.
    private static func readProtoSpan(_ r: inout ProtoReader, into span: inout ZipkinSpan) throws(OTLPDecodingError) -> String? {
        var traceID = UnsafeRawBufferPointer(start: nil, count: 0)
        var id = UnsafeRawBufferPointer(start: nil, count: 0)
        var parentID = UnsafeRawBufferPointer(start: nil, count: 0)
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: traceID = try r.readBytes()
            case 2 << 3 | 2: parentID = try r.readBytes()
            case 3 << 3 | 2: id = try r.readBytes()
            case 4 << 3 | 0: span.kind = ZipkinKind(rawValue: try r.readInt32()) ?? .unspecified
            case 5 << 3 | 2: span.name = try r.readString(in: "Span")
            case 6 << 3 | 1: span.timestamp = try r.readFixed64()
            case 7 << 3 | 0: span.duration = try r.readVarint()
            case 8 << 3 | 2:
                var m = try r.readMessage()
                span.localEndpoint = try readProtoEndpoint(&m)
            case 9 << 3 | 2:
                var m = try r.readMessage()
                span.remoteEndpoint = try readProtoEndpoint(&m)
            case 10 << 3 | 2:
                var m = try r.readMessage()
                span.annotations.append(try readProtoAnnotation(&m))
            case 11 << 3 | 2:
                var m = try r.readMessage()
                let (key, value) = try readProtoTag(&m)
                span.tags.set(key, .string(value))
            case 12 << 3 | 0: span.debug = try r.readVarint() != 0
            case 13 << 3 | 0: span.shared = try r.readVarint() != 0
            default: try r.skip(tag: tag, in: "Span")
            }
        }
        return applyBinaryIDs(traceID: traceID, id: id, parentID: parentID, to: &span)
    }

    private static func readProtoEndpoint(_ r: inout ProtoReader) throws(OTLPDecodingError) -> ZipkinEndpoint {
        var endpoint = ZipkinEndpoint()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: endpoint.serviceName = try r.readString(in: "Endpoint")
            case 2 << 3 | 2:
                let b = try r.readBytes()
                switch b.count {
                case 0: endpoint.ipv4 = ""
                case 4: endpoint.ipv4 = IPAddress.formatIPv4(b)
                default: throw r.error("Endpoint.ipv4 must be 4 bytes, got \(b.count)")
                }
            case 3 << 3 | 2:
                let b = try r.readBytes()
                switch b.count {
                case 0: endpoint.ipv6 = ""
                case 16: endpoint.ipv6 = IPAddress.formatIPv6(b)
                default: throw r.error("Endpoint.ipv6 must be 16 bytes, got \(b.count)")
                }
            case 4 << 3 | 0:
                let port = try r.readInt32()
                guard port >= 0 && port <= Int32(UInt16.max) else { throw r.error("Endpoint.port \(port) is out of range") }
                endpoint.port = UInt16(port)
            default: try r.skip(tag: tag, in: "Endpoint")
            }
        }
        return endpoint
    }

    private static func readProtoAnnotation(_ r: inout ProtoReader) throws(OTLPDecodingError) -> ZipkinAnnotation {
        var annotation = ZipkinAnnotation(timestamp: 0, value: "")
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 1: annotation.timestamp = try r.readFixed64()
            case 2 << 3 | 2: annotation.value = try r.readString(in: "Annotation")
            default: try r.skip(tag: tag, in: "Annotation")
            }
        }
        return annotation
    }

    /// One `map<string, string>` entry (proto3 language guide, "Maps": a message with key = 1, value = 2).
    private static func readProtoTag(_ r: inout ProtoReader) throws(OTLPDecodingError) -> (key: String, value: String) {
        var key = ""
        var value = ""
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: key = try r.readString(in: "Span.TagsEntry")
            case 2 << 3 | 2: value = try r.readString(in: "Span.TagsEntry")
            default: try r.skip(tag: tag, in: "Span.TagsEntry")
            }
        }
        return (key, value)
    }

    /// zipkin.proto: `trace_id` is exactly 8 or 16 bytes, `id` 8 and `parent_id` empty or 8; all
    /// zero is invalid. Returns why the span must be dropped.
    private static func applyBinaryIDs(
        traceID: UnsafeRawBufferPointer, id: UnsafeRawBufferPointer, parentID: UnsafeRawBufferPointer, to span: inout ZipkinSpan
    ) -> String? {
        switch traceID.count {
        case 16: span.traceID = TraceID(bytes: traceID)!
        case 8: span.traceID = TraceID(high: 0, low: SpanID(bytes: traceID)!.value)
        default: return "trace_id must be 8 or 16 bytes, got \(traceID.count)"
        }
        guard span.traceID.isValid else { return "trace_id must not be all zero" }
        guard let spanID = SpanID(bytes: id) else { return "id must be 8 bytes, got \(id.count)" }
        guard spanID.isValid else { return "id must not be all zero" }
        span.id = spanID
        if parentID.count != 0 {
            guard let parent = SpanID(bytes: parentID) else { return "parent_id must be empty or 8 bytes, got \(parentID.count)" }
            span.parentID = parent.isValid ? parent : nil
        }
        return nil
    }
}

// MARK: Encoding

extension ZipkinV2 {
    static func writeProto(_ traces: TracesData) -> [UInt8] {
        var w = ProtoWriter(capacity: 256 + traces.spanCount * 256)
        // ProtoWriter prepends: repeated elements go last to first, fields in descending order.
        ZipkinOutgoingSpan.forEach(in: traces, reversed: true) { span, z in
            let mark = w.count
            writeProtoSpan(span, z, to: &w)
            w.lengthPrefix(1, since: mark)
        }
        return w.bytes()
    }

    /// `debug` and `shared` are never set on spans from OpenTelemetry.
    private static func writeProtoSpan(_ span: Span, _ z: ZipkinOutgoingSpan, to w: inout ProtoWriter) {
        for e in z.tags.entries.reversed() {
            let mark = w.count
            w.stringField(2, z.tags.value(e))
            w.stringField(1, z.tags.key(e))
            w.lengthPrefix(11, since: mark)
        }
        for event in span.events.reversed() {
            let a = ZipkinOutgoingSpan.annotation(event)
            let mark = w.count
            w.stringField(2, a.value)
            w.fixed64Field(1, a.timestamp)
            w.lengthPrefix(10, since: mark)
        }
        if let remote = z.remoteEndpoint { writeProtoEndpoint(remote, field: 9, to: &w) }
        if let local = z.localEndpoint { writeProtoEndpoint(local, field: 8, to: &w) }
        w.uint64Field(7, z.duration)
        w.fixed64Field(6, z.timestamp)
        w.stringField(5, span.name)
        w.int32Field(4, z.kind.rawValue)
        w.presentBytesField(3, span.spanID.bytes)
        if let parent = span.parentSpanID { w.presentBytesField(2, parent.bytes) }
        // A 64-bit trace ID is written as 8 bytes, as for JSON.
        w.presentBytesField(1, span.traceID.high == 0 ? SpanID(span.traceID.low).bytes : span.traceID.bytes)
    }

    private static func writeProtoEndpoint(_ e: ZipkinEndpoint, field: UInt64, to w: inout ProtoWriter) {
        let mark = w.count
        w.int32Field(4, Int32(e.port))
        if let v6 = IPAddress.parseIPv6(e.ipv6) { w.presentBytesField(3, v6) }
        if let v4 = IPAddress.parseIPv4(e.ipv4) { w.presentBytesField(2, v4) }
        w.stringField(1, e.serviceName)
        w.lengthPrefix(field, since: mark)
    }
}
