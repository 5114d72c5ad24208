import SextantModel
import SextantPipeline

/// One `tail_sampling` policy (OTel Collector's `tailsamplingprocessor` semantics): evaluated on
/// every span gathered for a trace once `decision_wait` has passed. A trace is kept when any
/// policy samples it.
enum TailSamplingPolicy: Sendable {
    case alwaysSample
    /// Trace duration (earliest start to latest end) ≥ threshold (and ≤ upper, when set).
    case latency(thresholdMs: Int, upperMs: Int?)
    /// Any span with one of these status codes.
    case statusCode(Set<SpanStatus.Code>)
    case probabilistic(percentage: Double, salt: String)
    /// Any span (or its resource) with `key` equal to one of `values` (or matching them as regexes).
    case stringAttribute(key: String, values: [String], regex: [CompiledRegex]?, invert: Bool)
    case numericAttribute(key: String, min: Int64, max: Int64)
    case spanCount(min: Int, max: Int?)
    /// Every sub-policy must sample.
    case and([TailSamplingPolicy])

    static func parseList(_ r: inout ConfigReader, key: String, nested: Bool = false) -> [(name: String, policy: TailSamplingPolicy)] {
        guard let node = r.raw(key) else {
            if !nested { r.error(nil, "\(r.path)::\(key) must list at least one policy") }
            return []
        }
        guard case .sequence(let items) = node.value, !items.isEmpty else {
            r.error(key, "\(r.qualified(key)) must be a non-empty list of policies")
            return []
        }
        return items.enumerated().compactMap { i, item in
            var p = ConfigReader(item, path: "\(r.qualified(key))[\(i)]", diagnostics: r.diagnostics)
            defer { p.finish() }
            let name = p.string("name", default: "policy-\(i)")
            let types = ["always_sample", "latency", "status_code", "probabilistic", "string_attribute", "numeric_attribute", "span_count"]
                + (nested ? [] : ["and"])
            let type = p.choice("type", types, default: "")
            switch type {
            case "always_sample":
                return (name, .alwaysSample)
            case "latency":
                var s = p.section("latency")
                defer { s.finish() }
                let t = s.int("threshold_ms", default: 0, min: 0)
                let u = s.int("upper_threshold_ms", default: 0, min: 0)
                return (name, .latency(thresholdMs: t, upperMs: u > 0 ? u : nil))
            case "status_code":
                var s = p.section("status_code")
                defer { s.finish() }
                var codes: Set<SpanStatus.Code> = []
                for c in s.stringList("status_codes") {
                    switch c {
                    case "ERROR": codes.insert(.error)
                    case "OK": codes.insert(.ok)
                    case "UNSET": codes.insert(.unset)
                    default: s.error("status_codes", "\(s.qualified("status_codes")): unknown status code '\(c)' (ERROR, OK, UNSET)")
                    }
                }
                if codes.isEmpty { s.error(nil, "\(s.path)::status_codes must list at least one of ERROR, OK, UNSET") }
                return (name, .statusCode(codes))
            case "probabilistic":
                var s = p.section("probabilistic")
                defer { s.finish() }
                return (name, .probabilistic(percentage: s.double("sampling_percentage", default: 0, min: 0, max: 100), salt: s.string("hash_salt", default: "")))
            case "string_attribute":
                var s = p.section("string_attribute")
                defer { s.finish() }
                let key = s.string("key", default: "")
                if key.isEmpty { s.error(nil, "\(s.path)::key is required") }
                let values = s.stringList("values")
                let useRegex = s.bool("enabled_regex_matching", default: false)
                _ = s.int("cache_max_size", default: 0)
                var regexes: [CompiledRegex]?
                if useRegex {
                    regexes = values.compactMap { v in
                        do { return try CompiledRegex(v) } catch {
                            s.error("values", "\(s.qualified("values")): invalid regular expression '\(v)'")
                            return nil
                        }
                    }
                }
                return (name, .stringAttribute(key: key, values: values, regex: regexes, invert: s.bool("invert_match", default: false)))
            case "numeric_attribute":
                var s = p.section("numeric_attribute")
                defer { s.finish() }
                return (name, .numericAttribute(key: s.string("key", default: ""), min: Int64(s.int("min_value", default: Int.min)), max: Int64(s.int("max_value", default: Int.max))))
            case "span_count":
                var s = p.section("span_count")
                defer { s.finish() }
                let mx = s.int("max_spans", default: 0, min: 0)
                return (name, .spanCount(min: s.int("min_spans", default: 1, min: 0), max: mx > 0 ? mx : nil))
            case "and":
                var s = p.section("and")
                defer { s.finish() }
                let subs = parseList(&s, key: "and_sub_policy", nested: true)
                if subs.isEmpty { s.error(nil, "\(s.path)::and_sub_policy must list at least one policy") }
                return (name, .and(subs.map(\.policy)))
            default:
                if !p.keys.contains("type") { p.error(nil, "\(p.path): 'type' is required (\(types.joined(separator: ", ")))") }
                return nil
            }
        }
    }

