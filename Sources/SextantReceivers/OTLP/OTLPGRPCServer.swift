import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import SextantGRPC
import SextantHTTP
import SextantModel
import Synchronization

/// The OTLP/gRPC listener: unary `Export` calls of the three OTLP services over HTTP/2 (cleartext with
/// prior knowledge, or TLS with ALPN `h2`), served by a handler on each stream's event loop.
///
/// It follows "gRPC over HTTP2" (grpc/grpc `doc/PROTOCOL-HTTP2.md`): a request is HEADERS (`:method
/// POST`, `:path /<service>/<method>`, `content-type application/grpc[+proto]`, optional
/// `grpc-encoding`), one length-prefixed message (1-byte compressed flag, 4-byte big-endian length), and
/// END_STREAM; the response is HEADERS (`:status 200`), one length-prefixed message and trailers with
/// `grpc-status`, or a Trailers-Only response carrying `grpc-status`/`grpc-message` when the call fails.
/// Compressed messages are inflated (`gzip`, `deflate`) under the size limit, so a small body that
/// inflates past `max_recv_msg_size_mib` fails with RESOURCE_EXHAUSTED like an oversized one.
///
/// The exchange of one call runs on the event loop that reads it, and so does the async handler (the
/// loop is its task executor): no thread hop per call, where a general-purpose gRPC server spends
/// several.
final class OTLPGRPCServer: Sendable {
    /// `handle(signal, message)` returns the response message or throws a `GRPCStatus`.
    typealias Handler = @Sendable (Signal, [UInt8]) async throws(GRPCStatus) -> [UInt8]

    /// What each call needs, shared by every stream.
    struct Settings: Sendable {
        var methods: [String: Signal]
        var maxMessageBytes: Int
        var authenticate: (@Sendable ((String) -> String?) -> Bool)?
        var handle: Handler
        var onOversized: @Sendable (Signal) -> Void
    }

    private let channel: any Channel
    private let tracker: ConnectionTracker
    let port: Int

    private init(channel: any Channel, tracker: ConnectionTracker) {
        self.channel = channel
        self.tracker = tracker
        self.port = channel.localAddress?.port ?? 0
    }

    /// Open connections and calls in flight, for a graceful stop.
    final class ConnectionTracker: Sendable {
        private let open = Mutex<[ObjectIdentifier: any Channel]>([:])
        let calls = Atomic<Int>(0)

        func add(_ channel: any Channel) {
            let id = ObjectIdentifier(channel)
            open.withLock { $0[id] = channel }
            channel.closeFuture.whenComplete { _ in self.open.withLock { _ = $0.removeValue(forKey: id) } }
        }

        func closeAll() {
            for c in open.withLock({ Array($0.values) }) { c.close(promise: nil) }
        }
    }

    /// The inbound flow-control windows. HTTP/2's default, 64 KiB per stream and per connection, makes a
    /// client stop after each 64 KiB of a message until a WINDOW_UPDATE comes back: a 1 MiB export takes
    /// about thirty round trips, each a write and a wake-up on both sides. gRPC's own servers open wider
    /// windows (grpc-java 1 MiB per stream; grpc-go and gRPC core grow theirs by bandwidth-delay
    /// estimation). The windows do not raise what a connection may hold: each call's handler reads its
    /// frames as they arrive and is bounded by `maxMessageBytes` whatever the window.
    static let streamWindow = 1 << 20
    /// See ``streamWindow``; room for a few concurrent calls' worth of one stream window each.
    static let connectionWindow = 4 << 20

    /// The HTTP/2 settings the server starts with: NIO's defaults plus the wider stream window.
    static var connectionConfiguration: NIOHTTP2Handler.ConnectionConfiguration {
        var c = NIOHTTP2Handler.ConnectionConfiguration()
        c.initialSettings.append(HTTP2Setting(parameter: .initialWindowSize, value: streamWindow))
        c.targetWindowSize = connectionWindow
        return c
    }

