/// Trace context from propagation headers: W3C `traceparent` (Trace Context §3.2) and B3
/// (openzipkin/b3-propagation: multi-header `X-B3-TraceId`/`X-B3-SpanId`, single `b3`). Read by the proxy
/// (the incoming context of a hop) and by the Envoy access-log processor (a logged request's trace).
public enum TraceContextHeaders {
    /// `version-traceid-parentid-flags`; `nil` when malformed, or for all-zero IDs or version `ff`.
    public static func traceparent(_ value: String) -> (TraceID, SpanID)? {
        traceparentContext(value).map { ($0.traceID, $0.spanID) }
    }

    /// The same with the `sampled` trace flag (bit 0 of `trace-flags`, §3.2.2.5).
    public static func traceparentContext(_ value: String) -> (traceID: TraceID, spanID: SpanID, sampled: Bool)? {
        let parts = value.trimmingWhitespace.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].utf8.count == 2, parts[0].lowercased() != "ff", parts[3].utf8.count == 2,
            parts[0].utf8.allSatisfy({ Hex.value(of: $0) != nil }), parts[3].utf8.allSatisfy({ Hex.value(of: $0) != nil }),
            parts[0] != "00" || parts.count == 4,
            let t = TraceID(hex: parts[1]), let s = SpanID(hex: parts[2]), t.isValid, s.isValid, let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        return (t, s, flags & 1 == 1)
    }

    /// A B3 trace ID: 32 hex digits, or 16 (then left-padded with zeros).
    public static func b3TraceID(_ value: String) -> TraceID? {
        // `Hex.parseID` reads 16 digits as the low half, which is B3's padding.
        guard let id = value.trimmingWhitespace.withUTF8Buffer(Hex.parseID) else { return nil }
        let t = TraceID(high: id.high, low: id.low)
        return t.isValid ? t : nil
    }

    public static func b3SpanID(_ value: String) -> SpanID? {
        guard let s = SpanID(hex: value.trimmingWhitespace), s.isValid else { return nil }
        return s
    }

    /// Single-header `b3`: `traceid-spanid[-sampled[-parentspanid]]` (a lone sampling flag carries no IDs).
    public static func b3Single(_ value: String) -> (TraceID, SpanID)? {
        b3SingleContext(value).map { ($0.traceID, $0.spanID) }
    }

    /// The same with the sampling state: `1` or `d` (debug) sampled, `0` not, absent left to the receiver.
    public static func b3SingleContext(_ value: String) -> (traceID: TraceID, spanID: SpanID, sampled: Bool?)? {
        let parts = value.trimmingWhitespace.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts.count <= 4, let t = b3TraceID(String(parts[0])), let s = b3SpanID(String(parts[1])) else {
            return nil
        }
        return (t, s, parts.count >= 3 ? (parts[2] == "1" || parts[2] == "d") : nil)
    }

    /// Looks up propagation headers among `lookup`'s keys (case-insensitive header names, bare or
    /// as `http.request.header.<name>`), `traceparent` first, then single `b3`, then multi-header B3.
    public static func find(_ lookup: (String) -> String?) -> (TraceID, SpanID)? {
        func value(_ names: (String, String)) -> String? { lookup(names.0) ?? lookup(names.1) }
        if let tp = value(names.traceparent), let ids = traceparent(tp) { return ids }
        if let b3 = value(names.b3), let ids = b3Single(b3) { return ids }
        if let t = value(names.traceID).flatMap(b3TraceID), let s = value(names.spanID).flatMap(b3SpanID) { return (t, s) }
        return nil
    }

    /// Each header bare and as a semantic-convention attribute (`http.request.header.<name>`).
    private static let names = (
        traceparent: ("traceparent", "http.request.header.traceparent"), b3: ("b3", "http.request.header.b3"),
        traceID: ("x-b3-traceid", "http.request.header.x-b3-traceid"), spanID: ("x-b3-spanid", "http.request.header.x-b3-spanid")
    )
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and line breaks (header values may carry optional whitespace).
    public var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
