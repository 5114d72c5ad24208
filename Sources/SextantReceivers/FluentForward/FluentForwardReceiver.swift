import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SextantFluentForward
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantSecurity
import Synchronization

/// `fluentforward` receiver config (the OTel Collector's `endpoint`, plus Fluentd `in_forward`'s
/// `security` and limits).
public struct FluentForwardReceiverConfig: ComponentConfig {
    public struct Security: Sendable, Equatable {
        public var sharedKey: String
        public var selfHostname: String

        public init(sharedKey: String, selfHostname: String) {
            self.sharedKey = sharedKey
            self.selfHostname = selfHostname
        }
    }

    public var host = "127.0.0.1"
    public var port = 24224
    /// Concurrent TCP connections; more are closed at once (and counted). The smaller of this and
    /// `limits.max_connections` applies.
    public var maxConnections = 1000
    /// Largest frame accepted (the whole msgpack value, compressed size for CompressedPackedForward).
    public var maxMessageSize = 16 << 20
    /// Largest decompressed CompressedPackedForward entry stream.
    public var maxDecompressedSize = 64 << 20
    /// Time a client has to complete the shared-key handshake.
    public var handshakeTimeout: Duration = .seconds(10)
    public var security: Security?
    /// `tls`: TCP connections start with a TLS handshake (Fluentd's `<transport tls>`), mutual with
    /// `client_ca_file`. The UDP heartbeat stays plain, as in Fluentd.
    public var tls: TLSSettings?

    public init() {}
}

public struct FluentForwardReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "fluentforward"
    public let signals: Set<Signal> = [.logs]
    public let summary = "Fluentd Forward protocol v1 (TCP + UDP heartbeat, 24224): all event modes, acks, gzip, shared-key handshake"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = FluentForwardReceiverConfig()
        (c.host, c.port) = r.endpoint("endpoint", default: "127.0.0.1:24224")
        c.maxConnections = r.int("max_connections", default: c.maxConnections, min: 1)
        c.maxMessageSize = r.byteSize("max_message_size", default: c.maxMessageSize, min: 64)
        c.maxDecompressedSize = r.byteSize("max_decompressed_size", default: c.maxDecompressedSize, min: 64)
        c.handshakeTimeout = r.duration("handshake_timeout", default: c.handshakeTimeout, allowZero: false)
        if r.keys.contains("security") {
            var s = r.section("security")
            let key = s.string("shared_key", default: "")
            let host = s.string("self_hostname", default: "")
            if key.isEmpty { s.error("shared_key", "\(s.path)::shared_key is required when security is set") }
            if host.isEmpty { s.error("self_hostname", "\(s.path)::self_hostname is required when security is set") }
            s.finish()
            c.security = .init(sharedKey: key, selfHostname: host)
        }
        c.tls = TLSSettings.parseServer(&r)
        r.finish()
        return c
    }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        FluentForwardReceiver(config as! FluentForwardReceiverConfig, settings: settings, next: consumers[.logs]!)
    }
}

/// Receives Fluentd Forward Protocol v1 (https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1)
/// from Fluentd, Fluent Bit and the fluent-logger libraries, and hands the events on as OTLP logs
/// (mapping: `ForwardLogs`).
///
/// - Each TCP connection is served by one task: frames are decoded, handed downstream in order, and
///   `{"ack": chunk}` is written only after the downstream consumer accepted them.
/// - A frame that cannot be decoded (invalid msgpack, wrong shape, a length past the data, a frame or
///   decompressed stream over its limit) closes that connection, logged and counted; a refusal
///   downstream (e.g. overload) closes it too, without an ack, so the client's retry path resends
///   promptly instead of waiting for its ack timeout. Other connections are unaffected.
/// - UDP on the same port answers heartbeats with one `0x00` byte, as Fluentd's `in_forward` does.
/// - With `security`, the server opens with HELO and accepts data only after a valid PING; a wrong
///   shared key gets PONG with `auth_result` false and the connection is closed.
public final class FluentForwardReceiver: Component {
    private let config: FluentForwardReceiverConfig
    private let next: any Consumer
    private let logger: Logger
    private let metrics: ReceiverMetrics
    private let badFrames: SelfTelemetry.Counter
    private let authFailures: SelfTelemetry.Counter
    private let refusedConnections: SelfTelemetry.Counter
    private let connections = Atomic<Int>(0)
    /// Open connections, closed at shutdown; `closing` makes late arrivals close at once.
    private let open = Mutex<(closing: Bool, channels: [ObjectIdentifier: any Channel])>((false, [:]))
    private let server = Mutex<(channel: any Channel, task: Task<Void, Never>)?>(nil)
    private let udp = Mutex<(any Channel)?>(nil)

