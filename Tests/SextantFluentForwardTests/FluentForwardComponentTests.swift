import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOTestUtils
import SextantExporters
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantReceivers
import SextantTesting
import Synchronization
import Testing

@testable import SextantFluentForward

@Suite struct ForwardFrameDecoderTests {
    /// Every split of the input (the verifier feeds it byte by byte, whole, and in between) yields the same frames.
    @Test func anySplitYieldsTheSameFrames() throws {
        let frames: [[UInt8]] = [
            [0xc0],
            MessagePack.encode(.array([.string("app"), .int(1), record(("log", .string("x")))])),
            MessagePack.encode(.array([.string("app"), .binary([UInt8](repeating: 0x90, count: 300)), record(("chunk", .string("c")))])),
            MessagePack.encode(.array([.string("a"), .array([.array([eventTime(1, 2), record(("k", .map([])))])])])),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: frames.map { (ByteBuffer(bytes: $0), [ByteBuffer(bytes: $0)]) } + [
                (ByteBuffer(bytes: frames.flatMap { $0 }), frames.map { ByteBuffer(bytes: $0) })
            ]
        ) { ForwardFrameDecoder(maxFrameSize: 1 << 20) }
    }

    @Test func oversizedFrameFailsTheStream() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ForwardFrameDecoder(maxFrameSize: 100)))
        #expect(throws: MessagePackError.self) {
            try channel.writeInbound(ByteBuffer(bytes: [0x92, 0xc6, 0x00, 0x01, 0x00, 0x00]))
        }
        _ = try? channel.finish()
    }
}

func settings(_ id: String, _ kind: ComponentKind, _ telemetry: SelfTelemetry = SelfTelemetry()) -> ComponentSettings {
    ComponentSettings(id: ComponentID(parsing: id)!, kind: kind, logger: Logger(label: "t"), telemetry: telemetry)
}

/// A raw TCP client for the receiver: writes bytes, reads msgpack replies (bounded waits).
struct RawForwardClient {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(_ port: Int) async throws -> RawForwardClient {
        let ch = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { ch in
            ch.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch) }
        }
        return RawForwardClient(channel: ch)
    }

    /// Runs `body` with the connection; replies are whole msgpack values, `nil` at EOF.
    func run(_ body: (_ send: ([UInt8]) async throws -> Void, _ reply: () async throws -> [UInt8]?) async throws -> Void) async throws {
        try await channel.executeThenClose { inbound, outbound in
            var it = inbound.makeAsyncIterator()
            var buffered: [UInt8] = []
            var framer = MessagePackFramer(maxFrameSize: 1 << 20)
            try await body({ try await outbound.write(ByteBuffer(bytes: $0)) }) {
                while true {
                    if let n = try buffered.withUnsafeBytes({ try framer.next($0) }) {
                        defer { buffered.removeFirst(n) }
                        return Array(buffered[0..<n])
                    }
                    guard let more = try await it.next() else { return nil }
                    buffered += Array(buffer: more)
                }
            }
        }
    }
}

/// Fails the test instead of hanging.
func bounded(_ seconds: Int = 10, _ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            try await body()
            return true
        }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return false
        }
        let finished = try await group.next()!
        group.cancelAll()
        #expect(finished, "timed out")
    }
}

/// Takes 200 ms to accept a batch, and says when it has.
final class SlowConsumer: Consumer {
    let accepted = Atomic<Int>(0)
    func consume(_ telemetry: Telemetry) async throws {
        try await Task.sleep(for: .milliseconds(200))
        accepted.add(telemetry.itemCount, ordering: .sequentiallyConsistent)
    }
}

@Suite(.serialized) struct FluentForwardReceiverTests {
    @Test func theAckWaitsForASlowConsumer() async throws {
        let slow = SlowConsumer()
        let r = try await receiver(slow)
        try await bounded {
            let client = try await RawForwardClient.connect(r.port!)
            try await client.run { send, reply in
                for i in 0..<3 {
                    try await send(MessagePack.encode(.array([.string("a"), .int(1), record(), record(("chunk", .string("\(i)")))])))
                    #expect(try await reply() == ForwardCodec.ack("\(i)"))
                    #expect(slow.accepted.load(ordering: .sequentiallyConsistent) == i + 1)
                }
            }
        }
        await r.shutdown()
    }

