import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import SextantHTTP
import Synchronization

/// A gRPC client for unary calls over one multiplexed HTTP/2 connection, as the OTLP exporters need it.
///
/// It follows "gRPC over HTTP2" (grpc/grpc `doc/PROTOCOL-HTTP2.md`): a call is HEADERS (`:method POST`,
/// `:path /<service>/<method>`, `content-type application/grpc`, `te trailers`, `grpc-timeout`,
/// `grpc-encoding`), one length-prefixed message and END_STREAM; the answer is HEADERS, a length-prefixed
/// message and trailers carrying `grpc-status` and a percent-encoded `grpc-message`, or a Trailers-Only
/// HEADERS frame. A response without `grpc-status` is mapped from its HTTP status
/// (`doc/http-grpc-status-mapping.md`); a reset stream from its HTTP/2 error code.
///
/// The connection is opened on the first call, replaced after it closes or the server sends GOAWAY (calls
/// in flight on the old one finish there), and shared by concurrent calls as HTTP/2 streams. A call that
/// cannot connect fails with UNAVAILABLE at once, unless `waitForReady` asks it to keep trying until its
/// deadline. The exchange runs on one event loop with no per-call tasks.
public final class GRPCUnaryClient: Sendable {
    public enum Compression: Sendable { case none, gzip }

    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// TLS (the context should offer ALPN `h2`); `nil` is cleartext HTTP/2 with prior knowledge.
        public var tls: NIOSSLContext?
        /// Sent in SNI and checked against the server's certificate; `nil` checks its IP addresses.
        public var serverHostname: String?
        public var compression: Compression = .none
        /// zlib level for `gzip` (1 fastest … 9 smallest; -1 is zlib's default, 6).
        public var gzipLevel: Int32 = -1
        public var connectTimeout: Duration = .seconds(10)
        /// Largest response message accepted (after decompression): gRPC's default of 4 MiB.
        public var maxResponseBytes = 4 << 20

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private struct Connection: Sendable {
        let channel: any Channel
        let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    }

    private enum State {
        case idle
        /// Connecting or connected; `generation` tells a stale close or GOAWAY from the current one.
        case active(generation: Int, EventLoopFuture<Connection>)
        case closed
    }

    public let configuration: Configuration
    private let eventLoop: any EventLoop
    private let state = Mutex<(state: State, generation: Int)>((.idle, 0))
    /// The last connection-level error (TLS handshake, protocol), so calls that lose their stream to it say why.
    private let connectionError = Mutex<String?>(nil)
    private let authority: String

    public init(_ configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.eventLoop = group.next()
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        self.authority = "\(host):\(configuration.port)"
    }

    /// Calls `path` (`/<service>/<method>`) with one message; returns the response message or throws the
    /// call's status (never OK).
    public func unary(
        path: String, message: [UInt8], metadata: [(String, String)] = [], timeout: Duration? = nil, waitForReady: Bool = false
    ) async throws(GRPCStatus) -> [UInt8] {
        try await unary(path: path, messageParts: [message], metadata: metadata, timeout: timeout, waitForReady: waitForReady)
    }

