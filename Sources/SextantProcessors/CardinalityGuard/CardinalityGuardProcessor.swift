import SextantModel
import SextantPipeline
import Synchronization

/// `cardinalityguard` processor config. Sextant's own processor: the OTel Collector has no identical
/// one (its SDKs' cardinality limits, with the `otel.metric.overflow` series, are the model).
public struct CardinalityGuardConfig: ComponentConfig {
    /// Distinct series (streams) admitted per metric name, counted across resources and scopes.
    public var maxSeriesPerMetric = 1000
    /// A series not updated for this long is forgotten, freeing its slot.
    public var metricExpiration: Duration = .seconds(300)
    /// The only attribute of the overflow series (value `true`).
    public var overflowAttribute = "otel_metric_overflow"

    public init() {}
}

public struct CardinalityGuardProcessorFactory: ProcessorFactory {
    public init() {}
    public let type = "cardinalityguard"
    public let signals: Set<Signal> = [.metrics]
    public let summary = "caps series per metric name; folds the excess into one overflow series per metric"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = CardinalityGuardConfig()
        c.maxSeriesPerMetric = r.int("max_series_per_metric", default: c.maxSeriesPerMetric, min: 1)
        c.metricExpiration = r.duration("metric_expiration", default: c.metricExpiration, allowZero: false)
        c.overflowAttribute = r.string("overflow_attribute", default: c.overflowAttribute)
        if c.overflowAttribute.isEmpty { r.error("overflow_attribute", "\(r.qualified("overflow_attribute")) must not be empty") }
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        CardinalityGuardProcessor(config as! CardinalityGuardConfig, settings: settings, pipeline: pipeline, next: next, clock: ContinuousClock())
    }
}

/// Caps the number of series per metric name. The first `max_series_per_metric` series of a metric
/// (identity as in `StreamKey`) pass unchanged; points of further series are folded into one overflow
/// series per metric, whose only point attribute is `<overflow_attribute>=true`:
/// - Delta sums and histograms: the overflow point of a batch is the sum of the folded points
///   (buckets, count and sum added; min/max the extremes; start/time the earliest/latest).
/// - Cumulative monotonic sums and cumulative histograms: the overflow series is a counter of
///   everything the folded series added: each folded point contributes its increase since that
///   series' previous point, or its whole value when the series is new to the overflow or was reset
///   (value down or start time changed). So it never goes down, and a folded series that expires
///   keeps what it contributed. Its start time is the first folded series' start.
/// - Cumulative non-monotonic sums (up-down counters): the overflow series is the sum of the latest
///   values of the folded series; a folded series that expires leaves the sum.
/// - Gauges, summaries and exponential histograms cannot be merged: their excess points are dropped
///   (`not_foldable`), as are points whose kind, temporality, value type or bucket bounds differ from
///   the overflow series' first folded point.
/// A folded series keeps folding until it expires, so a cumulative series never counts twice. The
/// overflow series carries the resource and scope attributes common to every series folded into it
/// (with one service, its `service.name` stays). Series not updated within `metric_expiration` are
/// forgotten, which frees room under the limit. At most `max(10_000, 10 × max_series_per_metric)`
/// cumulative series are tracked per overflow series; points of further ones are dropped
/// (`stream_limit`), so memory stays bounded.
public final class CardinalityGuardProcessor<C: Clock>: ConsumingComponent where C.Duration == Duration {
    /// What the overflow series of a metric aggregates; fixed by its first folded point.
    enum Shape: Equatable {
        case sum(AggregationTemporality, monotonic: Bool, int: Bool)
        case histogram(AggregationTemporality, bounds: [Double])

        var temporality: AggregationTemporality {
            switch self {
            case .sum(let t, _, _), .histogram(let t, _): return t
            }
        }

        var isCumulative: Bool { temporality == .cumulative }

        var isMonotonic: Bool {
            switch self {
            case .sum(_, let monotonic, _): return monotonic
            case .histogram: return true
            }
        }

