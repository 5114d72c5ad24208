/// Reads one mapping of a component's configuration, recording every problem in `Diagnostics`.
///
/// Each accessor marks its key as known; `finish()` then reports the keys nobody asked for, so a typo
/// such as `endpont:` is an error with a position and a suggestion instead of a silently ignored line.
/// Accessors always return a usable value (the default on error) so that loading continues and every
/// error in the file is found in one pass.
public struct ConfigReader {
    public let node: ConfigNode
    /// The path of this mapping, e.g. `receivers::otlp::protocols::http`, used in messages.
    public let path: String
    public let diagnostics: Diagnostics
    private var known: Set<String> = []
    private let entries: [ConfigNode.Entry]

    public init(_ node: ConfigNode, path: String, diagnostics: Diagnostics) {
        self.node = node
        self.path = path
        self.diagnostics = diagnostics
        if let e = node.entries {
            entries = e
        } else {
            entries = []
            diagnostics.error(at: node.location, "\(path.isEmpty ? "config" : path) must be a mapping, found \(node.kindName)")
        }
    }

    public var location: SourceLocation { node.location }

    /// `path::key`, or just `key` at the top level.
    public func qualified(_ key: String) -> String { path.isEmpty ? key : "\(path)::\(key)" }

    /// Records an error at the position of `key` (or of this mapping).
    public func error(_ key: String?, _ message: String) {
        let loc = key.flatMap { entryNode($0)?.location } ?? node.location
        diagnostics.error(at: loc, message)
    }

    public func warning(_ key: String?, _ message: String) {
        let loc = key.flatMap { entryNode($0)?.location } ?? node.location
        diagnostics.warning(at: loc, message)
    }

    private func entryNode(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }

    /// Whether `key` is present (and not null). Marks it as known.
    public mutating func has(_ key: String) -> Bool {
        known.insert(key)
        guard let n = entryNode(key) else { return false }
        return !n.isNull
    }

    /// The raw node for `key`, marking it known.
    public mutating func raw(_ key: String) -> ConfigNode? {
        known.insert(key)
        guard let n = entryNode(key), !n.isNull else { return nil }
        return n
    }

    /// The keys present in this mapping, in document order.
    public var keys: [String] { entries.map(\.key) }

    private func scalar(_ key: String, _ n: ConfigNode, expecting: String) -> String? {
        if case .scalar(let s, _) = n.value { return s }
        diagnostics.error(at: n.location, "\(qualified(key)) must be \(expecting), found \(n.kindName)")
        return nil
    }

    public mutating func string(_ key: String, default value: String) -> String {
        optionalString(key) ?? value
    }

    public mutating func optionalString(_ key: String) -> String? {
        guard let n = raw(key) else { return nil }
        return scalar(key, n, expecting: "a string")
    }

    /// A string that must be one of `allowed` (case-sensitive, as the OTel Collector's enums are).
    public mutating func choice(_ key: String, _ allowed: [String], default value: String) -> String {
        guard let n = raw(key), let s = scalar(key, n, expecting: "one of \(allowed.joined(separator: ", "))") else {
            return value
        }
        if allowed.contains(s) { return s }
        diagnostics.error(
            at: n.location,
            "\(qualified(key)): '\(s)' is not one of \(allowed.joined(separator: ", "))\(Spelling.hint(for: s, among: allowed))")
        return value
    }

