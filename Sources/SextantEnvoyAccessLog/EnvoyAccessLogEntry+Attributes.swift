import SextantModel

extension EnvoyAccessLogEntry {
    /// The entry as log-record attributes, in a fixed order. OpenTelemetry semantic-convention names
    /// where one exists (HTTP spans and `client.*`/`server.*`/`url.*`/`network.*`); Envoy-only values
    /// under `envoy.*`. Absent values (`-`) make no attribute.
    public var attributes: [KeyValue] {
        var a: [KeyValue] = []
        a.reserveCapacity(24)
        func str(_ key: String, _ v: String?) { if let v { a.append(KeyValue(key, .string(v))) } }
        func int(_ key: String, _ v: Int64?) { if let v { a.append(KeyValue(key, .int(v))) } }
        str("http.request.method", method)
        if let path {
            if let q = path.firstIndex(of: "?") {
                str("url.path", String(path[..<q]))
                let query = path[path.index(after: q)...]
                if !query.isEmpty { str("url.query", String(query)) }
            } else {
                str("url.path", path)
            }
        }
        if let p = `protocol` {
            // `HTTP/1.1` → http + 1.1 (semconv `network.protocol.name` is lower case).
            if let slash = p.firstIndex(of: "/") {
                str("network.protocol.name", p[..<slash].lowercased())
                str("network.protocol.version", String(p[p.index(after: slash)...]))
            } else {
                str("network.protocol.name", p.lowercased())
            }
        }
        int("http.response.status_code", responseCode)
        if !responseFlags.isEmpty { a.append(KeyValue("envoy.response_flags", .array(responseFlags.map { .string($0) }))) }
        str("envoy.response_code_details", responseCodeDetails)
        str("envoy.connection_termination_details", connectionTerminationDetails)
        str("envoy.upstream_transport_failure_reason", upstreamTransportFailureReason)
        int("http.request.body.size", bytesReceived)
        int("http.response.body.size", bytesSent)
        int("envoy.duration_ms", durationMillis)
        int("envoy.upstream_service_time_ms", upstreamServiceTimeMillis)
        str("http.request.header.x-forwarded-for", forwardedFor)
        str("user_agent.original", userAgent)
        str("http.request.header.x-request-id", requestID)
        if let authority {
            let (host, port) = Self.splitHostPort(authority)
            str("server.address", host)
            int("server.port", port)
        }
        str("envoy.upstream_host", upstreamHost)
        str("envoy.upstream_cluster", upstreamCluster)
        str("envoy.upstream_local_address", upstreamLocalAddress)
        str("envoy.downstream_local_address", downstreamLocalAddress)
        if let downstreamRemoteAddress {
            let (host, port) = Self.splitHostPort(downstreamRemoteAddress)
            str("client.address", host)
            int("client.port", port)
        }
        str("envoy.requested_server_name", requestedServerName)
        str("envoy.route_name", routeName)
        for (k, v) in extra { str("envoy." + k, v) }
        return a
    }

    /// `host:port`, `[v6]:port`, a bare host or a bare IPv6 address.
    public static func splitHostPort(_ s: String) -> (host: String, port: Int64?) {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            if rest.hasPrefix(":"), let p = Int64(rest.dropFirst()), (0...65535).contains(p) { return (host, p) }
            return (host, nil)
        }
        if let colon = s.lastIndex(of: ":"), s.firstIndex(of: ":") == colon, let p = Int64(s[s.index(after: colon)...]),
            (0...65535).contains(p)
        {
            return (String(s[..<colon]), p)
        }
        return (s, nil)
    }
}

/// Trace context from propagation headers: W3C `traceparent` (Trace Context §3.2) and B3
/// (openzipkin/b3-propagation: multi-header `X-B3-TraceId`/`X-B3-SpanId`, single `b3`).
public enum TraceContextHeaders {
    /// `version-traceid-parentid-flags`; `nil` when malformed, or for all-zero IDs or version `ff`.
    public static func traceparent(_ value: String) -> (TraceID, SpanID)? {
        let parts = value.trimmingWhitespace.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].utf8.count == 2, parts[0].lowercased() != "ff", parts[3].utf8.count == 2,
            parts[0].utf8.allSatisfy({ Hex.value(of: $0) != nil }), parts[3].utf8.allSatisfy({ Hex.value(of: $0) != nil }),
            parts[0] != "00" || parts.count == 4,
            let t = TraceID(hex: parts[1]), let s = SpanID(hex: parts[2]), t.isValid, s.isValid
        else { return nil }
        return (t, s)
    }

    /// A B3 trace ID: 32 hex digits, or 16 (then left-padded with zeros).
    public static func b3TraceID(_ value: String) -> TraceID? {
        let v = value.trimmingWhitespace
        if v.utf8.count == 16, let low = SpanID(hex: v)?.value {
            let t = TraceID(high: 0, low: low)
            return t.isValid ? t : nil
        }
        guard let t = TraceID(hex: v), t.isValid else { return nil }
        return t
    }

    public static func b3SpanID(_ value: String) -> SpanID? {
        guard let s = SpanID(hex: value.trimmingWhitespace), s.isValid else { return nil }
        return s
    }

    /// Single-header `b3`: `traceid-spanid[-sampled[-parentspanid]]` (a lone sampling flag carries no IDs).
    public static func b3Single(_ value: String) -> (TraceID, SpanID)? {
        let parts = value.trimmingWhitespace.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts.count <= 4, let t = b3TraceID(String(parts[0])), let s = b3SpanID(String(parts[1])) else {
            return nil
        }
        return (t, s)
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
