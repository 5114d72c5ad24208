import SextantJaeger
import SextantThrift
import Testing

@Suite("Jaeger thrift")
struct JaegerThriftTests {
    // MARK: Golden vectors (jaeger-client's generated types + Apache Thrift's Python library)

    @Test(arguments: ThriftProtocolKind.allCases)
    func batchGolden(kind: ThriftProtocolKind) throws {
        let golden = try Fixtures.file("batch.\(kind).thrift")
        #expect(try JaegerThrift.decodeBatch(golden, protocol: kind) == Fixtures.batch)
        #expect(JaegerThrift.encodeBatch(Fixtures.batch, protocol: kind) == golden)
    }

    @Test(arguments: ThriftProtocolKind.allCases)
    func emitBatchGolden(kind: ThriftProtocolKind) throws {
        let golden = try Fixtures.file("emit_batch.\(kind).thrift")
        #expect(try JaegerThrift.decodeAgentMessage(golden, protocol: kind) == [Fixtures.batch])
        #expect(JaegerThrift.encodeAgentEmitBatch(Fixtures.batch, protocol: kind, seqID: Fixtures.emitBatchSeqID) == golden)
    }

    @Test func batchWithStatsGolden() throws {
        let golden = try Fixtures.file("batch_with_stats.compact.thrift")
        #expect(try JaegerThrift.decodeBatch(golden, protocol: .compact) == Fixtures.batchWithStats)
        #expect(JaegerThrift.encodeBatch(Fixtures.batchWithStats, protocol: .compact) == golden)
        let binary = JaegerThrift.encodeBatch(Fixtures.batchWithStats, protocol: .binary)
        #expect(try JaegerThrift.decodeBatch(binary, protocol: .binary) == Fixtures.batchWithStats)
    }

    /// Every optional scalar keeps its presence through a round trip, including unusual ones.
    @Test(arguments: ThriftProtocolKind.allCases)
    func tagPresenceRoundTrip(kind: ThriftProtocolKind) throws {
        let odd = JaegerTag(key: "odd", vType: JaegerTagType(rawValue: 9), vStr: "", vDouble: 0, vBool: false, vLong: 0, vBinary: [])
        let batch = JaegerBatch(
            process: JaegerProcess(serviceName: "", tags: [odd]),
            spans: [
                JaegerSpan(
                    traceIdLow: -1, traceIdHigh: Int64.min, spanId: Int64.max, parentSpanId: -1, operationName: "",
                    references: [JaegerSpanRef(refType: JaegerSpanRefType(rawValue: 7), traceIdLow: 1, spanId: 2)], flags: -1,
                    startTime: -5, duration: -1, tags: [odd], logs: [JaegerLog(timestamp: 0, fields: [odd])])
            ],
            seqNo: -1, stats: JaegerClientStats())
        let bytes = JaegerThrift.encodeBatch(batch, protocol: kind)
        #expect(try JaegerThrift.decodeBatch(bytes, protocol: kind) == batch)
        let message = JaegerThrift.encodeAgentEmitBatch(batch, protocol: kind, seqID: -9)
        #expect(try JaegerThrift.decodeAgentMessage(message, protocol: kind) == [batch])
    }

    // MARK: Unknown fields

    /// Adds fields of every type, with ids the IDL does not use, to every struct of the golden
    /// batch: decoding must skip them all and yield the same batch.
    @Test(arguments: ThriftProtocolKind.allCases)
    func skipsUnknownFieldsOfEveryType(kind: ThriftProtocolKind) throws {
        let golden = try Fixtures.file("batch.\(kind).thrift")
        let tree = try Thrift.decode(golden, kind, as: .struct)
        guard case .structure(let extras) = Fixtures.allTypes else { Issue.record("allTypes is a struct"); return }
        let unknown = extras.enumerated().map { ThriftField(Int16(100 + $0.offset), $0.element.value) }

        func inject(_ value: ThriftValue) -> ThriftValue {
            switch value {
            case .structure(let fields):
                // Unknown fields go first, between and last, so ids jump back and forth.
                var out = [ThriftField(-7, .structure(unknown))]
                for field in fields {
                    out.append(ThriftField(field.id, inject(field.value)))
                    out.append(unknown[Int(field.id) % unknown.count])
                }
                return .structure(out + unknown)
            case .list(let t, let items): return .list(t, items.map(inject))
            default: return value
            }
        }
        let noisy = Thrift.encode(inject(tree), kind)
        #expect(noisy.count > golden.count * 3)
        #expect(try JaegerThrift.decodeBatch(noisy, protocol: kind) == Fixtures.batch)
    }

