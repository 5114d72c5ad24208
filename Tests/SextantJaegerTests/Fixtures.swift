import Foundation
import SextantJaeger
import SextantModel
import SextantThrift

/// The golden values of `Fixtures/generate.py`, built in Swift. Keep the two in step.
enum Fixtures {
    static func file(_ name: String) throws -> [UInt8] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        return [UInt8](try Data(contentsOf: dir.appendingPathComponent(name)))
    }

    static let t0: Int64 = 1_700_000_000_000_000
    static let traceHigh: Int64 = 0x5B8E_FFF7_9803_8103
    static let traceLow: Int64 = -0x2D96_49CC_7EC0_39F4  // 0xd269b633813fc60c
    static let otherTraceLow: Int64 = 0x0AF7_6519_16CD_43DD
    static let serverSpanID: Int64 = 0x0EE1_9B7E_C3C1_B174
    static let parentSpanID: Int64 = 0x0EE1_9B7E_C3C1_B173

    static var process: JaegerProcess {
        JaegerProcess(
            serviceName: "checkout",
            tags: [
                .string("hostname", "node-1"),
                .string("ip", "10.0.0.7"),
                .string("jaeger.version", "Python-4.8.0"),
                .long("host.cores", 8),
                .double("load", 0.75),
                .bool("canary", true),
                .binary("blob", [0x00, 0x01, 0xFE, 0xFF]),
            ])
    }

    static var serverSpan: JaegerSpan {
        JaegerSpan(
            traceIdLow: traceLow, traceIdHigh: traceHigh, spanId: serverSpanID, parentSpanId: 0,
            operationName: "GET /api/checkout",
            references: [
                JaegerSpanRef(refType: .childOf, traceIdLow: traceLow, traceIdHigh: traceHigh, spanId: parentSpanID),
                JaegerSpanRef(refType: .followsFrom, traceIdLow: otherTraceLow, traceIdHigh: 0, spanId: -5),
            ],
            flags: 1, startTime: t0, duration: 250_000,
            tags: [
                .string("otel.scope.name", "io.sextant.test"),
                .string("otel.scope.version", "1.2.3"),
                .string("span.kind", "server"),
                .long("http.status_code", 500),
                .bool("error", true),
                .string("otel.status_description", "upstream failed"),
                .string("w3c.tracestate", "rojo=00f067aa0ba902b7"),
                .string("greeting", "h\u{e9}llo \u{4e16}\u{754c} \u{1F680}"),
                .long("negative", -42),
                .double("ratio", -2.5e-7),
                .bool("cached", false),
            ],
            logs: [
                JaegerLog(timestamp: t0 + 1, fields: [.string("event", "exception"), .string("exception.message", "boom")]),
                JaegerLog(timestamp: t0 + 2, fields: [.long("attempt", 2)]),
                JaegerLog(timestamp: t0 + 3, fields: []),
            ])
    }

    static var clientSpan: JaegerSpan {
        JaegerSpan(
            traceIdLow: 0x1234, traceIdHigh: 0, spanId: 0xFF, parentSpanId: serverSpanID, operationName: "SELECT", flags: 3,
            startTime: t0 + 10, duration: 20,
            tags: [.string("span.kind", "client"), .string("otel.status_code", "OK")] + (0..<13).map { .long("k\($0)", Int64($0)) })
    }

    /// `batch()` in generate.py: what jaeger-client's own `Batch` type can hold.
    static var batch: JaegerBatch { JaegerBatch(process: process, spans: [serverSpan, clientSpan]) }

    /// `batch_with_stats()` in generate.py: the newer IDL's `seqNo` and `stats`.
    static var batchWithStats: JaegerBatch {
        JaegerBatch(
            process: process, spans: [clientSpan], seqNo: 42,
            stats: JaegerClientStats(fullQueueDroppedSpans: 1, tooLargeDroppedSpans: 2, failedToEmitSpans: 3))
    }

    /// The sequence id `emit_batch()` writes.
    static let emitBatchSeqID: Int32 = 7

    /// `all_types()` in generate.py.
    static let allTypesHeader = ThriftMessageHeader(name: "allTypes", type: .call, seqID: -2)

    static var allTypes: ThriftValue {
        .structure([
            ThriftField(1, .bool(true)),
            ThriftField(2, .bool(false)),
            ThriftField(3, .byte(-7)),
            ThriftField(4, .i16(-300)),
            ThriftField(5, .i32(100_000)),
            ThriftField(6, .i64(-1_234_567_890_123)),
            ThriftField(7, .double(3.5)),
            ThriftField(8, .binary(Array("h\u{e9}llo".utf8))),
            ThriftField(9, .binary([0x00, 0xFF])),
            ThriftField(20, .list(.i32, (0..<20).map { .i32(Int32($0 * 1000 - 5000)) })),
            ThriftField(40, .set(.binary, [.binary([0x61]), .binary([0x62])])),
            ThriftField(41, .map(.binary, .i64, [ThriftPair(.binary([0x78]), .i64(1)), ThriftPair(.binary([0x79]), .i64(-1))])),
            ThriftField(42, .map(.i32, .bool, [])),
            ThriftField(43, .structure([ThriftField(1, .i32(5)), ThriftField(2, .list(.bool, [.bool(true), .bool(false), .bool(true)]))])),
            ThriftField(44, .list(.list, [.list(.i16, [.i16(1), .i16(2)]), .list(.i16, [])])),
            ThriftField(45, .uuid([0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF])),
            ThriftField(-1, .i32(99)),
            ThriftField(46, .bool(true)),
        ])
    }
}
