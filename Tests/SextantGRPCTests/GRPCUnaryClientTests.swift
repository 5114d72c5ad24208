import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
@testable import SextantGRPC
import SextantHTTP
import Synchronization
import Testing

/// `GRPCUnaryClient` against a strict gRPC server double written on swift-nio-http2 (the interop suite runs
/// the client against grpcio; this double adds the answers grpcio cannot be made to give: HTTP errors
/// without a gRPC status, silence, GOAWAY, oversized replies). The double follows "gRPC over HTTP2": it
/// checks the request's headers and framing and answers by method path.
@Suite(.serialized) struct GRPCUnaryClientTests {
    /// Runs a call that must fail with `code`.
    func expectStatus(_ code: Int, sourceLocation: SourceLocation = #_sourceLocation, _ call: () async throws -> Void) async {
        do {
            try await call()
            Issue.record("expected \(GRPCStatus(code: code, message: "").codeName)", sourceLocation: sourceLocation)
        } catch {
            #expect((error as? GRPCStatus)?.code == code, "\(error)", sourceLocation: sourceLocation)
        }
    }

    /// The deadline of calls expected to finish (or fail for another reason) well before it. Generous: the
    /// suite runs beside the others on two cores, and the first call of the process pays one-time costs (type
    /// metadata, zlib, the connection), which once took over 5 s in a loaded debug run. How a deadline is sent
    /// and enforced is checked by `silentServerGivesDeadlineExceededAndTheStreamIsReset` and `timeoutText`.
    static let deadline: Duration = .seconds(30)

    static let message = Array("the request message, repeated to compress well; ".utf8) + Array(repeating: UInt8(ascii: "x"), count: 300)

    @Test func echoesACompressedMessageWithTheProtocolsHeaders() async throws {
        let server = try await GRPCServerDouble.start()
        defer { server.stop() }
        var config = GRPCUnaryClient.Configuration(host: "127.0.0.1", port: server.port)
        config.compression = .gzip
        config.gzipLevel = 1
        let client = GRPCUnaryClient(config)
        let reply = try await client.unary(
            path: "/test.Double/Echo", message: Self.message, metadata: [("X-Tenant", "a"), ("authorization", "Bearer t"), ("te", "nope")],
            timeout: Self.deadline)
        #expect(reply == Self.message)
        let h = try #require(server.requests.withLock { $0.first })
        #expect(h.first(name: ":method") == "POST")
        #expect(h.first(name: ":scheme") == "http")
        #expect(h.first(name: ":authority") == "127.0.0.1:\(server.port)")
        #expect(h.first(name: "content-type") == "application/grpc")
        #expect(h[canonicalForm: "te"] == ["trailers"])  // metadata cannot override protocol headers
        #expect(h.first(name: "grpc-encoding") == "gzip")
        #expect(h.first(name: "x-tenant") == "a")
        #expect(h.first(name: "authorization") == "Bearer t")
        let timeout = try #require(h.first(name: "grpc-timeout"))
        #expect(timeout.count <= 9 && "numSMH".contains(timeout.last!) && Int(timeout.dropLast()) != nil)
        // The double saw the compressed flag set and inflated the message itself.
        #expect(server.compressedRequests.load(ordering: .relaxed) == 1)
        await client.close()
    }

    @Test func messageGivenInPartsArrivesWholeCompressedOrNot() async throws {
        let server = try await GRPCServerDouble.start()
        defer { server.stop() }
        let parts = [Array(Self.message[..<10]), [], Array(Self.message[10...])]
        for compression in [GRPCUnaryClient.Compression.none, .gzip] {
            var config = GRPCUnaryClient.Configuration(host: "127.0.0.1", port: server.port)
            config.compression = compression
            let client = GRPCUnaryClient(config)
            #expect(try await client.unary(path: "/test.Double/Echo", messageParts: parts, timeout: Self.deadline) == Self.message)
        }
        var joined = GRPCMessageFrame.encode(Self.message, compressed: false)
        var split = GRPCMessageFrame.encode(parts: parts)
        #expect(joined.readBytes(length: joined.readableBytes) == split.readBytes(length: split.readableBytes))
    }

