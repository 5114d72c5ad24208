import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A complete HTTP request: head plus the whole (already decompressed) body.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: ByteBuffer
    /// The client's address, when known.
    public var remoteAddress: SocketAddress?

    public init(head: HTTPRequestHead, body: ByteBuffer, remoteAddress: SocketAddress? = nil) {
        self.head = head
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// The path without the query string.
    public var path: Substring {
        let uri = head.uri[...]
        return uri.firstIndex(of: "?").map { uri[uri.startIndex..<$0] } ?? uri
    }

    /// The query string parameters, percent-decoded, in order.
    public var query: [(String, String)] {
        guard let q = head.uri.firstIndex(of: "?") else { return [] }
        return head.uri[head.uri.index(after: q)...].split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (PercentDecoding.decode(kv[0]), kv.count > 1 ? PercentDecoding.decode(kv[1]) : "")
        }
    }

    /// The media type of `Content-Type` without parameters, lower-cased.
    public var mediaType: String? {
        guard let ct = head.headers.first(name: "content-type") else { return nil }
        return ct.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: " \t").lowercased() }
    }
}

/// A response to write back.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text response (used for errors that have no protocol-specific body).
    public static func text(_ status: HTTPResponseStatus, _ text: String) -> HTTPResponse {
        HTTPResponse(
            status: status, headers: ["content-type": "text/plain; charset=utf-8"], body: ByteBuffer(string: text + "\n"))
    }
}

/// Limits and options of an `HTTPServer`.
public struct HTTPServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The largest body accepted, compressed or not; larger requests get 413.
    public var maxRequestBodySize: Int
    /// Inflate `Content-Encoding: gzip|deflate` bodies (bounded by `maxRequestBodySize`).
    public var decompress: Bool
    /// Builds the response for requests the server refuses before the responder sees them
    /// (413, 415, 400 on a corrupt compressed body). Receivers use it to answer in their protocol's shape.
    public var errorResponder: @Sendable (HTTPResponseStatus, String, HTTPRequestHead) -> HTTPResponse
    /// Serve HTTPS: every connection starts with a TLS handshake (mutual when the context requires
    /// client certificates). A client that does not speak TLS, or has no acceptable certificate, is
    /// disconnected; other connections are unaffected.
    public var tls: NIOSSLContext?
    /// Checks each request's head before its body is read; a refused request gets
    /// `401 Unauthorized` with `WWW-Authenticate: <authenticateScheme>` (RFC 9110 §11.6.1), through
    /// `errorResponder`, and the connection is closed.
    public var authorize: (@Sendable (HTTPRequestHead) -> Bool)?
    /// The challenge sent with a 401, e.g. `Bearer` (RFC 6750 §3).
    public var authenticateScheme = "Bearer"
    /// Caps open connections; those past it are closed on accept. `nil`: no cap.
    public var connectionLimit: ConnectionLimit?

    public init(
        host: String, port: Int, maxRequestBodySize: Int = 20 << 20, decompress: Bool = true,
        errorResponder: @escaping @Sendable (HTTPResponseStatus, String, HTTPRequestHead) -> HTTPResponse = { status, message, _ in
            .text(status, message)
        }
    ) {
        self.host = host
        self.port = port
        self.maxRequestBodySize = maxRequestBodySize
        self.decompress = decompress
        self.errorResponder = errorResponder
    }
}

/// A small HTTP/1.1 server on SwiftNIO: keep-alive, pipelining, body limits, decompression.
///
/// Framing, limits and decompression live in one channel handler; the business logic is an async
/// `responder` closure run per request. Malformed HTTP is answered with 400 and that connection closed
/// (NIO's `HTTPServerProtocolErrorHandler`); other connections are unaffected.
public final class HTTPServer: Sendable {
    public typealias Responder = @Sendable (HTTPRequest) async -> HTTPResponse

    private let channel: any Channel
    private let tracker: ConnectionTracker
    /// The bound port (useful when configured with port 0).
    public let port: Int

    private init(channel: any Channel, tracker: ConnectionTracker) {
        self.channel = channel
        self.tracker = tracker
        self.port = channel.localAddress?.port ?? 0
    }

