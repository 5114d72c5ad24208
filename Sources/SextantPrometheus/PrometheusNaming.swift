/// OTLP → Prometheus naming, per the OpenTelemetry specification's "Prometheus and OpenMetrics
/// Compatibility" (§ Metric Metadata: name sanitisation, unit suffixes, `_total` for monotonic sums,
/// `_ratio` for unit `1` gauges; § Attributes: label name sanitisation).
public enum PrometheusNaming {
    /// Unit names as the specification's table spells them for suffixes.
    static let units: [String: String] = [
        "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
        "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
        "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts", "A": "amperes",
        "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz", "%": "percent",
    ]
    static let perUnits: [String: String] = ["s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"]

    /// Replaces every character outside `[a-zA-Z0-9_:]` with `_`, collapses runs of `_`, and prefixes
    /// `_` when the name starts with a digit.
    public static func sanitizeMetricName(_ name: String) -> String { sanitize(name, allowColon: true, digitPrefix: "_") }

    /// Label names allow no `:`; a leading digit gets the `key_` prefix, as the specification says.
    public static func sanitizeLabelName(_ name: String) -> String { sanitize(name, allowColon: false, digitPrefix: "key_") }

    private static func sanitize(_ name: String, allowColon: Bool, digitPrefix: String) -> String {
        if isSanitized(name, allowColon: allowColon) { return name }
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count)
        for c in name.utf8 {
            let ok =
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || (allowColon && c == UInt8(ascii: ":"))
            let ch = ok ? c : UInt8(ascii: "_")
            if ch == UInt8(ascii: "_"), out.last == UInt8(ascii: "_") { continue }
            out.append(ch)
        }
        if out.isEmpty { return "_" }
        if out[0] >= UInt8(ascii: "0") && out[0] <= UInt8(ascii: "9") { out.insert(contentsOf: Array(digitPrefix.utf8), at: 0) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `sanitize` would return `name` unchanged (the common case, checked without allocating).
    private static func isSanitized(_ name: String, allowColon: Bool) -> Bool {
        // Native strings are checked over their contiguous bytes (the view's iterator is several times
        // slower); others through the view.
        if let ok = name.utf8.withContiguousStorageIfAvailable({ isSanitized($0, allowColon: allowColon) }) { return ok }
        return isSanitized(name.utf8, allowColon: allowColon)
    }

    @inline(__always)
    private static func isSanitized<Bytes: Sequence<UInt8>>(_ bytes: Bytes, allowColon: Bool) -> Bool {
        var previous: UInt8 = 0
        for c in bytes {
            let ok =
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") && previous != 0) || (c == UInt8(ascii: "_") && previous != c)
                || (allowColon && c == UInt8(ascii: ":"))
            guard ok else { return false }
            previous = c
        }
        return previous != 0
    }

    /// The unit as a name suffix (`ms` → `milliseconds`, `m/s` → `meters_per_second`); annotations in
    /// braces are dropped; `1` gives `ratio` for gauges only (nothing otherwise).
    public static func unitSuffix(_ unit: String, isGauge: Bool) -> String? {
        var u = unit
        while let open = u.firstIndex(of: "{"), let close = u[open...].firstIndex(of: "}") { u.removeSubrange(open...close) }
        u = u.trimmingCharacters(in: " ")
        if u.isEmpty { return nil }
        if u == "1" { return isGauge ? "ratio" : nil }
        let parts = u.split(separator: "/", maxSplits: 1).map(String.init)
        let main = units[parts[0]] ?? parts[0]
        var suffix = main
        if parts.count == 2 {
            let per = perUnits[parts[1]] ?? units[parts[1]] ?? parts[1]
            suffix = (main.isEmpty ? "" : main + "_") + "per_" + per
        }
        return sanitizeMetricName(suffix).trimmingCharacters(in: "_")
    }

    /// The full Prometheus name: namespace, sanitised name, unit suffix (unless already present), and
    /// `_total` for monotonic sums (counters).
    public static func metricName(_ name: String, unit: String, namespace: String = "", isCounter: Bool, isGauge: Bool) -> String {
        var n = sanitizeMetricName(namespace.isEmpty ? name : namespace + "_" + name)
        if let u = unitSuffix(unit, isGauge: isGauge), !n.hasSuffix("_" + u) && !n.contains("_" + u + "_") { n += "_" + u }
        if isCounter {
            if n.hasSuffix("_total") { n.removeLast(6) }
            n += "_total"
        }
        return n
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
