import SextantModel
import SextantPipeline

/// `filter` processor with the OTel Collector's match-properties configuration:
/// `spans: {include, exclude}`, `logs: {include, exclude}`, `metrics: {include, exclude}`.
/// Spans and log records are dropped unless selected; metrics by name/resource, and data points by
/// their attributes (label values). (OTTL conditions are not supported; they are reported as such.)
public struct FilterProcessorFactory: ProcessorFactory {
    struct Config: ComponentConfig {
        var spans = MatchSelector()
        var logs = MatchSelector()
        var metrics = MatchSelector()
    }

    public init() {}
    public let type = "filter"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "drops spans, log records, metrics or data points by name, kind, attributes, resource"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = Config()
        _ = r.choice("error_mode", ["propagate", "ignore", "silent"], default: "propagate")
        for ottl in ["traces", "logs"] where r.keys.contains(ottl) {
            _ = r.raw(ottl)
            r.error(ottl, "\(r.qualified(ottl)): OTTL conditions are not supported; use spans/logs/metrics with include/exclude")
        }
        if r.keys.contains("spans") {
            var s = r.section("spans")
            c.spans = MatchSelector.parse(&s, allowed: ["services", "span_names", "span_kinds", "attributes", "resources"])
            s.finish()
        }
        if r.keys.contains("logs") {
            var s = r.section("logs")
            c.logs = MatchSelector.parse(&s, allowed: ["services", "attributes", "resources", "log_bodies", "log_severity_texts"])
            s.finish()
        }
        if r.keys.contains("metrics") {
            var s = r.section("metrics")
            c.metrics = MatchSelector.parse(&s, allowed: ["services", "metric_names", "resources", "attributes"])
            s.finish()
        }
        if c.spans.isEmpty && c.logs.isEmpty && c.metrics.isEmpty {
            r.error(nil, "\(r.path) needs at least one of spans, logs, metrics with include or exclude")
        }
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        let c = config as! Config
        // Metric-level criteria decide whole metrics; criteria with point attributes decide points,
        // and then the metric-level criteria of the same include/exclude must hold too (an exclude of
        // `metric_names: [a]` with `attributes: [code=500]` removes only a's code=500 points).
        let metricLevel = MatchSelector(
            include: c.metrics.include.map { var m = $0; m.attributes = []; return m },
            exclude: c.metrics.exclude.flatMap { $0.hasPointCriteria ? nil : $0 })
        let pointLevel = MatchSelector(
            include: c.metrics.include.flatMap { $0.hasPointCriteria ? $0 : nil },
            exclude: c.metrics.exclude.flatMap { $0.hasPointCriteria ? $0 : nil })
        return TransformProcessor(settings, pipeline: pipeline, next: next) { batch in
            batch.filtered(
                spans: { span, resource, _ in c.spans.selects { $0.matches(span: span, resource: resource) } },
                logs: { log, resource in c.logs.selects { $0.matches(log: log, resource: resource) } },
                metrics: { metric, resource in metricLevel.selects { $0.matches(metric: metric, resource: resource) } },
                points: { attrs, metric, resource in
                    pointLevel.selects { $0.matches(metric: metric, resource: resource) && $0.matches(pointAttributes: attrs) }
                })
        }
    }
}
