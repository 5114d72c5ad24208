import SextantModel
import SextantOTLP
import Testing

@testable import SextantProxy

/// `envoyOtelAls`'s record, written in wire form per request (`LineProgram(otlpLog:labels:)`): byte for byte
/// the `LogRecord` the model encoder (`OTLPProtobuf.encode`) writes for the same values, whatever the lengths
/// (one-, two- and three-byte varints, so the content is moved up) and whichever IDs the record has. The
/// exchange with a collector is in `tests/interop/test_demo.py` (the demo's proxies send their access logs
/// this way, and the ECS documents are checked hop by hop).
@Suite struct OTelAccessLogTests {
    static let resource = Resource(attributes: [KeyValue("service.name", .string("reviews.default"))])

    /// What the observer sent before it wrote wire form: a `LogRecord` value, numbers as `int_value`.
    static func model(_ r: ProxyRecord, body: AccessLogFormat, labels: [(String, AccessLogFormat)], observed: UInt64) -> LogRecord {
        let attributes = labels.map { (key, format) -> KeyValue in
            if format.pieces.count == 1, case .command(let c, _) = format.pieces[0], case .number(let n)? = AccessLogFormat.value(c, r) {
                return KeyValue(key, .int(n))
            }
            return KeyValue(key, .string(format.render(r)))
        }
        return LogRecord(
            timeUnixNano: r.startUnixNanos, observedTimeUnixNano: observed, body: .string(body.render(r)), attributes: attributes,
            traceID: r.traceID, spanID: r.spanID)
    }

    @Test func theRecordIsWhatTheModelEncoderWrites() throws {
        let labels = try [
            ("code", "%RESPONSE_CODE%"), ("path", "%REQ(:PATH)%"), ("", "no key"), ("sent", "%BYTES_SENT%"),
            ("cut", "%REQ(:PATH):3%"), ("missing", "%REQ(X-MISSING)%"), ("empty", ""), ("mixed", "%RESPONSE_CODE% %DURATION%"),
        ].map { ($0.0, try AccessLogFormat($0.1)) }
        var cases = 0
        for (body, labels) in [(AccessLogFormat.istioTextBody, labels), (try AccessLogFormat("%REQ(:PATH)%"), []), (try AccessLogFormat(""), labels)] {
            let program = LineProgram(otlpLog: body, labels: labels)
            for pathLength in [1, 100, 300, 20_000] {
                for ids in [false, true] {
                    var r = AccessLogFormatTests.record()
                    r.path = "/" + String(repeating: "é", count: (pathLength - 1) / 2) + String(repeating: "x", count: (pathLength - 1) % 2)
                    r.bytesSent = pathLength * 1000
                    if ids {
                        r.traceID = TraceID(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10)
                        r.spanID = SpanID(0x1112_1314_1516_1718)
                    }
                    let before = WallClock.nowNanos()
                    let wire = program.bytes(r)
                    let after = WallClock.nowNanos()
                    let request = OTLPProtobuf.requestPrefix(resource: Self.resource, framedItemsByteCount: wire.count) + wire
                    let decoded = try request.withUnsafeBytes { try OTLPProtobuf.decodeLogs($0) }.data
                    let record = try #require(decoded.resourceLogs.first?.scopeLogs.first?.logRecords.first)
                    #expect((before...after).contains(record.observedTimeUnixNano))
                    let expected = Self.model(r, body: body, labels: labels, observed: record.observedTimeUnixNano)
                    let same = request
                        == OTLPProtobuf.encode(LogsData(resourceLogs: [ResourceLogs(resource: Self.resource, scopeLogs: [ScopeLogs(logRecords: [expected])])]))
                    #expect(same, "path of \(r.path.utf8.count) bytes, IDs \(ids), \(labels.count) labels")
                    #expect(record == expected)
                    cases += 1
                }
            }
        }
        #expect(cases == 24)
    }

    /// A record with no start time (a test's, or a clock at 0) leaves `time_unix_nano` out, as proto3 does.
    @Test func zeroValuesAreLeftOut() throws {
        let r = ProxyRecord(direction: .inbound, startUnixNanos: 0, method: "", path: "", protocolName: "", authority: "", requestHeaders: [:])
        let wire = LineProgram(otlpLog: try AccessLogFormat("%RESPONSE_CODE%"), labels: []).bytes(r)
        // Frame and length; body (5) AnyValue { string_value "0" }; observed time (11): nothing else.
        #expect(Array(wire.prefix(8)) == [0x12, 14, 0x2A, 3, 0x0A, 1, UInt8(ascii: "0"), 0x59])
        #expect(wire.count == 2 + 5 + 9)
    }
}