    /// The same with the message given as consecutive parts (e.g. concatenated protobuf encodings),
    /// written straight into the frame instead of being joined first.
    public func unary(
        path: String, messageParts: [[UInt8]], metadata: [(String, String)] = [], timeout: Duration? = nil, waitForReady: Bool = false
    ) async throws(GRPCStatus) -> [UInt8] {
        let deadline = timeout.map { NIODeadline.now() + TimeAmount($0) }
        let connection = try await connect(until: deadline, waitForReady: waitForReady)
        let payload = lengthPrefixed(messageParts)
        let headers = requestHeaders(path: path, metadata: metadata, deadline: deadline)
        let limit = configuration.maxResponseBytes
        let loop = connection.channel.eventLoop
        let promise = loop.makePromise(of: [UInt8].self)
        connection.multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(
                    UnaryCallHandler(headers: headers, payload: payload, promise: promise, maxResponseBytes: limit))
            }
        }.whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(GRPCStatus(code: GRPCStatus.unavailable, message: "cannot open a stream to \(self.authority): \(error)"))
            case .success(let stream):
                // A deadline or cancellation resets the stream (RST_STREAM CANCEL).
                promise.futureResult.whenFailure { _ in stream.close(promise: nil) }
            }
        }
        if let deadline {
            let timer = loop.scheduleTask(deadline: deadline) {
                promise.fail(GRPCStatus(code: GRPCStatus.deadlineExceeded, message: "no answer from \(self.authority) within \(timeout!)"))
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        let result = await withTaskCancellationHandler {
            do {
                return Result<[UInt8], GRPCStatus>.success(try await promise.futureResult.get())
            } catch let status as GRPCStatus {
                return .failure(status)
            } catch {
                return .failure(GRPCStatus(code: GRPCStatus.unknown, message: "\(error)"))
            }
        } onCancel: {
            promise.fail(GRPCStatus(code: GRPCStatus.cancelled, message: "the call was cancelled"))
        }
        if case .failure(let status) = result { throw explained(status) }
        return try result.get()
    }

    /// Closes the connection; calls still in flight fail with UNAVAILABLE, later calls too.
    public func close() async {
        let current: EventLoopFuture<Connection>? = state.withLock { s in
            defer { s.state = .closed }
            if case .active(_, let f) = s.state { return f }
            return nil
        }
        if let channel = try? await current?.get().channel { try? await channel.close() }
    }

    // MARK: - Connection

    private func connect(until deadline: NIODeadline?, waitForReady: Bool) async throws(GRPCStatus) -> Connection {
        var backoff = Duration.milliseconds(200)
        while true {
            do {
                return try await connection().get()
            } catch {
                let failure = explained(error as? GRPCStatus ?? GRPCStatus(code: GRPCStatus.unavailable, message: "cannot connect to \(authority): \(error)"))
                let retryFits = deadline.map { limit in NIODeadline.now() + TimeAmount(backoff) < limit } ?? true
                guard waitForReady, failure.code == GRPCStatus.unavailable, !Task.isCancelled, retryFits else { throw failure }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 1.6, .seconds(2))
            }
        }
    }

    /// An UNAVAILABLE `status` with the connection's last error (a TLS handshake, a protocol error) appended,
    /// so a call that failed because of it says why; other statuses unchanged.
    private func explained(_ status: GRPCStatus) -> GRPCStatus {
        guard status.code == GRPCStatus.unavailable, let reason = connectionError.withLock({ $0 }) else { return status }
        var status = status
        status.message += " (connection error: \(reason))"
        return status
    }

    /// The current connection, opening one when there is none.
    private func connection() -> EventLoopFuture<Connection> {
        let (future, generation, opened): (EventLoopFuture<Connection>, Int, Bool) = state.withLock { s in
            switch s.state {
            case .active(let generation, let future):
                return (future, generation, false)
            case .closed:
                return (eventLoop.makeFailedFuture(GRPCStatus(code: GRPCStatus.unavailable, message: "the client is closed")), 0, false)
            case .idle:
                s.generation += 1
                let future = open(generation: s.generation)
                s.state = .active(generation: s.generation, future)
                return (future, s.generation, true)
            }
        }
        if opened {
            // Outside the lock: an already completed future runs these callbacks at once.
            future.whenComplete { result in
                switch result {
                case .failure: self.retire(generation)
                case .success(let c): c.channel.closeFuture.whenComplete { _ in self.retire(generation) }
                }
            }
        }
        return future
    }

    /// Forgets connection `generation` (closed, failed or going away), so the next call opens another.
    private func retire(_ generation: Int) {
        state.withLock {
            if case .active(let g, _) = $0.state, g == generation { $0.state = .idle }
        }
    }

    private func open(generation: Int) -> EventLoopFuture<Connection> {
        let config = configuration
        connectionError.withLock { $0 = nil }
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(config.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls = config.tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: config.serverHostname))
                    }
                    // The server opens no streams (no push): any it tries is closed.
                    _ = try sync.configureHTTP2Pipeline(mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()) {
                        $0.close()
                    }
                    try sync.addHandler(GoAwayWatcher { self.retire(generation) })
                    try sync.addHandler(ConnectionErrorHandler { error in self.connectionError.withLock { $0 = "\(error)" } })
                }
            }
            .connect(host: config.host, port: config.port)
            .flatMapThrowing { channel in
                // A connection that fails at once (a TLS handshake the server answers by closing) may already
                // have lost its handlers here: that is a closed connection, not a missing handler.
                guard let http2 = try? channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self) else {
                    throw GRPCStatus(code: GRPCStatus.unavailable, message: "the connection to \(self.authority) closed while it was being set up")
                }
                return Connection(channel: channel, multiplexer: try http2.syncMultiplexer())
            }
    }

    // MARK: - Request

    private func lengthPrefixed(_ parts: [[UInt8]]) -> ByteBuffer {
        guard configuration.compression == .gzip else { return GRPCMessageFrame.encode(parts: parts) }
        let message = parts.count == 1 ? parts[0] : Array(parts.joined())
        return GRPCMessageFrame.encode(Inflater.gzip(message, level: configuration.gzipLevel), compressed: true)
    }

    private func requestHeaders(path: String, metadata: [(String, String)], deadline: NIODeadline?) -> HPACKHeaders {
        var h = HPACKHeaders()
        h.reserveCapacity(10 + metadata.count)
        h.add(name: ":method", value: "POST")
        h.add(name: ":scheme", value: configuration.tls == nil ? "http" : "https")
        h.add(name: ":path", value: path)
        h.add(name: ":authority", value: authority)
        h.add(name: "content-type", value: "application/grpc")
        h.add(name: "te", value: "trailers")
        h.add(name: "user-agent", value: "sextant-grpc")
        h.add(name: "grpc-accept-encoding", value: "identity,deflate,gzip")
        if configuration.compression == .gzip { h.add(name: "grpc-encoding", value: "gzip") }
        if let deadline { h.add(name: "grpc-timeout", value: Self.timeoutText(deadline - .now())) }
        for (name, value) in metadata {
            let name = name.lowercased()
            guard !name.hasPrefix(":"), !Self.reserved.contains(name) else { continue }
            // Credentials stay out of HPACK's dynamic table.
            h.add(name: name, value: value, indexing: name == "authorization" ? .neverIndexed : .indexable)
        }
        return h
    }

    /// Headers the protocol sets itself; metadata cannot override them.
    private static let reserved: Set<String> = [
        "content-type", "te", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "host",
        "connection", "transfer-encoding",
    ]

    /// `grpc-timeout`: at most 8 digits and a unit, rounded up (`Timeout → TimeoutValue TimeoutUnit`).
    static func timeoutText(_ remaining: TimeAmount) -> String {
        let ns = max(remaining.nanoseconds, 1)
        for (unit, scale) in [("n", Int64(1)), ("u", 1_000), ("m", 1_000_000), ("S", 1_000_000_000), ("M", 60_000_000_000), ("H", 3_600_000_000_000)] {
            let value = (ns + scale - 1) / scale
            if value < 100_000_000 { return "\(value)\(unit)" }
        }
        return "99999999H"
    }
}

