import SextantModel
import SextantPipeline

/// Why a stateful metrics processor removed a data point.
enum PointDropReason: String, CaseIterable, Sendable {
    /// The first point of a stream, withheld by `initial_value` (cumulativetodelta).
    case initialValue = "initial_value"
    /// Older than, equal to or overlapping what the stream already reported.
    case outOfOrder = "out_of_order"
    /// A new stream while `max_streams` streams are tracked.
    case streamLimit = "stream_limit"
    /// A NaN value, which cannot be diffed or summed.
    case invalid
    /// Beyond a cardinality limit and of a kind that cannot be folded (gauge, summary, exponential
    /// histogram, or a histogram whose bounds differ from the overflow series').
    case notFoldable = "not_foldable"
}

/// Per-reason tallies collected under a processor's lock and added to counters after it.
struct PointDrops {
    private var counts: [PointDropReason: Int] = [:]
    mutating func add(_ reason: PointDropReason, _ n: Int = 1) { counts[reason, default: 0] += n }
    var total: Int { counts.values.reduce(0, +) }
    func count(_ reason: PointDropReason) -> Int { counts[reason] ?? 0 }
}

/// Self-telemetry of the stateful metrics processors: dropped points by reason (also added to the
/// `sextant_processor_dropped_items_total` every processor reports) and the number of tracked streams.
struct StreamProcessorTelemetry: Sendable {
    private let dropped: [PointDropReason: SelfTelemetry.Counter]
    private let droppedItems: SelfTelemetry.Counter
    let streams: SelfTelemetry.Gauge

    init(_ settings: ComponentSettings, pipeline: PipelineID, component: String, reasons: [PointDropReason]) {
        let t = settings.telemetry
        let labels = [("processor", settings.id.description), ("pipeline", pipeline.description)]
        var d: [PointDropReason: SelfTelemetry.Counter] = [:]
        for r in reasons {
            d[r] = t.counter(
                "sextant_processor_\(component)_dropped_points_total", help: "Data points the \(component) processor removed, by reason.",
                labels: labels + [("reason", r.rawValue)])
        }
        dropped = d
        droppedItems = t.counter(
            "sextant_processor_dropped_items_total", help: "Items a processor dropped (filtered, sampled out, or failed downstream).",
            labels: labels + [("signal", pipeline.signal.rawValue)])
        streams = t.gauge("sextant_processor_\(component)_streams", help: "Metric streams the \(component) processor tracks.", labels: labels)
    }

    func record(_ drops: PointDrops) {
        for (reason, counter) in dropped { counter.add(drops.count(reason)) }
        droppedItems.add(drops.total)
    }
}

extension MetricsData {
    /// Removes metrics left without points by a processor (only those whose point count went to
    /// zero, judged by `emptied`), then scopes and resources left empty.
    mutating func pruneEmptied(_ emptied: Set<[Int]>) {
        guard !emptied.isEmpty else { return }
        for i in resourceMetrics.indices {
            for j in resourceMetrics[i].scopeMetrics.indices {
                let metrics = resourceMetrics[i].scopeMetrics[j].metrics
                resourceMetrics[i].scopeMetrics[j].metrics = metrics.indices.compactMap { k in
                    emptied.contains([i, j, k]) ? nil : metrics[k]
                }
            }
            resourceMetrics[i].scopeMetrics.removeAll { $0.metrics.isEmpty }
        }
        resourceMetrics.removeAll { $0.scopeMetrics.isEmpty }
    }
}