    // MARK: Malformed payloads

    /// Every proper prefix of a valid payload is an error, never a crash or a partial batch.
    @Test(arguments: ThriftProtocolKind.allCases)
    func everyTruncationFails(kind: ThriftProtocolKind) throws {
        let batch = try Fixtures.file("batch.\(kind).thrift")
        let message = try Fixtures.file("emit_batch.\(kind).thrift")
        for n in 0..<batch.count {
            #expect(throws: ThriftError.self) { try JaegerThrift.decodeBatch(Array(batch.prefix(n)), protocol: kind) }
        }
        for n in 0..<message.count {
            #expect(throws: ThriftError.self) { try JaegerThrift.decodeAgentMessage(Array(message.prefix(n)), protocol: kind) }
        }
    }

    /// Corrupted payloads (deterministic pseudo-random byte changes) either decode or throw.
    @Test(arguments: ThriftProtocolKind.allCases)
    func corruptionNeverCrashes(kind: ThriftProtocolKind) throws {
        let golden = try Fixtures.file("emit_batch.\(kind).thrift")
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: seed >> 33)
        }
        var failures = 0
        for _ in 0..<2000 {
            var bytes = golden
            for _ in 0..<(1 + next() % 4) { bytes[next() % bytes.count] = UInt8(truncatingIfNeeded: next()) }
            do { _ = try JaegerThrift.decodeAgentMessage(bytes, protocol: kind) } catch { failures += 1 }
        }
        #expect(failures > 0)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var value: ThriftValue
        var code: ThriftError.Code
        var message: String
        var testDescription: String { name }
    }

    static let process = ThriftValue.structure([ThriftField(1, .binary(Array("svc".utf8)))])
    static let span = ThriftValue.structure(
        [1, 2, 3, 4].map { ThriftField($0, .i64(1)) } + [ThriftField(5, .binary([])), ThriftField(7, .i32(0)), ThriftField(8, .i64(0)), ThriftField(9, .i64(0))])

    static let cases: [Case] = [
        Case(
            name: "missing spans", value: .structure([ThriftField(1, process)]), code: .missingRequiredField,
            message: "required field spans of Batch is missing"),
        Case(
            name: "missing process", value: .structure([ThriftField(2, .list(.struct, []))]), code: .missingRequiredField,
            message: "required field process of Batch is missing"),
        Case(
            name: "process as i32", value: .structure([ThriftField(1, .i32(1)), ThriftField(2, .list(.struct, []))]),
            code: .unexpectedFieldType, message: "field 1 (process) of Batch has type i32, expected struct"),
        Case(
            name: "spans of i64", value: .structure([ThriftField(1, process), ThriftField(2, .list(.i64, [.i64(1)]))]),
            code: .unexpectedFieldType, message: "Batch.spans is a list of i64, expected struct"),
        Case(
            name: "span without operationName",
            value: .structure([ThriftField(1, process), ThriftField(2, .list(.struct, [.structure([ThriftField(1, .i64(1))])]))]),
            code: .missingRequiredField, message: "required field traceIdHigh of Span is missing"),
        Case(
            name: "tag without vType",
            value: .structure([
                ThriftField(1, .structure([ThriftField(1, .binary([])), ThriftField(2, .list(.struct, [.structure([ThriftField(1, .binary([]))])]))])),
                ThriftField(2, .list(.struct, [])),
            ]),
            code: .missingRequiredField, message: "required field vType of Tag is missing"),
        Case(
            name: "vBool as byte",
            value: .structure([
                ThriftField(
                    1,
                    .structure([
                        ThriftField(1, .binary([])),
                        ThriftField(2, .list(.struct, [.structure([ThriftField(1, .binary([])), ThriftField(2, .i32(2)), ThriftField(5, .byte(1))])])),
                    ])),
                ThriftField(2, .list(.struct, [])),
            ]),
            code: .unexpectedFieldType, message: "field 5 (vBool) of Tag has type byte, expected bool"),
    ]

    @Test(arguments: ThriftProtocolKind.allCases, cases)
    func rejectsInvalidBatch(kind: ThriftProtocolKind, c: Case) {
        let bytes = Thrift.encode(c.value, kind)
        #expect {
            try JaegerThrift.decodeBatch(bytes, protocol: kind)
        } throws: { error in
            guard let error = error as? ThriftError else { return false }
            return error.code == c.code && error.message == c.message
        }
    }

    @Test(arguments: ThriftProtocolKind.allCases)
    func validMinimalBatch(kind: ThriftProtocolKind) throws {
        let bytes = Thrift.encode(.structure([ThriftField(1, Self.process), ThriftField(2, .list(.struct, [Self.span]))]), kind)
        let batch = try JaegerThrift.decodeBatch(bytes, protocol: kind)
        #expect(batch.process.serviceName == "svc")
        #expect(batch.spans == [JaegerSpan(traceIdLow: 1, traceIdHigh: 1, spanId: 1, parentSpanId: 1, operationName: "")])
    }

    @Test(arguments: ThriftProtocolKind.allCases)
    func rejectsTrailingBytes(kind: ThriftProtocolKind) throws {
        let bytes = JaegerThrift.encodeBatch(Fixtures.batch, protocol: kind) + [0]
        #expect {
            try JaegerThrift.decodeBatch(bytes, protocol: kind)
        } throws: { ($0 as? ThriftError)?.code == .trailingBytes }
    }

    @Test(arguments: ThriftProtocolKind.allCases)
    func agentMessages(kind: ThriftProtocolKind) throws {
        func message(_ header: ThriftMessageHeader, _ args: ThriftValue) -> [UInt8] { Thrift.encode(args, kind, message: header) }

        let zipkin = message(ThriftMessageHeader(name: "emitZipkinBatch", type: .oneway, seqID: 1), .structure([]))
        #expect {
            try JaegerThrift.decodeAgentMessage(zipkin, protocol: kind)
        } throws: { error in
            (error as? ThriftError)?.message == "agent method \"emitZipkinBatch\" is not supported (expected emitBatch)"
        }

        let reply = message(ThriftMessageHeader(name: "emitBatch", type: .reply, seqID: 1), .structure([]))
        #expect { try JaegerThrift.decodeAgentMessage(reply, protocol: kind) } throws: { ($0 as? ThriftError)?.code == .unexpectedMessage }

        let call = message(ThriftMessageHeader(name: "emitBatch", type: .call, seqID: 1), .structure([]))
        #expect(try JaegerThrift.decodeAgentMessage(call, protocol: kind) == [])

        let wrongArg = message(ThriftMessageHeader(name: "emitBatch", type: .oneway, seqID: 1), .structure([ThriftField(1, .binary([]))]))
        #expect { try JaegerThrift.decodeAgentMessage(wrongArg, protocol: kind) } throws: { ($0 as? ThriftError)?.code == .unexpectedFieldType }
    }

    /// A payload that claims far more elements than it holds fails before reserving for them.
    @Test(arguments: ThriftProtocolKind.allCases)
    func lyingSpanCount(kind: ThriftProtocolKind) {
        var w: any ThriftWriter = kind == .binary ? ThriftBinaryWriter() : ThriftCompactWriter()
        w.writeStructBegin()
        w.writeFieldBegin(.struct, id: 1)
        Self.process.write(&w)
        w.writeFieldBegin(.list, id: 2)
        w.writeListBegin(.struct, count: Int(Int32.max))
        let bytes = w.bytes + [0, 0, 0]
        #expect { try JaegerThrift.decodeBatch(bytes, protocol: kind) } throws: { ($0 as? ThriftError)?.code == .sizeExceedsInput }
    }
}
