import SextantModel
import SextantPipeline

/// `attributes` processor: runs `actions` on span, log record and data point attributes, for items
/// selected by `include`/`exclude` (OTel Collector semantics).
public struct AttributesProcessorFactory: ProcessorFactory {
    struct Config: ComponentConfig {
        var actions: [AttributeAction]
        var selector: MatchSelector
    }

    public init() {}
    public let type = "attributes"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "insert/update/upsert/delete/hash/extract/convert attributes of spans, logs and metric points"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        Config(
            actions: AttributeAction.parseList(&r),
            selector: MatchSelector.parse(
                &r, allowed: ["services", "span_names", "span_kinds", "attributes", "resources", "metric_names", "log_bodies", "log_severity_texts"]))
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        let c = config as! Config
        return TransformProcessor(settings, pipeline: pipeline, next: next) { batch in
            var t = batch
            t.mutateItemAttributes(
                spans: { span, resource in
                    guard c.selector.selects({ $0.matches(span: span, resource: resource) }) else { return }
                    for a in c.actions { a.apply(to: &span.attributes) }
                },
                logs: { log, resource in
                    guard c.selector.selects({ $0.matches(log: log, resource: resource) }) else { return }
                    for a in c.actions { a.apply(to: &log.attributes) }
                },
                points: { attrs, metric, resource in
                    guard c.selector.selects({ $0.matches(metric: metric, resource: resource) && $0.matches(pointAttributes: attrs) }) else {
                        return
                    }
                    for a in c.actions { a.apply(to: &attrs) }
                })
            return t
        }
    }
}

/// `resource` processor: runs `attributes:` actions on resource attributes.
public struct ResourceProcessorFactory: ProcessorFactory {
    struct Config: ComponentConfig {
        var actions: [AttributeAction]
    }

    public init() {}
    public let type = "resource"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "insert/update/upsert/delete/hash/extract/convert resource attributes"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        // The resource processor names its action list `attributes:`.
        guard let node = r.raw("attributes") else {
            r.error(nil, "\(r.path)::attributes is required and must list at least one action")
            return Config(actions: [])
        }
        guard case .sequence(let items) = node.value, !items.isEmpty else {
            r.error("attributes", "\(r.qualified("attributes")) must be a non-empty list of actions")
            return Config(actions: [])
        }
        let actions = items.enumerated().compactMap { i, item -> AttributeAction? in
            var a = ConfigReader(item, path: "\(r.qualified("attributes"))[\(i)]", diagnostics: r.diagnostics)
            defer { a.finish() }
            return AttributeAction.parse(&a)
        }
        return Config(actions: actions)
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        let c = config as! Config
        return TransformProcessor(settings, pipeline: pipeline, next: next) { batch in
            var t = batch
            t.mutateResources { resource in for a in c.actions { a.apply(to: &resource.attributes) } }
            return t
        }
    }
}
