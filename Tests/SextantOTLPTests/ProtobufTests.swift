import SextantModel
@testable import SextantOTLP
import Testing

@Suite("OTLP protobuf")
struct ProtobufTests {
    static let validTrace = PB.bytes(16, fill: 0x11)
    static let validSpan = PB.bytes(8, fill: 0x22)

    // MARK: Round trips

    @Test func roundTripsFullyPopulatedData() throws {
        #expect(try OTLPProtobuf.decodeTraces(OTLPProtobuf.encode(Fixtures.traces)).data == Fixtures.traces)
        #expect(try OTLPProtobuf.decodeMetrics(OTLPProtobuf.encode(Fixtures.metrics)).data == Fixtures.metrics)
        #expect(try OTLPProtobuf.decodeLogs(OTLPProtobuf.encode(Fixtures.logs)).data == Fixtures.logs)
        let big = Fixtures.benchmarkTraces(count: 300)
        #expect(try OTLPProtobuf.decodeTraces(OTLPProtobuf.encode(big)).data == big)
    }

    @Test func roundTripsThroughTelemetryAndSignal() throws {
        for t in [Telemetry.traces(Fixtures.traces), .metrics(Fixtures.metrics), .logs(Fixtures.logs)] {
            let decoded = try OTLPProtobuf.decode(t.signal, OTLPProtobuf.encode(t))
            #expect(decoded.data == t)
            #expect(decoded.rejected == 0 && decoded.rejectionReason == nil)
        }
    }