    func receiver(_ next: any Consumer, telemetry: SelfTelemetry = SelfTelemetry(), security: FluentForwardReceiverConfig.Security? = nil)
        async throws -> FluentForwardReceiver
    {
        var c = FluentForwardReceiverConfig()
        c.port = 0
        c.maxMessageSize = 1 << 20
        c.security = security
        let r = FluentForwardReceiver(c, settings: settings("fluentforward", .receiver, telemetry), next: next)
        try await r.start()
        return r
    }

    @Test func acksOnlyAfterTheConsumerAccepted() async throws {
        let sink = RecordingConsumer()
        let telemetry = SelfTelemetry()
        let r = try await receiver(sink, telemetry: telemetry)
        try await bounded {
            let client = try await RawForwardClient.connect(r.port!)
            try await client.run { send, reply in
                try await send([0xc0])  // TCP heartbeat: no answer
                try await send(MessagePack.encode(.array([.string("app"), .int(1), record(("log", .string("one")))])))
                try await send(MessagePack.encode(.array([.string("app"), .int(2), record(("log", .string("two"))), record(("chunk", .string("c1")))])))
                #expect(try await reply() == ForwardCodec.ack("c1"))
                #expect(sink.itemCount == 2)
                // Downstream refuses: no ack, the connection is closed.
                sink.failNext([.overloaded("full")])
                try await send(MessagePack.encode(.array([.string("app"), .int(3), record(("log", .string("x"))), record(("chunk", .string("c2")))])))
                #expect(try await reply() == nil)
            }
        }
        let records = sink.batches.flatMap { b -> [LogRecord] in
            guard case .logs(let l) = b else { return [] }
            return l.resourceLogs.flatMap { $0.scopeLogs.flatMap(\.logRecords) }
        }
        #expect(records.map(\.body) == [.string("one"), .string("two")])
        #expect(records[0].attributes == [KeyValue("fluent.tag", .string("app"))])
        #expect(telemetry.value("sextant_receiver_refused_items_total", labels: [("receiver", "fluentforward"), ("transport", "tcp"), ("signal", "logs")]) == 1)
        await r.shutdown()
    }

    @Test func badFrameClosesOnlyItsConnection() async throws {
        let sink = RecordingConsumer()
        let telemetry = SelfTelemetry()
        let r = try await receiver(sink, telemetry: telemetry)
        try await bounded {
            let good = try await RawForwardClient.connect(r.port!)
            try await good.run { send, reply in
                let bad = try await RawForwardClient.connect(r.port!)
                try await bad.run { badSend, badReply in
                    try await badSend([0x93, 0xa1, 0x74, 0xc1])  // invalid byte
                    #expect(try await badReply() == nil)
                }
                let bomb = Inflater.gzip([UInt8](repeating: 0x90, count: 8 << 20))
                let bomber = try await RawForwardClient.connect(r.port!)
                try await bomber.run { s, rep in
                    try await s(MessagePack.encode(.array([.string("t"), .binary(bomb), record(("compressed", .string("gzip")))])))
                    #expect(try await rep() == nil)
                }
                try await send(MessagePack.encode(.array([.string("app"), .int(1), record(("log", .string("ok"))), record(("chunk", .string("g")))])))
                #expect(try await reply() == ForwardCodec.ack("g"))
            }
        }
        #expect(sink.itemCount == 1)
        // The client can see the close before the stream error reaches the connection's task.
        for _ in 0..<500 where telemetry.value("sextant_receiver_malformed_frames_total", labels: [("receiver", "fluentforward")]) != 2 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(telemetry.value("sextant_receiver_malformed_frames_total", labels: [("receiver", "fluentforward")]) == 2)
        await r.shutdown()
    }

