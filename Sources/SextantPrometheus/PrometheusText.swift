import SextantModel

/// Renders metrics in the Prometheus text exposition format 0.0.4 (Prometheus docs, "Exposition
/// formats"), deterministically: families sorted by name, series sorted by their label sets, labels
/// sorted by name (with `le`/`quantile` last, as Prometheus prints them), so goldens are byte-exact.
///
/// Mapping (OpenTelemetry "Prometheus and OpenMetrics Compatibility"): gauge → gauge; monotonic
/// cumulative sum → counter (`_total`); non-monotonic sum → gauge; explicit histogram → histogram
/// (`_bucket{le}` cumulative, `+Inf`, `_sum`, `_count`); summary → summary (`{quantile}`, `_sum`,
/// `_count`). Delta temporality and exponential histograms are not representable and are skipped
/// (the caller converts or counts them). Resource attributes become `job` (`service.namespace/service.name`),
/// `instance` (`service.instance.id`) and one `target_info` series per resource.
public enum PrometheusText {
    public struct Options: Sendable {
        public var namespace = ""
        public var constLabels: [(String, String)] = []
        /// Also copy every resource attribute onto every series (OTel's `resource_to_telemetry_conversion`).
        public var resourceToTelemetry = false
        public init() {}
    }

    struct Series {
        var labels: [(String, String)]
        var lines: [(suffix: String, extra: (String, String)?, value: Double)]
    }

    struct Family {
        var type: String
        var help: String
        var series: [(key: String, Series)] = []
    }

    /// Renders one or more batches (e.g. the latest point of every series kept by an exporter).
    public static func render(_ batches: [MetricsData], options: Options = Options()) -> String {
        var families: [String: Family] = [:]
        var targetInfo: [String: [(String, String)]] = [:]
        for batch in batches {
            for rm in batch.resourceMetrics {
                let (jobInstance, infoLabels) = resourceLabels(rm.resource)
                if !infoLabels.isEmpty { targetInfo[key(jobInstance + infoLabels)] = jobInstance + infoLabels }
                var base = jobInstance + options.constLabels.map { (PrometheusNaming.sanitizeLabelName($0.0), $0.1) }
                if options.resourceToTelemetry { base += infoLabels }
                for sm in rm.scopeMetrics {
                    for m in sm.metrics { add(m, base: base, options: options, into: &families) }
                }
            }
        }
        if !targetInfo.isEmpty {
            var f = Family(type: "gauge", help: "Target metadata")
            for (k, labels) in targetInfo { f.series.append((k, Series(labels: labels.sorted { $0.0 < $1.0 }, lines: [("", nil, 1)]))) }
            families["target_info"] = f
        }
        var out = ""
        for name in families.keys.sorted() {
            let f = families[name]!
            out += "# HELP \(name) \(escapeHelp(f.help))\n# TYPE \(name) \(f.type)\n"
            for (_, s) in f.series.sorted(by: { $0.key < $1.key }) {
                for line in s.lines {
                    var labels = s.labels
                    if let extra = line.extra { labels.append(extra) }
                    out += name + line.suffix + labelText(labels) + " " + number(line.value) + "\n"
                }
            }
        }
        return out
    }

