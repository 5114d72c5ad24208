import SextantModel
import SextantPipeline
import Synchronization

/// `deltatocumulative` processor config (the OTel Collector contrib processor's names and defaults,
/// except that `max_streams` is bounded by default).
public struct DeltaToCumulativeConfig: ComponentConfig {
    /// A stream not updated for this long is forgotten; its next point starts it over.
    public var maxStale: Duration = .seconds(300)
    /// At most this many streams are tracked (0 = no limit); points of further streams are dropped.
    public var maxStreams = 100_000

    public init() {}
}

public struct DeltaToCumulativeProcessorFactory: ProcessorFactory {
    public init() {}
    public let type = "deltatocumulative"
    public let signals: Set<Signal> = [.metrics]
    public let summary = "accumulates delta sums and histograms into cumulative, per stream"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = DeltaToCumulativeConfig()
        c.maxStale = r.duration("max_stale", default: c.maxStale, allowZero: false)
        c.maxStreams = r.int("max_streams", default: c.maxStreams, min: 0)
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        DeltaToCumulativeProcessor(config as! DeltaToCumulativeConfig, settings: settings, pipeline: pipeline, next: next, clock: ContinuousClock())
    }
}

/// Accumulates delta sums (monotonic or not) and delta explicit-bucket histograms into cumulative
/// streams (identity as in `StreamKey`); every delta point is replaced by the running total, with the
/// stream's first start time. Other metrics (exponential histograms included) pass unchanged.
/// - Points must arrive in order and not overlap: a point whose time is not after the stream's last
///   time, or whose start time lies before it, would be counted twice and is dropped (`out_of_order`).
/// - A histogram whose bucket layout changes, a value type change, or a total that would overflow
///   starts the stream over from that point (a new start time tells readers it is a reset).
/// - Streams idle for `max_stale` are forgotten; new streams beyond `max_streams` are dropped
///   (`stream_limit`). NaN values are dropped (`invalid`); a `NO_RECORDED_VALUE` point passes and
///   ends its stream. Histogram min and max are the running minimum and maximum.
public final class DeltaToCumulativeProcessor<C: Clock>: ConsumingComponent where C.Duration == Duration {
    enum Total {
        case number(NumberValue)
        case histogram(count: UInt64, sum: Double?, buckets: [UInt64], bounds: [Double], min: Double?, max: Double?)
    }

    struct Stream {
        var start: UInt64
        var time: UInt64
        var total: Total
    }

    private let next: any Consumer
    private let clock: C
    private let table: Mutex<StreamTable<C.Instant, Stream>>
    private let telemetry: StreamProcessorTelemetry

    public init(_ config: DeltaToCumulativeConfig, settings: ComponentSettings, pipeline: PipelineID, next: any Consumer, clock: C) {
        self.next = next
        self.clock = clock
        table = Mutex(StreamTable(maxStreams: config.maxStreams, expiry: config.maxStale))
        telemetry = StreamProcessorTelemetry(
            settings, pipeline: pipeline, component: "deltatocumulative", reasons: [.outOfOrder, .streamLimit, .invalid])
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
                        let key = prefix.metric(metric)
                        switch metric.data {
                        case .sum(let points, .delta, let monotonic):
                            let out = points.compactMap { accumulate($0, key.point($0.attributes), &table, now, &drops) }
                            data.resourceMetrics[i].scopeMetrics[j].metrics[k].data = .sum(out, temporality: .cumulative, isMonotonic: monotonic)
                            if out.isEmpty && !points.isEmpty { emptied.insert([i, j, k]) }
                        case .histogram(let points, .delta):
                            let out = points.compactMap { accumulate($0, key.point($0.attributes), &table, now, &drops) }
                            data.resourceMetrics[i].scopeMetrics[j].metrics[k].data = .histogram(out, temporality: .cumulative)
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

    /// The stream's last point if `p` may follow it; `nil` (counting the drop) if `p` is out of order.
    /// `.some(nil)` when the stream is new or expired.
    private func predecessor(
        _ key: StreamKey, start: UInt64, time: UInt64, _ table: inout StreamTable<C.Instant, Stream>, _ now: C.Instant,
        _ drops: inout PointDrops
    ) -> Stream?? {
        guard let prev = table.value(for: key, now: now) else { return .some(nil) }
        // A start of 0 is "unknown": only the end time can be checked then.
        if time <= prev.time || (start != 0 && start < prev.time) {
            drops.add(.outOfOrder)
            return nil
        }
        return .some(prev)
    }

    /// Stores `stream` (a new stream, or one started over); `false` when over `max_streams`.
    private func begin(
        _ key: StreamKey, _ stream: Stream, _ table: inout StreamTable<C.Instant, Stream>, _ now: C.Instant, _ drops: inout PointDrops
    ) -> Bool {
        if table.set(key, stream, now: now) { return true }
        drops.add(.streamLimit)
        return false
    }

    private func accumulate(
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
        guard let found = predecessor(key, start: p.startTimeUnixNano, time: p.timeUnixNano, &table, now, &drops) else { return nil }
        if let prev = found, case .number(let total) = prev.total, total.isInt == p.value.isInt, let sum = total.adding(p.value) {
            table.set(key, Stream(start: prev.start, time: p.timeUnixNano, total: .number(sum)), now: now)
            var out = p
            out.startTimeUnixNano = prev.start
            out.value = sum
            return out
        }
        return begin(key, Stream(start: p.startTimeUnixNano, time: p.timeUnixNano, total: .number(p.value)), &table, now, &drops) ? p : nil
    }

    private func accumulate(
        _ p: HistogramDataPoint, _ key: StreamKey, _ table: inout StreamTable<C.Instant, Stream>, _ now: C.Instant, _ drops: inout PointDrops
    ) -> HistogramDataPoint? {
        if p.flags & DataPointFlags.noRecordedValue != 0 {
            table.remove(key)
            return p
        }
        if p.sum?.isNaN == true {
            drops.add(.invalid)
            return nil
        }
        guard let found = predecessor(key, start: p.startTimeUnixNano, time: p.timeUnixNano, &table, now, &drops) else { return nil }
        if let prev = found, case .histogram(let count, let sum, let buckets, let bounds, let min, let max) = prev.total,
            bounds == p.explicitBounds, let newBuckets = buckets.adding(p.bucketCounts)
        {
            let (newCount, overflow) = count.addingReportingOverflow(p.count)
            if !overflow {
                var out = p
                out.startTimeUnixNano = prev.start
                out.count = newCount
                out.bucketCounts = newBuckets
                out.sum = sum.flatMap { s in p.sum.map { s + $0 } }
                out.min = combinedMin(min, p.min)
                out.max = combinedMax(max, p.max)
                let total = Total.histogram(count: newCount, sum: out.sum, buckets: newBuckets, bounds: bounds, min: out.min, max: out.max)
                table.set(key, Stream(start: prev.start, time: p.timeUnixNano, total: total), now: now)
                return out
            }
        }
        let total = Total.histogram(count: p.count, sum: p.sum, buckets: p.bucketCounts, bounds: p.explicitBounds, min: p.min, max: p.max)
        return begin(key, Stream(start: p.startTimeUnixNano, time: p.timeUnixNano, total: total), &table, now, &drops) ? p : nil
    }
}
