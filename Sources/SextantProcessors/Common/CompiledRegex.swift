/// A compiled regular expression that can be shared across tasks.
///
/// `Regex<AnyRegexOutput>` is not `Sendable` only because its output type erases to `Any`; the
/// compiled program is immutable once built, and we build it eagerly (one match at config time), so
/// concurrent matching is safe.
struct CompiledRegex: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
    let source: String

    init(_ pattern: String) throws {
        regex = try Regex(pattern)
        source = pattern
        _ = try? regex.firstMatch(in: "")
    }

    func contains(_ s: String) -> Bool { (try? regex.firstMatch(in: s)) != nil }
    func whole(_ s: String) -> Bool { (try? regex.wholeMatch(in: s)) != nil }
    func firstMatch(_ s: String) -> Regex<AnyRegexOutput>.Match? { try? regex.firstMatch(in: s) }
}