    @Test func trailersOnlyErrorCarriesTheDecodedMessage() async throws {
        let server = try await GRPCServerDouble.start()
        defer { server.stop() }
        let client = GRPCUnaryClient(.init(host: "127.0.0.1", port: server.port))
        await #expect(throws: GRPCStatus(code: GRPCStatus.invalidArgument, message: "bad ✓ input 100%")) {
            _ = try await client.unary(path: "/test.Double/Fail", message: [1, 2, 3], timeout: Self.deadline)
        }
        // The connection survives a failed call.
        #expect(try await client.unary(path: "/test.Double/Echo", message: [4], timeout: Self.deadline) == [4])
        #expect(server.connections.load(ordering: .relaxed) == 1)
        await client.close()
    }

    @Test func httpErrorWithoutGRPCStatusIsMappedFromTheHTTPStatus() async throws {
        let server = try await GRPCServerDouble.start()
        defer { server.stop() }
        let client = GRPCUnaryClient(.init(host: "127.0.0.1", port: server.port))
        await expectStatus(GRPCStatus.unavailable) { _ = try await client.unary(path: "/test.Double/HTTP503", message: [1], timeout: Self.deadline) }
        await expectStatus(GRPCStatus.unimplemented) { _ = try await client.unary(path: "/test.Double/HTTP404", message: [1], timeout: Self.deadline) }
        await client.close()
    }

    @Test func silentServerGivesDeadlineExceededAndTheStreamIsReset() async throws {
        let server = try await GRPCServerDouble.start()
        defer { server.stop() }
        let client = GRPCUnaryClient(.init(host: "127.0.0.1", port: server.port))
        let clock = ContinuousClock()
        let start = clock.now
        await expectStatus(GRPCStatus.deadlineExceeded) { _ = try await client.unary(path: "/test.Double/Silent", message: [1], timeout: .milliseconds(300)) }
        #expect(clock.now - start < .seconds(3))
        // The client cancels the abandoned stream (RST_STREAM), so the server can let go of it.
        for _ in 0..<200 where server.resets.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.resets.load(ordering: .relaxed) >= 1)
        await client.close()
    }

    @Test func oversizedReplyIsResourceExhausted() async throws {
        let server = try await GRPCServerDouble.start()
        defer { server.stop() }
        var config = GRPCUnaryClient.Configuration(host: "127.0.0.1", port: server.port)
        config.maxResponseBytes = 1000
        let client = GRPCUnaryClient(config)
        await expectStatus(GRPCStatus.resourceExhausted) { _ = try await client.unary(path: "/test.Double/Big", message: [1], timeout: Self.deadline) }
        await client.close()
    }

    @Test func goAwayMovesLaterCallsToANewConnection() async throws {
        let server = try await GRPCServerDouble.start()
        defer { server.stop() }
        let client = GRPCUnaryClient(.init(host: "127.0.0.1", port: server.port))
        #expect(try await client.unary(path: "/test.Double/GoAway", message: [7], timeout: Self.deadline) == [7])
        for _ in 0..<50 {
            _ = try await client.unary(path: "/test.Double/Echo", message: [8], timeout: Self.deadline)
            if server.connections.load(ordering: .relaxed) == 2 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(server.connections.load(ordering: .relaxed) == 2)
        await client.close()
    }

    @Test func nothingListeningFailsFastUnlessWaitingForReady() async throws {
        let port = try await GRPCServerDouble.freePort()
        let client = GRPCUnaryClient(.init(host: "127.0.0.1", port: port))
        await expectStatus(GRPCStatus.unavailable) { _ = try await client.unary(path: "/test.Double/Echo", message: [1], timeout: Self.deadline) }
        // With waitForReady the call keeps trying until the server appears.
        let late = Task {
            try await Task.sleep(for: .milliseconds(400))
            return try await GRPCServerDouble.start(port: port)
        }
        let reply = try await client.unary(path: "/test.Double/Echo", message: [2], timeout: Self.deadline, waitForReady: true)
        #expect(reply == [2])
        try await late.value.stop()
        await client.close()
    }

    @Test func tlsFailureIsUnavailableAndSaysWhy() async throws {
        let server = try await GRPCServerDouble.start()  // cleartext: the TLS handshake cannot succeed
        defer { server.stop() }
        var config = GRPCUnaryClient.Configuration(host: "127.0.0.1", port: server.port)
        config.tls = try NIOSSLContext(configuration: .makeClientConfiguration())
        let client = GRPCUnaryClient(config)
        do {
            _ = try await client.unary(path: "/test.Double/Echo", message: [1], timeout: Self.deadline)
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == GRPCStatus.unavailable)
            #expect(error.message.contains("connection error"), "\(error)")
        }
        await client.close()
    }

    @Test func grpcTimeoutHasAtMostEightDigits() {
        #expect(GRPCUnaryClient.timeoutText(.milliseconds(5)) == "5000000n")
        #expect(GRPCUnaryClient.timeoutText(.seconds(5)) == "5000000u")
        #expect(GRPCUnaryClient.timeoutText(.seconds(1000)) == "1000000m")
        #expect(GRPCUnaryClient.timeoutText(.hours(100)) == "360000S")
        #expect(GRPCUnaryClient.timeoutText(.nanoseconds(-5)) == "1n")
    }

    @Test func grpcMessagePercentCodingRoundTrips() {
        let text = "bad ✓ input 100%\nnext"
        let encoded = GRPCStatus.percentEncoded(text)
        #expect(encoded == "bad %E2%9C%93 input 100%25%0Anext")
        #expect(GRPCStatus.percentDecoded(encoded) == text)
        #expect(GRPCStatus.percentDecoded("50% off %zz") == "50% off %zz")
    }
}

