import SextantModel

// trace.proto in the OTLP JSON encoding.
extension OTLPJSON {
    // MARK: Decoding

    static func decodeTracesData(_ r: inout JSONReader, _ rejections: inout Rejections) throws(OTLPDecodingError) -> TracesData {
        var data = TracesData()
        var spanIndex = 0
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            guard key.is("resourceSpans", or: "resource_spans") else {
                try r.skipValue()
                continue
            }
            var array = try r.beginArray()
            while try r.nextElement(&array) {
                var rs = ResourceSpans()
                var rsObject = try r.beginObject()
                while let k = try r.nextKey(&rsObject) {
                    if try r.consumeNull() { continue }
                    if k.is("resource") {
                        rs.resource = try decodeResource(&r)
                    } else if k.is("scopeSpans", or: "scope_spans") {
                        var ssArray = try r.beginArray()
                        while try r.nextElement(&ssArray) {
                            rs.scopeSpans.append(try decodeScopeSpans(&r, &spanIndex, &rejections))
                        }
                    } else if k.is("schemaUrl", or: "schema_url") {
                        rs.schemaURL = try r.readString()
                    } else {
                        try r.skipValue()
                    }
                }
                data.resourceSpans.append(rs)
            }
        }
        return data
    }

    static func decodeScopeSpans(
        _ r: inout JSONReader, _ spanIndex: inout Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> ScopeSpans {
        var ss = ScopeSpans()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("scope") {
                ss.scope = try decodeScope(&r)
            } else if key.is("spans") {
                var array = try r.beginArray()
                while try r.nextElement(&array) {
                    var problem: String?
                    let span = try decodeSpan(&r, &problem)
                    if let problem {
                        rejections.reject(1, "span \(spanIndex): \(problem)")
                    } else {
                        ss.spans.append(span)
                    }
                    spanIndex += 1
                }
            } else if key.is("schemaUrl", or: "schema_url") {
                ss.schemaURL = try r.readString()
            } else {
                try r.skipValue()
            }
        }
        return ss
    }

    static func decodeSpan(_ r: inout JSONReader, _ problem: inout String?) throws(OTLPDecodingError) -> Span {
        var traceID = WireID()
        var spanID = WireID()
        var parentSpanID = WireID()
        var span = Span(traceID: .zero, spanID: .zero)
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("traceId", or: "trace_id") {
                traceID = try r.readID()
            } else if key.is("spanId", or: "span_id") {
                spanID = try r.readID()
            } else if key.is("traceState", or: "trace_state") {
                span.traceState = try r.readString()
            } else if key.is("parentSpanId", or: "parent_span_id") {
                parentSpanID = try r.readID()
            } else if key.is("flags") {
                span.flags = try r.readUInt32()
            } else if key.is("name") {
                span.name = try r.readString()
            } else if key.is("kind") {
                span.kind = SpanKind(rawValue: try r.readEnum(spanKind))
            } else if key.is("startTimeUnixNano", or: "start_time_unix_nano") {
                span.startTimeUnixNano = try r.readUInt64()
            } else if key.is("endTimeUnixNano", or: "end_time_unix_nano") {
                span.endTimeUnixNano = try r.readUInt64()
            } else if key.is("attributes") {
                span.attributes = try decodeKeyValues(&r)
            } else if key.is("droppedAttributesCount", or: "dropped_attributes_count") {
                span.droppedAttributesCount = try r.readUInt32()
            } else if key.is("events") {
                var array = try r.beginArray()
                while try r.nextElement(&array) { span.events.append(try decodeSpanEvent(&r)) }
            } else if key.is("droppedEventsCount", or: "dropped_events_count") {
                span.droppedEventsCount = try r.readUInt32()
            } else if key.is("links") {
                var array = try r.beginArray()
                while try r.nextElement(&array) {
                    let index = span.links.count
                    var linkProblem: String?
                    span.links.append(try decodeSpanLink(&r, &linkProblem))
                    if problem == nil, let linkProblem { problem = "link \(index): \(linkProblem)" }
                }
            } else if key.is("droppedLinksCount", or: "dropped_links_count") {
                span.droppedLinksCount = try r.readUInt32()
            } else if key.is("status") {
                span.status = try decodeStatus(&r)
            } else {
                try r.skipValue()
            }
        }
        if let idProblem = IDRules.apply(traceID, spanID, parentSpanID, to: &span) { problem = idProblem }
        return span
    }

    static func decodeSpanEvent(_ r: inout JSONReader) throws(OTLPDecodingError) -> SpanEvent {
        var event = SpanEvent()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("timeUnixNano", or: "time_unix_nano") {
                event.timeUnixNano = try r.readUInt64()
            } else if key.is("name") {
                event.name = try r.readString()
            } else if key.is("attributes") {
                event.attributes = try decodeKeyValues(&r)
            } else if key.is("droppedAttributesCount", or: "dropped_attributes_count") {
                event.droppedAttributesCount = try r.readUInt32()
            } else {
                try r.skipValue()
            }
        }
        return event
    }

    static func decodeSpanLink(_ r: inout JSONReader, _ problem: inout String?) throws(OTLPDecodingError) -> SpanLink {
        var traceID = WireID()
        var spanID = WireID()
        var link = SpanLink(traceID: .zero, spanID: .zero)
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("traceId", or: "trace_id") {
                traceID = try r.readID()
            } else if key.is("spanId", or: "span_id") {
                spanID = try r.readID()
            } else if key.is("traceState", or: "trace_state") {
                link.traceState = try r.readString()
            } else if key.is("attributes") {
                link.attributes = try decodeKeyValues(&r)
            } else if key.is("droppedAttributesCount", or: "dropped_attributes_count") {
                link.droppedAttributesCount = try r.readUInt32()
            } else if key.is("flags") {
                link.flags = try r.readUInt32()
            } else {
                try r.skipValue()
            }
        }
        problem = IDRules.apply(traceID, spanID, to: &link)
        return link
    }

    static func decodeStatus(_ r: inout JSONReader) throws(OTLPDecodingError) -> SpanStatus {
        var status = SpanStatus()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("message") {
                status.message = try r.readString()
            } else if key.is("code") {
                status.code = SpanStatus.Code(rawValue: try r.readEnum(statusCode))
            } else {
                try r.skipValue()
            }
        }
        return status
    }

    static func spanKind(_ name: String) -> Int32? {
        switch name {
        case "SPAN_KIND_UNSPECIFIED": return 0
        case "SPAN_KIND_INTERNAL": return 1
        case "SPAN_KIND_SERVER": return 2
        case "SPAN_KIND_CLIENT": return 3
        case "SPAN_KIND_PRODUCER": return 4
        case "SPAN_KIND_CONSUMER": return 5
        default: return nil
        }
    }

    static func statusCode(_ name: String) -> Int32? {
        switch name {
        case "STATUS_CODE_UNSET": return 0
        case "STATUS_CODE_OK": return 1
        case "STATUS_CODE_ERROR": return 2
        default: return nil
        }
    }

    // MARK: Encoding (members in field-number order)

    static func encodeTracesData(_ data: TracesData, _ w: inout JSONWriter) {
        w.beginObject()
        if !data.resourceSpans.isEmpty {
            w.key("resourceSpans")
            w.beginArray()
            for rs in data.resourceSpans {
                w.element()
                w.beginObject()
                encodeResourceField(rs.resource, &w)
                if !rs.scopeSpans.isEmpty {
                    w.key("scopeSpans")
                    w.beginArray()
                    for ss in rs.scopeSpans {
                        w.element()
                        w.beginObject()
                        encodeScopeField(ss.scope, &w)
                        if !ss.spans.isEmpty {
                            w.key("spans")
                            w.beginArray()
                            // Through the buffer each span is borrowed in place; `for span in`
                            // copies it, a retain/release per reference field.
                            ss.spans.withUnsafeBufferPointer { spans in
                                for i in spans.indices {
                                    w.element()
                                    encodeSpan(spans[i], &w)
                                }
                            }
                            w.endArray()
                        }
                        w.stringField("schemaUrl", ss.schemaURL)
                        w.endObject()
                    }
                    w.endArray()
                }
                w.stringField("schemaUrl", rs.schemaURL)
                w.endObject()
            }
            w.endArray()
        }
        w.endObject()
    }

    static func encodeSpan(_ span: borrowing Span, _ w: inout JSONWriter) {
        w.beginObject()
        w.key("traceId")
        w.traceID(span.traceID)
        w.key("spanId")
        w.spanID(span.spanID)
        w.stringField("traceState", span.traceState)
        if let parent = span.parentSpanID {
            w.key("parentSpanId")
            w.spanID(parent)
        }
        w.stringField("name", span.name)
        w.int32Field("kind", span.kind.rawValue)
        w.uint64Field("startTimeUnixNano", span.startTimeUnixNano)
        w.uint64Field("endTimeUnixNano", span.endTimeUnixNano)
        encodeKeyValuesField("attributes", span.attributes, &w)
        w.int32Field("droppedAttributesCount", span.droppedAttributesCount)
        if !span.events.isEmpty {
            w.key("events")
            w.beginArray()
            for event in span.events {
                w.element()
                w.beginObject()
                w.uint64Field("timeUnixNano", event.timeUnixNano)
                w.stringField("name", event.name)
                encodeKeyValuesField("attributes", event.attributes, &w)
                w.int32Field("droppedAttributesCount", event.droppedAttributesCount)
                w.endObject()
            }
            w.endArray()
        }
        w.int32Field("droppedEventsCount", span.droppedEventsCount)
        if !span.links.isEmpty {
            w.key("links")
            w.beginArray()
            for link in span.links {
                w.element()
                w.beginObject()
                if link.traceID.isValid {
                    w.key("traceId")
                    w.traceID(link.traceID)
                }
                if link.spanID.isValid {
                    w.key("spanId")
                    w.spanID(link.spanID)
                }
                w.stringField("traceState", link.traceState)
                encodeKeyValuesField("attributes", link.attributes, &w)
                w.int32Field("droppedAttributesCount", link.droppedAttributesCount)
                w.int32Field("flags", link.flags)
                w.endObject()
            }
            w.endArray()
        }
        w.int32Field("droppedLinksCount", span.droppedLinksCount)
        if span.status.code != .unset || !span.status.message.isEmpty {
            w.key("status")
            w.beginObject()
            w.stringField("message", span.status.message)
            w.int32Field("code", span.status.code.rawValue)
            w.endObject()
        }
        w.int32Field("flags", span.flags)
        w.endObject()
    }
}