    /// Binds and starts serving.
    public static func start(
        _ configuration: HTTPServerConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger, responder: @escaping Responder
    ) async throws -> HTTPServer {
        let tracker = ConnectionTracker()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Telemetry requests are often tens to hundreds of KiB: start reads large.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .childChannelInitializer { channel in
                if let limit = configuration.connectionLimit, !limit.admit(channel) { return channel.eventLoop.makeSucceededVoidFuture() }
                tracker.add(channel)
                channel.closeFuture.whenComplete { _ in tracker.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls = configuration.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    // Pipelined requests are queued by `HTTPRequestHandler` itself: NIO's pipelining helper
                    // does it by dropping and restoring read interest around every request, two
                    // `epoll_ctl` calls per request even when nothing is pipelined. Malformed HTTP is
                    // answered by the handler too, after the answers to the requests before it.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPRequestHandler(configuration: configuration, responder: responder, tracker: tracker, logger: logger))
                }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        return HTTPServer(channel: channel, tracker: tracker)
    }

    /// Stops accepting connections, waits for requests in flight to be answered, then closes the rest.
    /// Cancellation cuts the wait short.
    public func shutdown() async {
        try? await channel.close()
        while tracker.inFlight > 0 && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
        for c in tracker.all() { try? await c.close() }
    }
}

/// Open connections and requests being processed, for graceful shutdown.
final class ConnectionTracker: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let requests = Atomic<Int>(0)

    func add(_ c: any Channel) { channels.withLock { $0[ObjectIdentifier(c)] = c } }
    func remove(_ c: any Channel) { _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(c)) } }
    func all() -> [any Channel] { channels.withLock { Array($0.values) } }
    func begin() { requests.add(1, ordering: .relaxed) }
    func end() { requests.subtract(1, ordering: .relaxed) }
    var inFlight: Int { requests.load(ordering: .relaxed) }
}

