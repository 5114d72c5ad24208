import Synchronization

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
///
/// A batch that arrived as canonical protobuf may be held as those bytes (``EncodedTraces``) instead
/// of the model: an OTLP → batch → OTLP pipeline then never builds, frees or re-encodes a span. The
/// model is decoded the first time `resourceSpans` is read, and any change through `resourceSpans`
/// drops the bytes, so the two forms never disagree.
public struct TracesData: Sendable, Equatable {
    private var model: [ResourceSpans]
    /// When set, the batch itself; `model` is then empty.
    public private(set) var encoded: EncodedTraces?

    public init(resourceSpans: [ResourceSpans] = []) {
        model = resourceSpans
        encoded = nil
    }

    /// A batch held as its canonical protobuf encoding.
    public init(encoded: EncodedTraces) {
        model = []
        self.encoded = encoded
    }

    public var resourceSpans: [ResourceSpans] {
        get { encoded?.resourceSpans ?? model }
        set {
            encoded = nil
            model = newValue
        }
        _modify {
            if let e = encoded {
                model = e.resourceSpans
                encoded = nil
            }
            yield &model
        }
    }

    /// The number of spans in the batch.
    public var spanCount: Int {
        if let encoded { return encoded.spanCount }
        var n = 0
        for rs in model { for ss in rs.scopeSpans { n += ss.spans.count } }
        return n
    }

    public static func == (a: TracesData, b: TracesData) -> Bool {
        if let x = a.encoded, let y = b.encoded, x.chunks == y.chunks { return true }
        return a.resourceSpans == b.resourceSpans
    }
}

/// A traces batch in the canonical protobuf encoding of OTLP `TracesData` (the encoding Sextant's
/// own encoder writes: fields in number order, defaults omitted, minimal varints), with what the
/// pipeline needs to know without decoding it.
///
/// `chunks` are complete encodings; their concatenation encodes the whole batch, since a repeated
/// field's elements are appended when messages are concatenated (protobuf encoding guide,
/// "Last One Wins" / merging). The model is decoded on first use, once, by `decoder`.
public final class EncodedTraces: Sendable {
    public let chunks: [[UInt8]]
    /// The spans in each chunk.
    public let chunkSpanCounts: [Int]
    public let spanCount: Int
    /// The largest lists and values in the batch, for the receivers' limits.
    public let extent: AttributeExtent
    private let decoder: @Sendable ([UInt8]) -> [ResourceSpans]
    private let decoded = Mutex<[ResourceSpans]?>(nil)

    /// `decoder` must decode a chunk exactly as the codec that validated it would.
    public init(chunks: [[UInt8]], chunkSpanCounts: [Int], extent: AttributeExtent, decoder: @escaping @Sendable ([UInt8]) -> [ResourceSpans]) {
        precondition(chunks.count == chunkSpanCounts.count)
        self.chunks = chunks
        self.chunkSpanCounts = chunkSpanCounts
        self.spanCount = chunkSpanCounts.reduce(0, +)
        self.extent = extent
        self.decoder = decoder
    }

    /// One chunk.
    public convenience init(bytes: [UInt8], spanCount: Int, extent: AttributeExtent, decoder: @escaping @Sendable ([UInt8]) -> [ResourceSpans]) {
        self.init(chunks: [bytes], chunkSpanCounts: [spanCount], extent: extent, decoder: decoder)
    }

    /// The batch as the model, decoded once and kept.
    public var resourceSpans: [ResourceSpans] {
        decoded.withLock { cache in
            if let cache { return cache }
            var out: [ResourceSpans] = []
            for chunk in chunks { out.append(contentsOf: decoder(chunk)) }
            cache = out
            return out
        }
    }

    /// The two batches as one: `self`'s spans, then `other`'s.
    public func appending(_ other: EncodedTraces) -> EncodedTraces {
        EncodedTraces(
            chunks: chunks + other.chunks, chunkSpanCounts: chunkSpanCounts + other.chunkSpanCounts, extent: extent.union(other.extent),
            decoder: decoder)
    }

    /// Pieces of at most `maxItems` spans, in order: whole chunks packed together while they fit (still
    /// encoded; each piece keeps this batch's extent, an upper bound of its own), and a chunk larger
    /// than `maxItems` decoded and split like a model batch. Pieces may hold fewer than `maxItems`.
    public func split(maxItems: Int) -> [TracesData] {
        var out: [TracesData] = []
        var start = 0
        var count = 0
        func flush(to end: Int) {
            guard end > start else { return }
            out.append(TracesData(encoded: EncodedTraces(
                chunks: Array(chunks[start..<end]), chunkSpanCounts: Array(chunkSpanCounts[start..<end]), extent: extent, decoder: decoder)))
        }
        for i in chunks.indices {
            let n = chunkSpanCounts[i]
            if n > maxItems {
                flush(to: i)
                out += Splitter.split(decoder(chunks[i]), maxItems: maxItems, scopes: \.scopeSpans, items: \.spans).map {
                    TracesData(resourceSpans: $0)
                }
                start = i + 1
                count = 0
            } else if count + n > maxItems {
                flush(to: i)
                start = i
                count = n
            } else {
                count += n
            }
        }
        flush(to: chunks.count)
        return out
    }

    /// The whole encoding, in one array.
    public var bytes: [UInt8] {
        if chunks.count == 1 { return chunks[0] }
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        for c in chunks { out.append(contentsOf: c) }
        return out
    }

    public var byteCount: Int { chunks.reduce(0) { $0 + $1.count } }
}

/// The largest attribute lists, attribute values, event and link lists in a batch: what
/// ``TelemetryLimits`` would look at, measured while the batch was validated.
public struct AttributeExtent: Sendable, Equatable {
    /// The most attributes in one list (resource, scope, span, event, link).
    public var attributes = 0
    /// The longest string or bytes value, in bytes, at any depth of any attribute.
    public var valueLength = 0
    /// The most events in one span.
    public var events = 0
    /// The most links in one span.
    public var links = 0

    public init(attributes: Int = 0, valueLength: Int = 0, events: Int = 0, links: Int = 0) {
        self.attributes = attributes
        self.valueLength = valueLength
        self.events = events
        self.links = links
    }

    public func union(_ o: AttributeExtent) -> AttributeExtent {
        AttributeExtent(
            attributes: max(attributes, o.attributes), valueLength: max(valueLength, o.valueLength), events: max(events, o.events),
            links: max(links, o.links))
    }
}