    func samples(_ trace: CollectedTrace) -> Bool {
        switch self {
        case .alwaysSample:
            return true
        case .latency(let threshold, let upper):
            let ms = Int((trace.latestEnd &- trace.earliestStart) / 1_000_000)
            return ms >= threshold && (upper.map { ms <= $0 } ?? true)
        case .statusCode(let codes):
            return trace.spans.contains { codes.contains($0.span.status.code) }
        case .probabilistic(let percentage, let salt):
            var bytes = Array(salt.utf8)
            bytes += trace.id.bytes
            return TraceIDSampling.hash(bytes, seed: 0) & (TraceIDSampling.buckets - 1) < TraceIDSampling.threshold(percentage: percentage)
        case .stringAttribute(let key, let values, let regex, let invert):
            let matched = trace.spans.contains { s in
                guard case .string(let v)? = s.span.attributes[key: key] ?? s.resource.attributes[key: key] else { return false }
                if let regex { return regex.contains { $0.whole(v) } }
                return values.contains(v)
            }
            return invert ? !matched : matched
        case .numericAttribute(let key, let min, let max):
            return trace.spans.contains { s in
                guard case .int(let v)? = s.span.attributes[key: key] ?? s.resource.attributes[key: key] else { return false }
                return v >= min && v <= max
            }
        case .spanCount(let min, let max):
            return trace.spans.count >= min && (max.map { trace.spans.count <= $0 } ?? true)
        case .and(let subs):
            return subs.allSatisfy { $0.samples(trace) }
        }
    }
}

/// The spans gathered for one trace while its decision is pending.
struct CollectedTrace {
    struct Item {
        var resource: Resource
        var scope: InstrumentationScope
        var span: Span
    }

    let id: TraceID
    var spans: [Item] = []
    var earliestStart: UInt64 = .max
    var latestEnd: UInt64 = 0

    mutating func add(_ item: Item) {
        spans.append(item)
        earliestStart = min(earliestStart, item.span.startTimeUnixNano)
        latestEnd = max(latestEnd, item.span.endTimeUnixNano)
    }

    /// The spans as a batch, regrouped under their resource and scope.
    static func batch(_ items: [Item]) -> TracesData {
        var out = TracesData()
        for item in items {
            if let r = out.resourceSpans.lastIndex(where: { $0.resource == item.resource }) {
                if let s = out.resourceSpans[r].scopeSpans.lastIndex(where: { $0.scope == item.scope }) {
                    out.resourceSpans[r].scopeSpans[s].spans.append(item.span)
                } else {
                    out.resourceSpans[r].scopeSpans.append(ScopeSpans(scope: item.scope, spans: [item.span]))
                }
            } else {
                out.resourceSpans.append(ResourceSpans(resource: item.resource, scopeSpans: [ScopeSpans(scope: item.scope, spans: [item.span])]))
            }
        }
        return out
    }
}
