/// A trace search (jaeger `spanstore.TraceQueryParameters`). A trace matches when one of its spans
/// of `service` satisfies every given condition at once, as in Jaeger's memory store.
public struct TraceQuery: Sendable {
    public var service: String
    /// The span's operation name; `nil` for any.
    public var operation: String?
    /// Key/value pairs that must all be found on one span: in its tags, its process's tags or its
    /// logs' fields, comparing the value's text (`StoredSpan.Value.text`).
    public var tags: [(String, String)]
    /// Bounds on the span's start, unix microseconds, inclusive.
    public var startMin: UInt64?
    public var startMax: UInt64?
    /// Bounds on the span's duration, microseconds, inclusive.
    public var durationMin: UInt64?
    public var durationMax: UInt64?
    /// The most traces to return; zero or less for no limit.
    public var limit: Int

    public init(
        service: String, operation: String? = nil, tags: [(String, String)] = [], startMin: UInt64? = nil,
        startMax: UInt64? = nil, durationMin: UInt64? = nil, durationMax: UInt64? = nil, limit: Int = 20
    ) {
        self.service = service
        self.operation = operation
        self.tags = tags
        self.startMin = startMin
        self.startMax = startMax
        self.durationMin = durationMin
        self.durationMax = durationMax
        self.limit = limit
    }

    /// Whether `span` satisfies every condition.
    func matches(_ span: StoredSpan) -> Bool {
        guard span.process.serviceName == service else { return false }
        if let operation, span.operationName != operation { return false }
        if let startMin, span.startTime < startMin { return false }
        if let startMax, span.startTime > startMax { return false }
        if let durationMin, span.duration < durationMin { return false }
        if let durationMax, span.duration > durationMax { return false }
        for (key, value) in tags where !Self.has(span, key, value) { return false }
        return true
    }

    private static func has(_ span: StoredSpan, _ key: String, _ value: String) -> Bool {
        func match(_ tags: [StoredSpan.Tag]) -> Bool { tags.contains { $0.key == key && $0.value.text == value } }
        return match(span.tags) || match(span.process.tags) || span.logs.contains { match($0.fields) }
    }
}
