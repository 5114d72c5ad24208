import SextantModel
import SextantPipeline
import Synchronization

/// `cumulativetodelta` processor config (the OTel Collector contrib processor's names and defaults,
/// plus `max_streams`).
public struct CumulativeToDeltaConfig: ComponentConfig {
    /// How the first point of a stream is handled: the processor has no earlier value to diff it with.
    public enum InitialValue: String, Sendable, CaseIterable {
        /// Keep it only if its start time is set, after the processor started, and differs from its
        /// time: the counter started while we watched, so its whole value is new.
        case auto
        /// Send the cumulative value as the first delta.
        case keep
        /// Withhold it and use it as the base for the next delta.
        case drop
    }

    var selector = MetricNameSelector()
    /// Streams not seen for this long are forgotten; `.zero` keeps them until `max_streams` pushes.
    public var maxStaleness: Duration = .zero
    public var initialValue: InitialValue = .auto
    /// At most this many streams are tracked (0 = no limit); points of further streams are dropped.
    public var maxStreams = 100_000

    public init() {}
}

public struct CumulativeToDeltaProcessorFactory: ProcessorFactory {
    public init() {}
    public let type = "cumulativetodelta"
    public let signals: Set<Signal> = [.metrics]
    public let summary = "converts monotonic cumulative sums and histograms to delta, per stream"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = CumulativeToDeltaConfig()
        c.selector = MetricNameSelector.parse(&r, types: ["sum": MetricData.sumTag, "histogram": MetricData.histogramTag])
        c.maxStaleness = r.duration("max_staleness", default: c.maxStaleness)
        if c.maxStaleness < .zero { r.error("max_staleness", "\(r.qualified("max_staleness")) must not be negative") }
        let initial = r.choice("initial_value", CumulativeToDeltaConfig.InitialValue.allCases.map(\.rawValue), default: c.initialValue.rawValue)
        c.initialValue = CumulativeToDeltaConfig.InitialValue(rawValue: initial) ?? .auto
        c.maxStreams = r.int("max_streams", default: c.maxStreams, min: 0)
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        CumulativeToDeltaProcessor(config as! CumulativeToDeltaConfig, settings: settings, pipeline: pipeline, next: next, clock: ContinuousClock())
    }
}

/// Turns cumulative streams into deltas by remembering each stream's last point (identity: resource,
/// scope, metric name and kind, point attributes; see `StreamKey`).
///
/// Converted: monotonic cumulative sums and cumulative explicit-bucket histograms (counts, buckets and
/// sum; min and max are dropped, as a cumulative min/max says nothing about the interval). Everything
/// else passes unchanged, non-monotonic sums and exponential histograms included, as upstream.
/// - A delta covers `(previous time, time]`: its start time is the previous point's time.
/// - A value that went down (any bucket or the count, for histograms) is a counter reset: the new
///   value is the delta. A changed start time, value type or bucket layout begins a new stream,
///   handled like a first point (`initial_value`).
/// - Points not newer than the stream's last one are dropped (`out_of_order`); NaN values are dropped
///   (`invalid`); a point flagged `NO_RECORDED_VALUE` passes and ends its stream.
public final class CumulativeToDeltaProcessor<C: Clock>: ConsumingComponent where C.Duration == Duration {
    enum Last {
        case number(NumberValue)
        case histogram(count: UInt64, sum: Double?, buckets: [UInt64], bounds: [Double])
    }

    struct Stream {
        var start: UInt64
        var time: UInt64
        var last: Last
    }

    private let config: CumulativeToDeltaConfig
    private let next: any Consumer
    private let clock: C
    /// Wall-clock Unix nanoseconds when the processor was created, for `initial_value: auto`.
    private let startTime: UInt64
    private let table: Mutex<StreamTable<C.Instant, Stream>>
    private let telemetry: StreamProcessorTelemetry

    public init(
        _ config: CumulativeToDeltaConfig, settings: ComponentSettings, pipeline: PipelineID, next: any Consumer, clock: C,
        startTime: UInt64 = SystemTime.nowNanos()
    ) {
        self.config = config
        self.next = next
        self.clock = clock
        self.startTime = startTime
        table = Mutex(StreamTable(maxStreams: config.maxStreams, expiry: config.maxStaleness))
        telemetry = StreamProcessorTelemetry(
            settings, pipeline: pipeline, component: "cumulativetodelta", reasons: [.initialValue, .outOfOrder, .streamLimit, .invalid])
    }

    public func start() async throws {}
    public func shutdown() async {}

