import SextantModel
import SextantPipeline

/// A stateless processor: transforms each batch and passes on what is left (nothing when empty).
/// Counts the items it removes as dropped.
struct TransformProcessor: ConsumingComponent {
    let next: any Consumer
    let transform: @Sendable (Telemetry) -> Telemetry
    let dropped: SelfTelemetry.Counter

    init(_ settings: ComponentSettings, pipeline: PipelineID, next: any Consumer, transform: @escaping @Sendable (Telemetry) -> Telemetry) {
        self.next = next
        self.transform = transform
        dropped = settings.telemetry.counter(
            "sextant_processor_dropped_items_total", help: "Items a processor dropped (filtered, sampled out, or failed downstream).",
            labels: [("processor", settings.id.description), ("pipeline", pipeline.description), ("signal", pipeline.signal.rawValue)])
    }

    func start() async throws {}
    func shutdown() async {}

    func consume(_ telemetry: Telemetry) async throws {
        let before = telemetry.itemCount
        let out = transform(telemetry)
        let after = out.itemCount
        dropped.add(before - after)
        if after > 0 { try await next.consume(out) }
    }
}

extension Telemetry {
    /// Keeps the spans, log records or data points for which `keep` holds, removing groups left empty.
    func filtered(
        spans keepSpan: (Span, Resource, InstrumentationScope) -> Bool = { _, _, _ in true },
        logs keepLog: (LogRecord, Resource) -> Bool = { _, _ in true },
        metrics keepMetric: (Metric, Resource) -> Bool = { _, _ in true },
        points keepPoint: ([KeyValue], Metric, Resource) -> Bool = { _, _, _ in true }
    ) -> Telemetry {
        switch self {
        case .traces(var t):
            for i in t.resourceSpans.indices {
                let resource = t.resourceSpans[i].resource
                for j in t.resourceSpans[i].scopeSpans.indices {
                    let scope = t.resourceSpans[i].scopeSpans[j].scope
                    t.resourceSpans[i].scopeSpans[j].spans.removeAll { !keepSpan($0, resource, scope) }
                }
                t.resourceSpans[i].scopeSpans.removeAll { $0.spans.isEmpty }
            }
            t.resourceSpans.removeAll { $0.scopeSpans.isEmpty }
            return .traces(t)
        case .logs(var l):
            for i in l.resourceLogs.indices {
                let resource = l.resourceLogs[i].resource
                for j in l.resourceLogs[i].scopeLogs.indices { l.resourceLogs[i].scopeLogs[j].logRecords.removeAll { !keepLog($0, resource) } }
                l.resourceLogs[i].scopeLogs.removeAll { $0.logRecords.isEmpty }
            }
            l.resourceLogs.removeAll { $0.scopeLogs.isEmpty }
            return .logs(l)
        case .metrics(var m):
            for i in m.resourceMetrics.indices {
                let resource = m.resourceMetrics[i].resource
                for j in m.resourceMetrics[i].scopeMetrics.indices {
                    m.resourceMetrics[i].scopeMetrics[j].metrics.removeAll { !keepMetric($0, resource) }
                    for k in m.resourceMetrics[i].scopeMetrics[j].metrics.indices {
                        let metric = m.resourceMetrics[i].scopeMetrics[j].metrics[k]
                        m.resourceMetrics[i].scopeMetrics[j].metrics[k].data.removePoints { !keepPoint($0, metric, resource) }
                    }
                    m.resourceMetrics[i].scopeMetrics[j].metrics.removeAll { $0.data.pointCount == 0 && $0.data != .empty }
                }
                m.resourceMetrics[i].scopeMetrics.removeAll { $0.metrics.isEmpty }
            }
            m.resourceMetrics.removeAll { $0.scopeMetrics.isEmpty }
            return .metrics(m)
        }
    }

