import SextantModel

/// The Jaeger UI model (jaeger `model/json/model.go`, written by `model/converter/json/from_domain.go`).
extension JaegerQueryAPI {
    /// JavaScript's safe integer range: int64 tags outside it are written as strings, as
    /// jaeger-query does, so the UI shows them exactly.
    static let maxSafeInteger: Int64 = 1 << 53 - 1

    static func renderTraces(_ traces: [[StoredSpan]], _ w: inout JSONWriter) {
        w.array(traces) { w, spans in renderTrace(spans, &w) }
    }

    /// One trace; `spans` sorted by start time.
    static func renderTrace(_ spans: [StoredSpan], _ w: inout JSONWriter) {
        var processIDs: [StoredSpan.Process: Int] = [:]
        var processes: [StoredSpan.Process] = []
        w.raw("{")
        w.field("traceID", spans.first.map { jaegerTraceID($0.traceID) } ?? "")
        w.key("spans")
        w.array(spans) { w, span in
            let processID: Int
            if let known = processIDs[span.process] {
                processID = known
            } else {
                processes.append(span.process)
                processID = processes.count
                processIDs[span.process] = processID
            }
            renderSpan(span, processID: processID, &w)
        }
        w.key("processes")
        w.raw("{")
        for (i, process) in processes.enumerated() {
            w.raw(i == 0 ? "\"p\(i + 1)\":{" : ",\"p\(i + 1)\":{")
            w.field("serviceName", process.serviceName)
            w.key("tags")
            renderTags(process.tags, &w)
            w.raw("}")
        }
        w.raw("}")
        w.key("warnings")
        w.raw("null}")
    }

    static func renderSpan(_ span: StoredSpan, processID: Int, _ w: inout JSONWriter) {
        w.raw("{")
        w.field("traceID", jaegerTraceID(span.traceID))
        w.field("spanID", span.spanID.hex)
        w.key("flags")
        w.uint64(UInt64(span.flags))
        w.field("operationName", span.operationName)
        w.key("references")
        w.array(span.references) { w, reference in
            w.raw("{")
            w.field("refType", reference.refType.rawValue)
            w.field("traceID", jaegerTraceID(reference.traceID))
            w.field("spanID", reference.spanID.hex)
            w.raw("}")
        }
        w.key("startTime")
        w.uint64(span.startTime)
        w.key("duration")
        w.uint64(span.duration)
        w.key("tags")
        renderTags(span.tags, &w)
        w.key("logs")
        w.array(span.logs) { w, log in
            w.raw("{")
            w.key("timestamp")
            w.uint64(log.timestamp)
            w.key("fields")
            renderTags(log.fields, &w)
            w.raw("}")
        }
        w.field("processID", "p\(processID)")
        w.key("warnings")
        w.raw("null}")
    }

    static func renderTags(_ tags: [StoredSpan.Tag], _ w: inout JSONWriter) {
        w.array(tags) { w, tag in
            w.raw("{")
            w.field("key", tag.key)
            w.field("type", tag.value.typeName)
            w.key("value")
            switch tag.value {
            case .string(let s): w.string(s)
            case .bool(let b): w.bool(b)
            case .int64(let v):
                if v > maxSafeInteger || v < -maxSafeInteger { w.string(String(v)) } else { w.int64(v) }
            case .float64(let d): w.double(d)
            case .binary(let b): w.string(Base64.encode(b))
            }
            w.raw("}")
        }
    }

    /// Jaeger's `TraceID.String()`: 16 hex digits when the high half is zero, else 32.
    static func jaegerTraceID(_ id: TraceID) -> String {
        id.high == 0 ? Hex.string(id.low) : id.hex
    }
}