    private static func add(_ m: Metric, base: [(String, String)], options: Options, into families: inout [String: Family]) {
        func labels(_ attrs: [KeyValue]) -> [(String, String)] {
            var l = base
            for kv in attrs {
                let name = PrometheusNaming.sanitizeLabelName(kv.key)
                if let i = l.firstIndex(where: { $0.0 == name }) { l[i].1 = kv.value.asString } else { l.append((name, kv.value.asString)) }
            }
            return l.sorted { $0.0 < $1.0 }
        }
        func family(_ name: String, _ type: String) -> String {
            if families[name] == nil { families[name] = Family(type: type, help: m.description.isEmpty ? m.name : m.description) }
            return name
        }
        func append(_ name: String, _ s: Series) { families[name]!.series.append((key(s.labels), s)) }

        switch m.data {
        case .gauge(let points):
            let name = family(PrometheusNaming.metricName(m.name, unit: m.unit, namespace: options.namespace, isCounter: false, isGauge: true), "gauge")
            for p in points where p.flags & DataPointFlags.noRecordedValue == 0 {
                append(name, Series(labels: labels(p.attributes), lines: [("", nil, p.value.asDouble)]))
            }
        case .sum(let points, let temporality, let monotonic):
            guard temporality == .cumulative || !monotonic else { return }
            let name = family(
                PrometheusNaming.metricName(m.name, unit: m.unit, namespace: options.namespace, isCounter: monotonic, isGauge: !monotonic),
                monotonic ? "counter" : "gauge")
            for p in points where p.flags & DataPointFlags.noRecordedValue == 0 {
                append(name, Series(labels: labels(p.attributes), lines: [("", nil, p.value.asDouble)]))
            }
        case .histogram(let points, let temporality):
            guard temporality == .cumulative else { return }
            let name = family(PrometheusNaming.metricName(m.name, unit: m.unit, namespace: options.namespace, isCounter: false, isGauge: false), "histogram")
            for p in points where p.flags & DataPointFlags.noRecordedValue == 0 {
                var lines: [(String, (String, String)?, Double)] = []
                var cumulative: UInt64 = 0
                for (i, bound) in p.explicitBounds.enumerated() where i < p.bucketCounts.count {
                    cumulative += p.bucketCounts[i]
                    lines.append(("_bucket", ("le", number(bound)), Double(cumulative)))
                }
                lines.append(("_bucket", ("le", "+Inf"), Double(p.count)))
                if let sum = p.sum { lines.append(("_sum", nil, sum)) }
                lines.append(("_count", nil, Double(p.count)))
                append(name, Series(labels: labels(p.attributes), lines: lines.map { (suffix: $0.0, extra: $0.1, value: $0.2) }))
            }
        case .summary(let points):
            let name = family(PrometheusNaming.metricName(m.name, unit: m.unit, namespace: options.namespace, isCounter: false, isGauge: false), "summary")
            for p in points where p.flags & DataPointFlags.noRecordedValue == 0 {
                var lines: [(suffix: String, extra: (String, String)?, value: Double)] = p.quantileValues.map {
                    ("", ("quantile", number($0.quantile)), $0.value)
                }
                lines.append(("_sum", nil, p.sum))
                lines.append(("_count", nil, Double(p.count)))
                append(name, Series(labels: labels(p.attributes), lines: lines))
            }
        case .exponentialHistogram, .empty:
            return
        }
    }

    /// `job` and `instance` from the resource, and the other attributes for `target_info`.
    static func resourceLabels(_ r: Resource) -> ([(String, String)], [(String, String)]) {
        var job = r.serviceName ?? ""
        if case .string(let ns)? = r.attributes[key: "service.namespace"], !ns.isEmpty, !job.isEmpty { job = ns + "/" + job }
        var base: [(String, String)] = []
        if !job.isEmpty { base.append(("job", job)) }
        if case .string(let inst)? = r.attributes[key: "service.instance.id"], !inst.isEmpty { base.append(("instance", inst)) }
        let skip: Set<String> = ["service.name", "service.namespace", "service.instance.id"]
        let info = r.attributes.filter { !skip.contains($0.key) }.map { (PrometheusNaming.sanitizeLabelName($0.key), $0.value.asString) }
        return (base, info)
    }

    static func key(_ labels: [(String, String)]) -> String { labelText(labels.sorted { $0.0 < $1.0 }) }

    static func labelText(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// Label values escape `\`, `"` and newline (exposition format spec).
    static func escapeLabel(_ v: String) -> String {
        guard v.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return v }
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// HELP text escapes `\` and newline.
    static func escapeHelp(_ v: String) -> String {
        v.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
    }

    /// Go-style float text as Prometheus prints it: integers without a fraction, `+Inf`/`-Inf`/`NaN`.
    public static func number(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }
}

extension String {
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
