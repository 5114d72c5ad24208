import SextantPipeline

/// Istio's `StringMatch` (networking/v1 `StringMatch`): exactly one of `exact`, `prefix` or `regex`.
///
/// `regex` is RE2 syntax in Istio and must match the whole value; we compile it with Swift `Regex`,
/// which accepts the RE2 subset Istio users write (classes, groups, alternation, repetition).
public enum StringMatch: Sendable, CustomStringConvertible {
    case exact(String)
    case prefix(String)
    case regex(CompiledRegex)

    /// Whether `value` matches; `ignoreCase` lowers both sides for `exact`/`prefix` (Istio's
    /// `ignoreUriCase`), and is not applied to regexes, as in Envoy.
    public func matches(_ value: String, ignoreCase: Bool = false) -> Bool {
        switch self {
        case .exact(let s):
            return ignoreCase ? value.lowercased() == s.lowercased() : value == s
        case .prefix(let p):
            return ignoreCase ? value.lowercased().hasPrefix(p.lowercased()) : value.hasPrefix(p)
        case .regex(let r):
            return r.whole(value)
        }
    }

    public var description: String {
        switch self {
        case .exact(let s): return "exact:\(s)"
        case .prefix(let s): return "prefix:\(s)"
        case .regex(let r): return "regex:\(r.source)"
        }
    }
}

extension ConfigReader {
    /// Reads a `StringMatch` mapping; reports a missing or ambiguous choice.
    mutating func stringMatch() -> StringMatch? {
        let exact = optionalString("exact")
        let prefix = optionalString("prefix")
        let regex = optionalString("regex")
        finish()
        let given = [exact != nil, prefix != nil, regex != nil].filter { $0 }.count
        // Unknown keys were just reported by `finish()`; a second message about the same line is noise.
        if given == 0 && !keys.isEmpty { return nil }
        if given != 1 {
            error(nil, "\(path) must set exactly one of exact, prefix or regex")
            return nil
        }
        if let exact { return .exact(exact) }
        if let prefix { return .prefix(prefix) }
        do {
            return .regex(try CompiledRegex(regex!))
        } catch {
            self.error("regex", "\(qualified("regex")): invalid regular expression '\(regex!)': \(error)")
            return nil
        }
    }

    /// A mapping of names to `StringMatch` (headers, queryParams, withoutHeaders).
    mutating func stringMatchMap(_ key: String) -> [(String, StringMatch)] {
        mappingEntries(key).compactMap { name, reader in
            var r = reader
            return r.stringMatch().map { (name, $0) }
        }
    }

    /// The entries of a nested mapping, each as its own reader.
    mutating func mappingEntries(_ key: String) -> [(String, ConfigReader)] {
        guard let n = raw(key) else { return [] }
        guard let entries = n.entries else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be a mapping, found \(n.kindName)")
            return []
        }
        return entries.map { ($0.key, ConfigReader($0.value, path: "\(qualified(key))::\($0.key)", diagnostics: diagnostics)) }
    }

    /// The items of a sequence of mappings, each as its own reader (`http[0]`, `route[1]`, ...).
    mutating func sectionList(_ key: String) -> [ConfigReader] {
        guard let n = raw(key) else { return [] }
        guard case .sequence(let items) = n.value else {
            diagnostics.error(at: n.location, "\(qualified(key)) must be a list, found \(n.kindName)")
            return []
        }
        return items.enumerated().map { i, item in ConfigReader(item, path: "\(qualified(key))[\(i)]", diagnostics: diagnostics) }
    }

    /// An optional nested mapping: nil when absent.
    mutating func optionalSection(_ key: String) -> ConfigReader? {
        has(key) ? section(key) : nil
    }

    /// A port given as an integer (`port: 9080`) or as Istio's `PortSelector` (`port: {number: 9080}`).
    mutating func portSelector(_ key: String) -> Int? {
        guard let n = raw(key) else { return nil }
        if case .scalar(let s, _) = n.value {
            guard let v = Int(s), (1...65535).contains(v) else {
                diagnostics.error(at: n.location, "\(qualified(key)) must be a port number 1-65535, found '\(s)'")
                return nil
            }
            return v
        }
        var r = ConfigReader(n, path: qualified(key), diagnostics: diagnostics)
        let v = r.int("number", default: 0, min: 1, max: 65535)
        r.finish()
        return v == 0 ? nil : v
    }

    /// Istio's `Percent` (`{value: 12.5}`) or the deprecated integer `percent`.
    mutating func percentage(_ key: String) -> Double? {
        guard has(key) else { return nil }
        var r = section(key)
        let v = r.double("value", default: 0, min: 0, max: 100)
        r.finish()
        return v
    }

    /// A duration in protobuf JSON form, as Istio writes them (`5s`, `0.5s`, `100ms`, `1m`).
    mutating func protoDuration(_ key: String) -> Duration? {
        has(key) ? duration(key, default: .zero) : nil
    }

    /// A Kubernetes label map (`labels`, `sourceLabels`, `selector`).
    mutating func labels(_ key: String) -> [String: String] {
        Dictionary(stringMap(key), uniquingKeysWith: { _, last in last })
    }
}