    public func consume(_ batch: Telemetry) async throws {
        guard case .metrics(var data) = batch else { return try await next.consume(batch) }
        let now = clock.now
        var drops = PointDrops()
        var emptied = Set<[Int]>()
        table.withLock { table in
            table.sweep(now: now)
            for i in data.resourceMetrics.indices {
                for j in data.resourceMetrics[i].scopeMetrics.indices {
                    let prefix = StreamKey.prefix(
                        resource: data.resourceMetrics[i].resource, scope: data.resourceMetrics[i].scopeMetrics[j].scope)
                    for k in data.resourceMetrics[i].scopeMetrics[j].metrics.indices {
                        let metric = data.resourceMetrics[i].scopeMetrics[j].metrics[k]
                        guard config.selector.selects(metric) else { continue }
                        let key = prefix.metric(metric)
                        switch metric.data {
                        case .sum(let points, .cumulative, true):
                            let out = points.compactMap { convert($0, key.point($0.attributes), &table, now, &drops) }
                            data.resourceMetrics[i].scopeMetrics[j].metrics[k].data = .sum(out, temporality: .delta, isMonotonic: true)
                            if out.isEmpty && !points.isEmpty { emptied.insert([i, j, k]) }
                        case .histogram(let points, .cumulative):
                            let out = points.compactMap { convert($0, key.point($0.attributes), &table, now, &drops) }
                            data.resourceMetrics[i].scopeMetrics[j].metrics[k].data = .histogram(out, temporality: .delta)
                            if out.isEmpty && !points.isEmpty { emptied.insert([i, j, k]) }
                        default:
                            continue
                        }
                    }
                }
            }
            telemetry.streams.set(table.count)
        }
        telemetry.record(drops)
        data.pruneEmptied(emptied)
        if !data.resourceMetrics.isEmpty { try await next.consume(.metrics(data)) }
    }

    /// Whether the first point of a stream is sent, per `initial_value`.
    private func sendsFirst(start: UInt64, time: UInt64) -> Bool {
        switch config.initialValue {
        case .keep: return true
        case .drop: return false
        case .auto: return start != 0 && start > startTime && start != time
        }
    }

    /// Begins (or restarts) a stream with `stream`; whether its point is sent.
    private func begin(
        _ key: StreamKey, _ stream: Stream, _ table: inout StreamTable<C.Instant, Stream>, _ now: C.Instant, _ drops: inout PointDrops
    ) -> Bool {
        guard table.set(key, stream, now: now) else {
            drops.add(.streamLimit)
            return false
        }
        if sendsFirst(start: stream.start, time: stream.time) { return true }
        drops.add(.initialValue)
        return false
    }

    private func convert(
        _ p: NumberDataPoint, _ key: StreamKey, _ table: inout StreamTable<C.Instant, Stream>, _ now: C.Instant, _ drops: inout PointDrops
    ) -> NumberDataPoint? {
        if p.flags & DataPointFlags.noRecordedValue != 0 {
            table.remove(key)
            return p
        }
        if p.value.isNaN {
            drops.add(.invalid)
            return nil
        }
        let current = Stream(start: p.startTimeUnixNano, time: p.timeUnixNano, last: .number(p.value))
        if let prev = table.value(for: key, now: now) {
            guard p.timeUnixNano > prev.time else {
                drops.add(.outOfOrder)
                return nil
            }
            if prev.start == p.startTimeUnixNano, case .number(let before) = prev.last, before.isInt == p.value.isInt {
                table.set(key, current, now: now)
                var out = p
                out.startTimeUnixNano = prev.time
                // A decrease is a reset: the counter restarted at zero after `prev`, so its value is the increase.
                out.value = p.value.increase(since: before) ?? p.value
                return out
            }
        }
        return begin(key, current, &table, now, &drops) ? p : nil
    }

    private func convert(
        _ p: HistogramDataPoint, _ key: StreamKey, _ table: inout StreamTable<C.Instant, Stream>, _ now: C.Instant, _ drops: inout PointDrops
    ) -> HistogramDataPoint? {
        if p.flags & DataPointFlags.noRecordedValue != 0 {
            table.remove(key)
            var out = p
            out.min = nil
            out.max = nil
            return out
        }
        if p.sum?.isNaN == true {
            drops.add(.invalid)
            return nil
        }
        let current = Stream(
            start: p.startTimeUnixNano, time: p.timeUnixNano,
            last: .histogram(count: p.count, sum: p.sum, buckets: p.bucketCounts, bounds: p.explicitBounds))
        var out = p
        out.min = nil
        out.max = nil
        if let prev = table.value(for: key, now: now) {
            guard p.timeUnixNano > prev.time else {
                drops.add(.outOfOrder)
                return nil
            }
            if prev.start == p.startTimeUnixNano, case .histogram(let count, let sum, let buckets, let bounds) = prev.last,
                bounds == p.explicitBounds, buckets.count == p.bucketCounts.count
            {
                table.set(key, current, now: now)
                out.startTimeUnixNano = prev.time
                if p.count >= count, let increase = p.bucketCounts.increase(since: buckets) {
                    out.count = p.count - count
                    out.bucketCounts = increase
                    out.sum = p.sum.flatMap { s in sum.map { s - $0 } }
                }  // else a reset: the histogram restarted after `prev`, so its values are the increase.
                return out
            }
        }
        return begin(key, current, &table, now, &drops) ? out : nil
    }
}
