import NIOHTTP1
import SextantEnvoyAccessLog
import Testing

@testable import SextantProxy

/// The proxy's access-log writer against the collector's access-log parser: two independent readings of
/// Istio's formats must agree on every field, so what the proxy logs is what `envoyaccesslog` understands.
@Suite struct AccessLogFormatTests {
    static func record() -> ProxyRecord {
        var headers = HTTPHeaders()
        headers.add(name: "user-agent", value: "curl/8.5")
        headers.add(name: "x-request-id", value: "7d1c5b5e-2a7b-4b8c-9d55-1f1f6c0e2a11")
        headers.add(name: "x-forwarded-for", value: "10.1.2.3")
        var r = ProxyRecord(
            direction: .outbound, startUnixNanos: 1_764_032_523_456_789_000, method: "POST", path: "/reviews/1?a=b",
            protocolName: "HTTP/1.1", authority: "reviews:9080", requestHeaders: headers)
        r.responseHeaders = ["x-envoy-upstream-service-time": "12"]
        r.responseCode = 503
        r.responseFlags = [.upstreamRetryLimitExceeded, .upstreamConnectionFailure]
        r.responseCodeDetails = "upstream_reset_before_response_started{connection_failure}"
        r.upstreamTransportFailureReason = "connection refused"
        r.bytesReceived = 17
        r.bytesSent = 91
        r.duration = .milliseconds(34)
        r.upstreamHost = "10.0.0.7:9080"
        r.upstreamCluster = "outbound|9080|v2|reviews.default.svc.cluster.local"
        r.upstreamLocalAddress = "10.0.0.4:41234"
        r.downstreamLocalAddress = "127.0.0.1:15001"
        r.downstreamRemoteAddress = "127.0.0.1:50123"
        r.routeName = "canary"
        return r
    }

    @Test func istioTextIsReadBackFieldByField() throws {
        let line = AccessLogFormat.istioText.render(Self.record())
        #expect(line.hasPrefix("[2025-11-25T01:02:03.456Z] \"POST /reviews/1?a=b HTTP/1.1\" 503 UF,URX "))
        let e = try #require(EnvoyAccessLogParser.parse(line, formats: [.istioText]))
        #expect(e.method == "POST" && e.path == "/reviews/1?a=b" && e.protocol == "HTTP/1.1")
        #expect(e.responseCode == 503 && e.responseFlags == ["UF", "URX"])
        #expect(e.responseCodeDetails == "upstream_reset_before_response_started{connection_failure}")
        #expect(e.connectionTerminationDetails == nil && e.upstreamTransportFailureReason == "connection refused")
        #expect(e.bytesReceived == 17 && e.bytesSent == 91 && e.durationMillis == 34 && e.upstreamServiceTimeMillis == 12)
        #expect(e.forwardedFor == "10.1.2.3" && e.userAgent == "curl/8.5" && e.requestID == "7d1c5b5e-2a7b-4b8c-9d55-1f1f6c0e2a11")
        #expect(e.authority == "reviews:9080" && e.upstreamHost == "10.0.0.7:9080")
        #expect(e.upstreamCluster == "outbound|9080|v2|reviews.default.svc.cluster.local")
        #expect(e.upstreamLocalAddress == "10.0.0.4:41234" && e.downstreamLocalAddress == "127.0.0.1:15001")
        #expect(e.downstreamRemoteAddress == "127.0.0.1:50123" && e.requestedServerName == nil && e.routeName == "canary")
        #expect(e.startTimeUnixNano == 1_764_032_523_456_000_000)
    }

    @Test func istioJSONIsReadBackFieldByField() throws {
        let line = AccessLogFormat.renderJSON(AccessLogFormat.istioJSON, Self.record())
        let e = try #require(EnvoyAccessLogParser.parse(line, formats: [.istioJSON]))
        #expect(e.method == "POST" && e.responseCode == 503 && e.responseFlags == ["UF", "URX"])
        #expect(e.bytesSent == 91 && e.durationMillis == 34 && e.routeName == "canary" && e.upstreamServiceTimeMillis == 12)
    }

    /// A JSON line is valid JSON whatever its formats hold: literal text and keys with quotes and
    /// backslashes are escaped, a multi-piece field is one string, a lone numeric command a number, and a
    /// truncated command is cut before escaping.
    @Test func customJSONFieldsAreEscapedAndTyped() throws {
        let fields: [(String, AccessLogFormat)] = [
            ("say \"hi\"", try AccessLogFormat("a \"quoted\" \\ %REQ(:METHOD)%/%RESPONSE_CODE%")),
            ("code", try AccessLogFormat("%RESPONSE_CODE%")),
            ("cut", try AccessLogFormat("%UPSTREAM_CLUSTER:8%")),
            ("ua", try AccessLogFormat("%REQ(USER-AGENT)%")),
        ]
        let line = AccessLogFormat.renderJSON(fields, Self.record())
        #expect(line == #"{"code":503,"cut":"outbound","say \"hi\"":"a \"quoted\" \\ POST/503","ua":"curl/8.5"}"# + "\n")
    }

    /// The line writer reads common commands directly; what it writes is what `value` (behind truncation and
    /// OTLP log attributes) gives, for every command, on a full record and an empty one.
    @Test func directValuesAgreeWithValue() {
        let commands: [AccessLogFormat.Command] = [
            .startTime, .request(.method, fallback: nil), .request(.path, fallback: nil), .request(.authority, fallback: nil),
            .request(.header("x-missing"), fallback: .header("user-agent")), .request(.header("x-nope"), fallback: nil),
            .response("x-envoy-upstream-service-time", fallback: nil), .responseCode, .responseFlags, .responseCodeDetails,
            .connectionTerminationDetails, .upstreamTransportFailureReason, .bytesReceived, .bytesSent, .duration, .upstreamHost,
            .upstreamCluster, .upstreamLocalAddress, .downstreamLocalAddress, .downstreamRemoteAddress,
            .downstreamRemoteAddressWithoutPort, .requestedServerName, .routeName, .protocolName, .downstreamPeerURISAN,
            .upstreamPeerURISAN,
        ]
        let empty = ProxyRecord(direction: .outbound, startUnixNanos: 0, method: "", path: "", protocolName: "", authority: "", requestHeaders: [:])
        for r in [Self.record(), empty] {
            for c in commands {
                let direct = LineProgram(text: [.command(c, maxLength: nil)]).render(r)
                let viaValue = LineProgram(text: [.command(c, maxLength: 10_000)]).render(r)
                #expect(direct == viaValue, "\(c)")
            }
        }
    }

    @Test func customFormatsAndErrors() throws {
        let f = try AccessLogFormat("%REQ(:METHOD)% %REQ(X-MISSING?USER-AGENT)% %REQ(X-NOPE)% %UPSTREAM_CLUSTER:8% 100%%\n")
        #expect(f.render(Self.record()) == "POST curl/8.5 - outbound 100%\n")
        #expect(throws: AccessLogFormat.FormatError.self) { try AccessLogFormat("%NOT_A_COMMAND%") }
        #expect(throws: AccessLogFormat.FormatError.self) { try AccessLogFormat("%DURATION") }
    }
}
