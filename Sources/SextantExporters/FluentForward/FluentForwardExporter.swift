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

/// `fluentforward` exporter config (the OTel Collector contrib exporter's keys).
public struct FluentForwardExporterConfig: ComponentConfig {
    public var host = ""
    public var port = 24224
    /// The tag of records without a `fluent.tag` attribute.
    public var tag = "sextant"
    /// The record key that carries the log body.
    public var bodyKey = "log"
    /// Ask for `{"ack": chunk}` and treat a missing one (within the attempt `timeout`) as a failure to retry.
    public var requireAck = false
    public var compressGzip = false
    /// Bound on establishing a connection, including the handshake.
    public var connectionTimeout: Duration = .seconds(30)
    public var sharedKey: String?
    public var selfHostname = ""
    public var helper = ExporterHelperSettings()
    /// `tls` (the contrib exporter's `tls`, plaintext unless given with `insecure: false`): the
    /// connection starts with a TLS handshake; certificate files are read on every connect.
    public var tls: TLSSettings?

    public init() {}
}

public struct FluentForwardExporterFactory: ExporterFactory {
    public init() {}
    public let type = "fluentforward"
    public let signals: Set<Signal> = [.logs]
    public let summary = "sends logs to Fluentd/Fluent Bit: Forward protocol v1 PackedForward (gzip optional), acks, shared-key handshake"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = FluentForwardExporterConfig()
        if r.keys.contains("endpoint") {
            (c.host, c.port) = r.endpoint("endpoint", default: "127.0.0.1:24224")
        } else {
            r.error(nil, "\(r.path)::endpoint is required (host:port of a Fluentd/Fluent Bit forward input)")
        }
        c.tag = r.string("tag", default: c.tag)
        c.bodyKey = r.choice("body_key", ["log", "message"], default: c.bodyKey)
        c.requireAck = r.bool("require_ack", default: false)
        c.compressGzip = r.bool("compress_gzip", default: false)
        c.connectionTimeout = r.duration("connection_timeout", default: c.connectionTimeout, allowZero: false)
        // Flat keys as in the OTel exporter, or Fluentd's `security:` section.
        var key = r.optionalString("shared_key")
        var host = r.optionalString("self_hostname")
        if r.keys.contains("security") {
            var s = r.section("security")
            key = s.optionalString("shared_key") ?? key
            host = s.optionalString("self_hostname") ?? host
            s.finish()
        }
        if let key, !key.isEmpty {
            c.sharedKey = key
            c.selfHostname = host ?? ""
            if c.selfHostname.isEmpty { r.error("shared_key", "\(r.path)::self_hostname is required with shared_key") }
        }
        if r.keys.contains("tls") {
            let tls = TLSSettings.parseClient(&r)
            c.tls = tls.insecure ? nil : tls
        }
        c.helper = ExporterHelperSettings.parse(&r)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        FluentForwardExporter(config as! FluentForwardExporterConfig, settings: settings)
    }
}

/// Sends log records to a Forward server (Fluentd `in_forward`, Fluent Bit `forward` input) as
/// PackedForward frames (CompressedPackedForward with `compress_gzip`), one per tag per batch.
///
/// One connection is shared by all queue workers; frames are written whole, and acks are matched by
/// chunk id, so several chunks can be in flight. With `require_ack`, a batch counts as sent only once
/// its chunk is acknowledged; a missing ack (the attempt `timeout` passes) fails the attempt and closes
/// the connection, and the exporter helper resends the batch (with a new chunk id) after its backoff.
/// A failed connect is retried the same way, and reconnects are additionally spaced by an exponential
/// backoff (100 ms doubling to 30 s) so concurrent workers do not hammer a down server.
public final class FluentForwardExporter: ConsumingComponent {
    private let helper: ExporterHelper<ContinuousClock>
    private let client: ForwardClient
    private let config: FluentForwardExporterConfig

    public init(_ config: FluentForwardExporterConfig, settings: ComponentSettings) {
        self.config = config
        let client = ForwardClient(config: config, logger: settings.logger)
        self.client = client
        helper = ExporterHelper(config.helper, component: settings) { batch in
            guard case .logs(let logs) = batch else { throw ConsumerError.permanent("fluentforward exports logs only") }
            let streams = ForwardLogs.entryStreams(logs, defaultTag: config.tag, bodyKey: config.bodyKey, nowUnixNano: SystemTime.nowNanos())
            for s in streams {
                let chunk = config.requireAck ? ForwardClient.newChunkID() : nil
                let stream = config.compressGzip ? Inflater.gzip(s.stream) : s.stream
                let frame = ForwardCodec.packedForward(tag: s.tag, stream: stream, entryCount: s.count, chunk: chunk, compressed: config.compressGzip)
                try await client.send(frame, chunk: chunk)
            }
        }
    }

    public func start() async throws {
        // Certificate problems stop the start rather than surface as endless reconnects.
        if let tls = config.tls { _ = try tls.makeContext() }
        helper.start()
    }

    public func shutdown() async {
        await helper.shutdown()
        await client.close()
    }

    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}

