import SextantModel
@testable import SextantOTLP
import Testing

/// Trace requests kept as their received bytes (`OTLPProtobuf.decodeTraces(keeping:)`): kept only
/// when re-encoding the decoded model would give the same bytes, and then indistinguishable from
/// the model everywhere.
@Suite("OTLP traces kept encoded")
struct EncodedTracesTests {
    static let traceID = PB.bytes(16, fill: 0x11)
    static let spanID = PB.bytes(8, fill: 0x22)

    static func canonical(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { OTLPProtobuf.isCanonicalTraces($0) != nil }
    }

    /// What `TelemetryLimits` would measure on the model, computed independently of the validator.
    static func extent(_ data: TracesData) -> AttributeExtent {
        var e = AttributeExtent()
        func longest(_ v: AnyValue) -> Int {
            switch v {
            case .string(let s): return s.utf8.count
            case .bytes(let b): return b.count
            case .array(let a): return a.map(longest).max() ?? 0
            case .kvlist(let kv): return kv.map { longest($0.value) }.max() ?? 0
            default: return 0
            }
        }
        func list(_ attributes: [KeyValue]) {
            e.attributes = max(e.attributes, attributes.count)
            e.valueLength = max(e.valueLength, attributes.map { longest($0.value) }.max() ?? 0)
        }
        for rs in data.resourceSpans {
            list(rs.resource.attributes)
            for ss in rs.scopeSpans {
                list(ss.scope.attributes)
                for span in ss.spans {
                    list(span.attributes)
                    span.events.forEach { list($0.attributes) }
                    span.links.forEach { list($0.attributes) }
                    e.events = max(e.events, span.events.count)
                    e.links = max(e.links, span.links.count)
                }
            }
        }
        return e
    }

    /// `bytes` are kept, and the kept batch is the model the decoder builds, encoding to `bytes`.
    static func expectKept(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let eager = try OTLPProtobuf.decodeTraces(bytes)
        let kept = try OTLPProtobuf.decodeTraces(keeping: bytes)
        let encoded = try #require(kept.data.encoded, sourceLocation: sourceLocation)
        #expect(eager.rejected == 0, sourceLocation: sourceLocation)
        #expect(kept.data == eager.data, sourceLocation: sourceLocation)
        #expect(kept.data.resourceSpans == eager.data.resourceSpans, sourceLocation: sourceLocation)
        #expect(encoded.spanCount == eager.data.spanCount, sourceLocation: sourceLocation)
        #expect(encoded.extent == extent(eager.data), sourceLocation: sourceLocation)
        #expect(OTLPProtobuf.encode(kept.data) == bytes, sourceLocation: sourceLocation)
        #expect(OTLPProtobuf.encode(eager.data) == OTLPProtobuf.withoutEmptyMessages(canonicalTraces: bytes), sourceLocation: sourceLocation)
    }

    /// An export of the OpenTelemetry Python SDK 1.x (`encode_spans` of its OTLP exporters, two spans of
    /// one trace): like the Go SDK, it writes an empty `Status` for each span whose status is unset, and
    /// span flags 0x100.
    static let pythonSDKExport = Array(
        hex: "0aea020ac2010a220a1674656c656d657472792e73646b2e6c616e677561676512080a06707974686f6e0a250a1274656c656d657472792e73646b2e6e616d65120f0a0d6f70656e74656c656d657472790a210a1574656c656d657472792e73646b2e76657273696f6e12080a06312e34352e320a3d0a13736572766963652e696e7374616e63652e696412260a2430373861666464652d313963362d343332642d616537632d3135383230316337626433340a130a0c736572766963652e6e616d6512030a017812a2010a0a0a036c69621203312e3012490a107855565ba1990cfeb1e0c8d4d91a8f651208f1afdd82fba4de1622088028a33f9cee6cd02a056368696c6430013937f48a472556ee184110298b472556ee187a0085010001000012490a107855565ba1990cfeb1e0c8d4d91a8f6512088028a33f9cee6cd02a06706172656e7430013924158a472556ee1841ee798b472556ee184a070a0161120218017a00850100010000"
    )

