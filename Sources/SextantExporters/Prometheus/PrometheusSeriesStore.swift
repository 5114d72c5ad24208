import SextantModel
import SextantPrometheus
import Synchronization

/// The `prometheus` exporter's state: the latest point of every series, already in Prometheus form,
/// and the running totals that turn delta points into cumulative ones. Thread-safe; a scrape renders
/// from a snapshot taken under the lock.
final class PrometheusSeriesStore: Sendable {
    private struct Entry {
        var point: PrometheusSamples.Point
        var updated: ContinuousClock.Instant
    }

    /// A delta series' running total (OTel `prometheusexporter` accumulator).
    private enum Total {
        case sum(NumberDataPoint)
        case histogram(HistogramDataPoint)
    }

    private struct State {
        var series: [String: Entry] = [:]
        var totals: [String: (total: Total, updated: ContinuousClock.Instant)] = [:]
        var lastSweep: ContinuousClock.Instant?
    }

    private let options: PrometheusSamples.Options
    private let expiration: Duration
    private let state = Mutex(State())

    init(options: PrometheusSamples.Options, expiration: Duration) {
        self.options = options
        self.expiration = expiration
    }

    /// Merges a batch: deltas are accumulated first, then every point replaces an older one of its
    /// series (a point older than the stored one is ignored; a stale one removes the series).
    func update(_ data: MetricsData, now: ContinuousClock.Instant) -> (series: Int, skipped: PrometheusSamples.Skipped) {
        state.withLock { s in
            let cumulative = accumulate(data, &s, now: now)
            let skipped = PrometheusSamples.forEachPoint([cumulative], options: options) { p in
                let key = p.seriesKey
                if let old = s.series[key], old.point.timeUnixNano > p.timeUnixNano { return }
                if p.stale {
                    s.series[key] = nil
                } else {
                    s.series[key] = Entry(point: p, updated: now)
                }
            }
            sweepIfDue(&s, now: now)
            return (s.series.count, skipped)
        }
    }

    /// Families sorted by name with their series sorted by labels, after dropping expired series.
    func snapshot(now: ContinuousClock.Instant) -> [(PrometheusSamples.Family, [PrometheusSamples.Point])] {
        let entries: [(String, PrometheusSamples.Point)] = state.withLock { s in
            sweep(&s, now: now)
            return s.series.map { ($0.key, $0.value.point) }
        }
        var byFamily: [String: (PrometheusSamples.Family, [(String, PrometheusSamples.Point)])] = [:]
        for (key, p) in entries { byFamily[p.family.name, default: (p.family, [])].1.append((key, p)) }
        return byFamily.keys.sorted().map { name in
            let (family, points) = byFamily[name]!
            return (family, points.sorted { $0.0 < $1.0 }.map(\.1))
        }
    }

    var count: Int { state.withLock { $0.series.count } }

    private func sweepIfDue(_ s: inout State, now: ContinuousClock.Instant) {
        if let last = s.lastSweep, now - last < expiration / 2 { return }
        sweep(&s, now: now)
    }

    private func sweep(_ s: inout State, now: ContinuousClock.Instant) {
        s.lastSweep = now
        s.series = s.series.filter { now - $0.value.updated <= expiration }
        s.totals = s.totals.filter { now - $0.value.updated <= expiration }
    }

    /// Delta sums and delta histograms become cumulative: each point is added to its series' running
    /// total, whose start time is the first point's. A histogram whose bounds changed starts a new
    /// total; a point older than the total is dropped.
    private func accumulate(_ data: MetricsData, _ s: inout State, now: ContinuousClock.Instant) -> MetricsData {
        var out = data
        for (ri, rm) in data.resourceMetrics.enumerated() {
            var resourceKey: String?
            for (si, sm) in rm.scopeMetrics.enumerated() {
                for (mi, m) in sm.metrics.enumerated() {
                    func key(_ attributes: [KeyValue]) -> String {
                        if resourceKey == nil { resourceKey = Self.attributeKey(rm.resource.attributes) }
                        return resourceKey! + "\u{1}" + m.name + "\u{1}" + Self.attributeKey(attributes)
                    }
                    switch m.data {
                    case .sum(let points, .delta, let monotonic):
                        var result: [NumberDataPoint] = []
                        for p in points {
                            let k = key(p.attributes)
                            var total = p
                            if case .sum(let prev)? = s.totals[k]?.total {
                                if p.timeUnixNano < prev.timeUnixNano { continue }
                                total.startTimeUnixNano = prev.startTimeUnixNano
                                total.value = Self.add(prev.value, p.value)
                            } else if total.startTimeUnixNano == 0 {
                                total.startTimeUnixNano = p.timeUnixNano
                            }
                            total.flags = 0
                            if p.flags & DataPointFlags.noRecordedValue != 0 {
                                s.totals[k] = nil
                                var stale = p
                                stale.flags = DataPointFlags.noRecordedValue
                                result.append(stale)
                                continue
                            }
                            s.totals[k] = (.sum(total), now)
                            result.append(total)
                        }
                        out.resourceMetrics[ri].scopeMetrics[si].metrics[mi].data = .sum(result, temporality: .cumulative, isMonotonic: monotonic)
                    case .histogram(let points, .delta):
                        var result: [HistogramDataPoint] = []
                        for p in points {
                            let k = key(p.attributes)
                            var total = p
                            total.min = nil
                            total.max = nil
                            if case .histogram(let prev)? = s.totals[k]?.total, prev.explicitBounds == p.explicitBounds,
                                prev.bucketCounts.count == p.bucketCounts.count
                            {
                                if p.timeUnixNano < prev.timeUnixNano { continue }
                                total.startTimeUnixNano = prev.startTimeUnixNano
                                total.count = prev.count &+ p.count
                                total.sum = (prev.sum ?? 0) + (p.sum ?? 0)
                                total.bucketCounts = zip(prev.bucketCounts, p.bucketCounts).map { $0 &+ $1 }
                            } else if total.startTimeUnixNano == 0 {
                                total.startTimeUnixNano = p.timeUnixNano
                            }
                            if p.flags & DataPointFlags.noRecordedValue != 0 {
                                s.totals[k] = nil
                                result.append(p)
                                continue
                            }
                            s.totals[k] = (.histogram(total), now)
                            result.append(total)
                        }
                        out.resourceMetrics[ri].scopeMetrics[si].metrics[mi].data = .histogram(result, temporality: .cumulative)
                    default:
                        continue
                    }
                }
            }
        }
        return out
    }

    private static func add(_ a: NumberValue, _ b: NumberValue) -> NumberValue {
        if case .int(let x) = a, case .int(let y) = b { return .int(x &+ y) }
        return .double(a.asDouble + b.asDouble)
    }

    private static func attributeKey(_ attributes: [KeyValue]) -> String {
        attributes.map { $0.key + "=" + $0.value.asString }.sorted().joined(separator: "\u{0}")
    }
}
