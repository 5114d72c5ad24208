import SextantModel

/// Renders metrics in the OpenMetrics 1.0 text format (OpenMetrics specification 1.0, "Text Format"),
/// with the same OTLP mapping and deterministic order as `PrometheusText`:
/// - each family has `# TYPE`, `# UNIT` (when the name ends in `_<unit>`, which the spec requires)
///   and `# HELP`; counter families drop `_total`, whose samples are `<family>_total` and
///   `<family>_created`; `target_info` is the info family `target` (OTel compatibility spec,
///   § Resource Attributes);
/// - histograms print `_bucket{le}`, `_count`, `_sum`, `_created`; summaries their quantiles, `_count`,
///   `_sum`, `_created` (spec § Histogram, § Summary);
/// - counter and bucket samples carry one exemplar, `# {trace_id="…",span_id="…"} value timestamp`,
///   its label set at most 128 characters (spec § Exemplars); timestamps are seconds;
/// - HELP escapes `\`, `"` and newline (spec § Escaping); the exposition ends with `# EOF`.
public enum OpenMetricsText {
    /// The `Content-Type` of this format.
    public static let contentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    public static func render(_ batches: [MetricsData], options: PrometheusSamples.Options = .init()) -> String {
        render(PrometheusSamples.latest(batches, options: options))
    }

    public static func render(_ families: [(PrometheusSamples.Family, [PrometheusSamples.Point])]) -> String {
        var out = ""
        for (f, points) in PrometheusSamples.withoutNameCollisions(families, openMetrics: true).kept {
            let family: String
            switch f.type {
            case .counter where f.name.hasSuffix("_total"): family = String(f.name.dropLast(6))
            case .info where f.name.hasSuffix("_info"): family = String(f.name.dropLast(5))
            default: family = f.name
            }
            out += "# TYPE \(family) \(f.type.rawValue)\n"
            if !f.unit.isEmpty && family.hasSuffix("_" + f.unit) { out += "# UNIT \(family) \(f.unit)\n" }
            out += "# HELP \(family) \(escapeHelp(f.help))\n"
            for p in points {
                // OpenMetrics § Counter: a Total is non-NaN and non-negative. A text-format scrape can
                // still deliver one; it stays in the 0.0.4 output and is left out here.
                if f.type == .counter, p.lines.contains(where: { $0.value.isNaN || $0.value < 0 }) { continue }
                var tail: [PrometheusSamples.Line] = []
                for line in p.lines {
                    if line.suffix == "_count" || line.suffix == "_sum" {
                        tail.append(line)
                        continue
                    }
                    sample(f.name + line.suffix, p.labels, line, &out)
                }
                // The spec's examples order these `_count`, `_sum`, `_created`.
                for line in tail.sorted(by: { $0.suffix < $1.suffix }) { sample(f.name + line.suffix, p.labels, line, &out) }
                if p.startTimeUnixNano > 0 && (f.type == .counter || f.type == .histogram || f.type == .summary) {
                    out += family
                    out += "_created"
                    PrometheusText.appendLabels(p.labels, nil, to: &out)
                    out += " "
                    out += seconds(p.startTimeUnixNano)
                    out += "\n"
                }
            }
        }
        out += "# EOF\n"
        return out
    }

    private static func sample(_ name: String, _ labels: [(String, String)], _ line: PrometheusSamples.Line, _ out: inout String) {
        out += name
        PrometheusText.appendLabels(labels, line.extra, to: &out)
        out += " "
        out += PrometheusText.number(line.value)
        if let e = line.exemplar { appendExemplar(e, &out) }
        out += "\n"
    }

    /// The exemplar's labels: `trace_id`, `span_id`, then its filtered attributes while the whole set
    /// stays within the spec's 128 characters.
    static func appendExemplar(_ e: Exemplar, _ out: inout String) {
        var labels: [(String, String)] = []
        if let t = e.traceID, t.isValid { labels.append(("trace_id", t.hex)) }
        if let s = e.spanID, s.isValid { labels.append(("span_id", s.hex)) }
        var length = labels.reduce(0) { $0 + $1.0.count + $1.1.count }
        for kv in e.filteredAttributes {
            let name = PrometheusNaming.sanitizeLabelName(kv.key)
            let value = kv.value.asString
            guard !labels.contains(where: { $0.0 == name }), length + name.count + value.count <= 128 else { continue }
            length += name.count + value.count
            labels.append((name, value))
        }
        out += " # {"
        for (i, (name, value)) in labels.enumerated() {
            if i > 0 { out += "," }
            out += name + "=\"" + PrometheusText.escapeLabel(value) + "\""
        }
        out += "} "
        out += PrometheusText.number(e.value.asDouble)
        if e.timeUnixNano > 0 {
            out += " "
            out += seconds(e.timeUnixNano)
        }
    }

    /// Unix nanoseconds as decimal seconds, exactly (no binary rounding): `1700000000.25`.
    static func seconds(_ nanos: UInt64) -> String {
        let s = String(nanos / 1_000_000_000)
        var frac = nanos % 1_000_000_000
        guard frac > 0 else { return s }
        var digits = 9
        while frac % 10 == 0 {
            frac /= 10
            digits -= 1
        }
        let f = String(frac)
        return s + "." + String(repeating: "0", count: digits - f.count) + f
    }

    /// HELP escapes `\`, newline and `"` in OpenMetrics.
    static func escapeHelp(_ v: String) -> String {
        v.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n").replacingAll("\"", with: "\\\"")
    }
}