/// Records a connection-level error (a failed TLS handshake, an HTTP/2 protocol error after which NIO has sent
/// GOAWAY) and closes the connection.
private final class ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    private let record: @Sendable (any Error) -> Void

    init(_ record: @escaping @Sendable (any Error) -> Void) { self.record = record }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        record(error)
        context.close(promise: nil)
    }
}

/// Retires the connection when the server sends GOAWAY: streams it already accepted finish on it, new calls
/// go to a new connection.
private final class GoAwayWatcher: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let onGoAway: @Sendable () -> Void

    init(_ onGoAway: @escaping @Sendable () -> Void) { self.onGoAway = onGoAway }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload { onGoAway() }
        context.fireChannelRead(data)
    }
}

/// One call on its own HTTP/2 stream: sends the request when the stream becomes active and completes
/// `promise` with the response message or the status.
private final class UnaryCallHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let headers: HPACKHeaders
    private let payload: ByteBuffer
    private let promise: EventLoopPromise<[UInt8]>
    private let maxResponseBytes: Int
    private var sent = false
    private var httpStatus: Int?
    private var grpcContentType = false
    private var encoding: String?
    private var body: ByteBuffer?

    init(headers: HPACKHeaders, payload: ByteBuffer, promise: EventLoopPromise<[UInt8]>, maxResponseBytes: Int) {
        self.headers = headers
        self.payload = payload
        self.promise = promise
        self.maxResponseBytes = maxResponseBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    private func send(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(payload), endStream: true))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let h):
            if httpStatus == nil {
                let status = Int(h.headers.first(name: ":status") ?? "") ?? 0
                // 1xx answers are interim; the real response headers follow.
                if (100..<200).contains(status), !h.endStream { return }
                httpStatus = status
                grpcContentType = h.headers.first(name: "content-type")?.hasPrefix("application/grpc") ?? false
                encoding = h.headers.first(name: "grpc-encoding")?.lowercased()
                if h.endStream { finish(context, trailers: h.headers) }  // Trailers-Only
            } else {
                finish(context, trailers: h.headers)
            }
        case .data(let d):
            guard case .byteBuffer(var bytes) = d.data else { return }
            if body == nil { body = bytes } else { body!.writeBuffer(&bytes) }
            if body!.readableBytes > maxResponseBytes + 5 {
                fail(context, GRPCStatus(code: GRPCStatus.resourceExhausted, message: "response exceeds \(maxResponseBytes) bytes"))
                return
            }
            if d.endStream { finish(context, trailers: nil) }
        case .rstStream(let code):
            fail(context, Self.status(for: code))
        default:
            break
        }
    }

    private func finish(_ context: ChannelHandlerContext, trailers: HPACKHeaders?) {
        guard let trailers, let statusText = trailers.first(name: "grpc-status") else {
            if let httpStatus, httpStatus != 200 { return fail(context, GRPCStatus.fromHTTPStatus(httpStatus)) }
            return fail(context, GRPCStatus(code: GRPCStatus.internal, message: "the response ended without a grpc-status"))
        }
        let code = Int(statusText) ?? GRPCStatus.unknown
        if code != GRPCStatus.ok {
            let message = trailers.first(name: "grpc-message").map(GRPCStatus.percentDecoded) ?? ""
            return fail(context, GRPCStatus(code: code, message: message))
        }
        guard grpcContentType else {
            return fail(context, GRPCStatus(code: GRPCStatus.unknown, message: "the response's content-type is not application/grpc"))
        }
        do throws(GRPCStatus) {
            promise.succeed(try message())
        } catch {
            fail(context, error)
        }
    }

    /// The one length-prefixed message of the response, inflated if it is compressed.
    private func message() throws(GRPCStatus) -> [UInt8] {
        let buffer = body ?? ByteBuffer()
        body = nil
        do throws(GRPCMessageFrame.Failure) {
            return try GRPCMessageFrame.decodeSingle(buffer, inflatable: encoding == "gzip" || encoding == "deflate", limit: maxResponseBytes)
        } catch {
            switch error {
            case .missing:
                throw GRPCStatus(code: GRPCStatus.internal, message: "the response carries no message")
            case .declaredTooLarge, .lengthMismatch:
                // A declared length past the limit cannot match what was buffered: reading stops at the limit.
                throw GRPCStatus(code: GRPCStatus.internal, message: "a unary response is exactly one message of its declared length")
            case .compressedWithoutEncoding:
                throw GRPCStatus(code: GRPCStatus.internal, message: "a compressed response with grpc-encoding \(encoding ?? "missing")")
            case .inflate(.tooLarge):
                throw GRPCStatus(code: GRPCStatus.resourceExhausted, message: "response exceeds \(maxResponseBytes) bytes once decompressed")
            case .inflate(let failure):
                throw GRPCStatus(code: GRPCStatus.internal, message: "cannot decompress the response: \(failure)")
            }
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ status: GRPCStatus) {
        body = nil
        promise.fail(status)
        context.close(promise: nil)
    }

    /// RST_STREAM's error code as a status (`PROTOCOL-HTTP2.md`, "Errors").
    static func status(for code: HTTP2ErrorCode) -> GRPCStatus {
        let status: Int
        switch code {
        case .refusedStream: status = GRPCStatus.unavailable
        case .cancel: status = GRPCStatus.cancelled
        case .enhanceYourCalm: status = GRPCStatus.resourceExhausted
        case .inadequateSecurity: status = GRPCStatus.permissionDenied
        default: status = GRPCStatus.internal
        }
        return GRPCStatus(code: status, message: "stream reset by the server (\(code))")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            fail(context, Self.status(for: closed.errorCode))
        } else {
            fail(context, GRPCStatus(code: GRPCStatus.unavailable, message: "\(error)"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(GRPCStatus(code: GRPCStatus.unavailable, message: "the stream closed before the call completed"))
        context.fireChannelInactive()
    }
}