    public init(_ config: FluentForwardReceiverConfig, settings: ComponentSettings, next: any Consumer) {
        var config = config
        config.maxConnections = min(config.maxConnections, settings.limits.maxConnections)
        self.config = config
        self.next = next
        self.logger = settings.logger
        metrics = ReceiverMetrics(settings, transport: "tcp")
        let labels = [("receiver", settings.id.description)]
        badFrames = settings.telemetry.counter(
            "sextant_receiver_malformed_frames_total", help: "Connections closed because a frame could not be decoded.", labels: labels)
        authFailures = settings.telemetry.counter(
            "sextant_receiver_auth_failures_total", help: "Connections closed because the client failed authentication.", labels: labels)
        refusedConnections = settings.telemetry.counter(
            "sextant_receiver_refused_connections_total", help: "Connections closed at once because max_connections was reached.",
            labels: labels)
    }

    /// The bound TCP (and UDP heartbeat) port.
    public var port: Int? { server.withLock { $0?.channel.localAddress?.port } }

    public func start() async throws {
        let maxFrame = config.maxMessageSize
        let tls = try config.tls?.makeContext()
        let serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .bind(host: config.host, port: config.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ForwardFrameDecoder(maxFrameSize: maxFrame)))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = serverChannel.channel.localAddress?.port ?? config.port
        let heartbeat: any Channel
        do {
            heartbeat = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ForwardHeartbeatHandler()) } }
                .bind(host: config.host, port: port).get()
        } catch {
            try? await serverChannel.channel.close()
            throw error
        }
        udp.withLock { $0 = heartbeat }
        let task = Task { [self] in
            do {
                try await serverChannel.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in inbound {
                            group.addTask { await self.serve(connection) }
                        }
                    }
                }
            } catch {
                logger.debug("fluentforward listener stopped", metadata: ["error": "\(error)"])
            }
        }
        server.withLock { $0 = (serverChannel.channel, task) }
        logger.info("Fluent forward receiver listening", metadata: ["endpoint": "\(config.host):\(port)", "udp_heartbeat": "true"])
    }

    public func shutdown() async {
        guard let (channel, task) = server.withLock({ $0 }) else { return }
        try? await channel.close()
        try? await udp.withLock { $0 }?.close()
        // Closing a connection ends its frame stream; a frame being handed downstream finishes first
        // (its ack may then be lost, so the client resends: delivery is at least once).
        let channels = open.withLock { o in
            o.closing = true
            return Array(o.channels.values)
        }
        for c in channels { c.close(promise: nil) }
        await task.value
    }

    /// One connection: optional handshake, then frames in order until EOF or an error.
    func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress?.description ?? "?"
        let id = ObjectIdentifier(connection.channel)
        defer {
            connections.subtract(1, ordering: .relaxed)
            _ = open.withLock { $0.channels.removeValue(forKey: id) }
        }
        let closing = open.withLock { o in
            if !o.closing { o.channels[id] = connection.channel }
            return o.closing
        }
        guard connections.add(1, ordering: .relaxed).newValue <= config.maxConnections, !closing else {
            if !closing {
                refusedConnections.increment()
                logger.warning("closing connection: max_connections reached", metadata: ["peer": "\(peer)", "max_connections": "\(config.maxConnections)"])
            }
            // Through executeThenClose, so the async channel's writer is finished before it goes away.
            try? await connection.executeThenClose { _, _ in }
            return
        }
        let limits = ForwardLimits(maxDecompressedSize: config.maxDecompressedSize)
        do {
            try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                if let security = config.security {
                    guard try await handshake(security, frames: &frames, outbound: outbound, channel: connection.channel, peer: peer) else { return }
                }
                while let frame = try await frames.next() {
                    let message: ForwardMessage
                    do {
                        message = try frame.withUnsafeReadableBytes { raw in
                            try ForwardCodec.decode(raw, limits: limits) { compressed, cap in try Self.gunzip(compressed, limit: cap) }
                        }
                    } catch {
                        badFrames.increment()
                        logger.warning("closing connection: malformed Forward frame", metadata: ["peer": "\(peer)", "error": "\(error)"])
                        return
                    }
                    guard case .events(let events) = message else { continue }  // heartbeat
                    if let size = events.option.size, size != events.entries.count {
                        logger.debug("Forward option size differs from the entries sent", metadata: ["size": "\(size)", "entries": "\(events.entries.count)"])
                    }
                    guard !events.entries.isEmpty else {
                        if let chunk = events.option.chunk { try await outbound.write(ByteBuffer(bytes: ForwardCodec.ack(chunk))) }
                        continue
                    }
                    let logs = ForwardLogs.logs(events, observedTimeUnixNano: SystemTime.nowNanos())
                    do {
                        try await next.consume(.logs(logs))
                        metrics.accepted(.logs, events.entries.count)
                    } catch {
                        metrics.refused(.logs, events.entries.count)
                        logger.warning(
                            "closing connection without ack: records refused downstream",
                            metadata: ["peer": "\(peer)", "records": "\(events.entries.count)", "error": "\(ConsumerError.classify(error).message)"])
                        return
                    }
                    if let chunk = events.option.chunk { try await outbound.write(ByteBuffer(bytes: ForwardCodec.ack(chunk))) }
                }
            }
        } catch {
            if error is MessagePackError || error is ByteToMessageDecoderError {
                badFrames.increment()
                logger.warning("closing connection: malformed Forward stream", metadata: ["peer": "\(peer)", "error": "\(error)"])
            } else {
                logger.debug("Forward connection ended", metadata: ["peer": "\(peer)", "error": "\(error)"])
            }
        }
    }

    /// HELO → PING → PONG (spec v1, "Handshake Messages"); `false` when the client failed.
    private func handshake(
        _ security: FluentForwardReceiverConfig.Security, frames: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, channel: any Channel, peer: String
    ) async throws -> Bool {
        var nonce = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in nonce.indices { nonce[i] = rng.next() }
        try await outbound.write(ByteBuffer(bytes: ForwardHandshake.encode(ForwardHandshake.Helo(nonce: nonce))))
        // A client that never answers is cut off after handshake_timeout.
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(config.handshakeTimeout / .nanoseconds(1)))) {
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        guard let frame = try await frames.next() else { return false }
        let ping: ForwardHandshake.Ping
        do {
            ping = try ForwardHandshake.decodePing(Array(buffer: frame))
        } catch {
            authFailures.increment()
            logger.warning("closing connection: expected PING", metadata: ["peer": "\(peer)", "error": "\(error)"])
            return false
        }
        let pong = ForwardHandshake.answer(ping, nonce: nonce, sharedKey: security.sharedKey, selfHostname: security.selfHostname)
        try await outbound.write(ByteBuffer(bytes: ForwardHandshake.encode(pong)))
        guard pong.authenticated else {
            authFailures.increment()
            logger.warning("closing connection: authentication failed", metadata: ["peer": "\(peer)", "client": "\(ping.hostname)", "reason": "\(pong.reason)"])
            return false
        }
        return true
    }

    static func gunzip(_ compressed: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        let inflated = try Inflater.inflate(ByteBuffer(bytes: compressed), format: .gzipOrZlib, limit: limit)
        return Array(buffer: inflated)
    }
}

/// Answers every UDP datagram with one `0x00` byte to its sender (Fluentd `in_forward`'s heartbeat).
final class ForwardHeartbeatHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data)
        let reply = AddressedEnvelope(remoteAddress: request.remoteAddress, data: ByteBuffer(bytes: [0]))
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP error (e.g. ICMP port unreachable from a departed client) must not close the listener.
    }
}
