import SextantModel

// trace.proto: TracesData (= ExportTraceServiceRequest) down to Span, Span.Event, Span.Link, Status.
extension OTLPProtobuf {
    // MARK: Decoding

    static func decodeTracesData(_ r: inout ProtoReader, _ rejections: inout Rejections) throws(OTLPDecodingError) -> TracesData {
        var data = TracesData()
        var spanIndex = 0
        while r.hasMore {
            let tag = try r.readTag()
            if tag == 1 << 3 | 2 {
                var m = try r.readMessage()
                data.resourceSpans.append(try decodeResourceSpans(&m, &spanIndex, &rejections))
            } else {
                try r.skip(tag: tag, in: "ExportTraceServiceRequest")
            }
        }
        return data
    }

    static func decodeResourceSpans(
        _ r: inout ProtoReader, _ spanIndex: inout Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> ResourceSpans {
        var rs = ResourceSpans()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var m = try r.readMessage()
                rs.resource = try decodeResource(&m)
            case 2 << 3 | 2:
                var m = try r.readMessage()
                rs.scopeSpans.append(try decodeScopeSpans(&m, &spanIndex, &rejections))
            case 3 << 3 | 2: rs.schemaURL = try r.readString(in: "ResourceSpans")
            default: try r.skip(tag: tag, in: "ResourceSpans")
            }
        }
        return rs
    }

    static func decodeScopeSpans(
        _ r: inout ProtoReader, _ spanIndex: inout Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> ScopeSpans {
        var ss = ScopeSpans()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var m = try r.readMessage()
                ss.scope = try decodeScope(&m)
            case 2 << 3 | 2:
                if ss.spans.capacity == 0 { ss.spans.reserveCapacity(r.countingRepeats()) }
                var m = try r.readMessage()
                var problem: String?
                // Decoded in place: returning the span and appending it copied it (every field retained
                // and later released once more).
                ss.spans.append(Span(traceID: .zero, spanID: .zero))
                try decodeSpan(&m, into: &ss.spans[ss.spans.count - 1], &problem)
                if let problem {
                    ss.spans.removeLast()
                    rejections.reject(1, "span \(spanIndex): \(problem)")
                }
                spanIndex += 1
            case 3 << 3 | 2: ss.schemaURL = try r.readString(in: "ScopeSpans")
            default: try r.skip(tag: tag, in: "ScopeSpans")
            }
        }
        return ss
    }

    /// Decodes a span into `span` (a new, empty one); when its IDs are unacceptable, sets `problem` (the
    /// span is then dropped).
    static func decodeSpan(_ r: inout ProtoReader, into span: inout Span, _ problem: inout String?) throws(OTLPDecodingError) {
        var traceID = WireID()
        var spanID = WireID()
        var parentSpanID = WireID()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: traceID = try r.readID()
            case 2 << 3 | 2: spanID = try r.readID()
            case 3 << 3 | 2: span.traceState = try r.readString(in: "Span")
            case 4 << 3 | 2: parentSpanID = try r.readID()
            case 5 << 3 | 2: span.name = try r.readString(in: "Span")
            case 6 << 3 | 0: span.kind = SpanKind(rawValue: try r.readInt32())
            case 7 << 3 | 1: span.startTimeUnixNano = try r.readFixed64()
            case 8 << 3 | 1: span.endTimeUnixNano = try r.readFixed64()
            case 9 << 3 | 2: try appendKeyValue(&r, to: &span.attributes)
            case 10 << 3 | 0: span.droppedAttributesCount = try r.readUInt32()
            case 11 << 3 | 2:
                var m = try r.readMessage()
                span.events.append(try decodeSpanEvent(&m))
            case 12 << 3 | 0: span.droppedEventsCount = try r.readUInt32()
            case 13 << 3 | 2:
                var m = try r.readMessage()
                let index = span.links.count
                var linkProblem: String?
                span.links.append(try decodeSpanLink(&m, &linkProblem))
                if problem == nil, let linkProblem { problem = "link \(index): \(linkProblem)" }
            case 14 << 3 | 0: span.droppedLinksCount = try r.readUInt32()
            case 15 << 3 | 2:
                var m = try r.readMessage()
                span.status = try decodeStatus(&m)
            case 16 << 3 | 5: span.flags = try r.readFixed32()
            default: try r.skip(tag: tag, in: "Span")
            }
        }
        if let idProblem = IDRules.apply(traceID, spanID, parentSpanID, to: &span) { problem = idProblem }
    }

    static func decodeSpanEvent(_ r: inout ProtoReader) throws(OTLPDecodingError) -> SpanEvent {
        var event = SpanEvent()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 1: event.timeUnixNano = try r.readFixed64()
            case 2 << 3 | 2: event.name = try r.readString(in: "Span.Event")
            case 3 << 3 | 2: try appendKeyValue(&r, to: &event.attributes)
            case 4 << 3 | 0: event.droppedAttributesCount = try r.readUInt32()
            default: try r.skip(tag: tag, in: "Span.Event")
            }
        }
        return event
    }

    /// Decodes a link. Empty IDs become `.zero` (the model's link IDs are not optional).
    static func decodeSpanLink(_ r: inout ProtoReader, _ problem: inout String?) throws(OTLPDecodingError) -> SpanLink {
        var traceID = WireID()
        var spanID = WireID()
        var link = SpanLink(traceID: .zero, spanID: .zero)
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: traceID = try r.readID()
            case 2 << 3 | 2: spanID = try r.readID()
            case 3 << 3 | 2: link.traceState = try r.readString(in: "Span.Link")
            case 4 << 3 | 2: try appendKeyValue(&r, to: &link.attributes)
            case 5 << 3 | 0: link.droppedAttributesCount = try r.readUInt32()
            case 6 << 3 | 5: link.flags = try r.readFixed32()
            default: try r.skip(tag: tag, in: "Span.Link")
            }
        }
        problem = IDRules.apply(traceID, spanID, to: &link)
        return link
    }

    static func decodeStatus(_ r: inout ProtoReader) throws(OTLPDecodingError) -> SpanStatus {
        var status = SpanStatus()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 2 << 3 | 2: status.message = try r.readString(in: "Status")
            case 3 << 3 | 0: status.code = SpanStatus.Code(rawValue: try r.readInt32())
            default: try r.skip(tag: tag, in: "Status")
            }
        }
        return status
    }

    // MARK: Encoding (fields in descending order; see ProtoWriter)

    static func encodeTracesData(_ data: TracesData, _ w: inout ProtoWriter) {
        if let e = data.encoded {
            // Already the encoding; the writer fills from the end, so the last chunk goes first.
            for chunk in e.chunks.reversed() { chunk.withUnsafeBytes { w.prepend($0) } }
            return
        }
        for rs in data.resourceSpans.reversed() {
            let mark = w.count
            w.stringField(3, rs.schemaURL)
            for ss in rs.scopeSpans.reversed() {
                let ssMark = w.count
                w.stringField(3, ss.schemaURL)
                // Spans read in place: `ss.spans[i]` would copy each one.
                ss.spans.withUnsafeBufferPointer { spans in
                    var i = spans.count
                    while i > 0 {
                        i -= 1
                        let spanMark = w.count
                        encodeSpan(spans[i], &w)
                        w.lengthPrefix(2, since: spanMark)
                    }
                }
                encodeScope(1, ss.scope, &w)
                w.lengthPrefix(2, since: ssMark)
            }
            encodeResource(1, rs.resource, &w)
            w.lengthPrefix(1, since: mark)
        }
    }

    static func encodeSpan(_ span: Span, _ w: inout ProtoWriter) {
        w.fixed32Field(16, span.flags)
        if span.status.code != .unset || !span.status.message.isEmpty {
            let mark = w.count
            w.int32Field(3, span.status.code.rawValue)
            w.stringField(2, span.status.message)
            w.lengthPrefix(15, since: mark)
        }
        w.uint32Field(14, span.droppedLinksCount)
        for link in span.links.reversed() {
            let mark = w.count
            w.fixed32Field(6, link.flags)
            w.uint32Field(5, link.droppedAttributesCount)
            encodeKeyValues(4, link.attributes, &w)
            w.stringField(3, link.traceState)
            if link.spanID.isValid { w.spanIDField(2, link.spanID) }
            if link.traceID.isValid { w.traceIDField(1, link.traceID) }
            w.lengthPrefix(13, since: mark)
        }
        w.uint32Field(12, span.droppedEventsCount)
        for event in span.events.reversed() {
            let mark = w.count
            w.uint32Field(4, event.droppedAttributesCount)
            encodeKeyValues(3, event.attributes, &w)
            w.stringField(2, event.name)
            w.fixed64Field(1, event.timeUnixNano)
            w.lengthPrefix(11, since: mark)
        }
        w.uint32Field(10, span.droppedAttributesCount)
        encodeKeyValues(9, span.attributes, &w)
        w.fixed64Field(8, span.endTimeUnixNano)
        w.fixed64Field(7, span.startTimeUnixNano)
        w.int32Field(6, span.kind.rawValue)
        w.stringField(5, span.name)
        if let parent = span.parentSpanID { w.spanIDField(4, parent) }
        w.stringField(3, span.traceState)
        w.spanIDField(2, span.spanID)
        w.traceIDField(1, span.traceID)
    }
}