    @Test func sharedKeyHandshake() async throws {
        let sink = RecordingConsumer()
        let telemetry = SelfTelemetry()
        let r = try await receiver(sink, telemetry: telemetry, security: .init(sharedKey: "secret", selfHostname: "server"))
        try await bounded {
            for (key, ok) in [("secret", true), ("wrong", false)] {
                let client = try await RawForwardClient.connect(r.port!)
                try await client.run { send, reply in
                    let helo = try ForwardHandshake.decodeHelo(try #require(try await reply()))
                    let salt: [UInt8] = Array("0123456789abcdef".utf8)
                    let digest = ForwardHandshake.digest(salt: salt, hostname: "client", nonce: helo.nonce, sharedKey: key)
                    try await send(ForwardHandshake.encode(.init(hostname: "client", sharedKeySalt: salt, digest: digest)))
                    let pong = try ForwardHandshake.decodePong(try #require(try await reply()))
                    #expect(pong.authenticated == ok)
                    if ok {
                        #expect(ForwardHandshake.verify(pong, salt: salt, nonce: helo.nonce, sharedKey: key, selfHostname: "client") == nil)
                        try await send(MessagePack.encode(.array([.string("a"), .int(1), record(), record(("chunk", .string("k")))])))
                        #expect(try await reply() == ForwardCodec.ack("k"))
                    } else {
                        #expect(pong.reason == "shared_key mismatch")
                        #expect(try await reply() == nil)
                    }
                }
            }
        }
        #expect(sink.itemCount == 1)
        #expect(telemetry.value("sextant_receiver_auth_failures_total", labels: [("receiver", "fluentforward")]) == 1)
        await r.shutdown()
    }
}

@Suite(.serialized) struct FluentForwardExporterTests {
    /// Exporter → our receiver: PackedForward (plain and gzip), acks, and the shared-key handshake.
    @Test(arguments: [false, true]) func roundTripThroughTheReceiver(gzip: Bool) async throws {
        let sink = RecordingConsumer()
        var rc = FluentForwardReceiverConfig()
        rc.port = 0
        rc.security = .init(sharedKey: "k3y", selfHostname: "collector-b")
        let receiver = FluentForwardReceiver(rc, settings: settings("fluentforward", .receiver), next: sink)
        try await receiver.start()

        var ec = FluentForwardExporterConfig()
        ec.host = "127.0.0.1"
        ec.port = receiver.port!
        ec.requireAck = true
        ec.compressGzip = gzip
        ec.sharedKey = "k3y"
        ec.selfHostname = "collector-a"
        ec.helper = .synchronous
        let exporter = FluentForwardExporter(ec, settings: settings("fluentforward", .exporter))
        try await exporter.start()
        let records = (0..<100).map { i in
            LogRecord(
                timeUnixNano: 1_700_000_000_000_000_000 + UInt64(i), body: .string("line \(i)"),
                attributes: [KeyValue("i", .int(Int64(i))), KeyValue("fluent.tag", .string(i % 2 == 0 ? "even" : "odd"))])
        }
        try await exporter.consume(.logs(LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: records)])])))
        #expect(sink.itemCount == 100)
        let got = sink.batches.flatMap { b -> [LogRecord] in
            guard case .logs(let l) = b else { return [] }
            return l.resourceLogs.flatMap { $0.scopeLogs.flatMap(\.logRecords) }
        }
        let first = try #require(got.first { $0.body == .string("line 1") })
        #expect(first.timeUnixNano == 1_700_000_000_000_000_001)
        #expect(first.attributes == [KeyValue("i", .int(1)), KeyValue("fluent.tag", .string("odd"))])
        await exporter.shutdown()
        await receiver.shutdown()
    }

    @Test func missingAckFailsTheAttemptAndWrongKeyFailsToConnect() async throws {
        // A server that accepts and never answers: the attempt times out and is retryable.
        let sink = RecordingConsumer()
        sink.failNext([.overloaded("full")])
        var rc = FluentForwardReceiverConfig()
        rc.port = 0
        let receiver = FluentForwardReceiver(rc, settings: settings("fluentforward", .receiver), next: sink)
        try await receiver.start()
        var ec = FluentForwardExporterConfig()
        ec.host = "127.0.0.1"
        ec.port = receiver.port!
        ec.requireAck = true
        ec.helper = .synchronous
        ec.helper.timeout = .seconds(2)
        let telemetry = SelfTelemetry()
        let exporter = FluentForwardExporter(ec, settings: settings("fluentforward", .exporter, telemetry))
        try await exporter.start()
        await #expect(throws: (any Error).self) { try await exporter.consume(TestData.logs(3)) }
        #expect(sink.itemCount == 0)
        // The refusal closed the connection; the next attempt reconnects and is acknowledged.
        try await Task.sleep(for: .milliseconds(150))
        try await exporter.consume(TestData.logs(3))
        #expect(sink.itemCount == 3)
        await exporter.shutdown()
        await receiver.shutdown()

        var secured = FluentForwardReceiverConfig()
        secured.port = 0
        secured.security = .init(sharedKey: "right", selfHostname: "server")
        let guarded = FluentForwardReceiver(secured, settings: settings("fluentforward", .receiver), next: sink)
        try await guarded.start()
        ec.port = guarded.port!
        ec.sharedKey = "wrong"
        ec.selfHostname = "client"
        let refused = FluentForwardExporter(ec, settings: settings("fluentforward", .exporter))
        try await refused.start()
        await #expect { try await refused.consume(TestData.logs(1)) } throws: { "\($0)".contains("shared_key mismatch") }
        await refused.shutdown()
        await guarded.shutdown()
    }

    /// Envoy's Fluentd logger's `max_connect_attempts`: a client that made its attempts makes no more, and every
    /// send then fails at once as permanent; attempts wait out the backoff between them.
    @Test func connectionAttemptsStopAtTheLimit() async throws {
        // A port that refuses connections: bound, then closed.
        let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = bound.localAddress!.port!
        try await bound.close()
        var config = FluentForwardExporterConfig()
        (config.host, config.port) = ("127.0.0.1", port)
        let client = ForwardClient(
            config: config, logger: Logger(label: "test"), baseBackoff: .milliseconds(200), maxBackoff: .milliseconds(200), maxConnectAttempts: 2)
        func outcome() async -> String {
            do {
                try await client.send([0xc0], chunk: nil)
                return "sent"
            } catch let e as ConsumerError {
                return "\(e.kind): \(e.message)"
            } catch {
                return "\(error)"
            }
        }
        #expect(await outcome().hasPrefix("retryable: fluentforward: cannot connect"))
        // Within the backoff no attempt is made.
        #expect(await outcome().contains("after backoff"))
        try await Task.sleep(for: .milliseconds(250))
        #expect(await outcome().hasPrefix("retryable: fluentforward: cannot connect"))
        try await Task.sleep(for: .milliseconds(250))
        let last = await outcome()
        #expect(last.hasPrefix("permanent: ") && last.contains("after 2 connection attempts"), "\(last)")
    }
}

