import SextantModel

// Cheap estimates of the encoded JSON size, used to size the output buffer up front (see
// `JSONWriter.document`). They add the length of every string (O(1) for native strings) to a
// per-item allowance for keys, punctuation, IDs and numbers. Escaping is not counted — rare in
// practice, and an estimate that falls short costs only one copy — so a little slack is added.
extension OTLPJSON {
    static func estimatedSize(_ data: TracesData) -> Int {
        var n = 16
        for rs in data.resourceSpans {
            n += 48 + estimatedSize(rs.resource) + rs.schemaURL.utf8.count
            for ss in rs.scopeSpans {
                n += 48 + estimatedSize(ss.scope) + ss.schemaURL.utf8.count
                // Spans and attributes are read in place through buffers: `for span in` would copy
                // each one (a retain/release per reference field), which showed in profiles.
                ss.spans.withUnsafeBufferPointer { spans in
                    for i in spans.indices {
                        // IDs, timestamps, kind, status, flags and their keys: ~260 bytes.
                        n += 280 + spans[i].name.utf8.count + spans[i].traceState.utf8.count
                            + spans[i].status.message.utf8.count + estimatedSize(spans[i].attributes)
                        for event in spans[i].events {
                            n += 64 + event.name.utf8.count + estimatedSize(event.attributes)
                        }
                        for link in spans[i].links {
                            n += 128 + link.traceState.utf8.count + estimatedSize(link.attributes)
                        }
                    }
                }
            }
        }
        return n + n / 16
    }

    static func estimatedSize(_ data: LogsData) -> Int {
        var n = 16
        for rl in data.resourceLogs {
            n += 48 + estimatedSize(rl.resource) + rl.schemaURL.utf8.count
            for sl in rl.scopeLogs {
                n += 48 + estimatedSize(sl.scope) + sl.schemaURL.utf8.count
                for record in sl.logRecords {
                    // Timestamps, severity, IDs, flags and their keys: ~240 bytes.
                    n += 256 + record.severityText.utf8.count + record.eventName.utf8.count
                        + estimatedSize(record.attributes)
                    if let body = record.body { n += 16 + estimatedSize(body) }
                }
            }
        }
        return n + n / 16
    }

    static func estimatedSize(_ data: MetricsData) -> Int {
        var n = 16
        for rm in data.resourceMetrics {
            n += 48 + estimatedSize(rm.resource) + rm.schemaURL.utf8.count
            for sm in rm.scopeMetrics {
                n += 48 + estimatedSize(sm.scope) + sm.schemaURL.utf8.count
                for metric in sm.metrics {
                    n += 96 + metric.name.utf8.count + metric.description.utf8.count + metric.unit.utf8.count
                        + estimatedSize(metric.metadata)
                    switch metric.data {
                    case .gauge(let points), .sum(let points, _, _):
                        for p in points { n += 128 + estimatedSize(p.attributes) + 160 * p.exemplars.count }
                    case .histogram(let points, _):
                        for p in points {
                            n += 224 + estimatedSize(p.attributes) + 24 * (p.bucketCounts.count + p.explicitBounds.count)
                                + 160 * p.exemplars.count
                        }
                    case .exponentialHistogram(let points, _):
                        for p in points {
                            n += 320 + estimatedSize(p.attributes)
                                + 24 * (p.positive.bucketCounts.count + p.negative.bucketCounts.count)
                                + 160 * p.exemplars.count
                        }
                    case .summary(let points):
                        for p in points { n += 160 + estimatedSize(p.attributes) + 64 * p.quantileValues.count }
                    case .empty:
                        break
                    }
                }
            }
        }
        return n + n / 16
    }

    static func estimatedSize(_ resource: Resource) -> Int {
        32 + estimatedSize(resource.attributes)
    }

    static func estimatedSize(_ scope: InstrumentationScope) -> Int {
        48 + scope.name.utf8.count + scope.version.utf8.count + estimatedSize(scope.attributes)
    }

    /// `{"key":"…","value":{"stringValue":"…"}},` is 38 bytes besides the key and value.
    static func estimatedSize(_ attributes: [KeyValue]) -> Int {
        attributes.withUnsafeBufferPointer { attributes in
            var n = 16
            for i in attributes.indices { n += 40 + attributes[i].key.utf8.count + estimatedSize(attributes[i].value) }
            return n
        }
    }

    static func estimatedSize(_ value: AnyValue) -> Int {
        switch value {
        case .string(let s): return s.utf8.count
        case .bool: return 5
        case .int: return 20
        case .double: return 24
        case .bytes(let b): return (b.count + 2) / 3 * 4
        case .array(let values): return values.reduce(32) { $0 + 20 + estimatedSize($1) }
        case .kvlist(let values): return 32 + estimatedSize(values)
        case .empty: return 0
        }
    }
}
