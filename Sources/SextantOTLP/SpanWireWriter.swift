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

    /// The span's own fields; returns the message's bytes (without a field tag or length of its own).
    public consuming func finish(
        traceID: TraceID, spanID: SpanID, traceState: String, parentSpanID: SpanID?, name: String, kind: SpanKind,
        startTimeUnixNano: UInt64, endTimeUnixNano: UInt64
    ) -> [UInt8] {
        w.fixed64Field(8, endTimeUnixNano)
        w.fixed64Field(7, startTimeUnixNano)
        w.int32Field(6, kind.rawValue)
        w.stringField(5, name)
        if let parentSpanID { w.spanIDField(4, parentSpanID) }
        w.stringField(3, traceState)
        w.spanIDField(2, spanID)
        w.traceIDField(1, traceID)
        return w.bytes()
    }
}

extension OTLPProtobuf {
    /// An `ExportTraceServiceRequest` of one resource with one scope (empty) holding `spans`, each the bytes
    /// of a `Span` message (`SpanWireWriter`): the encoding of the same `TracesData` built from `Span`s.
    public static func encodeTraces(resource: Resource, spans: [[UInt8]]) -> [UInt8] {
        var w = ProtoWriter(capacity: spans.reduce(256) { $0 + $1.count + 4 })
        let mark = w.count
        let scopeMark = w.count
        var i = spans.count
        while i > 0 {
            i -= 1
            let spanMark = w.count
            spans[i].withUnsafeBytes { w.prepend($0) }
            w.lengthPrefix(2, since: spanMark)
        }
        encodeScope(1, InstrumentationScope(), &w)
        w.lengthPrefix(2, since: scopeMark)
        encodeResource(1, resource, &w)
        w.lengthPrefix(1, since: mark)
        return w.bytes()
    }
}
