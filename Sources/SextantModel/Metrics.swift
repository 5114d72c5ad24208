/// OTLP `AggregationTemporality`.
public struct AggregationTemporality: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let unspecified = AggregationTemporality(rawValue: 0)
    public static let delta = AggregationTemporality(rawValue: 1)
    public static let cumulative = AggregationTemporality(rawValue: 2)

    public var description: String {
        switch rawValue {
        case 1: return "Delta"
        case 2: return "Cumulative"
        default: return "Unspecified"
        }
    }
}

/// A number that is either an integer or a double, as in `NumberDataPoint.value` and `Exemplar.value`.
public enum NumberValue: Sendable, Equatable {
    case int(Int64)
    case double(Double)

    public var asDouble: Double {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        }
    }
}

/// A sample that links a metric point to a trace (OTLP `Exemplar`).
public struct Exemplar: Sendable, Equatable {
    public var filteredAttributes: [KeyValue]
    public var timeUnixNano: UInt64
    public var value: NumberValue
    public var spanID: SpanID?
    public var traceID: TraceID?

    public init(
        filteredAttributes: [KeyValue] = [], timeUnixNano: UInt64 = 0, value: NumberValue = .double(0),
        spanID: SpanID? = nil, traceID: TraceID? = nil
    ) {
        self.filteredAttributes = filteredAttributes
        self.timeUnixNano = timeUnixNano
        self.value = value
        self.spanID = spanID
        self.traceID = traceID
    }
}

/// `DataPointFlags`: bit 0 is `NO_RECORDED_VALUE` (a staleness marker).
public enum DataPointFlags {
    public static let noRecordedValue: UInt32 = 1
}

/// A gauge or sum point (OTLP `NumberDataPoint`).
public struct NumberDataPoint: Sendable, Equatable {
    public var attributes: [KeyValue]
    public var startTimeUnixNano: UInt64
    public var timeUnixNano: UInt64
    public var value: NumberValue
    public var exemplars: [Exemplar]
    public var flags: UInt32

    public init(
        attributes: [KeyValue] = [], startTimeUnixNano: UInt64 = 0, timeUnixNano: UInt64 = 0,
        value: NumberValue = .int(0), exemplars: [Exemplar] = [], flags: UInt32 = 0
    ) {
        self.attributes = attributes
        self.startTimeUnixNano = startTimeUnixNano
        self.timeUnixNano = timeUnixNano
        self.value = value
        self.exemplars = exemplars
        self.flags = flags
    }
}

/// An explicit-bucket histogram point (OTLP `HistogramDataPoint`).
public struct HistogramDataPoint: Sendable, Equatable {
    public var attributes: [KeyValue]
    public var startTimeUnixNano: UInt64
    public var timeUnixNano: UInt64
    public var count: UInt64
    public var sum: Double?
    /// `explicitBounds.count + 1` counts (or empty when the point has no buckets).
    public var bucketCounts: [UInt64]
    public var explicitBounds: [Double]
    public var exemplars: [Exemplar]
    public var flags: UInt32
    public var min: Double?
    public var max: Double?

    public init(
        attributes: [KeyValue] = [], startTimeUnixNano: UInt64 = 0, timeUnixNano: UInt64 = 0, count: UInt64 = 0,
        sum: Double? = nil, bucketCounts: [UInt64] = [], explicitBounds: [Double] = [], exemplars: [Exemplar] = [],
        flags: UInt32 = 0, min: Double? = nil, max: Double? = nil
    ) {
        self.attributes = attributes
        self.startTimeUnixNano = startTimeUnixNano
        self.timeUnixNano = timeUnixNano
        self.count = count
        self.sum = sum
        self.bucketCounts = bucketCounts
        self.explicitBounds = explicitBounds
        self.exemplars = exemplars
        self.flags = flags
        self.min = min
        self.max = max
    }
}

/// An exponential histogram point (OTLP `ExponentialHistogramDataPoint`).
public struct ExponentialHistogramDataPoint: Sendable, Equatable {
    /// A run of exponential buckets starting at `offset`.
    public struct Buckets: Sendable, Equatable {
        public var offset: Int32
        public var bucketCounts: [UInt64]
        public init(offset: Int32 = 0, bucketCounts: [UInt64] = []) {
            self.offset = offset
            self.bucketCounts = bucketCounts
        }
    }

    public var attributes: [KeyValue]
    public var startTimeUnixNano: UInt64
    public var timeUnixNano: UInt64
    public var count: UInt64
    public var sum: Double?
    public var scale: Int32
    public var zeroCount: UInt64
    public var positive: Buckets
    public var negative: Buckets
    public var flags: UInt32
    public var exemplars: [Exemplar]
    public var min: Double?
    public var max: Double?
    public var zeroThreshold: Double

