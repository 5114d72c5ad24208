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
