import SextantModel

extension ECSMapping {
    /// How documents are shaped (`mapping.mode`).
    public enum Mode: String, Sendable {
        case ecs
        case raw
    }

    /// Calls `body` with each log record's or span's document, its time (Unix ns) and the attribute
    /// lists that may route it (record, scope, resource). Metrics have no document form and are skipped.
    public static func forEachDocument(
        _ batch: Telemetry, mode: Mode, fallbackTimeUnixNano: UInt64, dataStream: (([[KeyValue]]) -> DataStream)? = nil,
        _ body: (_ document: ECSDocument, _ timeUnixNano: UInt64, _ attributes: [[KeyValue]]) -> Void
    ) {
        switch batch {
        case .logs(let logs):
            for rl in logs.resourceLogs {
                for sl in rl.scopeLogs {
                    for log in sl.logRecords {
                        let routing = [log.attributes, sl.scope.attributes, rl.resource.attributes]
                        let ds = dataStream?(routing)
                        let t =
                            log.timeUnixNano != 0
                            ? log.timeUnixNano : log.observedTimeUnixNano != 0 ? log.observedTimeUnixNano : fallbackTimeUnixNano
                        let doc =
                            mode == .ecs
                            ? document(log: log, resource: rl.resource, scope: sl.scope, fallbackTimeUnixNano: t, dataStream: ds)
                            : rawDocument(log: log, resource: rl.resource, fallbackTimeUnixNano: t, dataStream: ds)
                        body(doc, t, routing)
                    }
                }
            }
        case .traces(let traces):
            for rs in traces.resourceSpans {
                for ss in rs.scopeSpans {
                    for span in ss.spans {
                        let routing = [span.attributes, ss.scope.attributes, rs.resource.attributes]
                        let ds = dataStream?(routing)
                        let doc =
                            mode == .ecs
                            ? document(span: span, resource: rs.resource, scope: ss.scope, dataStream: ds)
                            : rawDocument(span: span, resource: rs.resource, dataStream: ds)
                        body(doc, span.startTimeUnixNano, routing)
                    }
                }
            }
        case .metrics:
            break
        }
    }

    /// A batch as NDJSON, one ECS document per log record or span (the `file` exporter's `ecs` format).
    public static func ndjson(_ batch: Telemetry, mode: Mode = .ecs, fallbackTimeUnixNano: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        forEachDocument(batch, mode: mode, fallbackTimeUnixNano: fallbackTimeUnixNano) { doc, _, _ in
            out += doc.json()
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }
}