        var zero: Contribution {
            switch self {
            case .sum(_, _, int: true): return .int(0)
            case .sum: return .double(0)
            case .histogram(_, let bounds): return .histogram(count: 0, sum: 0, buckets: [UInt64](repeating: 0, count: bounds.count + 1))
            }
        }
    }

    /// A folded cumulative series' latest value, or the overflow total of them. Integer arithmetic
    /// wraps, which keeps the total exact whenever the true sum fits (the wraps cancel out).
    enum Contribution {
        case int(Int64)
        case double(Double)
        case histogram(count: UInt64, sum: Double, buckets: [UInt64])

        mutating func add(_ v: Contribution) {
            switch (self, v) {
            case (.int(let t), .int(let x)): self = .int(t &+ x)
            case (.double(let t), .double(let x)): self = .double(t + x)
            case (.histogram(let c, let s, var b), .histogram(let xc, let xs, let xb)) where b.count == xb.count:
                for i in b.indices { b[i] &+= xb[i] }
                self = .histogram(count: c &+ xc, sum: s + xs, buckets: b)
            default: break
            }
        }

        mutating func subtract(_ v: Contribution) {
            switch (self, v) {
            case (.int(let t), .int(let x)): self = .int(t &- x)
            case (.double(let t), .double(let x)): self = .double(t - x)
            case (.histogram(let c, let s, var b), .histogram(let xc, let xs, let xb)) where b.count == xb.count:
                for i in b.indices { b[i] &-= xb[i] }
                self = .histogram(count: c &- xc, sum: s - xs, buckets: b)
            default: break
            }
        }

        /// Whether `self`, a later value of the same series, went down: a reset.
        func isLess(than other: Contribution) -> Bool {
            switch (self, other) {
            case (.int(let x), .int(let y)): return x < y
            case (.double(let x), .double(let y)): return x < y
            case (.histogram(let x, _, let xb), .histogram(let y, _, let yb)):
                return x < y || zip(xb, yb).contains { $0 < $1 }
            default: return false
            }
        }
    }

    struct Overflow {
        var shape: Shape
        var resource: Resource
        var scope: InstrumentationScope
        var lastSeen: C.Instant
        // Cumulative overflow series only:
        var start: UInt64
        /// The latest value and start time of each folded series.
        var folded: StreamTable<C.Instant, (value: Contribution, start: UInt64)>
        /// The overflow value; integer totals wrap, which is exact whenever the true sum fits.
        var total: Contribution
    }

    struct MetricState {
        var admitted: StreamTable<C.Instant, Bool>
        var overflow: Overflow?
    }

    struct State {
        var metrics: [String: MetricState] = [:]
        var lastSweep: C.Instant?
    }

    /// The overflow point being built for one metric within one batch.
    private struct Pending {
        var template: Metric
        var resource: Resource
        var scope: InstrumentationScope
        var number: NumberDataPoint?
        var histogram: HistogramDataPoint?
        var lastDrop = PointDropReason.notFoldable

        var hasPoint: Bool { number != nil || histogram != nil }

        mutating func drop(_ reason: PointDropReason) -> Bool {
            lastDrop = reason
            return false
        }
    }

    private let config: CardinalityGuardConfig
    private let next: any Consumer
    private let clock: C
    private let state = Mutex(State())
    private let telemetry: StreamProcessorTelemetry
    private let folded: SelfTelemetry.Counter
    private let maxFoldedPerMetric: Int

    public init(_ config: CardinalityGuardConfig, settings: ComponentSettings, pipeline: PipelineID, next: any Consumer, clock: C) {
        self.config = config
        self.next = next
        self.clock = clock
        maxFoldedPerMetric = max(10_000, 10 * config.maxSeriesPerMetric)
        telemetry = StreamProcessorTelemetry(
            settings, pipeline: pipeline, component: "cardinalityguard", reasons: [.notFoldable, .streamLimit, .invalid])
        folded = settings.telemetry.counter(
            "sextant_processor_cardinalityguard_overflow_points_total", help: "Data points folded into a metric's overflow series.",
            labels: [("processor", settings.id.description), ("pipeline", pipeline.description)])
    }

