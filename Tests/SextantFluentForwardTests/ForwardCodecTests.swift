import NIOCore
import SextantHTTP
import SextantModel
import Testing

@testable import SextantFluentForward

/// The inflater the receiver uses (SextantHTTP's zlib wrapper, bounded).
func gunzip(_ compressed: UnsafeRawBufferPointer, _ cap: Int) throws -> [UInt8] {
    Array(buffer: try Inflater.inflate(ByteBuffer(bytes: compressed), limit: cap))
}

func eventTime(_ sec: UInt32, _ nsec: UInt32) -> MessagePackValue {
    var data: [UInt8] = []
    for v in [sec, nsec] { for i in (0..<4).reversed() { data.append(UInt8(truncatingIfNeeded: v >> (UInt32(i) * 8))) } }
    return .ext(type: 0, data: data)
}

func record(_ pairs: (String, MessagePackValue)...) -> MessagePackValue {
    .map(pairs.map { MessagePackPair(.string($0.0), $0.1) })
}

func decodeEvents(_ v: MessagePackValue, limits: ForwardLimits = ForwardLimits()) throws -> ForwardEvents {
    guard case .events(let e) = try ForwardCodec.decode(MessagePack.encode(v), limits: limits, inflate: gunzip) else {
        throw MessagePackError(.unexpectedType, at: 0, "not events")
    }
    return e
}

@Suite struct ForwardCodecTests {
    let entries = [
        ForwardEntry(timeUnixNano: 1_700_000_000_123_456_789, record: [KeyValue("log", .string("a"))]),
        ForwardEntry(timeUnixNano: 1_700_000_001_000_000_000, record: [KeyValue("message", .string("b")), KeyValue("n", .int(2))]),
    ]

    var entryValues: [MessagePackValue] {
        [
            .array([eventTime(1_700_000_000, 123_456_789), record(("log", .string("a")))]),
            .array([.int(1_700_000_001), record(("message", .string("b")), ("n", .int(2)))]),
        ]
    }

    @Test func messageMode() throws {
        let e = try decodeEvents(.array([.string("app"), eventTime(1_700_000_000, 123_456_789), record(("log", .string("a")))]))
        #expect(e == ForwardEvents(mode: .message, tag: "app", entries: [entries[0]]))
        let withOption = try decodeEvents(
            .array([.string("app"), .int(1_700_000_000), record(("k", .bool(true))), record(("chunk", .string("abc")))]))
        #expect(withOption.option.chunk == "abc")
        #expect(withOption.entries[0].timeUnixNano == 1_700_000_000_000_000_000)
    }

    @Test func forwardMode() throws {
        let e = try decodeEvents(.array([.string("app"), .array(entryValues), record(("chunk", .string("c1")), ("size", .int(2)))]))
        #expect(e == ForwardEvents(mode: .forward, tag: "app", entries: entries, option: ForwardOption(chunk: "c1", size: 2)))
        // The frame Python's msgpack produced for the same shape.
        let python = hex(
            "93a76170702e7765629292d7006553f100075bcd1582a76d657373616765a26d31a16b9301c0c392ce6553f10181a178c402010282a56368756e6ba26331a473697a6502"
        )
        guard case .events(let p) = try ForwardCodec.decode(python, inflate: gunzip) else { Issue.record("not events"); return }
        #expect(p.tag == "app.web" && p.option == ForwardOption(chunk: "c1", size: 2))
        #expect(p.entries[0].timeUnixNano == 1_700_000_000_123_456_789)
        #expect(p.entries[0].record == [KeyValue("message", .string("m1")), KeyValue("k", .array([.int(1), .empty, .bool(true)]))])
        #expect(p.entries[1].record == [KeyValue("x", .bytes([1, 2]))])
    }

    @Test func packedForwardAsBinAndStr() throws {
        let stream = entryValues.flatMap { MessagePack.encode($0) }
        let asBin = try decodeEvents(.array([.string("app"), .binary(stream)]))
        #expect(asBin == ForwardEvents(mode: .packedForward, tag: "app", entries: entries))
        // Older clients send the stream as a msgpack str (raw bytes, not valid UTF-8 in general).
        var w = MessagePackWriter()
        w.writeArrayHeader(3)
        w.write("app")
        w.writeStringHeader(stream.count)
        w.bytes += stream
        w.write(record(("chunk", .string("z"))))
        guard case .events(let asStr) = try ForwardCodec.decode(w.bytes, inflate: gunzip) else { Issue.record("not events"); return }
        #expect(asStr.entries == entries && asStr.option.chunk == "z" && asStr.mode == .packedForward)
    }

