/// The structs of jaeger.thrift (jaegertracing/jaeger-idl `thrift/jaeger.thrift`), field for
/// field, with the IDL's names. `optional` scalars are Swift optionals so that decoding and
/// re-encoding keeps which ones were present; optional lists are encoded only when non-empty.

/// `Batch`: the spans of one process, as a client reports them.
public struct JaegerBatch: Sendable, Equatable {
    /// 1: required.
    public var process: JaegerProcess
    /// 2: required.
    public var spans: [JaegerSpan]
    /// 3: optional; an incrementing number clients may set to detect lost UDP packets.
    public var seqNo: Int64?
    /// 4: optional.
    public var stats: JaegerClientStats?

    public init(process: JaegerProcess, spans: [JaegerSpan] = [], seqNo: Int64? = nil, stats: JaegerClientStats? = nil) {
        self.process = process
        self.spans = spans
        self.seqNo = seqNo
        self.stats = stats
    }
}

/// `Process`: the traced service.
public struct JaegerProcess: Sendable, Equatable {
    /// 1: required.
    public var serviceName: String
    /// 2: optional.
    public var tags: [JaegerTag]

    public init(serviceName: String, tags: [JaegerTag] = []) {
        self.serviceName = serviceName
        self.tags = tags
    }
}

/// `Span`. IDs are the IDL's signed `i64`s; `startTime` is epoch microseconds, `duration`
/// microseconds.
public struct JaegerSpan: Sendable, Equatable {
    public var traceIdLow: Int64
    public var traceIdHigh: Int64
    public var spanId: Int64
    /// 0 for a root span (or when the parent is only given as a reference).
    public var parentSpanId: Int64
    public var operationName: String
    public var references: [JaegerSpanRef]
    /// Bit 1 sampled, bit 2 debug.
    public var flags: Int32
    public var startTime: Int64
    public var duration: Int64
    public var tags: [JaegerTag]
    public var logs: [JaegerLog]

    public init(
        traceIdLow: Int64, traceIdHigh: Int64 = 0, spanId: Int64, parentSpanId: Int64 = 0, operationName: String,
        references: [JaegerSpanRef] = [], flags: Int32 = 0, startTime: Int64 = 0, duration: Int64 = 0,
        tags: [JaegerTag] = [], logs: [JaegerLog] = []
    ) {
        self.traceIdLow = traceIdLow
        self.traceIdHigh = traceIdHigh
        self.spanId = spanId
        self.parentSpanId = parentSpanId
        self.operationName = operationName
        self.references = references
        self.flags = flags
        self.startTime = startTime
        self.duration = duration
        self.tags = tags
        self.logs = logs
    }

    /// `flags` bit 1 (jaeger-client `SAMPLED_FLAG`).
    public static let sampledFlag: Int32 = 1
    /// `flags` bit 2 (jaeger-client `DEBUG_FLAG`).
    public static let debugFlag: Int32 = 2
}

/// `TagType`. A raw-value struct so an unknown type survives a round trip.
public struct JaegerTagType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let string = JaegerTagType(rawValue: 0)
    public static let double = JaegerTagType(rawValue: 1)
    public static let bool = JaegerTagType(rawValue: 2)
    public static let long = JaegerTagType(rawValue: 3)
    public static let binary = JaegerTagType(rawValue: 4)

    public var description: String {
        switch rawValue {
        case 0: return "STRING"
        case 1: return "DOUBLE"
        case 2: return "BOOL"
        case 3: return "LONG"
        case 4: return "BINARY"
        default: return "TagType(\(rawValue))"
        }
    }
}

/// `Tag`: a typed key/value. Writers set the one value field `vType` names.
public struct JaegerTag: Sendable, Equatable {
    public var key: String
    public var vType: JaegerTagType
    public var vStr: String?
    public var vDouble: Double?
    public var vBool: Bool?
    public var vLong: Int64?
    public var vBinary: [UInt8]?

    public init(
        key: String, vType: JaegerTagType, vStr: String? = nil, vDouble: Double? = nil, vBool: Bool? = nil,
        vLong: Int64? = nil, vBinary: [UInt8]? = nil
    ) {
        self.key = key
        self.vType = vType
        self.vStr = vStr
        self.vDouble = vDouble
        self.vBool = vBool
        self.vLong = vLong
        self.vBinary = vBinary
    }

    public static func string(_ key: String, _ value: String) -> JaegerTag { JaegerTag(key: key, vType: .string, vStr: value) }
    public static func double(_ key: String, _ value: Double) -> JaegerTag { JaegerTag(key: key, vType: .double, vDouble: value) }
    public static func bool(_ key: String, _ value: Bool) -> JaegerTag { JaegerTag(key: key, vType: .bool, vBool: value) }
    public static func long(_ key: String, _ value: Int64) -> JaegerTag { JaegerTag(key: key, vType: .long, vLong: value) }
    public static func binary(_ key: String, _ value: [UInt8]) -> JaegerTag { JaegerTag(key: key, vType: .binary, vBinary: value) }
}

/// `Log`: a timestamped (epoch microseconds) set of fields.
public struct JaegerLog: Sendable, Equatable {
    public var timestamp: Int64
    public var fields: [JaegerTag]

    public init(timestamp: Int64, fields: [JaegerTag] = []) {
        self.timestamp = timestamp
        self.fields = fields
    }
}

/// `SpanRefType`.
public struct JaegerSpanRefType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let childOf = JaegerSpanRefType(rawValue: 0)
    public static let followsFrom = JaegerSpanRefType(rawValue: 1)

    public var description: String {
        switch rawValue {
        case 0: return "CHILD_OF"
        case 1: return "FOLLOWS_FROM"
        default: return "SpanRefType(\(rawValue))"
        }
    }
}

/// `SpanRef`: a causal reference to another span.
public struct JaegerSpanRef: Sendable, Equatable {
    public var refType: JaegerSpanRefType
    public var traceIdLow: Int64
    public var traceIdHigh: Int64
    public var spanId: Int64

    public init(refType: JaegerSpanRefType, traceIdLow: Int64, traceIdHigh: Int64 = 0, spanId: Int64) {
        self.refType = refType
        self.traceIdLow = traceIdLow
        self.traceIdHigh = traceIdHigh
        self.spanId = spanId
    }
}

/// `ClientStats`: what the client had to drop.
public struct JaegerClientStats: Sendable, Equatable {
    public var fullQueueDroppedSpans: Int64
    public var tooLargeDroppedSpans: Int64
    public var failedToEmitSpans: Int64

    public init(fullQueueDroppedSpans: Int64 = 0, tooLargeDroppedSpans: Int64 = 0, failedToEmitSpans: Int64 = 0) {
        self.fullQueueDroppedSpans = fullQueueDroppedSpans
        self.tooLargeDroppedSpans = tooLargeDroppedSpans
        self.failedToEmitSpans = failedToEmitSpans
    }
}
