import SextantModel
import Synchronization

/// The collector's own metrics, rendered in the Prometheus text format at
/// `service.telemetry.metrics.address`.
///
/// Counters are lock-free atomics handed out once per (name, labels) and kept by the component, so
/// the hot path is one relaxed atomic add. Rendering sorts families and series for stable output.
public final class SelfTelemetry: Sendable {
    /// A monotonically increasing count.
    public final class Counter: Sendable {
        let value = Atomic<Int64>(0)
        public func add(_ n: Int) { if n != 0 { value.add(Int64(n), ordering: .relaxed) } }
        public func increment() { add(1) }
        public var current: Int64 { value.load(ordering: .relaxed) }
    }

    /// A value that goes up and down.
    public final class Gauge: Sendable {
        let value = Atomic<Int64>(0)
        public func set(_ v: Int) { value.store(Int64(v), ordering: .relaxed) }
        public func add(_ n: Int) { value.add(Int64(n), ordering: .relaxed) }
        public var current: Int64 { value.load(ordering: .relaxed) }
    }

    private enum Series: Sendable {
        case counter(Counter)
        case gauge(Gauge)
    }

    private struct Family: Sendable {
        var help: String
        var type: String
        var series: [String: Series]  // rendered label set → series
    }

    private let families = Mutex<[String: Family]>([:])

    public init() {}

    /// The counter for `name{labels}`, created on first use. Names should end in `_total`.
    public func counter(_ name: String, help: String, labels: [(String, String)] = []) -> Counter {
        let key = Self.render(labels)
        return families.withLock { fams in
            if case .counter(let c)? = fams[name]?.series[key] { return c }
            let c = Counter()
            fams[name, default: Family(help: help, type: "counter", series: [:])].series[key] = .counter(c)
            return c
        }
    }

    /// The gauge for `name{labels}`, created on first use.
    public func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Gauge {
        let key = Self.render(labels)
        return families.withLock { fams in
            if case .gauge(let g)? = fams[name]?.series[key] { return g }
            let g = Gauge()
            fams[name, default: Family(help: help, type: "gauge", series: [:])].series[key] = .gauge(g)
            return g
        }
    }

    /// The current value of a series, for tests and health checks.
    public func value(_ name: String, labels: [(String, String)] = []) -> Int64? {
        let key = Self.render(labels)
        return families.withLock { fams in
            switch fams[name]?.series[key] {
            case .counter(let c)?: return c.current
            case .gauge(let g)?: return g.current
            case nil: return nil
            }
        }
    }

    /// Prometheus text exposition format 0.0.4, families and series sorted.
    public func renderPrometheusText() -> String {
        let snapshot = families.withLock { $0 }
        var out = ""
        for name in snapshot.keys.sorted() {
            let fam = snapshot[name]!
            out += "# HELP \(name) \(fam.help)\n# TYPE \(name) \(fam.type)\n"
            for key in fam.series.keys.sorted() {
                let v: Int64
                switch fam.series[key]! {
                case .counter(let c): v = c.current
                case .gauge(let g): v = g.current
                }
                out += "\(name)\(key) \(v)\n"
            }
        }
        return out
    }

    static func render(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        let body = labels.sorted { $0.0 < $1.0 }.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
        return "{\(body)}"
    }

    static func escape(_ v: String) -> String {
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

/// Counters a receiver keeps per signal: items accepted into the pipeline and items refused.
public struct ReceiverMetrics: Sendable {
    private let accepted: [Signal: SelfTelemetry.Counter]
    private let refused: [Signal: SelfTelemetry.Counter]

    public init(_ settings: ComponentSettings, transport: String) {
        var a: [Signal: SelfTelemetry.Counter] = [:]
        var r: [Signal: SelfTelemetry.Counter] = [:]
        for s in Signal.allCases {
            let labels = [("receiver", settings.id.description), ("transport", transport), ("signal", s.rawValue)]
            a[s] = settings.telemetry.counter(
                "sextant_receiver_accepted_items_total", help: "Items (spans, metric points, log records) accepted into pipelines.",
                labels: labels)
            r[s] = settings.telemetry.counter(
                "sextant_receiver_refused_items_total", help: "Items refused: malformed, rejected, or refused downstream.",
                labels: labels)
        }
        accepted = a
        refused = r
    }

    public func accepted(_ signal: Signal, _ n: Int) { accepted[signal]!.add(n) }
    public func refused(_ signal: Signal, _ n: Int) { refused[signal]!.add(n) }
}