    public func start() async throws {}
    public func shutdown() async {}

    public func consume(_ batch: Telemetry) async throws {
        guard case .metrics(var data) = batch else { return try await next.consume(batch) }
        let now = clock.now
        var drops = PointDrops()
        var foldedCount = 0
        var emptied = Set<[Int]>()
        var pending: [String: Pending] = [:]
        var pendingOrder: [String] = []
        state.withLock { s in
            sweep(&s, now: now)
            for i in data.resourceMetrics.indices {
                let resource = data.resourceMetrics[i].resource
                for j in data.resourceMetrics[i].scopeMetrics.indices {
                    let scope = data.resourceMetrics[i].scopeMetrics[j].scope
                    let prefix = StreamKey.prefix(resource: resource, scope: scope)
                    for k in data.resourceMetrics[i].scopeMetrics[j].metrics.indices {
                        var metric = data.resourceMetrics[i].scopeMetrics[j].metrics[k]
                        let before = metric.data.pointCount
                        guard before > 0 else { continue }
                        var m =
                            s.metrics.removeValue(forKey: metric.name)
                            ?? MetricState(admitted: StreamTable(maxStreams: config.maxSeriesPerMetric, expiry: config.metricExpiration))
                        var p = pending[metric.name] ?? Pending(template: metric, resource: resource, scope: scope)
                        let group = Group(resource: resource, scope: scope, now: now)
                        metric.data.removePoints(base: prefix.metric(metric)) { key, point in
                            // Admitted: already tracked, or room left. Folded series stay folded until they expire.
                            if m.overflow?.folded.contains(key, now: now) != true, m.admitted.set(key, true, now: now) { return false }
                            if fold(point, key: key, into: &m, pending: &p, group) { foldedCount += 1 } else { drops.add(p.lastDrop) }
                            return true
                        }
                        if p.hasPoint && pending[metric.name] == nil { pendingOrder.append(metric.name) }
                        if p.hasPoint { pending[metric.name] = p }
                        s.metrics[metric.name] = m
                        if metric.data.pointCount != before {
                            data.resourceMetrics[i].scopeMetrics[j].metrics[k] = metric
                            if metric.data.pointCount == 0 { emptied.insert([i, j, k]) }
                        }
                    }
                }
            }
            // Finish each metric's overflow point: where it is reported, and (cumulative) its start.
            for name in pendingOrder {
                guard let o = s.metrics[name]?.overflow, var p = pending[name] else { continue }
                p.resource = o.resource
                p.scope = o.scope
                if o.shape.isCumulative {
                    p.number?.startTimeUnixNano = o.start
                    p.histogram?.startTimeUnixNano = o.start
                }
                pending[name] = p
            }
            telemetry.streams.set(s.metrics.values.reduce(0) { $0 + $1.admitted.count })
        }
        folded.add(foldedCount)
        telemetry.record(drops)
        data.pruneEmptied(emptied)
        data.resourceMetrics += Self.overflowResources(pendingOrder.compactMap { pending[$0] }, attribute: config.overflowAttribute)
        if !data.resourceMetrics.isEmpty { try await next.consume(.metrics(data)) }
    }

    /// Where the points being folded come from.
    private struct Group {
        var resource: Resource
        var scope: InstrumentationScope
        var now: C.Instant
    }

