/// A compiled regular expression that can be shared across tasks.
///
/// `Regex<AnyRegexOutput>` is not `Sendable` only because its output type erases to `Any`; the
/// compiled program is immutable once built, and we build it eagerly (one match at config time), so
/// concurrent matching is safe.
public struct CompiledRegex: @unchecked Sendable {
    public let regex: Regex<AnyRegexOutput>
    public let source: String

    public init(_ pattern: String) throws {
        regex = try Regex(pattern)
        source = pattern
        _ = try? regex.firstMatch(in: "")
    }

    public func contains(_ s: String) -> Bool { (try? regex.firstMatch(in: s)) != nil }
    public func whole(_ s: String) -> Bool { (try? regex.wholeMatch(in: s)) != nil }
    public func firstMatch(_ s: String) -> Regex<AnyRegexOutput>.Match? { try? regex.firstMatch(in: s) }
}
