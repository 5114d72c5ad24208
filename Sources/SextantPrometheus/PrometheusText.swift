import SextantModel

/// Renders metrics in the Prometheus text exposition format 0.0.4 (Prometheus docs, "Exposition
/// formats"), deterministically: families sorted by name, series sorted by their label sets, labels
/// sorted by name (with `le`/`quantile` last, as Prometheus prints them), so goldens are byte-exact.
/// The OTLP mapping is `PrometheusSamples`'; only the latest point of each series is shown, and
/// `target_info` is a gauge here (the text format has no info type). A family whose names clash with an
/// earlier family's is left out (`PrometheusSamples.withoutNameCollisions`).
public enum PrometheusText {
    public typealias Options = PrometheusSamples.Options

    /// The `Content-Type` of this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Renders one or more batches (e.g. the latest point of every series kept by an exporter).
    public static func render(_ batches: [MetricsData], options: Options = Options()) -> String {
        render(PrometheusSamples.latest(batches, options: options))
    }

    /// Renders families as `PrometheusSamples.latest` returns them.
    public static func render(_ families: [(PrometheusSamples.Family, [PrometheusSamples.Point])]) -> String {
        var out = ""
        for (f, points) in PrometheusSamples.withoutNameCollisions(families, openMetrics: false).kept {
            let type = f.type == .info ? "gauge" : f.type.rawValue
            out += "# HELP \(f.name) \(escapeHelp(f.help))\n# TYPE \(f.name) \(type)\n"
            for p in points {
                for line in p.lines {
                    out += f.name
                    out += line.suffix
                    appendLabels(p.labels, line.extra, to: &out)
                    out += " "
                    out += number(line.value)
                    out += "\n"
                }
            }
        }
        return out
    }

    /// `{a="1",b="2"}` with `extra` last; nothing for no labels.
    public static func appendLabels(_ labels: [(String, String)], _ extra: (String, String)?, to out: inout String) {
        guard !labels.isEmpty || extra != nil else { return }
        out += "{"
        var first = true
        for (name, value) in labels {
            if !first { out += "," }
            first = false
            out += name
            out += "=\""
            out += escapeLabel(value)
            out += "\""
        }
        if let (name, value) = extra {
            if !first { out += "," }
            out += name
            out += "=\""
            out += escapeLabel(value)
            out += "\""
        }
        out += "}"
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        var out = ""
        appendLabels(labels, nil, to: &out)
        return out
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
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