    /// Folds `point` into the metric's overflow series and this batch's overflow point; `false`
    /// when it cannot be folded (the reason is left in `pending.lastDrop`).
    private func fold(_ point: FoldablePoint, key: StreamKey, into m: inout MetricState, pending: inout Pending, _ g: Group) -> Bool {
        let shape: Shape
        var start: UInt64 = 0
        switch point {
        case .number(let p, let t, let monotonic):
            if p.value.isNaN { return pending.drop(.invalid) }
            shape = .sum(t, monotonic: monotonic, int: p.value.isInt)
            start = p.startTimeUnixNano
        case .histogram(let p, let t):
            if p.sum?.isNaN == true { return pending.drop(.invalid) }
            guard p.bucketCounts.count == p.explicitBounds.count + 1 else { return pending.drop(.notFoldable) }
            shape = .histogram(t, bounds: p.explicitBounds)
            start = p.startTimeUnixNano
        case .other:
            return pending.drop(.notFoldable)
        }
        var o =
            m.overflow
            ?? Overflow(
                shape: shape, resource: g.resource, scope: g.scope, lastSeen: g.now, start: start,
                folded: StreamTable(maxStreams: maxFoldedPerMetric, expiry: config.metricExpiration), total: shape.zero)
        guard o.shape == shape else {
            m.overflow = o
            return pending.drop(.notFoldable)
        }
        defer { m.overflow = o }
        if case .cumulative = shape.temporality {
            let value: Contribution
            switch point {
            case .number(let p, _, _):
                if case .int(let v) = p.value { value = .int(v) } else { value = .double(p.value.asDouble) }
            case .histogram(let p, _):
                value = .histogram(count: p.count, sum: p.sum ?? 0, buckets: p.bucketCounts)
            case .other:
                return false
            }
            let old = o.folded.value(for: key, now: g.now)
            guard o.folded.set(key, (value, start), now: g.now) else { return pending.drop(.streamLimit) }
            if let old {
                // Monotonic: replacing the old value adds the increase; after a reset the old value
                // stays counted and the whole new value is added. Up-down: the latest value counts.
                if !shape.isMonotonic || (old.start == start && !value.isLess(than: old.value)) { o.total.subtract(old.value) }
            }
            o.total.add(value)
        }
        o.lastSeen = g.now
        // The overflow series speaks for every resource and scope folded into it: keep what they share.
        if o.resource != g.resource { o.resource.attributes = o.resource.attributes.filter { g.resource.attributes[key: $0.key] == $0.value } }
        if o.scope != g.scope {
            if o.scope.name != g.scope.name || o.scope.version != g.scope.version {
                o.scope.name = ""
                o.scope.version = ""
            }
            o.scope.attributes = o.scope.attributes.filter { g.scope.attributes[key: $0.key] == $0.value }
        }
        switch point {
        case .number(let p, let t, _):
            var out = pending.number ?? NumberDataPoint(startTimeUnixNano: p.startTimeUnixNano, timeUnixNano: p.timeUnixNano, value: .int(0))
            out.timeUnixNano = max(out.timeUnixNano, p.timeUnixNano)
            switch (t, o.total) {
            case (.cumulative, .int(let v)): out.value = .int(v)
            case (.cumulative, .double(let v)): out.value = .double(v)
            default:
                out.startTimeUnixNano = Self.earliest(out.startTimeUnixNano, p.startTimeUnixNano)
                out.value = out.value.adding(p.value) ?? .double(out.value.asDouble + p.value.asDouble)
            }
            pending.number = out
        case .histogram(let p, let t):
            var out =
                pending.histogram
                ?? HistogramDataPoint(
                    startTimeUnixNano: p.startTimeUnixNano, timeUnixNano: p.timeUnixNano, sum: 0,
                    bucketCounts: [UInt64](repeating: 0, count: p.bucketCounts.count), explicitBounds: p.explicitBounds, min: p.min, max: p.max)
            out.timeUnixNano = max(out.timeUnixNano, p.timeUnixNano)
            if case .cumulative = t, case .histogram(let count, let sum, let buckets) = o.total {
                out.count = count
                out.sum = sum
                out.bucketCounts = buckets
                out.min = nil
                out.max = nil
            } else {
                out.startTimeUnixNano = Self.earliest(out.startTimeUnixNano, p.startTimeUnixNano)
                out.count = out.count.saturatingAdd(p.count)
                for b in out.bucketCounts.indices { out.bucketCounts[b] = out.bucketCounts[b].saturatingAdd(p.bucketCounts[b]) }
                out.sum = out.sum.flatMap { s in p.sum.map { s + $0 } }
                out.min = combinedMin(out.min, p.min)
                out.max = combinedMax(out.max, p.max)
            }
            pending.histogram = out
        case .other:
            break
        }
        return true
    }