    @Test func compressedPackedForwardWithConcatenatedMembers() throws {
        let first = MessagePack.encode(entryValues[0])
        let second = MessagePack.encode(entryValues[1])
        let gz = Inflater.gzip(first) + Inflater.gzip(second)
        let e = try decodeEvents(.array([.string("app"), .binary(gz), record(("compressed", .string("gzip")), ("chunk", .string("q")))]))
        #expect(e.mode == .compressedPackedForward && e.entries == entries && e.option.chunk == "q")
        // The encoder's frame decodes to the same events.
        let frame = ForwardCodec.packedForward(tag: "app", stream: gz, entryCount: 2, chunk: "q", compressed: true)
        guard case .events(let again) = try ForwardCodec.decode(frame, inflate: gunzip) else { Issue.record("not events"); return }
        #expect(again.entries == entries && again.option == ForwardOption(chunk: "q", size: 2, compressed: "gzip"))
    }

    @Test func gzipBombIsCapped() {
        let bomb = Inflater.gzip([UInt8](repeating: 0x90, count: 4 << 20))  // 4 MiB of empty arrays: ~4 KiB compressed
        #expect(bomb.count < 64 << 10)
        #expect {
            try decodeEvents(
                .array([.string("app"), .binary(bomb), record(("compressed", .string("gzip")))]),
                limits: ForwardLimits(maxDecompressedSize: 1 << 20))
        } throws: { "\($0)".contains("exceeds the limit") }
        #expect {
            try decodeEvents(.array([.string("app"), .binary([1, 2, 3]), record(("compressed", .string("gzip")))]))
        } throws: { "\($0)".contains("cannot decompress") }
        #expect {
            try decodeEvents(.array([.string("app"), .binary([]), record(("compressed", .string("zstd")))]))
        } throws: { "\($0)".contains("unsupported option compressed") }
    }

    @Test func heartbeatAndFluentBitEntryHeader() throws {
        #expect(try ForwardCodec.decode([0xc0], inflate: gunzip) == .heartbeat)
        let e = try decodeEvents(
            .array([.string("app"), .array([.array([.array([eventTime(5, 6), record(("meta", .int(1)))]), record(("log", .string("x")))])])]))
        #expect(e.entries == [ForwardEntry(timeUnixNano: 5_000_000_006, record: [KeyValue("log", .string("x"))])])
    }

    @Test func wrongShapesAreClearErrors() {
        let bad: [(MessagePackValue, String)] = [
            (.int(1), "expected an array"),
            (.array([.string("t")]), "array of 2 to 4 elements"),
            (.array([.int(1), .int(1), record()]), "tag must be a string"),
            (.array([.string("t"), .int(1)]), "Message mode takes 3 or 4"),
            (.array([.string("t"), .string("nope-time"), record()]), "expected an array"),
            (.array([.string("t"), .int(-1), record()]), "non-negative"),
            (.array([.string("t"), .ext(type: 1, data: [0, 0, 0, 0, 0, 0, 0, 0]), record()]), "EventTime"),
            (.array([.string("t"), .int(1), .array([])]), "record must be a map"),
            (.array([.string("t"), .array([.array([.int(1)])])]), "an entry is [time, record]"),
            (.array([.string("t"), .array([]), .int(3)]), "option must be a map"),
            (.array([.string("t"), .array([]), record(("chunk", .int(3)))]), "chunk must be a string"),
            (.array([.string("t"), .binary([0x92, 0x01])]), "cannot fit in the 1 bytes left"),
            (.array([.string("t"), .binary([0x92, 0x01, 0x81])]), "cannot fit in the 0 bytes left"),
            (.array([.string("t"), .binary([0x92, 0x01, 0x81, 0xa1, 0x61, 0xcd, 0x01])]), "unexpected end of data inside a 2-byte number"),
            (.array([.string("t"), .binary([0x92, 0x01, 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff])]), "extends past the end"),
            (.array([.string("t"), .array([]), record(), .null]), "Forward mode takes 2 or 3"),
        ]
        for (v, message) in bad {
            #expect {
                try decodeEvents(v)
            } throws: { e in
                let ok = "\(e)".contains(message)
                if !ok { Issue.record("\(v): \(e) does not mention \(message)") }
                return ok
            }
        }
        // Offsets inside a PackedForward stream are offsets in the frame.
        #expect {
            try decodeEvents(.array([.string("t"), .binary([0x92, 0x01, 0xc1])]))
        } throws: { e in (e as? MessagePackError)?.offset == 7 }
    }

    @Test func ackAndEventTimeEncoding() throws {
        #expect(ForwardCodec.ack("abc") == [0x81, 0xa3, 0x61, 0x63, 0x6b, 0xa3, 0x61, 0x62, 0x63])
        #expect(ForwardCodec.decodeAck(ForwardCodec.ack("abc")) == "abc")
        #expect(ForwardCodec.decodeAck([0x81, 0xa1, 0x78, 0x01]) == nil)
        var w = MessagePackWriter()
        ForwardCodec.appendEventTime(to: &w, timeUnixNano: 1_700_000_000_123_456_789)
        #expect(w.bytes == [0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x07, 0x5b, 0xcd, 0x15])
    }

    @Test func logsMappingBothWays() throws {
        let events = ForwardEvents(
            mode: .forward, tag: "app.web",
            entries: [
                ForwardEntry(timeUnixNano: 7, record: [KeyValue("message", .string("m")), KeyValue("log", .string("l")), KeyValue("k", .int(1))]),
                ForwardEntry(timeUnixNano: 8, record: [KeyValue("message", .string("only"))]),
                ForwardEntry(timeUnixNano: 9, record: [KeyValue("k", .int(2))]),
            ])
        let logs = ForwardLogs.logs(events, observedTimeUnixNano: 100)
        let records = logs.resourceLogs[0].scopeLogs[0].logRecords
        #expect(records[0].body == .string("l"))
        #expect(records[0].attributes == [KeyValue("message", .string("m")), KeyValue("k", .int(1)), KeyValue("fluent.tag", .string("app.web"))])
        #expect(records[1].body == .string("only") && records[1].attributes == [KeyValue("fluent.tag", .string("app.web"))])
        #expect(records[2].body == nil && records[2].timeUnixNano == 9 && records[2].observedTimeUnixNano == 100)

        // Back to Forward: grouped by fluent.tag, body under "log", attributes at the top level.
        var out = logs
        out.resourceLogs[0].resource = Resource(attributes: [KeyValue("host", .string("h1")), KeyValue("k", .int(99))])
        out.resourceLogs[0].scopeLogs[0].logRecords.append(LogRecord(body: .string("untagged")))
        let streams = ForwardLogs.entryStreams(out, defaultTag: "default", nowUnixNano: 555)
        #expect(streams.map(\.tag) == ["app.web", "default"] && streams.map(\.count) == [3, 1])
        let back = try streams[0].stream.withUnsafeBytes { try ForwardCodec.decodeEntries($0) }
        #expect(back[0] == ForwardEntry(timeUnixNano: 7, record: [
            KeyValue("log", .string("l")), KeyValue("message", .string("m")), KeyValue("k", .int(1)), KeyValue("host", .string("h1")),
        ]))
        let untagged = try streams[1].stream.withUnsafeBytes { try ForwardCodec.decodeEntries($0) }
        #expect(untagged[0].timeUnixNano == 555)
    }

    @Test func sha512KnownVectors() {
        // FIPS 180-2 "abc" and "", and a multi-block input; cross-checked with Python's hashlib.
        #expect(
            SHA512.hexDigest([Array("abc".utf8)])
                == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        #expect(
            SHA512.hexDigest([])
                == "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")
        #expect(
            SHA512.hexDigest([[UInt8](repeating: 0x78, count: 100), [UInt8](repeating: 0x78, count: 100)])
                == "ef978e23dc520404ae16fd17bde9ee5945610d671551d6863a5ffbc99433fc726726e51f989b886191be9325b8f8b03b1a63fe3e5eff23d126c2f41f07d2bf87")
    }

    /// hashlib.sha512(b"salt" + b"client.example" + bytes(range(16)) + b"secret").hexdigest()
    @Test func handshakeDigestsAndMessages() throws {
        let nonce = (0..<16).map { UInt8($0) }
        let digest = ForwardHandshake.digest(salt: Array("salt".utf8), hostname: "client.example", nonce: nonce, sharedKey: "secret")
        #expect(digest == "c6a0ef3d907f13d0b1205b157ab0f84ba459f7e27b5c6a97e65320db57211a1e3ca86484e305eb301adddbe6bbfa7331fdc9280e70d7c9e0956848f9e14e4fa2")

        let helo = ForwardHandshake.Helo(nonce: nonce)
        #expect(try ForwardHandshake.decodeHelo(ForwardHandshake.encode(helo)) == helo)
        let ping = ForwardHandshake.Ping(hostname: "client.example", sharedKeySalt: Array("salt".utf8), digest: digest)
        #expect(try ForwardHandshake.decodePing(ForwardHandshake.encode(ping)) == ping)

        let pong = ForwardHandshake.answer(ping, nonce: nonce, sharedKey: "secret", selfHostname: "server.example")
        #expect(pong.authenticated)
        #expect(try ForwardHandshake.decodePong(ForwardHandshake.encode(pong)) == pong)
        #expect(ForwardHandshake.verify(pong, salt: Array("salt".utf8), nonce: nonce, sharedKey: "secret", selfHostname: "client.example") == nil)
        #expect(ForwardHandshake.verify(pong, salt: Array("salt".utf8), nonce: nonce, sharedKey: "other", selfHostname: "client.example") != nil)

        let wrong = ForwardHandshake.answer(ping, nonce: nonce, sharedKey: "not-secret", selfHostname: "server.example")
        #expect(!wrong.authenticated && wrong.reason == "shared_key mismatch")
        let same = ForwardHandshake.answer(ping, nonce: nonce, sharedKey: "secret", selfHostname: "client.example")
        #expect(!same.authenticated && same.reason.contains("same hostname"))
        #expect(throws: (any Error).self) { try ForwardHandshake.decodePing(ForwardHandshake.encode(helo)) }
    }
}