    static var streamConfiguration: NIOHTTP2Handler.StreamConfiguration {
        var c = NIOHTTP2Handler.StreamConfiguration()
        c.targetWindowSize = streamWindow
        return c
    }

    static func start(
        host: String, port: Int, tls: NIOSSLContext?, connectionLimit: ConnectionLimit, settings: Settings,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> OTLPGRPCServer {
        let tracker = ConnectionTracker()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard connectionLimit.admit(channel) else { return channel.eventLoop.makeSucceededVoidFuture() }
                tracker.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls)) }
                    let executor = EventLoopTaskExecutor(channel.eventLoop)
                    _ = try sync.configureHTTP2Pipeline(
                        mode: .server, connectionConfiguration: connectionConfiguration,
                        streamConfiguration: streamConfiguration
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(
                                GRPCUnaryCallHandler(settings: settings, tracker: tracker, executor: executor))
                        }
                    }
                    // A connection error (not HTTP/2, a bad frame) makes the HTTP/2 handler send GOAWAY and
                    // report the error; closing is left to the pipeline.
                    try sync.addHandler(NIOCloseOnErrorHandler())
                }
            }
            .bind(host: host, port: port).get()
        return OTLPGRPCServer(channel: channel, tracker: tracker)
    }

    /// Stops accepting, lets calls in flight finish (up to `grace`), then closes every connection.
    func close(grace: Duration = .seconds(5)) async {
        try? await channel.close()
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while tracker.calls.load(ordering: .relaxed) > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        tracker.closeAll()
    }
}

