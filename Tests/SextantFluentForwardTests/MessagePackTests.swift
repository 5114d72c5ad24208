import SextantModel
import Testing

@testable import SextantFluentForward

@Suite struct MessagePackTests {
    static let samples: [MessagePackValue] = [
        .null, .bool(true), .bool(false),
        .int(0), .int(127), .int(128), .int(255), .int(256), .int(65535), .int(65536), .int(Int64(UInt32.max)),
        .int(Int64(UInt32.max) + 1), .int(Int64.max), .uint(UInt64.max),
        .int(-1), .int(-32), .int(-33), .int(-128), .int(-129), .int(-32768), .int(-32769), .int(Int64(Int32.min)),
        .int(Int64(Int32.min) - 1), .int(Int64.min),
        .float(0), .float(-1.5), .float(.infinity),
        .string(""), .string("héllo"), .string(String(repeating: "a", count: 31)), .string(String(repeating: "b", count: 32)),
        .string(String(repeating: "c", count: 256)), .string(String(repeating: "d", count: 70_000)),
        .binary([]), .binary([1, 2, 3]), .binary([UInt8](repeating: 7, count: 300)), .binary([UInt8](repeating: 9, count: 70_000)),
        .array([]), .array((0..<15).map { .int(Int64($0)) }), .array((0..<16).map { .int(Int64($0)) }),
        .array((0..<70_000).map { _ in .null }),
        .map([]), .map([MessagePackPair(.string("a"), .array([.int(1), .map([MessagePackPair(.int(1), .null)])]))]),
        .map((0..<16).map { MessagePackPair(.int(Int64($0)), .bool(true)) }),
        .ext(type: 0, data: [1, 2, 3, 4, 5, 6, 7, 8]), .ext(type: -1, data: [1]), .ext(type: 5, data: [1, 2, 3]),
        .ext(type: 7, data: [UInt8](repeating: 1, count: 16)), .ext(type: 8, data: [UInt8](repeating: 1, count: 300)),
    ]

    @Test func roundTripsEveryFormat() throws {
        for v in Self.samples {
            let bytes = MessagePack.encode(v)
            #expect(try MessagePack.decode(bytes) == v)
            // The framer finds the same end, and skipValue agrees.
            var framer = MessagePackFramer(maxFrameSize: 1 << 20)
            #expect(try bytes.withUnsafeBytes { try framer.next($0) } == bytes.count)
            try bytes.withUnsafeBytes { raw in
                var r = MessagePackReader(raw)
                try r.skipValue()
                #expect(r.isAtEnd)
            }
        }
    }

    @Test func smallestEncodings() {
        #expect(MessagePack.encode(.int(5)) == [0x05])
        #expect(MessagePack.encode(.int(-5)) == [0xfb])
        #expect(MessagePack.encode(.int(200)) == [0xcc, 200])
        #expect(MessagePack.encode(.int(-100)) == [0xd0, 0x9c])
        #expect(MessagePack.encode(.string("ab")) == [0xa2, 0x61, 0x62])
        #expect(MessagePack.encode(.array([.null])) == [0x91, 0xc0])
        #expect(MessagePack.encode(.ext(type: 0, data: [0, 0, 0, 1, 0, 0, 0, 2])) == [0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2])
    }

