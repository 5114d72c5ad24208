import SextantModel

/// Writes one `Span` message (opentelemetry/proto/trace/v1/trace.proto) straight into wire form, for a
/// producer that makes spans only to send them, one per request (the proxy): no `Span` value and attribute
/// list are built, queued and destroyed per span. The bytes are those `OTLPProtobuf.encode` writes for the
/// same span with string attributes, no events or links and flags 0.
///
/// Like `ProtoWriter` it writes back to front, so the calls go in descending field order: `init` (status,
/// field 15), then `attribute` for each attribute from the last to the first (field 9), then `finish`
/// (fields 8 to 1).
public struct SpanWireWriter: ~Copyable {
    private var w: ProtoWriter

    /// Starts a span whose status is ERROR (`isError`) or UNSET.
    public init(isError: Bool, capacity: Int = 1024) {
        w = ProtoWriter(capacity: capacity)
        if isError {
            let mark = w.count
            w.int32Field(3, SpanStatus.Code.error.rawValue)
            w.lengthPrefix(15, since: mark)
        }
    }

    /// Prepends one attribute with a string value (`KeyValue{key, value: AnyValue{string_value}}`).
    public mutating func attribute(_ key: String, _ value: String) {
        let mark = w.count
        w.presentStringField(1, value)
        w.lengthPrefix(2, since: mark)
        w.stringField(1, key)
        w.lengthPrefix(9, since: mark)
    }

    /// A `KeyValue`'s key field in wire form, made once for a key that many spans carry: an attribute then
    /// copies it instead of writing the key's tag, length and bytes every time.
    public struct AttributeKey: Sendable {
        let bytes: [UInt8]

        public init(_ key: String) {
            var w = ProtoWriter(capacity: key.utf8.count + 8)
            w.stringField(1, key)
            bytes = w.bytes()
        }
    }

    /// Attributes that are the same on every span (the proxy's own identity), in wire form: each a field 9
    /// (`KeyValue`) with a string value, in the given order. `prepend(attributes:)` writes them as one copy.
    public static func encodedAttributes(_ attributes: [(String, String)]) -> [UInt8] {
        var w = SpanWireWriter(isError: false, capacity: 256)
        for (key, value) in attributes.reversed() { w.attribute(key, value) }
        return w.w.bytes()
    }

    /// Prepends attributes already in wire form (`encodedAttributes`).
    public mutating func prepend(attributes: [UInt8]) {
        attributes.withUnsafeBytes { w.prepend($0) }
    }

    /// Prepends one attribute with a string value and a key made once.
    @inline(__always)
    public mutating func attribute(_ key: AttributeKey, _ value: String) {
        let mark = w.count
        w.presentStringField(1, value)
        close(key, since: mark)
    }

    /// Prepends one attribute whose string value is the decimal digits of `value`, written in place (no
    /// `String` made for a status code or a size).
    @inline(__always)
    public mutating func attribute(_ key: AttributeKey, decimal value: UInt64) {
        let mark = w.count
        w.decimal(value)
        w.lengthPrefix(1, since: mark)
        close(key, since: mark)
    }

    /// Prepends one attribute whose string value is `first`, `second` and `third` joined (a URL from its
    /// scheme, authority and path), written in place.
    @inline(__always)
    public mutating func attribute(_ key: AttributeKey, joining first: StaticString, _ second: String, _ third: String) {
        let mark = w.count
        w.presentText(third)
        w.presentText(second)
        w.prepend(UnsafeRawBufferPointer(start: first.utf8Start, count: first.utf8CodeUnitCount))
        w.lengthPrefix(1, since: mark)
        close(key, since: mark)
    }

    /// Closes an attribute whose `AnyValue` content was written since `mark`: the value's frame, the key, the
    /// `KeyValue`'s frame.
    @inline(__always)
    private mutating func close(_ key: AttributeKey, since mark: Int) {
        w.lengthPrefix(2, since: mark)
        key.bytes.withUnsafeBytes { w.prepend($0) }
        w.lengthPrefix(9, since: mark)
    }

    /// The span's own fields; lends `body` the message's bytes behind the tag and length of `ScopeSpans.spans`
    /// (field 2): the form a batch carries (`OTLPProtobuf.requestPrefix`). Lent, not copied into an array: the
    /// proxy copies them straight into its export queue.
    public consuming func finish<R>(
        traceID: TraceID, spanID: SpanID, traceState: String, parentSpanID: SpanID?, name: String, kind: SpanKind,
        startTimeUnixNano: UInt64, endTimeUnixNano: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        w.fixed64Field(8, endTimeUnixNano)
        w.fixed64Field(7, startTimeUnixNano)
        w.int32Field(6, kind.rawValue)
        w.stringField(5, name)
        if let parentSpanID { w.spanIDField(4, parentSpanID) }
        w.stringField(3, traceState)
        w.spanIDField(2, spanID)
        w.traceIDField(1, traceID)
        w.lengthPrefix(2, since: 0)
        return try w.withBytes(body)
    }
}

extension OTLPProtobuf {
    /// The start of an OTLP export request of one resource with one scope (empty) whose items are
    /// `framedItemsByteCount` bytes of framed spans (`SpanWireWriter.finish`) or log records that follow it:
    /// `ExportTraceServiceRequest` and `ExportLogsServiceRequest` have the same shape up to their items
    /// (`resource_spans`/`resource_logs` 1; `resource` 1 and `scope_spans`/`scope_logs` 2; `scope` 1 and
    /// `spans`/`log_records` 2). A batch is this prefix and the items as they are, written once into the
    /// export's buffer (gRPC takes them as parts) instead of being copied into a request and the request into
    /// the frame.
    public static func requestPrefix(resource: Resource, framedItemsByteCount n: Int) -> [UInt8] {
        var w = ProtoWriter(capacity: 256)
        // Back to front: the scope, the scope's frame (the scope and the items), the resource, then the
        // resource's frame.
        encodeScope(1, InstrumentationScope(), &w)
        w.varint(UInt64(w.count + n))
        w.tag(2, 2)
        encodeResource(1, resource, &w)
        w.varint(UInt64(w.count + n))
        w.tag(1, 2)
        return w.bytes()
    }

    /// The whole request: the prefix and the framed spans joined (for OTLP/HTTP and tests); equal to
    /// `encode` of the same `TracesData` built from `Span`s.
    public static func encodeTraces(resource: Resource, framedSpans: [[UInt8]]) -> [UInt8] {
        let n = framedSpans.reduce(0) { $0 + $1.count }
        var out = requestPrefix(resource: resource, framedItemsByteCount: n)
        out.reserveCapacity(out.count + n)
        for s in framedSpans { out += s }
        return out
    }
}
