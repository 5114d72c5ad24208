import Foundation
import SextantEnvoyAccessLog
import SextantModel
import Testing

/// Golden lines: the Envoy docs' default-format example, and Istio's access-log task output in its
/// text and JSON encodings (istio.io "Envoy Access Logs").
enum AccessLogLines {
    static let envoyDefault =
        #"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations?zone=eu HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#
    static let istioText =
        #"[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default"#
    static let istioTCP =
        #"[2020-11-25T21:26:18.409Z] "- - -" 0 UH,UF - - "-" 0 0 0 - "-" "-" "-" "-" "-" outbound|9000||tcp-echo.default.svc.cluster.local - 10.0.0.5:9000 10.44.1.23:46520 - -"#
    static let istioJSON =
        #"{"authority":"httpbin:8000","bytes_received":0,"bytes_sent":135,"connection_termination_details":null,"downstream_local_address":"10.0.45.184:8000","downstream_remote_address":"10.44.1.23:46520","duration":4,"method":"GET","path":"/status/418","protocol":"HTTP/1.1","request_id":"84961386-6d84-929d-98bd-c5aee93b5c88","requested_server_name":null,"response_code":418,"response_code_details":"via_upstream","response_flags":"-","route_name":"default","start_time":"2020-11-25T21:26:18.409Z","upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local","upstream_host":"10.44.1.27:80","upstream_local_address":"10.44.1.23:37652","upstream_service_time":"4","upstream_transport_failure_reason":null,"user_agent":"curl/7.73.0-DEV","x_forwarded_for":null}"#
}

@Suite struct EnvoyAccessLogParserTests {
    @Test func envoyDefaultFormat() throws {
        let e = try #require(EnvoyAccessLogParser.parse(AccessLogLines.envoyDefault + "\n"))
        #expect(e.format == .envoyDefault)
        #expect(e.startTimeUnixNano == 1_460_751_420_310_000_000)
        #expect(e.method == "POST")
        #expect(e.path == "/api/v1/locations?zone=eu")
        #expect(e.protocol == "HTTP/2")
        #expect(e.responseCode == 204)
        #expect(e.responseFlags == [])
        #expect(e.bytesReceived == 154 && e.bytesSent == 0 && e.durationMillis == 226 && e.upstreamServiceTimeMillis == 100)
        #expect(e.forwardedFor == "10.0.35.28")
        #expect(e.userAgent == "nsq2http")
        #expect(e.requestID == "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2")
        #expect(e.authority == "locations")
        #expect(e.upstreamHost == "tcp://10.0.2.1:80")
        #expect(e.upstreamCluster == nil && e.routeName == nil)
    }

