import SextantModel
import SextantPipeline

/// The OTel Collector's `include`/`exclude` match properties (`filterconfig.MatchProperties`):
/// every criterion given must hold; list criteria hold when any entry matches.
struct MatchProperties: Sendable {
    enum Pattern: Sendable {
        case strict(String)
        case regexp(CompiledRegex)

        func matches(_ s: String) -> Bool {
            switch self {
            case .strict(let v): return s == v
            case .regexp(let r): return r.contains(s)
            }
        }
    }

    /// An attribute criterion: the key must exist, and when a value is given, equal (or match) it.
    struct AttributeCriterion: Sendable {
        var key: String
        var value: Pattern?
    }

    var services: [Pattern] = []
    var spanNames: [Pattern] = []
    var spanKinds: [SpanKind] = []
    var attributes: [AttributeCriterion] = []
    var resources: [AttributeCriterion] = []
    var metricNames: [Pattern] = []
    var logBodies: [Pattern] = []
    var severityTexts: [Pattern] = []

    /// Reads `include:` or `exclude:`; `nil` when absent.
    static func parse(_ r: inout ConfigReader, _ key: String, allowed: Set<String>) -> MatchProperties? {
        guard r.has(key) else { return nil }
        var m = r.section(key)
        var props = MatchProperties()
        let type = m.choice("match_type", ["strict", "regexp"], default: "strict")
        if !m.keys.contains("match_type") { m.error(nil, "\(m.path)::match_type is required (strict or regexp)") }
        func pattern(_ s: String, _ field: String) -> Pattern {
            guard type == "regexp" else { return .strict(s) }
            do { return .regexp(try CompiledRegex(s)) } catch {
                m.error(field, "\(m.qualified(field)): invalid regular expression '\(s)': \(error)")
                return .strict(s)
            }
        }
        func patterns(_ field: String) -> [Pattern] {
            guard allowed.contains(field) else { return [] }
            return m.stringList(field).map { pattern($0, field) }
        }
        props.services = patterns("services")
        props.spanNames = patterns("span_names")
        props.metricNames = patterns("metric_names")
        props.logBodies = patterns("log_bodies")
        props.severityTexts = patterns("log_severity_texts")
        if allowed.contains("span_kinds") {
            for k in m.stringList("span_kinds") {
                let kinds: [String: SpanKind] = [
                    "SPAN_KIND_UNSPECIFIED": .unspecified, "SPAN_KIND_INTERNAL": .internal, "SPAN_KIND_SERVER": .server,
                    "SPAN_KIND_CLIENT": .client, "SPAN_KIND_PRODUCER": .producer, "SPAN_KIND_CONSUMER": .consumer,
                ]
                if let kind = kinds[k] { props.spanKinds.append(kind) } else { m.error("span_kinds", "\(m.qualified("span_kinds")): unknown kind '\(k)' (use SPAN_KIND_SERVER, ...)") }
            }
        }
        func criteria(_ field: String) -> [AttributeCriterion] {
            guard allowed.contains(field), let node = m.raw(field) else { return [] }
            guard case .sequence(let items) = node.value else {
                m.error(field, "\(m.qualified(field)) must be a list of {key, value}")
                return []
            }
            return items.compactMap { item in
                var e = ConfigReader(item, path: m.qualified(field), diagnostics: m.diagnostics)
                let key = e.string("key", default: "")
                let value = e.optionalString("value")
                e.finish()
                if key.isEmpty {
                    e.error(nil, "\(m.qualified(field)): every entry needs a key")
                    return nil
                }
                return AttributeCriterion(key: key, value: value.map { pattern($0, field) })
            }
        }
        props.attributes = criteria("attributes")
        props.resources = criteria("resources")
        m.finish()
        return props
    }

    private static func holds(_ c: [AttributeCriterion], in attributes: [KeyValue]) -> Bool {
        c.allSatisfy { crit in
            guard let v = attributes[key: crit.key] else { return false }
            return crit.value.map { $0.matches(v.asString) } ?? true
        }
    }

    private static func any(_ patterns: [Pattern], _ s: String?) -> Bool {
        patterns.isEmpty || (s.map { s in patterns.contains { $0.matches(s) } } ?? false)
    }

    func matches(span: Span, resource: Resource) -> Bool {
        Self.any(services, resource.serviceName) && Self.any(spanNames, span.name)
            && (spanKinds.isEmpty || spanKinds.contains(span.kind)) && Self.holds(attributes, in: span.attributes)
            && Self.holds(resources, in: resource.attributes)
    }

    func matches(log: LogRecord, resource: Resource) -> Bool {
        Self.any(services, resource.serviceName) && Self.any(logBodies, log.body?.asString)
            && Self.any(severityTexts, log.severityText) && Self.holds(attributes, in: log.attributes)
            && Self.holds(resources, in: resource.attributes)
    }

    /// Metric-level criteria (name, resource, service).
    func matches(metric: Metric, resource: Resource) -> Bool {
        Self.any(services, resource.serviceName) && Self.any(metricNames, metric.name) && Self.holds(resources, in: resource.attributes)
    }

    /// Point-level criteria (data point attributes, i.e. Prometheus label values).
    func matches(pointAttributes: [KeyValue]) -> Bool { Self.holds(attributes, in: pointAttributes) }

    var hasPointCriteria: Bool { !attributes.isEmpty }
}

/// `include` and `exclude` together: an item is selected when it matches `include` (if given) and does
/// not match `exclude` (if given).
struct MatchSelector: Sendable {
    var include: MatchProperties?
    var exclude: MatchProperties?

    static func parse(_ r: inout ConfigReader, allowed: Set<String>) -> MatchSelector {
        MatchSelector(
            include: MatchProperties.parse(&r, "include", allowed: allowed),
            exclude: MatchProperties.parse(&r, "exclude", allowed: allowed))
    }

    var isEmpty: Bool { include == nil && exclude == nil }

    func selects(_ test: (MatchProperties) -> Bool) -> Bool {
        (include.map(test) ?? true) && !(exclude.map(test) ?? false)
    }
}