/// The server double: one handler per stream, answers chosen by `:path`.
final class GRPCServerDouble: Sendable {
    let channel: any Channel
    let port: Int
    let connections = Atomic<Int>(0)
    let resets = Atomic<Int>(0)
    let compressedRequests = Atomic<Int>(0)
    let requests = Mutex<[HPACKHeaders]>([])

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress!.port!
    }

    static func start(port: Int = 0) async throws -> GRPCServerDouble {
        let box = Mutex<GRPCServerDouble?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let server = box.withLock { $0 }!
                server.connections.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(DoubleStreamHandler(server)) }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        let server = GRPCServerDouble(channel: channel)
        box.withLock { $0 = server }
        return server
    }

    /// A port nothing listens on (bound, then released).
    static func freePort() async throws -> Int {
        let s = try await start()
        s.stop()
        try await s.channel.closeFuture.get()
        return s.port
    }

    func stop() { channel.close(promise: nil) }
}

private final class DoubleStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let server: GRPCServerDouble
    private var headers = HPACKHeaders()
    private var body = ByteBuffer()

    init(_ server: GRPCServerDouble) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let h):
            headers = h.headers
            server.requests.withLock { $0.append(h.headers) }
            precondition(h.headers.first(name: "content-type") == "application/grpc" && h.headers.first(name: ":method") == "POST")
        case .data(let d):
            guard case .byteBuffer(var b) = d.data else { return }
            body.writeBuffer(&b)
            if d.endStream { answer(context) }
        case .rstStream:
            server.resets.add(1, ordering: .relaxed)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOHTTP2Errors.StreamClosed { server.resets.add(1, ordering: .relaxed) }
        context.close(promise: nil)
    }

    private func answer(_ context: ChannelHandlerContext) {
        let flag = body.readInteger(as: UInt8.self)!
        let length = Int(body.readInteger(as: UInt32.self)!)
        precondition(body.readableBytes == length, "one length-prefixed message")
        var message = Array(body.readableBytesView)
        if flag == 1 {
            precondition(headers.first(name: "grpc-encoding") == "gzip")
            server.compressedRequests.add(1, ordering: .relaxed)
            message = Array(try! Inflater.inflate(ByteBuffer(bytes: message), format: .gzipOrZlib, limit: 1 << 20).readableBytesView)
        }
        switch headers.first(name: ":path") {
        case "/test.Double/Echo":
            reply(context, message, compressed: true)
        case "/test.Double/GoAway":
            reply(context, message, compressed: false)
            let streamID = try! context.channel.syncOptions!.getOption(HTTP2StreamChannelOptions.streamID)
            context.channel.parent!.writeAndFlush(
                HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: streamID, errorCode: .noError, opaqueData: nil)), promise: nil)
        case "/test.Double/Big":
            reply(context, Array(repeating: 1, count: 2000), compressed: false)
        case "/test.Double/Fail":
            let h = HPACKHeaders([
                (":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "3"),
                ("grpc-message", GRPCStatus.percentEncoded("bad ✓ input 100%")),
            ])
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: h, endStream: true))), promise: nil)
        case "/test.Double/HTTP503":
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: HPACKHeaders([(":status", "503")]), endStream: true))), promise: nil)
        case "/test.Double/HTTP404":
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: HPACKHeaders([(":status", "404")]), endStream: true))), promise: nil)
        default:  // Silent
            break
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ message: [UInt8], compressed: Bool) {
        var h = HPACKHeaders([(":status", "200"), ("content-type", "application/grpc")])
        if compressed { h.add(name: "grpc-encoding", value: "gzip") }
        context.write(wrapOutboundOut(.headers(.init(headers: h))), promise: nil)
        let bytes = compressed ? Inflater.gzip(message) : message
        var b = context.channel.allocator.buffer(capacity: bytes.count + 5)
        b.writeInteger(UInt8(compressed ? 1 : 0))
        b.writeInteger(UInt32(bytes.count))
        b.writeBytes(bytes)
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(b)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: HPACKHeaders([("grpc-status", "0")]), endStream: true))), promise: nil)
    }
}
