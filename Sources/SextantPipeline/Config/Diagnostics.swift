/// One configuration problem, located in its file.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable {
        case error
        case warning
    }

    public var location: SourceLocation?
    public var severity: Severity
    public var message: String

    public init(_ severity: Severity = .error, at location: SourceLocation?, _ message: String) {
        self.location = location
        self.severity = severity
        self.message = message
    }

    /// `file:line:column: error: message`, the form compilers and editors understand.
    public var description: String {
        if let location { return "\(location): \(severity.rawValue): \(message)" }
        return "\(severity.rawValue): \(message)"
    }
}

/// A component named inside another component's config (e.g. `sending_queue::storage:
/// file_storage/queue`), checked once every section is parsed.
public struct ComponentReference: Sendable {
    public var kind: ComponentKind
    public var id: ComponentID
    /// The component type the referring key requires, if any.
    public var requiredType: String?
    /// Where the reference is written, and the key's path for messages.
    public var location: SourceLocation
    public var path: String
}

/// Collects every problem found while loading a configuration, so all are reported at once.
///
/// Used only during loading, on one task; not `Sendable` on purpose.
public final class Diagnostics {
    public private(set) var all: [ConfigDiagnostic] = []
    /// Cross-component references recorded while parsing, validated after all sections are read.
    public private(set) var references: [ComponentReference] = []

    public init() {}

    public func reference(_ r: ComponentReference) { references.append(r) }

    public func error(at location: SourceLocation?, _ message: String) {
        all.append(ConfigDiagnostic(.error, at: location, message))
    }

    public func warning(at location: SourceLocation?, _ message: String) {
        all.append(ConfigDiagnostic(.warning, at: location, message))
    }

    public var errors: [ConfigDiagnostic] { all.filter { $0.severity == .error } }
    public var warnings: [ConfigDiagnostic] { all.filter { $0.severity == .warning } }
    public var hasErrors: Bool { all.contains { $0.severity == .error } }
}

@available(*, unavailable)
extension Diagnostics: Sendable {}

/// Thrown when a configuration has errors; carries every one of them, in file order.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Edit distance, for "did you mean" suggestions on misspelt keys and types.
enum Spelling {
    static func suggestion(for word: String, among candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        for c in candidates {
            let d = distance(word, c)
            if d <= max(1, min(word.count, c.count) / 3), d < (best?.1 ?? .max) { best = (c, d) }
        }
        return best?.0
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    /// `" (did you mean 'x'?)"` or an empty string.
    static func hint(for word: String, among candidates: some Sequence<String>) -> String {
        guard let s = suggestion(for: word, among: candidates) else { return "" }
        return " (did you mean '\(s)'?)"
    }
}