    @Test func roundTripsEdgeValues() throws {
        let values: [AnyValue] = [
            .int(.min), .int(.max), .double(-0.0), .double(.infinity), .double(-.infinity), .double(.leastNonzeroMagnitude),
            .string(""), .bytes([]), .array([]), .kvlist([]), .empty, .array([.array([.kvlist([KeyValue("", .empty)])])]),
        ]
        let record = LogRecord(
            severityNumber: SeverityNumber(rawValue: -1), body: .empty,
            attributes: values.enumerated().map { KeyValue("k\($0.offset)", $0.element) }, flags: .max)
        let data = LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: [record])])])
        let decoded = try OTLPProtobuf.decodeLogs(OTLPProtobuf.encode(data)).data
        #expect(decoded == data)

        let nan = LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: [LogRecord(body: .double(.nan))])])])
        guard case .double(let d)? = try OTLPProtobuf.decodeLogs(OTLPProtobuf.encode(nan)).data.resourceLogs[0].scopeLogs[0].logRecords[0].body else {
            Issue.record("body is not a double")
            return
        }
        #expect(d.isNaN)
    }

    @Test func encodesDefaultsCanonically() {
        // Empty request, empty response, defaults omitted.
        #expect(OTLPProtobuf.encode(TracesData()) == [])
        #expect(OTLPProtobuf.encode(TracesData(resourceSpans: [ResourceSpans()])) == [0x0A, 0x00])
        // A negative enum is a ten-byte sign-extended varint, as int32 is on the wire.
        #expect(OTLPProtobuf.encodeStatus(code: -1, message: "") == [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        #expect(OTLPProtobuf.encodeStatus(code: 3, message: "bad") == [0x08, 0x03, 0x12, 0x03] + Array("bad".utf8))
    }

    @Test func statusAndExportResponse() throws {
        let status = try OTLPProtobuf.decodeStatus(OTLPProtobuf.encodeStatus(code: -7, message: "nope") + PB.len(3, [1, 2]))
        #expect(status.code == -7 && status.message == "nope")

        #expect(OTLPProtobuf.encodeExportResponse(.metrics, partialSuccess: nil) == [])
        #expect(try OTLPProtobuf.decodeExportResponse([UInt8]()) == nil)
        let empty = PartialSuccess(rejected: 0, errorMessage: "")
        #expect(OTLPProtobuf.encodeExportResponse(.logs, partialSuccess: empty) == [0x0A, 0x00])
        #expect(try OTLPProtobuf.decodeExportResponse([0x0A, 0x00]) == empty)
        let warning = PartialSuccess(rejected: 0, errorMessage: "slow down")
        #expect(try OTLPProtobuf.decodeExportResponse(OTLPProtobuf.encodeExportResponse(.logs, partialSuccess: warning)) == warning)
    }

    // MARK: Decoding rules

    @Test func skipsUnknownFieldsOfEveryWireType() throws {
        let unknown = PB.varintField(99, 300) + PB.fixed64(98, 1) + PB.len(97, [1, 2, 3]) + PB.fixed32(96, 7)
        let attribute = PB.len(9, PB.string(1, "k") + unknown + PB.len(2, PB.string(1, "v") + unknown))
        let span = PB.span(traceID: Self.validTrace, spanID: Self.validSpan, extra: attribute + unknown)
        let scope = PB.len(1, PB.string(1, "scope") + unknown)
        let request = unknown + PB.len(1, unknown + PB.len(2, scope + unknown + PB.len(2, span)) + unknown)
        let decoded = try OTLPProtobuf.decodeTraces(request)
        let got = try #require(decoded.data.resourceSpans.first?.scopeSpans.first)
        #expect(got.scope.name == "scope")
        #expect(got.spans.count == 1)
        #expect(got.spans.first?.attributes == [KeyValue("k", .string("v"))])
        #expect(got.spans.first?.name == "s")
    }

    @Test func acceptsPackedAndUnpackedRepeatedScalars() throws {
        let counts: [UInt64] = [1, 0, 300]
        let bounds: [Double] = [0.5, 2]
        let common = PB.fixed64(3, 9)
        let packedPoint = common
            + PB.len(6, counts.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } })
            + PB.len(7, bounds.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } })
        let unpackedPoint = common + counts.flatMap { PB.fixed64(6, $0) } + bounds.flatMap { PB.fixed64(7, $0.bitPattern) }
        let packedBuckets = PB.varintField(1, 3) + PB.len(2, counts.flatMap(PB.varint))
        let unpackedBuckets = PB.varintField(1, 3) + counts.flatMap { PB.varintField(2, $0) }

        func request(_ point: [UInt8], _ buckets: [UInt8]) -> [UInt8] {
            let histogram = PB.string(1, "h") + PB.len(9, PB.len(1, point))
            let exponential = PB.string(1, "e") + PB.len(10, PB.len(1, PB.len(8, buckets)))
            return PB.len(1, PB.len(2, PB.len(2, histogram) + PB.len(2, exponential)))
        }
        let packed = try OTLPProtobuf.decodeMetrics(request(packedPoint, packedBuckets)).data
        let unpacked = try OTLPProtobuf.decodeMetrics(request(unpackedPoint, unpackedBuckets)).data
        #expect(packed == unpacked)
        let metrics = packed.resourceMetrics[0].scopeMetrics[0].metrics
        guard case .histogram(let points, _) = metrics[0].data, case .exponentialHistogram(let exp, _) = metrics[1].data else {
            Issue.record("unexpected metric kinds")
            return
        }
        #expect(points[0].bucketCounts == counts && points[0].explicitBounds == bounds)
        #expect(exp[0].positive == .init(offset: -2, bucketCounts: counts))
        // Re-encoding packs them.
        #expect(OTLPProtobuf.encode(unpacked) == request(packedPoint, packedBuckets))
    }

    @Test func emptyAndRepeatedOneofs() throws {
        // The last oneof member on the wire wins; an empty AnyValue is `.empty`.
        let value = PB.string(1, "first") + PB.varintField(3, 5)
        let kv = PB.len(9, PB.string(1, "k") + PB.len(2, value)) + PB.len(9, PB.string(1, "e") + PB.len(2, []))
        let span = PB.span(traceID: Self.validTrace, spanID: Self.validSpan, extra: kv)
        let decoded = try OTLPProtobuf.decodeTraces(PB.traces([span])).data.resourceSpans[0].scopeSpans[0].spans[0]
        #expect(decoded.attributes == [KeyValue("k", .int(5)), KeyValue("e", .empty)])
        #expect(decoded.parentSpanID == nil)
    }

    // MARK: Partial success

    @Test func rejectsSpansWithInvalidIDs() throws {
        let ok = PB.span(traceID: Self.validTrace, spanID: Self.validSpan, name: "ok")
        let badLink = PB.len(13, PB.len(1, PB.bytes(5)))
        let spans = [
            PB.span(traceID: PB.bytes(4), spanID: Self.validSpan),  // 0
            ok,  // 1
            PB.span(traceID: PB.bytes(16, fill: 0), spanID: Self.validSpan),  // 2
            PB.span(traceID: Self.validTrace, spanID: []),  // 3
            PB.span(traceID: Self.validTrace, spanID: PB.bytes(8, fill: 0)),  // 4
            PB.span(traceID: Self.validTrace, spanID: Self.validSpan, parent: PB.bytes(3)),  // 5
            PB.span(traceID: Self.validTrace, spanID: Self.validSpan, extra: badLink),  // 6
            PB.span(traceID: Self.validTrace, spanID: Self.validSpan, parent: PB.bytes(8, fill: 0x33), name: "child"),  // 7
            [UInt8](),  // 8: no IDs at all
        ]
        let result = try OTLPProtobuf.decodeTraces(PB.traces(spans))
        #expect(result.rejected == 7)
        #expect(result.rejectionReason == "span 0: trace_id must be 16 bytes, got 4 (7 rejected in total)")
        #expect(result.partialSuccess == PartialSuccess(rejected: 7, errorMessage: result.rejectionReason!))
        let kept = result.data.resourceSpans[0].scopeSpans[0].spans
        #expect(kept.map(\.name) == ["ok", "child"])
        #expect(kept[1].parentSpanID == SpanID(0x3333_3333_3333_3333))

        let reasons = try spans.map { try OTLPProtobuf.decodeTraces(PB.traces([$0])).rejectionReason }
        #expect(reasons == [
            "span 0: trace_id must be 16 bytes, got 4", nil, "span 0: trace_id must not be all zero",
            "span 0: span_id must be 8 bytes, got 0", "span 0: span_id must not be all zero",
            "span 0: parent_span_id must be empty or 8 bytes, got 3", "span 0: link 0: trace_id must be empty or 16 bytes, got 5",
            nil, "span 0: trace_id must be 16 bytes, got 0",
        ])
    }

    @Test func linksWithEmptyIDsAreKept() throws {
        let span = PB.span(traceID: Self.validTrace, spanID: Self.validSpan, extra: PB.len(13, PB.string(3, "ts")))
        let link = try OTLPProtobuf.decodeTraces(PB.traces([span])).data.resourceSpans[0].scopeSpans[0].spans[0].links[0]
        #expect(link.traceID == .zero && link.spanID == .zero && link.traceState == "ts")
    }

    @Test func rejectsLogRecordsWithMalformedIDs() throws {
        let records = [
            PB.string(3, "ok") + PB.len(9, []) + PB.len(10, []),
            PB.string(3, "bad trace") + PB.len(9, PB.bytes(3)),
            PB.string(3, "bad span") + PB.len(10, PB.bytes(16)),
            PB.string(3, "zero ids") + PB.len(9, PB.bytes(16, fill: 0)) + PB.len(10, PB.bytes(8, fill: 0)),
        ]
        let request = PB.len(1, PB.len(2, records.flatMap { PB.len(2, $0) }))
        let result = try OTLPProtobuf.decodeLogs(request)
        #expect(result.rejected == 2)
        #expect(result.rejectionReason == "log record 1: trace_id must be empty or 16 bytes, got 3 (2 rejected in total)")
        let kept = result.data.resourceLogs[0].scopeLogs[0].logRecords
        #expect(kept.map(\.severityText) == ["ok", "zero ids"])
        #expect(kept.allSatisfy { $0.traceID == nil && $0.spanID == nil })
    }

    @Test func rejectsUnnamedMetricsAndPointsWithMalformedExemplars() throws {
        let point = PB.len(1, PB.fixed64(4, 1.5.bitPattern))
        let badExemplarPoint = PB.len(1, PB.len(5, PB.len(4, PB.bytes(7))))
        let unnamed = PB.len(5, point + point)
        let named = PB.string(1, "m") + PB.len(5, point + badExemplarPoint + point)
        let request = PB.len(1, PB.len(2, PB.len(2, unnamed) + PB.len(2, named)))
        let result = try OTLPProtobuf.decodeMetrics(request)
        #expect(result.rejected == 3)
        #expect(result.rejectionReason == "metric 0: name must not be empty (3 rejected in total)")
        let metrics = result.data.resourceMetrics[0].scopeMetrics[0].metrics
        #expect(metrics.map(\.name) == ["m"])
        #expect(metrics[0].data.pointCount == 2)

        let only = try OTLPProtobuf.decodeMetrics(PB.len(1, PB.len(2, PB.len(2, named))))
        #expect(only.rejectionReason == "metric 0 (m): data point 1: exemplar 0: span_id must be empty or 8 bytes, got 7")
    }

    // MARK: Errors

    static let errorCases: [(name: String, bytes: [UInt8], message: String)] = [
        ("truncated varint", [0x08, 0x80], "truncated varint at offset 1"),
        ("varint too long", [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01], "varint longer than 10 bytes"),
        ("field number zero", [0x00, 0x00], "invalid field tag 0 at offset 0"),
        ("invalid wire type", [0x0F], "invalid wire type 7 for field 1 in ExportTraceServiceRequest at offset 0"),
        (
            "invalid wire type in span", PB.traces([PB.span(traceID: validTrace, spanID: validSpan, extra: [0x17])]),
            "invalid wire type 7 for field 2 in Span at offset 37"
        ),
        ("group", [0x0B, 0x0C], "unsupported group (wire type 3) for field 1 in ExportTraceServiceRequest at offset 0"),
        ("length past end", [0x0A, 0x05, 0x01], "truncated length-delimited field 1: length 5 exceeds the 1 bytes left at offset 2"),
        ("huge length", [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], "truncated length-delimited field 1"),
        ("length past nested end", PB.len(1, PB.tag(2, 2) + [0x09]) + [UInt8](repeating: 0, count: 9), "exceeds the 0 bytes left"),
        ("truncated fixed64", PB.len(1, PB.len(2, PB.len(2, PB.tag(7, 1) + [1, 2, 3]))), "truncated fixed64 field at offset 7"),
        ("truncated unknown fixed32", PB.tag(50, 5) + [1], "truncated fixed32 field 50 in ExportTraceServiceRequest"),
        (
            "invalid UTF-8", PB.traces([PB.span(traceID: validTrace, spanID: validSpan, name: "ok") + PB.len(5, [0x61, 0xFF])]),
            "invalid UTF-8 in string field 5 of Span at offset 40"
        ),
        ("overlong UTF-8", PB.len(1, PB.len(1, PB.len(1, PB.len(1, [0xC0, 0xAF])))), "invalid UTF-8 in string field 1 of KeyValue"),
        ("surrogate in UTF-8", PB.len(1, PB.len(1, PB.len(1, PB.len(1, [0xED, 0xA0, 0x80])))), "invalid UTF-8"),
    ]

    @Test(arguments: errorCases)
    func rejectsMalformedInput(_ c: (name: String, bytes: [UInt8], message: String)) {
        do {
            _ = try OTLPProtobuf.decodeTraces(c.bytes)
            Issue.record("\(c.name): decoded without error")
        } catch let error as OTLPDecodingError {
            #expect(error.message.contains(c.message), "\(c.name): \(error.message)")
        } catch {
            Issue.record("\(c.name): unexpected error \(error)")
        }
    }

    @Test func rejectsDeepAnyValueNesting() throws {
        func nested(_ depth: Int) -> [UInt8] {
            var value = PB.varintField(3, 1)
            for _ in 0..<depth { value = PB.len(5, PB.len(1, value)) }
            return PB.len(1, PB.len(2, PB.len(2, PB.len(5, value))))  // ResourceLogs → ScopeLogs → LogRecord → body
        }
        _ = try OTLPProtobuf.decodeLogs(nested(OTLPProtobuf.maxAnyValueDepth))
        #expect(throws: OTLPDecodingError.self) { try OTLPProtobuf.decodeLogs(nested(OTLPProtobuf.maxAnyValueDepth + 1)) }
        #expect(throws: OTLPDecodingError.self) { try OTLPProtobuf.decodeLogs(nested(1_000)) }
    }

    @Test func truncatingAValidRequestAnywhereNeverCrashes() throws {
        let full = OTLPProtobuf.encode(Fixtures.metrics)
        var failures = 0
        for n in 0..<full.count {
            do { _ = try OTLPProtobuf.decodeMetrics(Array(full[..<n])) } catch { failures += 1 }
        }
        #expect(failures > full.count / 2)
    }
}
