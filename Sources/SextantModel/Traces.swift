/// Span kind (OTLP `Span.SpanKind`). A raw-value struct so unknown wire values survive a round trip.
public struct SpanKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let unspecified = SpanKind(rawValue: 0)
    public static let `internal` = SpanKind(rawValue: 1)
    public static let server = SpanKind(rawValue: 2)
    public static let client = SpanKind(rawValue: 3)
    public static let producer = SpanKind(rawValue: 4)
    public static let consumer = SpanKind(rawValue: 5)

    /// The OTLP enum name, e.g. `SPAN_KIND_SERVER`.
    public var description: String {
        switch rawValue {
        case 0: return "SPAN_KIND_UNSPECIFIED"
        case 1: return "SPAN_KIND_INTERNAL"
        case 2: return "SPAN_KIND_SERVER"
        case 3: return "SPAN_KIND_CLIENT"
        case 4: return "SPAN_KIND_PRODUCER"
        case 5: return "SPAN_KIND_CONSUMER"
        default: return "SPAN_KIND_\(rawValue)"
        }
    }
}

/// Span status (OTLP `Status`).
public struct SpanStatus: Sendable, Equatable {
    /// OTLP `Status.StatusCode`.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let unset = Code(rawValue: 0)
        public static let ok = Code(rawValue: 1)
        public static let error = Code(rawValue: 2)

        public var description: String {
            switch rawValue {
            case 0: return "STATUS_CODE_UNSET"
            case 1: return "STATUS_CODE_OK"
            case 2: return "STATUS_CODE_ERROR"
            default: return "STATUS_CODE_\(rawValue)"
            }
        }
    }

    public var code: Code
    public var message: String

    public init(code: Code = .unset, message: String = "") {
        self.code = code
        self.message = message
    }
}

/// A timed event within a span (OTLP `Span.Event`).
public struct SpanEvent: Sendable, Equatable {
    public var timeUnixNano: UInt64
    public var name: String
    public var attributes: [KeyValue]
    public var droppedAttributesCount: UInt32

    public init(timeUnixNano: UInt64 = 0, name: String = "", attributes: [KeyValue] = [], droppedAttributesCount: UInt32 = 0) {
        self.timeUnixNano = timeUnixNano
        self.name = name
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }
}

/// A link from a span to another span (OTLP `Span.Link`).
public struct SpanLink: Sendable, Equatable {
    public var traceID: TraceID
    public var spanID: SpanID
    public var traceState: String
    public var attributes: [KeyValue]
    public var droppedAttributesCount: UInt32
    public var flags: UInt32

    public init(
        traceID: TraceID, spanID: SpanID, traceState: String = "", attributes: [KeyValue] = [],
        droppedAttributesCount: UInt32 = 0, flags: UInt32 = 0
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.traceState = traceState
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
        self.flags = flags
    }
}

/// One span (OTLP `Span`, trace.proto).
public struct Span: Sendable, Equatable {
    public var traceID: TraceID
    public var spanID: SpanID
    public var traceState: String
    /// `nil` for a root span (empty `parent_span_id` on the wire).
    public var parentSpanID: SpanID?
    /// W3C trace flags in the low 8 bits, plus OTLP's `SpanFlags` context bits.
    public var flags: UInt32
    public var name: String
    public var kind: SpanKind
    public var startTimeUnixNano: UInt64
    public var endTimeUnixNano: UInt64
    public var attributes: [KeyValue]
    public var droppedAttributesCount: UInt32
    public var events: [SpanEvent]
    public var droppedEventsCount: UInt32
    public var links: [SpanLink]
    public var droppedLinksCount: UInt32
    public var status: SpanStatus

    public init(
        traceID: TraceID, spanID: SpanID, traceState: String = "", parentSpanID: SpanID? = nil, flags: UInt32 = 0,
        name: String = "", kind: SpanKind = .unspecified, startTimeUnixNano: UInt64 = 0, endTimeUnixNano: UInt64 = 0,
        attributes: [KeyValue] = [], droppedAttributesCount: UInt32 = 0, events: [SpanEvent] = [],
        droppedEventsCount: UInt32 = 0, links: [SpanLink] = [], droppedLinksCount: UInt32 = 0,
        status: SpanStatus = SpanStatus()
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.traceState = traceState
        self.parentSpanID = parentSpanID
        self.flags = flags
        self.name = name
        self.kind = kind
        self.startTimeUnixNano = startTimeUnixNano
        self.endTimeUnixNano = endTimeUnixNano
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
        self.events = events
        self.droppedEventsCount = droppedEventsCount
        self.links = links
        self.droppedLinksCount = droppedLinksCount
        self.status = status
    }

    /// Duration in nanoseconds (0 when the end precedes the start).
    public var durationNanos: UInt64 { endTimeUnixNano >= startTimeUnixNano ? endTimeUnixNano - startTimeUnixNano : 0 }
}

/// Spans from one instrumentation scope (OTLP `ScopeSpans`).
public struct ScopeSpans: Sendable, Equatable {
    public var scope: InstrumentationScope
    public var spans: [Span]
    public var schemaURL: String

    public init(scope: InstrumentationScope = InstrumentationScope(), spans: [Span] = [], schemaURL: String = "") {
        self.scope = scope
        self.spans = spans
        self.schemaURL = schemaURL
    }
}

/// Spans from one resource (OTLP `ResourceSpans`).
public struct ResourceSpans: Sendable, Equatable {
    public var resource: Resource
    public var scopeSpans: [ScopeSpans]
    public var schemaURL: String

    public init(resource: Resource = Resource(), scopeSpans: [ScopeSpans] = [], schemaURL: String = "") {
        self.resource = resource
        self.scopeSpans = scopeSpans
        self.schemaURL = schemaURL
    }
}

/// A batch of spans (OTLP `TracesData` / `ExportTraceServiceRequest`).
public struct TracesData: Sendable, Equatable {
    public var resourceSpans: [ResourceSpans]

    public init(resourceSpans: [ResourceSpans] = []) { self.resourceSpans = resourceSpans }

    /// The number of spans in the batch.
    public var spanCount: Int {
        var n = 0
        for rs in resourceSpans { for ss in rs.scopeSpans { n += ss.spans.count } }
        return n
    }
}