    private static func earliest(_ a: UInt64, _ b: UInt64) -> UInt64 {
        a == 0 ? b : b == 0 ? a : min(a, b)
    }

    /// Forgets expired series and overflow state (rate-limited like `StreamTable` sweeps).
    private func sweep(_ s: inout State, now: C.Instant) {
        let interval = min(config.metricExpiration, max(config.metricExpiration / 8, .seconds(1)))
        if let last = s.lastSweep, last.duration(to: now) < interval { return }
        s.lastSweep = now
        for name in Array(s.metrics.keys) {
            var m = s.metrics[name]!
            m.admitted.sweep(now: now)
            if var o = m.overflow {
                if o.lastSeen.duration(to: now) > config.metricExpiration {
                    m.overflow = nil
                } else {
                    // An expired up-down series leaves the sum; a monotonic one keeps what it added.
                    var total = o.total
                    let monotonic = o.shape.isMonotonic
                    o.folded.sweep(now: now) { _, e in if !monotonic { total.subtract(e.value) } }
                    o.total = total
                    m.overflow = o
                }
            }
            s.metrics[name] = m.admitted.count == 0 && m.overflow == nil ? nil : m
        }
    }

    /// Groups the overflow metrics of a batch into resource/scope entries.
    private static func overflowResources(_ pending: [Pending], attribute: String) -> [ResourceMetrics] {
        var out: [ResourceMetrics] = []
        for p in pending {
            var metric = p.template
            let attrs = [KeyValue(attribute, .bool(true))]
            switch metric.data {
            case .sum(_, let t, let monotonic):
                guard var n = p.number else { continue }
                n.attributes = attrs
                metric.data = .sum([n], temporality: t, isMonotonic: monotonic)
            case .histogram(_, let t):
                guard var h = p.histogram else { continue }
                h.attributes = attrs
                metric.data = .histogram([h], temporality: t)
            default:
                continue
            }
            if let i = out.firstIndex(where: { $0.resource == p.resource }) {
                if let j = out[i].scopeMetrics.firstIndex(where: { $0.scope == p.scope }) {
                    out[i].scopeMetrics[j].metrics.append(metric)
                } else {
                    out[i].scopeMetrics.append(ScopeMetrics(scope: p.scope, metrics: [metric]))
                }
            } else {
                out.append(ResourceMetrics(resource: p.resource, scopeMetrics: [ScopeMetrics(scope: p.scope, metrics: [metric])]))
            }
        }
        return out
    }
}

/// A data point beyond the limit, as far as folding is concerned.
enum FoldablePoint {
    case number(NumberDataPoint, AggregationTemporality, monotonic: Bool)
    case histogram(HistogramDataPoint, AggregationTemporality)
    /// Gauges, summaries, exponential histograms: no meaningful merge.
    case other
}

extension MetricData {
    /// Removes the points for which `remove` (given each point's stream key under `base`) holds.
    mutating func removePoints(base: StreamKey, where remove: (StreamKey, FoldablePoint) -> Bool) {
        switch self {
        case .gauge(var p):
            p.removeAll { remove(base.point($0.attributes), .other) }
            self = .gauge(p)
        case .sum(var p, let t, let m):
            p.removeAll { remove(base.point($0.attributes), .number($0, t, monotonic: m)) }
            self = .sum(p, temporality: t, isMonotonic: m)
        case .histogram(var p, let t):
            p.removeAll { remove(base.point($0.attributes), .histogram($0, t)) }
            self = .histogram(p, temporality: t)
        case .exponentialHistogram(var p, let t):
            p.removeAll { remove(base.point($0.attributes), .other) }
            self = .exponentialHistogram(p, temporality: t)
        case .summary(var p):
            p.removeAll { remove(base.point($0.attributes), .other) }
            self = .summary(p)
        case .empty:
            break
        }
    }
}

extension UInt64 {
    func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (r, o) = addingReportingOverflow(other)
        return o ? .max : r
    }
}
