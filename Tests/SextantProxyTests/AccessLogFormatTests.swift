import Foundation
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

    /// The request fields the proxy notes by index as it reads a request (`knownRequestFields`) give the
    /// lines a lookup by name gives: present, absent, and where the index is stale (fields replaced since).
    @Test func notedRequestFieldsReadAsLookedUp() {
        var noted = Self.record()
        // `record()`'s fields: user-agent, x-request-id, x-forwarded-for; no x-envoy-original-path.
        noted.knownRequestFields = ProxyRecord.KnownRequestFields(userAgent: 0, forwardedFor: 2, originalPath: -1)
        for json in [false, true] {
            let plain = json ? AccessLogFormat.renderJSON(AccessLogFormat.istioJSON, Self.record()) : AccessLogFormat.istioText.render(Self.record())
            let fast = json ? AccessLogFormat.renderJSON(AccessLogFormat.istioJSON, noted) : AccessLogFormat.istioText.render(noted)
            #expect(fast == plain)
            #expect(fast.contains("curl/8.5") && fast.contains("10.1.2.3"))
        }
        #expect(noted.requestHeader(.userAgent) == "curl/8.5" && noted.requestHeader(.forwardedFor) == "10.1.2.3")
        #expect(noted.requestHeader(.originalPath) == nil)
        // Replacing the fields forgets the indexes.
        noted.requestHeaders = ["X-Forwarded-For": "10.9.9.9"]
        #expect(noted.knownRequestFields == nil && noted.requestHeader(.forwardedFor) == "10.9.9.9" && noted.requestHeader(.userAgent) == nil)
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
    @Test func directValuesAgreeWithValue() throws {
        let commands: [AccessLogFormat.Command] = [
            .startTime, .request(.method, fallback: nil), .request(.path, fallback: nil), .request(.authority, fallback: nil),
            .request(.header("x-missing"), fallback: .header("user-agent")), .request(.header("x-nope"), fallback: nil),
            .request(.requestID, fallback: nil), .request(.header("x-missing"), fallback: .requestID),
            .response("x-envoy-upstream-service-time", fallback: nil), .response("x-missing", fallback: "x-envoy-upstream-service-time"),
            .response("x-empty", fallback: "x-envoy-upstream-service-time"), .responseCode, .responseFlags, .responseCodeDetails,
            .connectionTerminationDetails, .upstreamTransportFailureReason, .bytesReceived, .bytesSent, .duration, .upstreamHost,
            .upstreamCluster, .upstreamLocalAddress, .downstreamLocalAddress, .downstreamRemoteAddress,
            .downstreamRemoteAddressWithoutPort, .requestedServerName, .routeName, .protocolName, .downstreamPeerURISAN,
            .upstreamPeerURISAN,
        ]
        let empty = ProxyRecord(direction: .outbound, startUnixNanos: 0, method: "", path: "", protocolName: "", authority: "", requestHeaders: [:])
        var withID = Self.record()
        withID.requestID = "from-the-record"
        withID.responseHeaders = ["x-empty": "", "x-envoy-upstream-service-time": "7"]
        // Responses as the proxy's raw path sends them on: the upstream's service time and server dropped, the
        // proxy's own added (`.proxied`), with and without a service time noted.
        var proxied: [ProxyRecord] = []
        for nanoseconds in [12_345_678, nil] as [Int64?] {
            var r = Self.record()
            var raw = try #require(
                try HTTP1EncodersTests.rawFields("HTTP/1.1 200 OK\r\nServer: up\r\nX-Envoy-Upstream-Service-Time: 3\r\nX-Empty:\r\n\r\n"))
            raw.spans[0].dropped = true
            raw.spans[1].dropped = true
            r.upstreamServiceNanoseconds = nanoseconds
            r.responseFields = .proxied(raw, added: ProxiedResponseFields(peer: nil, serviceMilliseconds: (nanoseconds ?? 0) / 1_000_000))
            proxied.append(r)
        }
        #expect(LineProgram(text: [.command(.response("x-envoy-upstream-service-time", fallback: nil), maxLength: nil)]).render(proxied[0]) == "12")
        for r in [Self.record(), empty, withID] + proxied {
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

    /// JSON text copied a word at a time with the escape check on the way, against escaping byte by byte
    /// (RFC 8259 §7), with each special byte at every position of strings up to 24 bytes, and a quote with it,
    /// among plain ASCII and UTF-8 bytes (>= 0x80, which need no escape).
    @Test func escapedCopyAgreesWithTheByteRule() {
        func byByte(_ b: [UInt8]) -> [UInt8] {
            var out: [UInt8] = [UInt8(ascii: "<")]
            for c in b {
                switch c {
                case 0x22: out += Array(#"\""#.utf8)
                case 0x5C: out += Array(#"\\"#.utf8)
                case 0x0A: out += Array(#"\n"#.utf8)
                case 0x0D: out += Array(#"\r"#.utf8)
                case 0x09: out += Array(#"\t"#.utf8)
                case 0..<0x20: out += Array(#"\u00"#.utf8) + Array((c < 16 ? "0" : "").utf8) + Array(String(c, radix: 16).utf8)
                default: out.append(c)
                }
            }
            return out
        }
        func copied(_ b: [UInt8]) -> [UInt8] {
            var out = LineBuffer(capacity: 1)
            out.append(UInt8(ascii: "<"))
            b.withUnsafeBytes { out.append($0, json: true) }
            return Array(out.bytes)
        }
        for count in 0...24 {
            for filler: UInt8 in [0x61, 0x7F, 0xC3, 0xFF, 0x21, 0x23, 0x5B, 0x5D, 0x20] {
                let plain = [UInt8](repeating: filler, count: count)
                #expect(copied(plain) == byByte(plain))
                for special: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x22, 0x5C] {
                    for at in 0..<count {
                        var b = plain
                        b[at] = special
                        #expect(copied(b) == byByte(b), "byte \(special) at \(at) of \(count)")
                        b[count - 1 - at] = 0x22
                        #expect(copied(b) == byByte(b), "bytes \(special) and quote in \(count)")
                    }
                }
            }
        }
    }

    /// Numbers and `%START_TIME%` written from scratch buffers, against `String(_:)` and libc's `gmtime_r`.
    @Test func numbersAndStartTimesAreWrittenExactly() {
        for n: Int64 in [0, 7, 9, 10, 99, 100, 1024, 1_234_567_890_123, -5, -10, .max, .min] {
            var out = LineBuffer(capacity: 1)
            AccessLogFormat.appendInt(n, &out)
            #expect(out.string == String(n))
        }
        for seconds: Int in [0, 951_782_400, 1_764_032_523, 1_798_761_599, 4_102_444_800, 9_999_999_999] {
            for ms in [0, 7, 456, 999] {
                var t = time_t(seconds)
                var tm = tm()
                gmtime_r(&t, &tm)
                let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                      Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), ms)
                #expect(AccessLogFormat.startTime(UInt64(seconds) * 1_000_000_000 + UInt64(ms) * 1_000_000 + 123) == expected)
            }
        }
    }

    /// One buffer reuses its last second's text (`LineBuffer.reuseSecond`): times written in turn into the same
    /// buffer, within a second, across second, day and year boundaries and back in time, each equal to the time
    /// written alone; the text also survives the buffer trading its storage.
    @Test func startTimesWrittenInTurnReuseOnlyTheirOwnSecond() {
        let second: UInt64 = 1_000_000_000
        let times: [UInt64] = [
            1_798_761_598 * second, 1_798_761_598 * second + 1, 1_798_761_598 * second + 999_999_999,
            1_798_761_599 * second + 500_000_000, 1_798_761_600 * second, 1_798_761_600 * second + 7_000_000,
            1_798_761_600 * second + 9_000_000, 1_764_032_523 * second + 456_000_000, 1_764_032_523 * second + 457_000_000, 0, 999_000_000, second,
            1_798_761_600 * second + 8_000_000,
        ]
        var out = LineBuffer(capacity: 16)
        var other = LineBuffer(capacity: 16)
        var expected = ""
        for (i, t) in times.enumerated() {
            AccessLogFormat.appendStartTime(t, &out)
            out.append(UInt8(ascii: " "))
            expected += AccessLogFormat.startTime(t) + " "
            if i == 5 {
                #expect(out.string == expected)
                out.exchange(with: &other)
                out.removeAll()
                expected = ""
            }
        }
        #expect(out.string == expected)
    }
}
