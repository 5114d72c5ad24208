/// An index name that may hold Logstash-style date patterns, e.g. `logs-%{+yyyy.MM.dd}`: each
/// `%{+…}` is replaced by the document's `@timestamp` in UTC. Supported tokens: `yyyy` (year),
/// `yy` (two-digit year), `MM` (month), `dd` (day), `HH` (hour); `.`, `-` and `_` are copied.
public struct IndexNameTemplate: Sendable, Equatable {
    enum Part: Sendable, Equatable {
        case literal(String)
        case year, year2, month, day, hour
    }

    let parts: [Part]
    public let text: String

    /// Whether the name depends on the document time.
    public var hasDate: Bool { parts.contains { if case .literal = $0 { return false } else { return true } } }

    /// Parses and validates a template; the error names the problem.
    public static func parse(_ text: String) -> Result<IndexNameTemplate, IndexNameError> {
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.hasPrefix("%{") {
                guard let close = rest.firstIndex(of: "}") else { return .failure(IndexNameError("'\(text)': unclosed %{")) }
                var pattern = rest[rest.index(rest.startIndex, offsetBy: 2)..<close]
                guard pattern.first == "+" else {
                    return .failure(IndexNameError("'\(text)': only date patterns %{+yyyy.MM.dd} are supported, found %{\(pattern)}"))
                }
                pattern = pattern.dropFirst()
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                while !pattern.isEmpty {
                    if pattern.hasPrefix("yyyy") {
                        parts.append(.year)
                        pattern = pattern.dropFirst(4)
                    } else if pattern.hasPrefix("yy") {
                        parts.append(.year2)
                        pattern = pattern.dropFirst(2)
                    } else if pattern.hasPrefix("MM") {
                        parts.append(.month)
                        pattern = pattern.dropFirst(2)
                    } else if pattern.hasPrefix("dd") {
                        parts.append(.day)
                        pattern = pattern.dropFirst(2)
                    } else if pattern.hasPrefix("HH") {
                        parts.append(.hour)
                        pattern = pattern.dropFirst(2)
                    } else if let c = pattern.first, c == "." || c == "-" || c == "_" {
                        parts.append(.literal(String(c)))
                        pattern = pattern.dropFirst()
                    } else {
                        return .failure(
                            IndexNameError("'\(text)': unsupported date pattern '\(pattern)' (use yyyy, yy, MM, dd, HH and . - _)"))
                    }
                }
                rest = rest[rest.index(after: close)...]
            } else {
                literal.append(rest.removeFirst())
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        let t = IndexNameTemplate(parts: parts, text: text)
        if let problem = Self.invalidReason(t.render(unixNano: 0)) { return .failure(IndexNameError("'\(text)': \(problem)")) }
        return .success(t)
    }

    /// The index name for a document at `unixNano`.
    public func render(unixNano: UInt64) -> String {
        if parts.count == 1, case .literal(let s) = parts[0] { return s }
        let t = UTCTime(unixNano: unixNano)
        var out = ""
        for p in parts {
            switch p {
            case .literal(let s): out += s
            case .year: out += Self.pad(t.year, 4)
            case .year2: out += Self.pad(t.year % 100, 2)
            case .month: out += Self.pad(t.month, 2)
            case .day: out += Self.pad(t.day, 2)
            case .hour: out += Self.pad(t.hour, 2)
            }
        }
        return out
    }

    private static func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return s.count >= n ? s : String(repeating: "0", count: n - s.count) + s
    }

    /// Elasticsearch's index-name rules ("Create index API", path parameters): lower case; none of
    /// `\ / * ? " < > | , #`, space or `:`; not starting with `-`, `_` or `+`; not `.` or `..`;
    /// at most 255 bytes. `nil` when `name` is valid.
    public static func invalidReason(_ name: String) -> String? {
        if name.isEmpty { return "index name is empty" }
        if name == "." || name == ".." { return "index name cannot be '.' or '..'" }
        if name.utf8.count > 255 { return "index name is longer than 255 bytes" }
        if let f = name.first, f == "-" || f == "_" || f == "+" { return "index name cannot start with '\(f)'" }
        for c in name {
            if c.isUppercase { return "index name must be lower case" }
            if "\\/*?\"<>|,# :".contains(c) { return "index name cannot contain '\(c)'" }
        }
        return nil
    }
}

/// Why an index name or template is not usable.
public struct IndexNameError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
