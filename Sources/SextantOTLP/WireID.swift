import SextantModel

/// A `trace_id`/`span_id` as it arrived: its length in bytes and, for 8 or 16 bytes, its value.
///
/// The codecs decode IDs into this first and validate afterwards, so that protobuf and JSON
/// (where IDs are hex, specification.md "JSON Protobuf Encoding") share one set of rules.
struct WireID {
    var length = 0
    var high: UInt64 = 0
    var low: UInt64 = 0

    init() {}

    init(bytes: UnsafeRawBufferPointer) {
        length = bytes.count
        if length == 16 {
            high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        } else if length == 8 {
            low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
    }

    init(length: Int, high: UInt64, low: UInt64) {
        self.length = length
        self.high = high
        self.low = low
    }

    var traceID: TraceID { TraceID(high: high, low: low) }
    var spanID: SpanID { SpanID(low) }
}

/// The validity rules for IDs. A span must carry a non-zero 16-byte trace ID and 8-byte span ID
/// (trace.proto, `Span.trace_id`/`span_id`: "all zeroes ... is considered invalid"); elsewhere an
/// ID is optional, but when present it must have the right length.
enum IDRules {
    /// The reason a span's own IDs are unacceptable, or `nil`.
    static func spanIDsProblem(traceID: WireID, spanID: WireID, parentSpanID: WireID) -> String? {
        if traceID.length != 16 { return "trace_id must be 16 bytes, got \(traceID.length)" }
        if traceID.high == 0 && traceID.low == 0 { return "trace_id must not be all zero" }
        if spanID.length != 8 { return "span_id must be 8 bytes, got \(spanID.length)" }
        if spanID.low == 0 { return "span_id must not be all zero" }
        if parentSpanID.length != 0 && parentSpanID.length != 8 {
            return "parent_span_id must be empty or 8 bytes, got \(parentSpanID.length)"
        }
        return nil
    }

    /// The reason an optional trace/span ID pair (log record, exemplar, link) is unacceptable, or `nil`.
    static func optionalIDsProblem(traceID: WireID, spanID: WireID) -> String? {
        if traceID.length != 0 && traceID.length != 16 {
            return "trace_id must be empty or 16 bytes, got \(traceID.length)"
        }
        if spanID.length != 0 && spanID.length != 8 {
            return "span_id must be empty or 8 bytes, got \(spanID.length)"
        }
        return nil
    }

    /// An optional trace ID: absent when empty or all zero.
    static func optionalTraceID(_ id: WireID) -> TraceID? {
        id.length == 16 && (id.high != 0 || id.low != 0) ? id.traceID : nil
    }

    /// An optional span ID: absent when empty or zero.
    static func optionalSpanID(_ id: WireID) -> SpanID? {
        id.length == 8 && id.low != 0 ? id.spanID : nil
    }
}

// Setting the model's IDs from what arrived, reporting why an item must be dropped.
extension IDRules {
    static func apply(_ traceID: WireID, _ spanID: WireID, _ parentSpanID: WireID, to span: inout Span) -> String? {
        span.traceID = traceID.traceID
        span.spanID = spanID.spanID
        span.parentSpanID = optionalSpanID(parentSpanID)
        return spanIDsProblem(traceID: traceID, spanID: spanID, parentSpanID: parentSpanID)
    }

    /// Link IDs are not optional in the model: empty ones become `.zero`.
    static func apply(_ traceID: WireID, _ spanID: WireID, to link: inout SpanLink) -> String? {
        link.traceID = traceID.traceID
        link.spanID = spanID.spanID
        return optionalIDsProblem(traceID: traceID, spanID: spanID)
    }

    static func apply(_ traceID: WireID, _ spanID: WireID, to record: inout LogRecord) -> String? {
        record.traceID = optionalTraceID(traceID)
        record.spanID = optionalSpanID(spanID)
        return optionalIDsProblem(traceID: traceID, spanID: spanID)
    }

    static func apply(_ traceID: WireID, _ spanID: WireID, to exemplar: inout Exemplar) -> String? {
        exemplar.traceID = optionalTraceID(traceID)
        exemplar.spanID = optionalSpanID(spanID)
        return optionalIDsProblem(traceID: traceID, spanID: spanID)
    }
}