    @Test func envoyDefaultAttributes() throws {
        let e = try #require(EnvoyAccessLogParser.parse(AccessLogLines.envoyDefault))
        let a = e.attributes
        #expect(a.map(\.key) == [
            "http.request.method", "url.path", "url.query", "network.protocol.name", "network.protocol.version",
            "http.response.status_code", "http.request.body.size", "http.response.body.size", "envoy.duration_ms",
            "envoy.upstream_service_time_ms", "http.request.header.x-forwarded-for", "user_agent.original",
            "http.request.header.x-request-id", "server.address", "envoy.upstream_host",
        ])
        #expect(a[key: "url.path"] == .string("/api/v1/locations"))
        #expect(a[key: "url.query"] == .string("zone=eu"))
        #expect(a[key: "network.protocol.name"] == .string("http"))
        #expect(a[key: "network.protocol.version"] == .string("2"))
        #expect(a[key: "http.response.status_code"] == .int(204))
        #expect(a[key: "envoy.duration_ms"] == .int(226))
    }

    @Test func istioTextFormat() throws {
        let e = try #require(EnvoyAccessLogParser.parse(AccessLogLines.istioText))
        #expect(e.format == .istioText)
        #expect(e.startTimeUnixNano == 1_606_339_578_409_000_000)
        #expect(e.method == "GET" && e.path == "/status/418" && e.protocol == "HTTP/1.1")
        #expect(e.responseCode == 418)
        #expect(e.responseCodeDetails == "via_upstream")
        #expect(e.connectionTerminationDetails == nil && e.upstreamTransportFailureReason == nil)
        #expect(e.bytesReceived == 0 && e.bytesSent == 135 && e.durationMillis == 4 && e.upstreamServiceTimeMillis == 4)
        #expect(e.forwardedFor == nil)
        #expect(e.userAgent == "curl/7.73.0-DEV")
        #expect(e.authority == "httpbin:8000")
        #expect(e.upstreamHost == "10.44.1.27:80")
        #expect(e.upstreamCluster == "outbound|8000||httpbin.foo.svc.cluster.local")
        #expect(e.upstreamLocalAddress == "10.44.1.23:37652")
        #expect(e.downstreamLocalAddress == "10.0.45.184:8000")
        #expect(e.downstreamRemoteAddress == "10.44.1.23:46520")
        #expect(e.requestedServerName == nil)
        #expect(e.routeName == "default")
        let a = e.attributes
        #expect(a[key: "server.address"] == .string("httpbin"))
        #expect(a[key: "server.port"] == .int(8000))
        #expect(a[key: "client.address"] == .string("10.44.1.23"))
        #expect(a[key: "client.port"] == .int(46520))
        #expect(a[key: "envoy.route_name"] == .string("default"))
        #expect(a[key: "http.request.header.x-forwarded-for"] == nil)
    }

    @Test func istioJSONMatchesText() throws {
        let json = try #require(EnvoyAccessLogParser.parse(AccessLogLines.istioJSON))
        var text = try #require(EnvoyAccessLogParser.parse(AccessLogLines.istioText))
        #expect(json.format == .istioJSON)
        text.format = .istioJSON
        #expect(json == text)
    }

    @Test func tcpLineHasNoHTTPFields() throws {
        let e = try #require(EnvoyAccessLogParser.parse(AccessLogLines.istioTCP))
        #expect(e.method == nil && e.path == nil && e.protocol == nil)
        #expect(e.responseCode == 0)
        #expect(e.responseFlags == ["UH", "UF"])
        #expect(e.upstreamServiceTimeMillis == nil)
        #expect(e.upstreamLocalAddress == nil && e.routeName == nil)
        let a = e.attributes
        #expect(a[key: "envoy.response_flags"] == .array([.string("UH"), .string("UF")]))
        #expect(a[key: "http.request.method"] == nil && a[key: "network.protocol.name"] == nil)
    }

    @Test(arguments: EnvoyResponseFlag.all.map(\.flag))
    func everyResponseFlag(_ flag: String) throws {
        let envoy = AccessLogLines.envoyDefault.replacingFirst(" 204 - ", with: " 503 \(flag) ")
        let e = try #require(EnvoyAccessLogParser.parse(envoy))
        #expect(e.responseFlags == [flag])
        let istio = AccessLogLines.istioText.replacingFirst(" 418 - ", with: " 503 \(flag),DC ")
        let i = try #require(EnvoyAccessLogParser.parse(istio))
        #expect(i.responseFlags == [flag, "DC"])
        let json = AccessLogLines.istioJSON.replacingFirst(#""response_flags":"-""#, with: #""response_flags":"\#(flag)""#)
        let j = try #require(EnvoyAccessLogParser.parse(json))
        #expect(j.responseFlags == [flag])
    }

    @Test func formatsRestrictDetection() {
        #expect(EnvoyAccessLogParser.parse(AccessLogLines.istioText, formats: [.envoyDefault]) == nil)
        #expect(EnvoyAccessLogParser.parse(AccessLogLines.envoyDefault, formats: [.istioText, .istioJSON]) == nil)
        #expect(EnvoyAccessLogParser.parse(AccessLogLines.istioJSON, formats: [.istioText]) == nil)
        #expect(EnvoyAccessLogParser.parse(AccessLogLines.istioJSON, formats: [.istioJSON])?.format == .istioJSON)
    }

    @Test(arguments: [
        "",
        "GET / 200",
        "[2016-04-15T20:17:00.310Z] \"GET / HTTP/1.1\" 200",
        // response code not a number
        AccessLogLines.envoyDefault.replacingFirst(" 204 ", with: " abc "),
        // bytes not a number
        AccessLogLines.istioText.replacingFirst(" 0 135 ", with: " x 135 "),
        // bad start time
        AccessLogLines.envoyDefault.replacingFirst("2016-04-15", with: "2016-13-15"),
        // unterminated quote
        "[2016-04-15T20:17:00.310Z] \"GET / HTTP/1.1 200 - 1 2 3 4 \"a\" \"b\" \"c\" \"d\" \"e",
        // one field too many
        AccessLogLines.envoyDefault + " extra",
        #"{"level":"info","msg":"not an access log"}"#,
        #"{"method":"GET","response_code":"abc"}"#,
        #"{"method":"GET""#,
        #"{"method":"GET"} trailing"#,
    ])
    func unparseableLines(_ line: String) {
        #expect(EnvoyAccessLogParser.parse(line) == nil)
    }

    /// Every prefix of every golden line, and each with one byte replaced: parses or is refused, never traps.
    @Test func truncatedAndCorruptedLinesNeverTrap() {
        var parsed = 0
        for line in [AccessLogLines.envoyDefault, AccessLogLines.istioText, AccessLogLines.istioTCP, AccessLogLines.istioJSON] {
            let bytes = Array(line.utf8)
            for n in 0...bytes.count where EnvoyAccessLogParser.parse(String(decoding: bytes[..<n], as: UTF8.self)) != nil { parsed += 1 }
            for i in stride(from: 0, to: bytes.count, by: 3) {
                for b: UInt8 in [0x22, 0x20, 0x5D, 0x7B, 0x2D, 0xFF] {
                    var c = bytes
                    c[i] = b
                    _ = EnvoyAccessLogParser.parse(String(decoding: c, as: UTF8.self))
                }
            }
        }
        // Whole lines parse (and a TCP line cut inside its last field still has 21 fields).
        #expect(parsed >= 4)
    }

    @Test func jsonKeepsExtraKeysAndTypedNumbers() throws {
        let line = #"{"method":"GET","response_code":200.0,"duration":12,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tags":{"a":1}}"#
        let e = try #require(EnvoyAccessLogParser.parse(line))
        #expect(e.responseCode == 200)
        #expect(e.durationMillis == 12)
        #expect(e.extra.map(\.key) == ["traceparent", "tags"])
        #expect(e.extra.first?.value == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        #expect(e.extra.last?.value == #"{"a":1}"#)
        #expect(e.attributes[key: "envoy.traceparent"] != nil)
    }

    @Test func rfc3339() {
        #expect(RFC3339.parse("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339.parse("2024-02-29T23:59:59.123456789Z") == 1_709_251_199_123_456_789)
        #expect(RFC3339.parse("2024-02-29T23:59:59.5+01:00") == 1_709_247_599_500_000_000)
        #expect(RFC3339.parse("2023-02-29T00:00:00Z") == nil)
        #expect(RFC3339.parse("2023-01-01T00:00:00") == nil)
        #expect(RFC3339.parse("2023-01-01T00:00:00.Z") == nil)
        // Found by fuzz/FuzzEnvoyAccessLog: years past 2554 overflowed the UInt64 nanoseconds and trapped.
        #expect(RFC3339.parse("2554-07-21T23:34:33.709551615Z") == UInt64.max)
        #expect(RFC3339.parse("2554-07-21T23:34:33.709551616Z") == nil)
        #expect(RFC3339.parse("3251-11-25T21:26:18.409Z") == nil)
        #expect(EnvoyAccessLogParser.parse(#"{"method":"GET","start_time":"9999-12-31T23:59:59.999Z"}"#)?.startTimeUnixNano == nil)
    }

    @Test func traceContextHeaders() {
        let tp = TraceContextHeaders.traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        #expect(tp?.0.hex == "4bf92f3577b34da6a3ce929d0e0e4736" && tp?.1.hex == "00f067aa0ba902b7")
        #expect(TraceContextHeaders.traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01") == nil)
        #expect(TraceContextHeaders.traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == nil)
        #expect(TraceContextHeaders.traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") == nil)
        #expect(TraceContextHeaders.traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") != nil)
        let b3 = TraceContextHeaders.b3Single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
        #expect(b3?.0.hex == "80f198ee56343ba864fe8b2a57d3eff7" && b3?.1.hex == "e457b5a2e4d86bd1")
        #expect(TraceContextHeaders.b3Single("1") == nil)
        #expect(TraceContextHeaders.b3TraceID("64fe8b2a57d3eff7")?.hex == "000000000000000064fe8b2a57d3eff7")
        let headers = ["x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "http.request.header.x-b3-spanid": "a2fb4a1d1a96d312"]
        let found = TraceContextHeaders.find { headers[$0] }
        #expect(found?.0.hex == "463ac35c9f6413ad48485a3953bb6124" && found?.1.hex == "a2fb4a1d1a96d312")
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { fatalError("'\(target)' not in '\(self)'") }
        return replacingCharacters(in: r, with: replacement)
    }
}
