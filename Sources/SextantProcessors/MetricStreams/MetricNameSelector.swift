import SextantModel
import SextantPipeline

/// `include`/`exclude` of the OTel Collector's temporality processors:
/// `{match_type: strict|regexp, metrics: [names or patterns], metric_types: [sum, histogram]}`.
/// A metric is selected when it matches `include` (if given) and not `exclude` (exclude wins).
/// Regular expressions match anywhere in the name (Go `regexp.MatchString`), as the collector's
/// `filterset/regexp` does; anchor them with `^…$` for whole names.
struct MetricNameSelector: Sendable {
    struct Rule: Sendable {
        var names: [MatchProperties.Pattern] = []
        /// Kind tags (`MetricData.kindTag`); empty means any.
        var kinds: Set<UInt8> = []

        func matches(_ m: Metric) -> Bool {
            (names.isEmpty || names.contains { $0.matches(m.name) }) && (kinds.isEmpty || kinds.contains(m.data.kindTag))
        }
    }

    var include: Rule?
    var exclude: Rule?

    func selects(_ m: Metric) -> Bool {
        (include?.matches(m) ?? true) && !(exclude?.matches(m) ?? false)
    }

    /// Reads `include` and `exclude` from `r`; `types` maps the accepted `metric_types` names to kinds.
    static func parse(_ r: inout ConfigReader, types: [String: UInt8]) -> MetricNameSelector {
        MetricNameSelector(include: parseRule(&r, "include", types: types), exclude: parseRule(&r, "exclude", types: types))
    }

    private static func parseRule(_ r: inout ConfigReader, _ key: String, types: [String: UInt8]) -> Rule? {
        guard r.has(key) else { return nil }
        var m = r.section(key)
        var rule = Rule()
        let names = m.stringList("metrics")
        let matchType = m.choice("match_type", ["strict", "regexp"], default: "")
        if !names.isEmpty && matchType.isEmpty && !m.keys.contains("match_type") {
            m.error(nil, "\(m.path)::match_type is required when metrics are listed (strict or regexp)")
        }
        for n in names {
            if matchType == "regexp" {
                do { rule.names.append(.regexp(try CompiledRegex(n))) } catch {
                    m.error("metrics", "\(m.qualified("metrics")): invalid regular expression '\(n)': \(error)")
                }
            } else {
                rule.names.append(.strict(n))
            }
        }
        for t in m.stringList("metric_types") {
            if let tag = types[t.lowercased()] {
                rule.kinds.insert(tag)
            } else {
                m.error("metric_types", "\(m.qualified("metric_types")): '\(t)' is not one of \(types.keys.sorted().joined(separator: ", "))")
            }
        }
        m.finish()
        return rule
    }
}
