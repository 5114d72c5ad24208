/// The three telemetry signals a pipeline carries.
public enum Signal: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case traces
    case metrics
    case logs

    public var description: String { rawValue }

    /// The name of the item counted for this signal in self-telemetry.
    public var itemName: String {
        switch self {
        case .traces: return "spans"
        case .metrics: return "metric_points"
        case .logs: return "log_records"
        }
    }

    public static func < (a: Signal, b: Signal) -> Bool {
        let order: [Signal] = [.traces, .metrics, .logs]
        return order.firstIndex(of: a)! < order.firstIndex(of: b)!
    }
}

/// One batch of telemetry of any signal: the unit that flows between pipeline components.
public enum Telemetry: Sendable, Equatable {
    case traces(TracesData)
    case metrics(MetricsData)
    case logs(LogsData)

    public var signal: Signal {
        switch self {
        case .traces: return .traces
        case .metrics: return .metrics
        case .logs: return .logs
        }
    }

    /// Items in the batch: spans, metric data points or log records.
    public var itemCount: Int {
        switch self {
        case .traces(let t): return t.spanCount
        case .metrics(let m): return m.dataPointCount
        case .logs(let l): return l.logRecordCount
        }
    }
}