/// One HTTP/2 stream: one unary call.
final class GRPCUnaryCallHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State {
        case awaitingHeaders
        case receiving(Signal, encoding: String?)
        /// Answered (or answering): later frames are ignored.
        case done
    }

    private let settings: OTLPGRPCServer.Settings
    private let tracker: OTLPGRPCServer.ConnectionTracker
    private let executor: EventLoopTaskExecutor
    private var state = State.awaitingHeaders
    private var body: ByteBuffer?

    init(settings: OTLPGRPCServer.Settings, tracker: OTLPGRPCServer.ConnectionTracker, executor: EventLoopTaskExecutor) {
        self.settings = settings
        self.tracker = tracker
        self.executor = executor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let h):
            if case .awaitingHeaders = state {
                begin(context, h.headers)
                if h.endStream { end(context) }
            } else if h.endStream {
                end(context)  // request trailers
            }
        case .data(let d):
            guard case .receiving(let signal, _) = state, case .byteBuffer(var bytes) = d.data else { return }
            if body == nil {
                body = bytes
            } else {
                body!.writeBuffer(&bytes)
            }
            // Header (5) plus the largest message accepted; anything past that is refused at once.
            if body!.readableBytes > settings.maxMessageBytes + 5 {
                settings.onOversized(signal)
                fail(context, GRPCStatus(code: GRPCStatus.resourceExhausted, message: "message exceeds max_recv_msg_size_mib (\(settings.maxMessageBytes) bytes)"))
                return
            }
            if d.endStream { end(context) }
        default:
            break
        }
    }

    private func begin(_ context: ChannelHandlerContext, _ headers: HPACKHeaders) {
        guard headers.first(name: ":method") == "POST" else {
            return fail(context, GRPCStatus(code: GRPCStatus.unimplemented, message: "gRPC calls are POST requests"))
        }
        guard let contentType = headers.first(name: "content-type"), contentType.hasPrefix("application/grpc") else {
            // Not gRPC at all: an HTTP answer, as the protocol asks (415 Unsupported Media Type).
            state = .done
            let response = HPACKHeaders([(":status", "415")])
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: response, endStream: true))), promise: nil)
            return
        }
        let path = headers.first(name: ":path") ?? ""
        guard let signal = settings.methods[path] else {
            return fail(context, GRPCStatus(code: GRPCStatus.unimplemented, message: "method \(path) is not implemented"))
        }
        if let authenticate = settings.authenticate, !authenticate({ headers.first(name: $0.lowercased()) }) {
            return fail(context, GRPCStatus(code: GRPCStatus.unauthenticated, message: "missing or invalid credentials"))
        }
        let encoding = headers.first(name: "grpc-encoding").map { $0.lowercased() }
        if let encoding, !["identity", "gzip", "deflate"].contains(encoding) {
            // The spec's answer to an unsupported message encoding, with what is supported.
            return fail(context, GRPCStatus(code: GRPCStatus.unimplemented, message: "message encoding \(encoding) is not supported"), extra: [("grpc-accept-encoding", "identity,deflate,gzip")])
        }
        state = .receiving(signal, encoding: encoding == "identity" ? nil : encoding)
    }

    /// END_STREAM: decode the one message and call the handler.
    private func end(_ context: ChannelHandlerContext) {
        guard case .receiving(let signal, let encoding) = state else { return }
        state = .done
        let buffer = body ?? ByteBuffer()
        body = nil
        let message: [UInt8]
        do throws(GRPCMessageFrame.Failure) {
            // `encoding` is set only for the encodings `begin` accepted (gzip, deflate).
            message = try GRPCMessageFrame.decodeSingle(buffer, inflatable: encoding != nil, limit: settings.maxMessageBytes)
        } catch {
            let max = settings.maxMessageBytes
            switch error {
            case .missing:
                return fail(context, GRPCStatus(code: GRPCStatus.internal, message: "the request carries no message"))
            case .declaredTooLarge(let length):
                settings.onOversized(signal)
                return fail(context, GRPCStatus(code: GRPCStatus.resourceExhausted, message: "message of \(length) bytes exceeds max_recv_msg_size_mib (\(max) bytes)"))
            case .lengthMismatch:
                return fail(context, GRPCStatus(code: GRPCStatus.internal, message: "a unary call takes exactly one message of its declared length"))
            case .compressedWithoutEncoding:
                return fail(context, GRPCStatus(code: GRPCStatus.internal, message: "a compressed message without grpc-encoding"))
            case .inflate(.tooLarge):
                settings.onOversized(signal)
                return fail(context, GRPCStatus(code: GRPCStatus.resourceExhausted, message: "message exceeds max_recv_msg_size_mib (\(max) bytes) once decompressed"))
            case .inflate(let failure):
                return fail(context, GRPCStatus(code: GRPCStatus.internal, message: "cannot decompress the message: \(failure)"))
            }
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let handle = settings.handle
        let tracker = self.tracker
        let request = message
        tracker.calls.add(1, ordering: .relaxed)
        Task(executorPreference: executor) {
            let result: Result<[UInt8], GRPCStatus>
            do throws(GRPCStatus) {
                result = .success(try await handle(signal, request))
            } catch {
                result = .failure(error)
            }
            @Sendable func write() {
                let (handler, context) = bound.value
                switch result {
                case .success(let reply): handler.reply(context, reply)
                case .failure(let status): handler.fail(context, status)
                }
                tracker.calls.subtract(1, ordering: .relaxed)
            }
            // The task runs on the stream's loop (its executor) unless something moved it.
            if bound.eventLoop.inEventLoop { write() } else { bound.eventLoop.execute { write() } }
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ message: [UInt8]) {
        let headers = HPACKHeaders([(":status", "200"), ("content-type", "application/grpc")])
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        let frame = GRPCMessageFrame.encode(message, compressed: false, allocator: context.channel.allocator)
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(frame)))), promise: nil)
        let trailers = HPACKHeaders([("grpc-status", "0")])
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
    }

    /// A Trailers-Only response: the status in the only HEADERS frame, which ends the stream.
    private func fail(_ context: ChannelHandlerContext, _ status: GRPCStatus, extra: [(String, String)] = []) {
        state = .done
        body = nil
        var headers = HPACKHeaders([
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-status", String(status.code)),
            ("grpc-message", GRPCStatus.percentEncoded(status.message)),
        ])
        for (name, value) in extra { headers.add(name: name, value: value) }
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension GRPCUnaryCallHandler: Sendable {}