/// The exporter's connection manager: one live connection, opened on demand (with the handshake when
/// a shared key is configured), replaced after any failure. `sextant proxy`'s Fluentd access logger
/// sends through it too.
public actor ForwardClient {
    private let config: FluentForwardExporterConfig
    private let logger: Logger
    private let group: any EventLoopGroup
    /// The wait after a failed connection attempt, doubled after each further one up to `maxBackoff`.
    private let baseBackoff: Duration
    private let maxBackoff: Duration
    /// Connection attempts allowed over the client's life (Envoy's Fluentd logger's `max_connect_attempts`);
    /// nil for no limit.
    private let maxConnectAttempts: Int?
    private var attempts = 0
    private var gaveUp = false
    private var current: ForwardConnection?
    private var connecting: Task<ForwardConnection, any Error>?
    private var backoff: Duration = .zero
    private var nextAttempt = ContinuousClock.now

    /// Connections run on `group` (the proxy passes its own event loops). After a failed attempt the next waits
    /// `baseBackoff`, doubling up to `maxBackoff`; once `maxConnectAttempts` attempts were made, a lost or
    /// failed connection is not replaced and every send fails at once (`ConsumerError.permanent`).
    public init(
        config: FluentForwardExporterConfig, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        baseBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(30), maxConnectAttempts: Int? = nil
    ) {
        self.config = config
        self.logger = logger
        self.group = group
        self.baseBackoff = baseBackoff
        self.maxBackoff = maxBackoff
        self.maxConnectAttempts = maxConnectAttempts
    }

    static func newChunkID() -> String {
        var rng = SystemRandomNumberGenerator()
        return Base64.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    /// Writes a frame; with a chunk id, returns once the server acknowledged it.
    public func send(_ frame: [UInt8], chunk: String?) async throws {
        let connection = try await connection()
        do {
            try await connection.send(frame, chunk: chunk)
        } catch {
            // Whatever failed (write, ack timeout, connection lost), this connection's state is unknown.
            connection.close()
            if current === connection { current = nil }
            throw ConsumerError.retryable("fluentforward send to \(config.host):\(config.port) failed: \(error)")
        }
    }

    private func connection() async throws -> ForwardConnection {
        if let current, current.isOpen { return current }
        current = nil
        if let connecting { return try await connecting.value }
        if let maxConnectAttempts, attempts >= maxConnectAttempts {
            if !gaveUp {
                gaveUp = true
                logger.warning("fluentforward: no more connection attempts", metadata: ["endpoint": "\(config.host):\(config.port)", "attempts": "\(attempts)"])
            }
            throw ConsumerError.permanent("fluentforward: gave up on \(config.host):\(config.port) after \(attempts) connection attempts")
        }
        let now = ContinuousClock.now
        guard now >= nextAttempt else {
            throw ConsumerError.retryable("fluentforward: reconnecting to \(config.host):\(config.port) after backoff \(backoff)")
        }
        attempts += 1
        let task = Task { [config, logger, group] in try await ForwardConnection.open(config, logger: logger, group: group) }
        connecting = task
        defer { connecting = nil }
        do {
            let c = try await task.value
            current = c
            backoff = .zero
            logger.debug("fluentforward connected", metadata: ["endpoint": "\(config.host):\(config.port)"])
            return c
        } catch {
            backoff = backoff == .zero ? min(baseBackoff, maxBackoff) : min(backoff * 2, maxBackoff)
            nextAttempt = ContinuousClock.now + backoff
            throw ConsumerError.retryable("fluentforward: cannot connect to \(config.host):\(config.port): \(error)")
        }
    }

    public func close() {
        current?.close()
        current = nil
    }
}

/// One TCP connection to a Forward server. Frames from the server (HELO, PONG, acks) arrive through a
/// `ForwardReplyHandler`; acks complete the sends waiting for their chunk id.
final class ForwardConnection: Sendable {
    private struct State {
        var waiting: [String: CheckedContinuation<Void, any Error>] = [:]
        var closed = false
        /// Frames that arrived before anyone waited for them (only during the handshake).
        var handshakeFrames: [[UInt8]] = []
        var handshakeWaiter: CheckedContinuation<[UInt8]?, Never>?
        var handshakeDone = false
    }

    let channel: any Channel
    private let state = Mutex(State())

    private init(channel: any Channel) { self.channel = channel }

    var isOpen: Bool { channel.isActive && !state.withLock { $0.closed } }

    static func open(_ config: FluentForwardExporterConfig, logger: Logger, group: any EventLoopGroup) async throws -> ForwardConnection {
        let tls = try config.tls.map { ($0.serverHostname(for: config.host), try $0.makeContext()) }
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(Int64(config.connectionTimeout / .nanoseconds(1))))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    if let (hostname, context) = tls {
                        try ch.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: hostname))
                    }
                    let c = ForwardConnection(channel: ch)
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(ForwardReplyDecoder()))
                    try ch.pipeline.syncOperations.addHandler(ForwardReplyHandler(connection: c))
                }
            }
            .connect(host: config.host, port: config.port).get()
        let connection = try await channel.pipeline.handler(type: ForwardReplyHandler.self).get().connection
        guard let sharedKey = config.sharedKey else {
            connection.finishHandshake()
            return connection
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await connection.handshake(sharedKey: sharedKey, selfHostname: config.selfHostname) }
                group.addTask {
                    try await Task.sleep(for: config.connectionTimeout)
                    connection.close()  // wakes the handshake if it still waits for the server
                    throw ConsumerError.retryable("handshake timed out after \(GoDuration.format(config.connectionTimeout))")
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch {
            connection.close()
            throw error
        }
        connection.finishHandshake()
        return connection
    }

    /// HELO → PING → PONG from the client side; throws when the server refuses or cannot prove the key.
    private func handshake(sharedKey: String, selfHostname: String) async throws {
        guard let heloFrame = await nextHandshakeFrame() else { throw ConsumerError.retryable("connection closed before HELO") }
        let helo = try ForwardHandshake.decodeHelo(heloFrame)
        guard helo.auth.isEmpty else {
            throw ConsumerError.retryable("the server requires user authentication (username/password), which is not supported")
        }
        var rng = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let ping = ForwardHandshake.Ping(
            hostname: selfHostname, sharedKeySalt: salt,
            digest: ForwardHandshake.digest(salt: salt, hostname: selfHostname, nonce: helo.nonce, sharedKey: sharedKey))
        try await channel.writeAndFlush(ByteBuffer(bytes: ForwardHandshake.encode(ping)))
        guard let pongFrame = await nextHandshakeFrame() else { throw ConsumerError.retryable("connection closed before PONG") }
        let pong = try ForwardHandshake.decodePong(pongFrame)
        if let failure = ForwardHandshake.verify(pong, salt: salt, nonce: helo.nonce, sharedKey: sharedKey, selfHostname: selfHostname) {
            throw ConsumerError.retryable("fluentforward handshake failed: \(failure)")
        }
    }

    private func nextHandshakeFrame() async -> [UInt8]? {
        await withCheckedContinuation { (c: CheckedContinuation<[UInt8]?, Never>) in
            let ready = state.withLock { s -> [UInt8]?? in
                if !s.handshakeFrames.isEmpty { return .some(s.handshakeFrames.removeFirst()) }
                if s.closed { return .some(nil) }
                s.handshakeWaiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }

    private func finishHandshake() { state.withLock { $0.handshakeDone = true } }

    func send(_ frame: [UInt8], chunk: String?) async throws {
        guard let chunk else {
            try await channel.writeAndFlush(ByteBuffer(bytes: frame))
            return
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                // Checked under the lock that onCancel takes too, so a cancellation that came first is seen here.
                let refusal = state.withLock { s -> (any Error)? in
                    if s.closed { return ConsumerError.retryable("connection closed") }
                    if Task.isCancelled { return CancellationError() }
                    s.waiting[chunk] = c
                    return nil
                }
                if let refusal {
                    c.resume(throwing: refusal)
                    return
                }
                channel.writeAndFlush(ByteBuffer(bytes: frame)).whenFailure { [self] error in
                    state.withLock { $0.waiting.removeValue(forKey: chunk) }?.resume(throwing: error)
                }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: chunk) }?.resume(throwing: CancellationError())
        }
    }

    /// A frame from the server.
    func received(_ frame: [UInt8]) {
        enum Action {
            case none
            case handshake(CheckedContinuation<[UInt8]?, Never>)
            case ack(CheckedContinuation<Void, any Error>)
        }
        let action = state.withLock { s -> Action in
            if !s.handshakeDone {
                if let w = s.handshakeWaiter {
                    s.handshakeWaiter = nil
                    return .handshake(w)
                }
                s.handshakeFrames.append(frame)
                return .none
            }
            guard let chunk = ForwardCodec.decodeAck(frame), let c = s.waiting.removeValue(forKey: chunk) else { return .none }
            return .ack(c)
        }
        switch action {
        case .none: break
        case .handshake(let c): c.resume(returning: frame)
        case .ack(let c): c.resume()
        }
    }

    /// The connection is gone: every waiter fails (their batches will be retried).
    func closed(_ error: (any Error)?) {
        let (waiting, handshake) = state.withLock { s in
            s.closed = true
            defer {
                s.waiting = [:]
                s.handshakeWaiter = nil
            }
            return (Array(s.waiting.values), s.handshakeWaiter)
        }
        handshake?.resume(returning: nil)
        let reason = ConsumerError.retryable("connection closed before the ack\(error.map { ": \($0)" } ?? "")")
        for c in waiting { c.resume(throwing: reason) }
    }

    func close() { channel.close(promise: nil) }
}

/// Splits the server's replies into msgpack values (acks, HELO and PONG are small: 64 KiB at most).
struct ForwardReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    private var framer = MessagePackFramer(maxFrameSize: 64 << 10, maxDepth: 8)

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let length = try buffer.withUnsafeReadableBytes { raw throws(MessagePackError) in try framer.next(raw) }
        guard let length, let frame = buffer.readSlice(length: length) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }
}

final class ForwardReplyHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let connection: ForwardConnection

    init(connection: ForwardConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(Array(buffer: unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closed(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.closed(error)
        context.close(promise: nil)
    }
}
