import Synchronization

/// Admits at most `limit` concurrent units of work; callers that find it full shed the work
/// (and count it) instead of queueing without bound.
public final class InFlightGate: Sendable {
    public let limit: Int
    private let count = Atomic<Int>(0)

    public init(limit: Int) { self.limit = limit }

    /// Takes a slot; `false` when all are taken.
    public func tryEnter() -> Bool {
        if count.add(1, ordering: .relaxed).newValue <= limit { return true }
        count.subtract(1, ordering: .relaxed)
        return false
    }

    public func leave() { count.subtract(1, ordering: .relaxed) }

    public var current: Int { count.load(ordering: .relaxed) }
}
