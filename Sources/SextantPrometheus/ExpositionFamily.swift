/// The two text formats a Prometheus target can answer a scrape with.
public enum ExpositionFormat: Sendable, Equatable, CustomStringConvertible {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): timestamps in milliseconds.
    case prometheusText
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`): timestamps in seconds,
    /// exemplars, `# UNIT`, and a mandatory `# EOF`.
    case openMetrics

    /// The format named by a `Content-Type` header: OpenMetrics for `application/openmetrics-text`,
    /// otherwise the Prometheus text format (as Prometheus falls back for unknown or missing types).
    public init(contentType: String?) {
        let media = contentType?.split(separator: ";").first.map { $0.filter { $0 != " " && $0 != "\t" }.lowercased() }
        self = media == "application/openmetrics-text" ? .openMetrics : .prometheusText
    }

    public var description: String { self == .openMetrics ? "OpenMetrics 1.0" : "Prometheus text 0.0.4" }
}

/// A metric family type as `# TYPE` declares it (OpenMetrics 1.0 §MetricTypes; `untyped` in the text format
/// is reported as `.unknown`).
public enum ExpositionMetricType: String, Sendable, Equatable {
    case counter, gauge, histogram, gaugehistogram, summary, stateset, info, unknown
}

/// One label pair of a sample, unescaped.
public struct ExpositionLabel: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// An OpenMetrics exemplar: `# {labels} value [timestamp]` after a sample.
public struct ExpositionExemplar: Sendable, Equatable {
    public var labels: [ExpositionLabel]
    public var value: Double
    /// Unix time in nanoseconds, when the exemplar carries one.
    public var timestampNanos: Int64?
    public init(labels: [ExpositionLabel], value: Double, timestampNanos: Int64? = nil) {
        self.labels = labels
        self.value = value
        self.timestampNanos = timestampNanos
    }
}

/// One exposition line holding a value: `name{labels} value [timestamp] [# exemplar]`.
public struct ExpositionSample: Sendable, Equatable {
    /// The full series name, suffix included (`http_requests_total`, `latency_bucket`).
    public var name: String
    /// Labels in exposition order.
    public var labels: [ExpositionLabel]
    public var value: Double
    /// Unix time in nanoseconds when the line carries a timestamp (ms in the text format, seconds in OpenMetrics).
    public var timestampNanos: Int64?
    public var exemplar: ExpositionExemplar?
    /// 1-based line number in the exposition.
    public var line: Int

    public init(
        name: String, labels: [ExpositionLabel] = [], value: Double, timestampNanos: Int64? = nil,
        exemplar: ExpositionExemplar? = nil, line: Int = 0
    ) {
        self.name = name
        self.labels = labels
        self.value = value
        self.timestampNanos = timestampNanos
        self.exemplar = exemplar
        self.line = line
    }

    /// The value of label `name`.
    public func label(_ name: String) -> String? {
        for l in labels where l.name == name { return l.value }
        return nil
    }
}

/// A metric family: its metadata and samples, in exposition order.
public struct ExpositionFamily: Sendable, Equatable {
    public var name: String
    public var type: ExpositionMetricType
    /// Whether the type came from a `# TYPE` line (families without one are `unknown`).
    public var typeDeclared: Bool
    public var help: String?
    public var unit: String?
    public var samples: [ExpositionSample]
    /// The line of the family's first metadata line or sample.
    public var line: Int

    public init(
        name: String, type: ExpositionMetricType = .unknown, typeDeclared: Bool = false, help: String? = nil,
        unit: String? = nil, samples: [ExpositionSample] = [], line: Int = 0
    ) {
        self.name = name
        self.type = type
        self.typeDeclared = typeDeclared
        self.help = help
        self.unit = unit
        self.samples = samples
        self.line = line
    }
}

/// Why an exposition was rejected: the 1-based line and a reason. Whole-scrape errors (a missing
/// `# EOF`) point at the last line.
public struct ExpositionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code for the kind of problem; new codes may be added.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// A line that does not follow the grammar.
        public static let syntax = Code(rawValue: "syntax")
        /// Bytes that are not UTF-8.
        public static let invalidUTF8 = Code(rawValue: "invalid_utf8")
        /// The same name and label set twice.
        public static let duplicateSeries = Code(rawValue: "duplicate_series")
        /// A sample whose name or labels do not fit its family's `# TYPE`.
        public static let typeMismatch = Code(rawValue: "type_mismatch")
        /// Metadata repeated, after samples, or a family split into two groups.
        public static let metadata = Code(rawValue: "metadata")
        /// OpenMetrics: no `# EOF`, or bytes after it.
        public static let eof = Code(rawValue: "eof")
        /// Histogram buckets out of order, decreasing, or without `+Inf`; invalid values for the type.
        public static let invalidValue = Code(rawValue: "invalid_value")
    }

    public var code: Code
    public var line: Int
    public var reason: String

    public init(_ code: Code, line: Int, _ reason: String) {
        self.code = code
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}
