import SextantModel

/// A payload that is not a well-formed OTLP message: malformed wire data, invalid UTF-8, bad
/// identifiers in JSON, or nesting beyond the codec's limits. The whole request is rejected
/// (OTLP/HTTP "Bad Data": respond 400 and do not retry).
public struct OTLPDecodingError: Error, CustomStringConvertible, Sendable {
    /// What went wrong and where, e.g. `invalid wire type 7 for field 2 in Span at offset 123`.
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// A decoded request together with what was dropped from it.
///
/// Items that are well-formed on the wire but invalid for OTLP (a span without a valid trace ID,
/// a metric without a name) are dropped and counted, so that the receiver can answer with a
/// partial success (specification.md, "OTLP/HTTP Response" → "Partial Success").
public struct DecodeResult<T: Sendable>: Sendable {
    /// The accepted data.
    public var data: T
    /// Dropped items: spans, metric data points or log records.
    public var rejected: Int
    /// Why the first item was dropped (with the total when more were), `nil` when none were.
    public var rejectionReason: String?

    public init(data: T, rejected: Int = 0, rejectionReason: String? = nil) {
        self.data = data
        self.rejected = rejected
        self.rejectionReason = rejectionReason
    }

    /// The same result with its data transformed, e.g. wrapped in ``Telemetry``.
    public func map<U: Sendable>(_ transform: (T) throws -> U) rethrows -> DecodeResult<U> {
        DecodeResult<U>(data: try transform(data), rejected: rejected, rejectionReason: rejectionReason)
    }

    /// The partial success to report for this request, `nil` when everything was accepted.
    public var partialSuccess: PartialSuccess? {
        guard rejected > 0 || rejectionReason != nil else { return nil }
        return PartialSuccess(rejected: Int64(rejected), errorMessage: rejectionReason ?? "")
    }
}

/// The `partial_success` field of an `Export{Trace,Metrics,Logs}ServiceResponse`
/// (specification.md, "Partial Success"): how many items the server rejected and why.
public struct PartialSuccess: Sendable, Equatable {
    /// `rejected_spans`, `rejected_data_points` or `rejected_log_records`.
    public var rejected: Int64
    public var errorMessage: String

    public init(rejected: Int64, errorMessage: String) {
        self.rejected = rejected
        self.errorMessage = errorMessage
    }
}

/// Counts the items dropped while decoding one request and remembers why the first was.
public struct Rejections {
    private(set) var count = 0
    private var firstReason: String?

    public init() {}

    public mutating func reject(_ items: Int, _ reason: String) {
        count += items
        if firstReason == nil { firstReason = reason }
    }

    public func result<T: Sendable>(_ data: T) -> DecodeResult<T> {
        guard let first = firstReason else { return DecodeResult(data: data) }
        // One reason is enough to act on; the total says how much else went missing.
        let reason = count > 1 ? "\(first) (\(count) rejected in total)" : first
        return DecodeResult(data: data, rejected: count, rejectionReason: reason)
    }
}

/// The data points dropped from one metric (for malformed exemplar IDs).
struct PointRejections {
    private(set) var count = 0
    private var firstProblem: String?

    mutating func note(_ problem: String, index: Int) {
        count += 1
        if firstProblem == nil { firstProblem = "data point \(index): \(problem)" }
    }

    /// Records the metric's rejections; `nil` when the whole metric is dropped for having no name
    /// (metrics.proto: `name` is required), counting all of its points.
    func finish(_ metric: Metric, index: Int, _ rejections: inout Rejections) -> Metric? {
        if metric.name.isEmpty {
            rejections.reject(metric.data.pointCount + count, "metric \(index): name must not be empty")
            return nil
        }
        if let firstProblem {
            rejections.reject(count, "metric \(index) (\(metric.name)): \(firstProblem)")
        }
        return metric
    }
}

/// The members of a Gauge, Sum, Histogram, ExponentialHistogram or Summary message.
struct PointsMessage<Point> {
    var points: [Point] = []
    var temporality = AggregationTemporality.unspecified
    var isMonotonic = false
}