    public mutating func bool(_ key: String, default value: Bool) -> Bool {
        guard let n = raw(key), let s = scalar(key, n, expecting: "a boolean") else { return value }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            diagnostics.error(at: n.location, "\(qualified(key)) must be a boolean (true or false), found '\(s)'")
            return value
        }
    }

    public mutating func int(_ key: String, default value: Int, min: Int? = nil, max: Int? = nil) -> Int {
        guard let n = raw(key), let s = scalar(key, n, expecting: "an integer") else { return value }
        guard let v = Int(s.replacingUnderscores) else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be an integer, found '\(s)'")
            return value
        }
        return checkRange(key, n, v, min: min, max: max) ?? value
    }

    public mutating func double(_ key: String, default value: Double, min: Double? = nil, max: Double? = nil) -> Double {
        guard let n = raw(key), let s = scalar(key, n, expecting: "a number") else { return value }
        guard let v = Double(s) else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be a number, found '\(s)'")
            return value
        }
        if let min, v < min {
            diagnostics.error(at: n.location, "\(qualified(key)) must be at least \(min), found \(v)")
            return value
        }
        if let max, v > max {
            diagnostics.error(at: n.location, "\(qualified(key)) must be at most \(max), found \(v)")
            return value
        }
        return v
    }

    /// A byte count: an integer, or a number with `KiB`/`MiB`/`GiB` (or `KB`/`MB`/`GB`) suffix.
    public mutating func byteSize(_ key: String, default value: Int, min: Int? = nil) -> Int {
        guard let n = raw(key), let s = scalar(key, n, expecting: "a byte size") else { return value }
        guard let v = ByteSize.parse(s) else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be a byte size such as 20971520 or 20MiB, found '\(s)'")
            return value
        }
        return checkRange(key, n, v, min: min, max: nil) ?? value
    }

    /// A Go-style duration (`200ms`, `5s`, `1m30s`).
    public mutating func duration(_ key: String, default value: Duration, allowZero: Bool = true) -> Duration {
        guard let n = raw(key), let s = scalar(key, n, expecting: "a duration") else { return value }
        guard let d = GoDuration.parse(s) else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be a duration such as 200ms, 5s or 1m30s, found '\(s)'")
            return value
        }
        if !allowZero && d <= .zero {
            diagnostics.error(at: n.location, "\(qualified(key)) must be greater than zero")
            return value
        }
        return d
    }

    /// A listening `host:port` (`localhost` → 127.0.0.1, `[::1]:4317` for IPv6); the default on error.
    public mutating func endpoint(_ key: String, default value: String) -> (host: String, port: Int) {
        let text = string(key, default: value)
        if let hp = HostPort.parse(text) { return hp }
        error(key, "\(qualified(key)) must be host:port, found '\(text)'")
        return HostPort.parse(value) ?? ("127.0.0.1", 0)
    }

    public mutating func stringList(_ key: String, default value: [String] = []) -> [String] {
        guard let n = raw(key) else { return value }
        guard case .sequence(let items) = n.value else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be a list of strings, found \(n.kindName)")
            return value
        }
        return items.compactMap { scalar(key, $0, expecting: "a string") }
    }

    /// A mapping of string keys to string values, in document order.
    public mutating func stringMap(_ key: String) -> [(String, String)] {
        guard let n = raw(key) else { return [] }
        guard let entries = n.entries else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be a mapping of strings, found \(n.kindName)")
            return []
        }
        return entries.compactMap { e in scalar("\(key)::\(e.key)", e.value, expecting: "a string").map { (e.key, $0) } }
    }

    /// The ID of another component this one uses (e.g. an extension); the collector config checks
    /// that it is defined, of `requiredType` when given, and (for extensions) enabled.
    public mutating func componentReference(_ key: String, kind: ComponentKind, requiredType: String? = nil) -> ComponentID? {
        guard let n = raw(key), let s = scalar(key, n, expecting: "a component ID") else { return nil }
        guard let id = ComponentID(parsing: s) else {
            diagnostics.error(at: n.location, "\(qualified(key)): '\(s)' is not a valid component ID (expected type[/name])")
            return nil
        }
        diagnostics.reference(ComponentReference(kind: kind, id: id, requiredType: requiredType, location: n.location, path: qualified(key)))
        return id
    }

    /// A nested mapping as its own reader. An absent or null section reads as an empty mapping.
    public mutating func section(_ key: String) -> ConfigReader {
        known.insert(key)
        let n = entryNode(key) ?? ConfigNode.emptyMapping(at: node.location)
        return ConfigReader(n.isNull ? ConfigNode.emptyMapping(at: n.location) : n, path: qualified(key), diagnostics: diagnostics)
    }

    /// Reports every key that no accessor asked for. Call once, after reading all keys.
    public func finish() {
        for e in entries where !known.contains(e.key) {
            diagnostics.error(
                at: e.keyLocation,
                "unknown key '\(e.key)' in \(path.isEmpty ? "config" : path)\(Spelling.hint(for: e.key, among: known))")
        }
    }

    private func checkRange(_ key: String, _ n: ConfigNode, _ v: Int, min: Int?, max: Int?) -> Int? {
        if let min, v < min {
            diagnostics.error(at: n.location, "\(qualified(key)) must be at least \(min), found \(v)")
            return nil
        }
        if let max, v > max {
            diagnostics.error(at: n.location, "\(qualified(key)) must be at most \(max), found \(v)")
            return nil
        }
        return v
    }
}

@available(*, unavailable)
extension ConfigReader: Sendable {}

extension String {
    fileprivate var replacingUnderscores: String { contains("_") ? String(filter { $0 != "_" }) : self }
}

/// Go's `time.ParseDuration` syntax, which OTel Collector configs use: a sequence of decimal numbers
/// with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, e.g. `1h15m30.5s`; `0` alone is allowed.
public enum GoDuration {
    public static func parse(_ text: String) -> Duration? {
        var s = Substring(text.trimmingSpaces)
        if s == "0" { return .zero }
        var negative = false
        if s.first == "-" || s.first == "+" {
            negative = s.first == "-"
            s = s.dropFirst()
        }
        guard !s.isEmpty else { return nil }
        var totalNanos: Double = 0
        while !s.isEmpty {
            let numberEnd = s.firstIndex { !($0.isNumber || $0 == ".") } ?? s.endIndex
            guard numberEnd != s.startIndex, let value = Double(s[s.startIndex..<numberEnd]) else { return nil }
            s = s[numberEnd...]
            let unitEnd = s.firstIndex { $0.isNumber || $0 == "." } ?? s.endIndex
            let unit = s[s.startIndex..<unitEnd]
            s = s[unitEnd...]
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            totalNanos += value * scale
        }
        let nanos = Int64(totalNanos.rounded())
        return .nanoseconds(negative ? -nanos : nanos)
    }

    /// Formats a duration the way Go prints it (`5s`, `200ms`, `1m30s`).
    public static func format(_ d: Duration) -> String {
        let (s, atto) = d.components
        let nanos = s * 1_000_000_000 + atto / 1_000_000_000
        if nanos == 0 { return "0s" }
        if nanos % 1_000_000_000 != 0 || nanos < 60_000_000_000 {
            if nanos % 1_000_000_000 == 0 { return "\(nanos / 1_000_000_000)s" }
            if nanos % 1_000_000 == 0 { return "\(nanos / 1_000_000)ms" }
            if nanos % 1_000 == 0 { return "\(nanos / 1_000)us" }
            return "\(nanos)ns"
        }
        var secs = nanos / 1_000_000_000
        var out = ""
        if secs >= 3600 {
            out += "\(secs / 3600)h"
            secs %= 3600
        }
        if secs >= 60 || !out.isEmpty {
            out += "\(secs / 60)m"
            secs %= 60
        }
        return out + "\(secs)s"
    }
}

/// Byte sizes with optional binary or decimal suffixes.
public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let t = text.trimmingSpaces
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000),
            ("B", 1),
        ]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count).trimmingSpaces), v >= 0 else { return nil }
            return Int(v * Double(scale))
        }
        return Int(t.replacingUnderscores)
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space (newlines included).
    public var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}