    public init(
        attributes: [KeyValue] = [], startTimeUnixNano: UInt64 = 0, timeUnixNano: UInt64 = 0, count: UInt64 = 0,
        sum: Double? = nil, scale: Int32 = 0, zeroCount: UInt64 = 0, positive: Buckets = Buckets(),
        negative: Buckets = Buckets(), flags: UInt32 = 0, exemplars: [Exemplar] = [], min: Double? = nil,
        max: Double? = nil, zeroThreshold: Double = 0
    ) {
        self.attributes = attributes
        self.startTimeUnixNano = startTimeUnixNano
        self.timeUnixNano = timeUnixNano
        self.count = count
        self.sum = sum
        self.scale = scale
        self.zeroCount = zeroCount
        self.positive = positive
        self.negative = negative
        self.flags = flags
        self.exemplars = exemplars
        self.min = min
        self.max = max
        self.zeroThreshold = zeroThreshold
    }
}

/// A summary point (OTLP `SummaryDataPoint`).
public struct SummaryDataPoint: Sendable, Equatable {
    public struct ValueAtQuantile: Sendable, Equatable {
        public var quantile: Double
        public var value: Double
        public init(quantile: Double, value: Double) {
            self.quantile = quantile
            self.value = value
        }
    }

    public var attributes: [KeyValue]
    public var startTimeUnixNano: UInt64
    public var timeUnixNano: UInt64
    public var count: UInt64
    public var sum: Double
    public var quantileValues: [ValueAtQuantile]
    public var flags: UInt32

    public init(
        attributes: [KeyValue] = [], startTimeUnixNano: UInt64 = 0, timeUnixNano: UInt64 = 0, count: UInt64 = 0,
        sum: Double = 0, quantileValues: [ValueAtQuantile] = [], flags: UInt32 = 0
    ) {
        self.attributes = attributes
        self.startTimeUnixNano = startTimeUnixNano
        self.timeUnixNano = timeUnixNano
        self.count = count
        self.sum = sum
        self.quantileValues = quantileValues
        self.flags = flags
    }
}

/// The data of a metric: one of OTLP's five point kinds (the `Metric.data` oneof).
public enum MetricData: Sendable, Equatable {
    case gauge([NumberDataPoint])
    case sum([NumberDataPoint], temporality: AggregationTemporality, isMonotonic: Bool)
    case histogram([HistogramDataPoint], temporality: AggregationTemporality)
    case exponentialHistogram([ExponentialHistogramDataPoint], temporality: AggregationTemporality)
    case summary([SummaryDataPoint])
    /// A metric with no data set (legal on the wire; carries no points).
    case empty

    /// The number of data points.
    public var pointCount: Int {
        switch self {
        case .gauge(let p): return p.count
        case .sum(let p, _, _): return p.count
        case .histogram(let p, _): return p.count
        case .exponentialHistogram(let p, _): return p.count
        case .summary(let p): return p.count
        case .empty: return 0
        }
    }

    /// The OTLP type name (`Gauge`, `Sum`, ...).
    public var typeName: String {
        switch self {
        case .gauge: return "Gauge"
        case .sum: return "Sum"
        case .histogram: return "Histogram"
        case .exponentialHistogram: return "ExponentialHistogram"
        case .summary: return "Summary"
        case .empty: return "Empty"
        }
    }
}

/// One metric (OTLP `Metric`).
public struct Metric: Sendable, Equatable {
    public var name: String
    public var description: String
    public var unit: String
    public var data: MetricData
    public var metadata: [KeyValue]

    public init(name: String, description: String = "", unit: String = "", data: MetricData, metadata: [KeyValue] = []) {
        self.name = name
        self.description = description
        self.unit = unit
        self.data = data
        self.metadata = metadata
    }
}

/// Metrics from one instrumentation scope (OTLP `ScopeMetrics`).
public struct ScopeMetrics: Sendable, Equatable {
    public var scope: InstrumentationScope
    public var metrics: [Metric]
    public var schemaURL: String

    public init(scope: InstrumentationScope = InstrumentationScope(), metrics: [Metric] = [], schemaURL: String = "") {
        self.scope = scope
        self.metrics = metrics
        self.schemaURL = schemaURL
    }
}

/// Metrics from one resource (OTLP `ResourceMetrics`).
public struct ResourceMetrics: Sendable, Equatable {
    public var resource: Resource
    public var scopeMetrics: [ScopeMetrics]
    public var schemaURL: String

    public init(resource: Resource = Resource(), scopeMetrics: [ScopeMetrics] = [], schemaURL: String = "") {
        self.resource = resource
        self.scopeMetrics = scopeMetrics
        self.schemaURL = schemaURL
    }
}

/// A batch of metrics (OTLP `MetricsData` / `ExportMetricsServiceRequest`).
public struct MetricsData: Sendable, Equatable {
    public var resourceMetrics: [ResourceMetrics]

    public init(resourceMetrics: [ResourceMetrics] = []) { self.resourceMetrics = resourceMetrics }

    /// The number of data points, the unit the collector counts metrics in.
    public var dataPointCount: Int {
        var n = 0
        for rm in resourceMetrics { for sm in rm.scopeMetrics { for m in sm.metrics { n += m.data.pointCount } } }
        return n
    }
}