    /// Applies `body` to every attribute list of the kind an `attributes` processor edits: span, log
    /// record, or data point attributes.
    mutating func mutateItemAttributes(
        spans: (inout Span, Resource) -> Void, logs: (inout LogRecord, Resource) -> Void, points: (inout [KeyValue], Metric, Resource) -> Void
    ) {
        switch self {
        case .traces(var t):
            self = .logs(LogsData())
            for i in t.resourceSpans.indices {
                let r = t.resourceSpans[i].resource
                for j in t.resourceSpans[i].scopeSpans.indices {
                    for k in t.resourceSpans[i].scopeSpans[j].spans.indices { spans(&t.resourceSpans[i].scopeSpans[j].spans[k], r) }
                }
            }
            self = .traces(t)
        case .logs(var l):
            self = .traces(TracesData())
            for i in l.resourceLogs.indices {
                let r = l.resourceLogs[i].resource
                for j in l.resourceLogs[i].scopeLogs.indices {
                    for k in l.resourceLogs[i].scopeLogs[j].logRecords.indices { logs(&l.resourceLogs[i].scopeLogs[j].logRecords[k], r) }
                }
            }
            self = .logs(l)
        case .metrics(var m):
            self = .traces(TracesData())
            for i in m.resourceMetrics.indices {
                let r = m.resourceMetrics[i].resource
                for j in m.resourceMetrics[i].scopeMetrics.indices {
                    for k in m.resourceMetrics[i].scopeMetrics[j].metrics.indices {
                        let metric = m.resourceMetrics[i].scopeMetrics[j].metrics[k]
                        m.resourceMetrics[i].scopeMetrics[j].metrics[k].data.mutatePointAttributes { points(&$0, metric, r) }
                    }
                }
            }
            self = .metrics(m)
        }
    }

    /// Applies `body` to every resource's attributes.
    mutating func mutateResources(_ body: (inout Resource) -> Void) {
        switch self {
        case .traces(var t):
            self = .logs(LogsData())
            for i in t.resourceSpans.indices { body(&t.resourceSpans[i].resource) }
            self = .traces(t)
        case .logs(var l):
            self = .traces(TracesData())
            for i in l.resourceLogs.indices { body(&l.resourceLogs[i].resource) }
            self = .logs(l)
        case .metrics(var m):
            self = .traces(TracesData())
            for i in m.resourceMetrics.indices { body(&m.resourceMetrics[i].resource) }
            self = .metrics(m)
        }
    }
}

extension MetricData {
    /// Calls `body` with each data point's attributes.
    mutating func mutatePointAttributes(_ body: (inout [KeyValue]) -> Void) {
        switch self {
        case .gauge(var p):
            for i in p.indices { body(&p[i].attributes) }
            self = .gauge(p)
        case .sum(var p, let t, let m):
            for i in p.indices { body(&p[i].attributes) }
            self = .sum(p, temporality: t, isMonotonic: m)
        case .histogram(var p, let t):
            for i in p.indices { body(&p[i].attributes) }
            self = .histogram(p, temporality: t)
        case .exponentialHistogram(var p, let t):
            for i in p.indices { body(&p[i].attributes) }
            self = .exponentialHistogram(p, temporality: t)
        case .summary(var p):
            for i in p.indices { body(&p[i].attributes) }
            self = .summary(p)
        case .empty:
            break
        }
    }

    /// Removes the data points whose attributes satisfy `shouldRemove`.
    mutating func removePoints(where shouldRemove: ([KeyValue]) -> Bool) {
        switch self {
        case .gauge(var p):
            p.removeAll { shouldRemove($0.attributes) }
            self = .gauge(p)
        case .sum(var p, let t, let m):
            p.removeAll { shouldRemove($0.attributes) }
            self = .sum(p, temporality: t, isMonotonic: m)
        case .histogram(var p, let t):
            p.removeAll { shouldRemove($0.attributes) }
            self = .histogram(p, temporality: t)
        case .exponentialHistogram(var p, let t):
            p.removeAll { shouldRemove($0.attributes) }
            self = .exponentialHistogram(p, temporality: t)
        case .summary(var p):
            p.removeAll { shouldRemove($0.attributes) }
            self = .summary(p)
        case .empty:
            break
        }
    }
}
