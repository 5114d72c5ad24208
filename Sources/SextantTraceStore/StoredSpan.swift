import SextantModel

/// A span as the Jaeger query API shows it (jaeger `model/json/model.go`): already translated from
/// OTLP, so that queries match tags and the API renders JSON without translating again.
///
/// Times are microseconds, as in Jaeger. The process is shared (copy-on-write) by the spans of one
/// trace that came from the same resource.
public struct StoredSpan: Sendable, Equatable {
    public var traceID: TraceID
    public var spanID: SpanID
    public var operationName: String
    /// The `span.kind` tag value (`server`, `client`, `producer`, `consumer`, `internal`), or "".
    public var spanKind: String
    public var references: [Reference]
    /// Jaeger flags: only the sampled bit (1) has an OTLP meaning.
    public var flags: UInt32
    /// Start, unix microseconds.
    public var startTime: UInt64
    /// Microseconds.
    public var duration: UInt64
    public var tags: [Tag]
    public var logs: [Log]
    public var process: Process

    public init(
        traceID: TraceID, spanID: SpanID, operationName: String, spanKind: String = "", references: [Reference] = [],
        flags: UInt32 = 0, startTime: UInt64, duration: UInt64, tags: [Tag] = [], logs: [Log] = [], process: Process
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.operationName = operationName
        self.spanKind = spanKind
        self.references = references
        self.flags = flags
        self.startTime = startTime
        self.duration = duration
        self.tags = tags
        self.logs = logs
        self.process = process
    }

    /// A typed tag value: the five Jaeger value types.
    public enum Value: Sendable, Equatable, Hashable {
        case string(String)
        case bool(Bool)
        case int64(Int64)
        case float64(Double)
        case binary([UInt8])

        /// The Jaeger JSON type name.
        public var typeName: String {
            switch self {
            case .string: return "string"
            case .bool: return "bool"
            case .int64: return "int64"
            case .float64: return "float64"
            case .binary: return "binary"
            }
        }

        /// The text a tag search compares with (the value as the UI shows it).
        public var text: String {
            switch self {
            case .string(let s): return s
            case .bool(let b): return b ? "true" : "false"
            case .int64(let i): return String(i)
            case .float64(let d): return JSONWriter.goFloat(d)
            case .binary(let b): return Base64.encode(b)
            }
        }
    }

    /// A key and typed value (Jaeger `KeyValue`).
    public struct Tag: Sendable, Equatable, Hashable {
        public var key: String
        public var value: Value

        public init(_ key: String, _ value: Value) {
            self.key = key
            self.value = value
        }
    }

    /// A timed set of fields (Jaeger `Log`); an OTLP event.
    public struct Log: Sendable, Equatable {
        /// Unix microseconds.
        public var timestamp: UInt64
        public var fields: [Tag]

        public init(timestamp: UInt64, fields: [Tag]) {
            self.timestamp = timestamp
            self.fields = fields
        }
    }

    /// A reference to another span (Jaeger `Reference`).
    public struct Reference: Sendable, Equatable {
        public enum Kind: String, Sendable, Equatable {
            case childOf = "CHILD_OF"
            case followsFrom = "FOLLOWS_FROM"
        }

        public var refType: Kind
        public var traceID: TraceID
        public var spanID: SpanID

        public init(_ refType: Kind, traceID: TraceID, spanID: SpanID) {
            self.refType = refType
            self.traceID = traceID
            self.spanID = spanID
        }
    }

    /// The emitting process (Jaeger `Process`): an OTLP resource.
    public struct Process: Sendable, Equatable, Hashable {
        public var serviceName: String
        public var tags: [Tag]

        public init(serviceName: String, tags: [Tag] = []) {
            self.serviceName = serviceName
            self.tags = tags
        }
    }
}