@Suite struct FluentForwardConfigTests {
    var registry: ComponentRegistry {
        var r = ComponentRegistry()
        r.register(FluentForwardReceiverFactory())
        r.register(FluentForwardExporterFactory())
        return r
    }

    func yaml(receiver: String, exporter: String) -> String {
        """
        receivers:
          fluentforward:
        \(receiver)
        exporters:
          fluentforward:
        \(exporter)
        service:
          pipelines:
            logs: {receivers: [fluentforward], exporters: [fluentforward]}
        """
    }

    @Test func parsesEveryKeyAndReportsUnknownOnes() throws {
        _ = try CollectorConfig.load(
            yaml: yaml(
                receiver: """
                    endpoint: 0.0.0.0:24225
                    max_connections: 10
                    max_message_size: 4MiB
                    max_decompressed_size: 16MiB
                    handshake_timeout: 5s
                    security: {shared_key: k, self_hostname: a}
                """,
                exporter: """
                    endpoint: fluentd:24224
                    tag: app
                    body_key: message
                    require_ack: true
                    compress_gzip: true
                    connection_timeout: 500ms
                    shared_key: k
                    self_hostname: b
                    retry_on_failure: {initial_interval: 1s}
                """), registry: registry)
        #expect {
            try CollectorConfig.load(
                yaml: yaml(receiver: "    security: {shared_kee: k, self_hostname: a}", exporter: "    endpoint: h:1\n    shared_key: k"),
                registry: registry)
        } throws: { e in
            let text = "\(e)"
            return text.contains("shared_kee") && text.contains("shared_key is required") && text.contains("self_hostname is required")
        }
        #expect { try CollectorConfig.load(yaml: yaml(receiver: "", exporter: "    tag: x"), registry: registry) } throws: {
            "\($0)".contains("endpoint is required")
        }
    }
}

@Suite struct FluentForwardConnectionLimitTests {
    @Test func connectionsOverTheLimitAreClosedAndCounted() async throws {
        let sink = RecordingConsumer()
        let telemetry = SelfTelemetry()
        var c = FluentForwardReceiverConfig()
        c.port = 0
        c.maxConnections = 1
        let r = FluentForwardReceiver(c, settings: settings("fluentforward", .receiver, telemetry), next: sink)
        try await r.start()
        try await bounded {
            let first = try await RawForwardClient.connect(r.port!)
            try await first.run { send, reply in
                try await send(MessagePack.encode(.array([.string("a"), .int(1), record(), record(("chunk", .string("1")))])))
                #expect(try await reply() == ForwardCodec.ack("1"))
                let second = try await RawForwardClient.connect(r.port!)
                try await second.run { _, secondReply in
                    let closed = try await secondReply()
                    #expect(closed == nil)
                }
                try await send(MessagePack.encode(.array([.string("a"), .int(2), record(), record(("chunk", .string("2")))])))
                #expect(try await reply() == ForwardCodec.ack("2"))
            }
        }
        #expect(telemetry.value("sextant_receiver_refused_connections_total", labels: [("receiver", "fluentforward")]) == 1)
        await r.shutdown()
    }
}