/// A seeded mutation run over valid frames of every mode (a smoke test; the libFuzzer harness is separate):
/// every input either decodes or fails with a `MessagePackError`, never traps, and the framer agrees
/// with the decoder on where a frame that decodes ends.
@Suite struct ForwardMutationTests {
    struct LCG: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
    }

    @Test func mutatedFramesNeverTrap() throws {
        let stream = MessagePack.encode(.array([eventTime(1, 2), record(("log", .string("x")), ("n", .array([.int(-1), .float(2)])))]))
        let seeds: [[UInt8]] = [
            MessagePack.encode(.array([.string("t"), .int(1), record(("log", .string("a")), ("m", record(("k", .binary([1]))))), record(("chunk", .string("c")))])),
            MessagePack.encode(.array([.string("t"), .array([.array([eventTime(5, 6), record(("k", .uint(UInt64.max)))])]), record(("size", .int(1)))])),
            MessagePack.encode(.array([.string("t"), .binary(stream + stream)])),
            MessagePack.encode(.array([.string("t"), .binary(Inflater.gzip(stream)), record(("compressed", .string("gzip")))])),
        ]
        var rng = LCG(state: 42)
        var decoded = 0
        for i in 0..<20_000 {
            var bytes = seeds[i % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.removeSubrange(at...)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
                default: bytes[at] ^= 0x80
                }
                if bytes.isEmpty { bytes = [0xc0] }
            }
            do {
                _ = try ForwardCodec.decode(bytes, limits: ForwardLimits(maxDecompressedSize: 1 << 16), inflate: gunzip)
                decoded += 1
                var framer = MessagePackFramer(maxFrameSize: 1 << 20)
                #expect(try bytes.withUnsafeBytes { try framer.next($0) } == bytes.count)
            } catch is MessagePackError {
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(decoded > 0)
    }
}