/// Aggregates one request at a time, enforcing the body limit while bytes arrive, then runs the
/// responder and writes its answer. Parts of pipelined requests (RFC 9112 §9.3.2) that arrive while a
/// request is being answered wait in order, and reading pauses only when too much waits.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer?)
        /// The request was refused early (e.g. 413); its remaining parts are ignored.
        case discarding
        case responding
    }

    private let configuration: HTTPServerConfiguration
    private let responder: HTTPServer.Responder
    private let tracker: ConnectionTracker
    private let logger: Logger
    private var state = State.idle
    /// Parts of requests that arrived while the one before was being answered.
    private var pipelined: [HTTPServerRequestPart] = []
    private var pipelinedBytes = 0
    private var readPaused = false
    /// Bytes that are not HTTP followed the queued parts: answered with 400 once they are handled.
    private var malformedAfterQueue = false
    /// Pipelined parts beyond these (or the body limit in bytes) pause reading until they are handled.
    private static let maxPipelinedParts = 64

    init(configuration: HTTPServerConfiguration, responder: @escaping HTTPServer.Responder, tracker: ConnectionTracker, logger: Logger) {
        self.configuration = configuration
        self.responder = responder
        self.tracker = tracker
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if isResponding || !pipelined.isEmpty {
            queue(context, part)
        } else {
            handle(context, part)
        }
    }

    private func queue(_ context: ChannelHandlerContext, _ part: HTTPServerRequestPart) {
        pipelined.append(part)
        if case .body(let b) = part { pipelinedBytes += b.readableBytes }
        if !readPaused, pipelined.count > Self.maxPipelinedParts || pipelinedBytes > configuration.maxRequestBodySize {
            readPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
    }

    /// Handles waiting parts until a request is being answered again or none are left. Each part
    /// leaves the queue before it is handled, as handling may answer at once and drain again.
    private func drainPipelined(_ context: ChannelHandlerContext) {
        while !pipelined.isEmpty, !isResponding {
            let part = pipelined.removeFirst()
            if case .body(let b) = part { pipelinedBytes -= b.readableBytes }
            handle(context, part)
        }
        if pipelined.isEmpty, malformedAfterQueue, !isResponding {
            malformedAfterQueue = false
            badRequest(context)
            return
        }
        if pipelined.isEmpty, readPaused, context.channel.isActive {
            readPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    private func handle(_ context: ChannelHandlerContext, _ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            if let authorize = configuration.authorize, !authorize(head) {
                refuse(
                    context, head, .unauthorized, "missing or invalid credentials",
                    headers: [("www-authenticate", configuration.authenticateScheme)])
                return
            }
            if let lengthText = head.headers.first(name: "content-length"), let length = Int(lengthText),
                length > configuration.maxRequestBodySize
            {
                refuse(context, head, .payloadTooLarge, "request body of \(length) bytes exceeds the limit of \(configuration.maxRequestBodySize) bytes")
                return
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            state = .receiving(head, nil)
        case .body(var part):
            guard case .receiving(let head, let received) = state else { return }
            state = .idle  // release our reference so the append below does not copy
            let size = (received?.readableBytes ?? 0) + part.readableBytes
            if size > configuration.maxRequestBodySize {
                refuse(context, head, .payloadTooLarge, "request body exceeds the limit of \(configuration.maxRequestBodySize) bytes")
                return
            }
            // Most bodies arrive as one part: keep it as is, and copy only when a second part arrives.
            guard var body = received else {
                state = .receiving(head, part)
                return
            }
            body.writeBuffer(&part)
            state = .receiving(head, body)
        case .end:
            switch state {
            case .receiving(let head, let body):
                state = .responding
                dispatch(context, head, body ?? ByteBuffer())
            case .discarding:
                state = .idle
            default:
                break
            }
        }
    }

    private func dispatch(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ rawBody: ByteBuffer) {
        var body = rawBody
        if configuration.decompress, let encoding = head.headers.first(name: "content-encoding")?.lowercased(), encoding != "identity" {
            do throws(Inflater.Failure) {
                switch encoding {
                case "gzip", "x-gzip":
                    body = try Inflater.inflate(rawBody, limit: configuration.maxRequestBodySize, allocator: context.channel.allocator)
                case "deflate":
                    // RFC 9110 says zlib-wrapped; some clients send raw deflate. Try both.
                    do {
                        body = try Inflater.inflate(rawBody, limit: configuration.maxRequestBodySize, allocator: context.channel.allocator)
                    } catch .corrupt {
                        body = try Inflater.inflate(
                            rawBody, format: .rawDeflate, limit: configuration.maxRequestBodySize, allocator: context.channel.allocator)
                    }
                default:
                    write(context, head, configuration.errorResponder(.unsupportedMediaType, "unsupported Content-Encoding '\(encoding)'", head))
                    return
                }
            } catch .tooLarge {
                write(context, head, configuration.errorResponder(.payloadTooLarge, Inflater.Failure.tooLarge(limit: configuration.maxRequestBodySize).description, head))
                return
            } catch {
                write(context, head, configuration.errorResponder(.badRequest, error.description, head))
                return
            }
        }
        let request = HTTPRequest(head: head, body: body, remoteAddress: context.channel.remoteAddress)
        let responder = self.responder
        let tracker = self.tracker
        tracker.begin()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // The responder runs with this connection's event loop as its task executor: decoding and
        // handing data to the pipeline happen on the thread that read the bytes, without two thread
        // hops per request; anything the responder awaits elsewhere resumes back here.
        Task(executorPreference: executor(context.eventLoop)) {
            let response = await responder(request)
            tracker.end()
            let (handler, context) = bound.value
            handler.write(context, head, response)
        }
    }

    private var cachedExecutor: EventLoopTaskExecutor?

    private func executor(_ loop: any EventLoop) -> EventLoopTaskExecutor {
        if let e = cachedExecutor { return e }
        let e = EventLoopTaskExecutor(loop)
        cachedExecutor = e
        return e
    }

    /// Answers before the body has been read, then closes: the rest of the body is not worth reading.
    private func refuse(
        _ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ message: String,
        headers: [(String, String)] = []
    ) {
        state = .discarding
        var response = configuration.errorResponder(status, message, head)
        for (name, value) in headers { response.headers.replaceOrAdd(name: name, value: value) }
        response.headers.replaceOrAdd(name: "connection", value: "close")
        write(context, head, response, close: true)
    }

    private func write(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ response: HTTPResponse, close: Bool = false) {
        let answered = isResponding
        if answered { state = .idle }
        let keepAlive = request.isKeepAlive && !close
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.readableBytes))
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil) }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            pipelined = []
            pipelinedBytes = 0
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else if answered, !pipelined.isEmpty || malformedAfterQueue {
            drainPipelined(context)
        }
    }

    /// Malformed HTTP (a parser error) gets 400 and the connection closes, as NIO's
    /// `HTTPServerProtocolErrorHandler` does, but only after the requests read before it are answered.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("HTTP connection error: \(error)")
        guard error is HTTPParserError else {
            context.close(promise: nil)
            return
        }
        if isResponding || !pipelined.isEmpty {
            malformedAfterQueue = true
        } else if case .discarding = state {
            context.close(promise: nil)
        } else {
            badRequest(context)
        }
    }

    private var isResponding: Bool {
        if case .responding = state { return true }
        return false
    }

    private func badRequest(_ context: ChannelHandlerContext) {
        state = .discarding
        pipelined = []
        let head = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: HTTPHeaders([("connection", "close"), ("content-length", "0")]))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension HTTPRequestHandler: Sendable {}

/// Runs Swift tasks on a NIO event loop (a `TaskExecutor` preference), so async request handling
/// stays on the connection's thread.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// `application/x-www-form-urlencoded`-style percent decoding for query strings.
public enum PercentDecoding {
    public static func decode(_ s: Substring) -> String {
        guard s.contains("%") || s.contains("+") else { return String(s) }
        var out: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if c == UInt8(ascii: "%"), it.count >= 2, let h = hex(it[it.startIndex]), let l = hex(it[it.startIndex + 1]) {
                out.append(h << 4 | l)
                it = it.dropFirst(2)
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