    @Test func sdkAndCollectorExportsAreKept() throws {
        try Self.expectKept(Self.pythonSDKExport)
        #expect(OTLPProtobuf.withoutEmptyMessages(canonicalTraces: Self.pythonSDKExport).count == Self.pythonSDKExport.count - 4)
        // The OTel Collector's encoder also writes empty resources and scopes.
        let id = PB.len(1, Self.traceID) + PB.len(2, Self.spanID)
        let collector = PB.len(1, PB.len(1, []) + PB.len(2, PB.len(1, []) + PB.len(2, id + PB.len(15, [])) + PB.len(2, id + PB.string(5, "n"))))
        try Self.expectKept(collector)
        #expect(OTLPProtobuf.withoutEmptyMessages(canonicalTraces: collector) == PB.len(1, PB.len(2, PB.len(2, id) + PB.len(2, id + PB.string(5, "n")))))
    }

    @Test func referenceEncodingsAreKept() throws {
        // Written by the Python protobuf runtime (Fixtures/generate.py).
        try Self.expectKept(Fixtures.file("traces.binpb"))
        try Self.expectKept(OTLPProtobuf.encode(Fixtures.benchmarkTraces(count: 50)))
    }

    @Test func edgeValuesAreKept() throws {
        let values: [AnyValue] = [
            .int(.min), .int(.max), .int(0), .bool(false), .bool(true), .double(0), .double(-0.0), .double(.infinity),
            .string(""), .string("ü→𝄞"), .bytes([]), .bytes([0, 1]), .array([]), .kvlist([]), .empty,
            .array([.array([.kvlist([KeyValue("", .empty)])]), .empty]),
        ]
        let span = Span(
            traceID: TraceID(high: 1, low: 0), spanID: SpanID(1), traceState: "k=v", parentSpanID: SpanID(2), flags: 0x301,
            name: "edge", kind: SpanKind(rawValue: -3), startTimeUnixNano: 1, endTimeUnixNano: .max,
            attributes: values.enumerated().map { KeyValue("k\($0.offset)", $0.element) } + [KeyValue("", .string("no key"))],
            droppedAttributesCount: .max,
            events: [SpanEvent(), SpanEvent(timeUnixNano: 5, name: "e", attributes: [KeyValue("a", .int(1))], droppedAttributesCount: 1)],
            droppedEventsCount: 2,
            links: [SpanLink(traceID: .zero, spanID: .zero), SpanLink(traceID: TraceID(high: 0, low: 9), spanID: SpanID(3), flags: 1)],
            droppedLinksCount: 3, status: SpanStatus(code: SpanStatus.Code(rawValue: -1), message: "m"))
        let data = TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [KeyValue("service.name", .string("svc"))], droppedAttributesCount: 4),
                scopeSpans: [
                    ScopeSpans(scope: InstrumentationScope(name: "lib", version: "1"), spans: [span, span], schemaURL: "https://s"),
                    ScopeSpans(), ScopeSpans(spans: [Span(traceID: TraceID(high: 0, low: 1), spanID: SpanID(7))]),
                ], schemaURL: "https://r"),
            ResourceSpans(),
        ])
        try Self.expectKept(OTLPProtobuf.encode(data))
    }

    /// Each is well-formed protobuf that decodes, but not as our encoder would write it, or with
    /// something the decoder drops: it must take the decoder, and come out the same as before.
    static let notCanonical: [(String, [UInt8])] = {
        let id = PB.len(1, traceID) + PB.len(2, spanID)
        func span(_ body: [UInt8]) -> [UInt8] { PB.traces([body]) }
        func attr(_ value: [UInt8]) -> [UInt8] { span(id + PB.len(9, PB.string(1, "k") + PB.len(2, value))) }
        return [
            ("unknown span field", span(id + PB.varintField(99, 1))),
            ("fields out of order", span(PB.string(5, "n") + id)),
            ("empty string written", span(id + PB.string(5, ""))),
            ("zero enum written", span(id + PB.varintField(6, 0))),
            ("zero fixed64 written", span(id + PB.fixed64(7, 0))),
            ("uint32 beyond 32 bits", span(id + PB.varintField(10, 1 << 33))),
            ("int32 not sign-extended", span(id + PB.varintField(6, 0xFFFF_FFFF))),
            ("non-minimal varint", span(id + PB.tag(6, 0) + [0x81, 0x00])),
            ("non-minimal length", PB.tag(1, 2) + [0x82, 0x00] + [0x12, 0x00]),
            ("all-zero parent", span(id + PB.len(4, PB.bytes(8, fill: 0)))),
            ("empty parent written", span(id + PB.len(4, []))),
            ("zero span ID", span(PB.len(1, traceID) + PB.len(2, PB.bytes(8, fill: 0)))),
            ("missing span ID", span(PB.len(1, traceID))),
            ("short trace ID", span(PB.len(1, PB.bytes(8)) + PB.len(2, spanID))),
            ("invalid UTF-8 name", span(id + PB.len(5, [0xC0, 0x80]))),
            ("attributes split by events", span(id + PB.len(9, PB.string(1, "a") + PB.len(2, [])) + PB.len(11, []) + PB.len(9, PB.string(1, "b") + PB.len(2, [])))),
            ("key-value without value", span(id + PB.len(9, PB.string(1, "k")))),
            ("two oneof members", attr(PB.varintField(3, 1) + PB.varintField(2, 1))),
            ("bool written as 2", attr(PB.varintField(2, 2))),
            ("zero link trace ID", span(id + PB.len(13, PB.len(1, PB.bytes(16, fill: 0))))),
            ("group wire type", span(id + PB.tag(20, 3) + PB.tag(20, 4))),
            ("repeated non-repeated field", span(id + PB.string(5, "a") + PB.string(5, "b"))),
        ]
    }()

    @Test(arguments: notCanonical)
    func otherEncodingsTakeTheDecoder(_ c: (name: String, bytes: [UInt8])) throws {
        #expect(!Self.canonical(c.bytes), "\(c.name)")
        let kept = try? OTLPProtobuf.decodeTraces(keeping: c.bytes)
        let eager = try? OTLPProtobuf.decodeTraces(c.bytes)
        #expect(kept?.data.encoded == nil, "\(c.name)")
        #expect(kept?.data == eager?.data && kept?.rejected == eager?.rejected, "\(c.name)")
    }

    @Test func changingTheModelDropsTheBytes() throws {
        let bytes = OTLPProtobuf.encode(Fixtures.traces)
        var data = try OTLPProtobuf.decodeTraces(keeping: bytes).data
        #expect(data.encoded != nil)
        data.resourceSpans[0].scopeSpans[0].spans[0].name = "renamed"
        #expect(data.encoded == nil)
        var expected = Fixtures.traces
        expected.resourceSpans[0].scopeSpans[0].spans[0].name = "renamed"
        #expect(data == expected)
        #expect(OTLPProtobuf.encode(data) == OTLPProtobuf.encode(expected))
    }

    @Test func batchesConcatenate() throws {
        let a = OTLPProtobuf.encode(Fixtures.traces)
        let b = OTLPProtobuf.encode(Fixtures.benchmarkTraces(count: 3))
        var batch = Telemetry.traces(try OTLPProtobuf.decodeTraces(keeping: a).data)
        batch.append(.traces(try OTLPProtobuf.decodeTraces(keeping: b).data))
        guard case .traces(let joined) = batch else { Issue.record("not traces"); return }
        #expect(joined.encoded?.chunks.count == 2)
        #expect(batch.itemCount == Fixtures.traces.spanCount + 3)
        #expect(OTLPProtobuf.encode(batch) == a + b)
        #expect(joined.resourceSpans == Fixtures.traces.resourceSpans + Fixtures.benchmarkTraces(count: 3).resourceSpans)
        #expect(try OTLPProtobuf.decodeTraces(a + b).data == joined)
        // Split and mixed with a model batch: the model, the same spans.
        let pieces = batch.split(maxItems: 2)
        #expect(pieces.map(\.itemCount).reduce(0, +) == batch.itemCount)
        var mixed = batch
        mixed.append(.traces(Fixtures.traces))
        guard case .traces(let m) = mixed else { return }
        #expect(m.encoded == nil)
        #expect(m.resourceSpans == joined.resourceSpans + Fixtures.traces.resourceSpans)
    }

    /// `send_batch_max_size`: whole requests are packed while they fit and stay encoded; a larger one is
    /// decoded and split. Either way every span comes out once, in order.
    @Test func splittingKeepsWholeRequestsEncoded() throws {
        func kept(_ n: Int) throws -> Telemetry { .traces(try OTLPProtobuf.decodeTraces(keeping: OTLPProtobuf.encode(Fixtures.benchmarkTraces(count: n))).data) }
        func spans(_ t: Telemetry) -> [Span] {
            guard case .traces(let d) = t else { return [] }
            return d.resourceSpans.flatMap { $0.scopeSpans.flatMap(\.spans) }
        }
        var batch = try kept(5)
        batch.append(try kept(3))
        batch.append(try kept(20))
        batch.append(try kept(2))
        let all = spans(batch)
        for (max, encodedPieces) in [(8, 2), (6, 3), (30, 1), (100, 1)] {
            let pieces = batch.split(maxItems: max)
            #expect(pieces.allSatisfy { $0.itemCount <= max }, "max \(max)")
            #expect(pieces.flatMap(spans) == all, "max \(max)")
            let encoded = pieces.filter { if case .traces(let d) = $0 { return d.encoded != nil } else { return false } }
            #expect(encoded.count == encodedPieces, "max \(max): \(pieces.map(\.itemCount))")
        }
        // 8: [5 3] encoded, the 20 split into 8 8 4, [2] encoded.
        #expect(batch.split(maxItems: 8).map(\.itemCount) == [8, 8, 8, 4, 2])
    }

    @Test func limitsLeaveABatchWithinThemEncoded() throws {
        let bytes = OTLPProtobuf.encode(Fixtures.benchmarkTraces(count: 5))
        var within = Telemetry.traces(try OTLPProtobuf.decodeTraces(keeping: bytes).data)
        #expect(TelemetryLimits().apply(to: &within).isZero)
        guard case .traces(let w) = within else { return }
        #expect(w.encoded != nil)

        // Tight limits: the same changes and counts as on the model.
        let extent = Self.extent(Fixtures.benchmarkTraces(count: 5))
        let tight = TelemetryLimits(maxAttributes: max(1, extent.attributes - 1), maxAttributeValueLength: max(1, extent.valueLength - 1))
        var kept = Telemetry.traces(try OTLPProtobuf.decodeTraces(keeping: bytes).data)
        var model = Telemetry.traces(Fixtures.benchmarkTraces(count: 5))
        let keptCounts = tight.apply(to: &kept)
        #expect(!keptCounts.isZero)
        #expect(keptCounts == tight.apply(to: &model))
        #expect(kept == model)
    }

    /// The property the fuzz target also checks: whatever the validator keeps, the decoder takes
    /// whole and re-encodes to the same bytes. Every single-byte change of a rich request.
    @Test func everyByteChangeIsKeptOnlyIfCanonical() throws {
        let full = OTLPProtobuf.encode(Fixtures.traces)
        var kept = 0
        for i in full.indices {
            for delta: UInt8 in [1, 0x80, 0xFF] {
                var bytes = full
                bytes[i] &+= delta
                guard Self.canonical(bytes) else { continue }
                kept += 1
                try Self.expectKept(bytes)
            }
            let truncated = Array(full[..<i])
            if Self.canonical(truncated) { try Self.expectKept(truncated) }
        }
        #expect(kept > 0)
    }
}

@Suite("UTF-8 text checks")
struct UTF8TextTests {
    /// The ASCII check reads words, overlapping at the tail: every length and every position counts.
    @Test func asciiCheckSeesEveryByte() {
        for n in 0..<40 {
            let ascii = [UInt8](repeating: UInt8(ascii: "a"), count: n)
            #expect(ascii.withUnsafeBufferPointer { UTF8Text.isASCII($0) })
            for i in 0..<n {
                var bytes = ascii
                bytes[i] = 0xC3
                #expect(!bytes.withUnsafeBufferPointer { UTF8Text.isASCII($0) }, "length \(n), byte \(i)")
            }
        }
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        let digits = Array(hex.utf8)
        self = stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }
}