    /// Bytes produced by Python's `msgpack.packb` (msgpack 1.2.4).
    @Test func decodesPythonMsgpack() throws {
        let bytes = hex("93a76170702e776562ce6553f10082a36c6f67a568656c6c6fa16e01")
        #expect(
            try MessagePack.decode(bytes)
                == .array([
                    .string("app.web"), .int(1_700_000_000),
                    .map([MessagePackPair(.string("log"), .string("hello")), MessagePackPair(.string("n"), .int(1))]),
                ]))
    }

    @Test func truncatedInputFailsWithOffset() {
        let bytes = MessagePack.encode(.array([.string("hello"), .int(70_000)]))
        for cut in 0..<bytes.count {
            #expect(throws: MessagePackError.self) { try MessagePack.decode(Array(bytes[0..<cut])) }
        }
        #expect(throws: MessagePackError(.truncated, at: 2, "unexpected end of data inside a 2-byte number")) {
            try MessagePack.decode([0x92, 0xcd, 0x01])
        }
        #expect(throws: MessagePackError(.lengthPastEnd, at: 0, "array of 1 elements cannot fit in the 0 bytes left")) {
            try MessagePack.decode([0x91])
        }
    }

    @Test func claimedLengthsPastTheDataDoNotAllocate() {
        // str32 claiming 4 GiB, array32 claiming 4 billion elements, map32 likewise, ext32.
        let cases: [[UInt8]] = [
            [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
            [0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0], [0xc9, 0xff, 0xff, 0xff, 0xff, 0x00],
        ]
        for c in cases {
            #expect {
                try MessagePack.decode(c)
            } throws: { e in
                (e as? MessagePackError)?.kind == .lengthPastEnd && (e as? MessagePackError)?.offset == 0
            }
        }
        // The error names the offset of the offending header inside the value.
        #expect {
            try MessagePack.decode([0x92, 0x01, 0xda, 0x00, 0x10, 0x61])
        } throws: { e in
            (e as? MessagePackError)?.offset == 2 && "\(e)".contains("at byte 2")
        }
    }

    @Test func invalidByteAndDepth() {
        #expect { try MessagePack.decode([0x91, 0xc1]) } throws: { ($0 as? MessagePackError)?.kind == .invalidByte }
        let deep = [UInt8](repeating: 0x91, count: 100) + [0xc0]
        #expect { try MessagePack.decode(deep) } throws: { ($0 as? MessagePackError)?.kind == .tooDeep }
        #expect(throws: Never.self) { try MessagePack.decode(deep, maxDepth: 200) }
        var framer = MessagePackFramer(maxFrameSize: 1 << 20, maxDepth: 64)
        #expect { try deep.withUnsafeBytes { try framer.next($0) } } throws: { ($0 as? MessagePackError)?.kind == .tooDeep }
        #expect { try MessagePack.decode([0xc0, 0xc0]) } throws: { "\($0)".contains("1 bytes after the value") }
    }

    @Test func framerResumesAcrossEverySplitAndEnforcesTheLimit() throws {
        let frame = MessagePack.encode(
            .array([.string("t"), .binary([UInt8](repeating: 1, count: 1000)), .map([MessagePackPair(.string("chunk"), .string("x"))])]))
        let stream = frame + frame
        for split in 0...stream.count {
            var framer = MessagePackFramer(maxFrameSize: 1 << 20)
            var buffered: [UInt8] = []
            var found: [Int] = []
            for piece in [Array(stream[0..<split]), Array(stream[split...])] {
                buffered += piece
                while let n = try buffered.withUnsafeBytes({ try framer.next($0) }) {
                    found.append(n)
                    buffered.removeFirst(n)
                }
            }
            #expect(found == [frame.count, frame.count])
        }
        // A header that claims more than the limit fails at once, before the bytes arrive.
        var framer = MessagePackFramer(maxFrameSize: 100)
        #expect {
            try ([0x92, 0xc6, 0x00, 0x10, 0x00, 0x00] as [UInt8]).withUnsafeBytes { try framer.next($0) }
        } throws: { ($0 as? MessagePackError)?.kind == .tooLarge }
    }

    @Test func anyValueMapping() throws {
        let bytes = MessagePack.encode(
            .map([
                MessagePackPair(.string("s"), .string("x")), MessagePackPair(.string("b"), .binary([1])),
                MessagePackPair(.string("n"), .null), MessagePackPair(.int(7), .float(1.5)),
                MessagePackPair(.string("u"), .uint(UInt64.max)), MessagePackPair(.string("a"), .array([.bool(true)])),
                MessagePackPair(.string("m"), .map([MessagePackPair(.string("k"), .int(-1))])),
            ]))
        let kv = try bytes.withUnsafeBytes { raw in
            var r = MessagePackReader(raw)
            return try r.readKeyValues()
        }
        #expect(
            kv == [
                KeyValue("s", .string("x")), KeyValue("b", .bytes([1])), KeyValue("n", .empty), KeyValue("7", .double(1.5)),
                KeyValue("u", .double(Double(UInt64.max))), KeyValue("a", .array([.bool(true)])),
                KeyValue("m", .kvlist([KeyValue("k", .int(-1))])),
            ])
    }
}

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
        out.append(v(a) << 4 | v(b))
    }
    return out
}
