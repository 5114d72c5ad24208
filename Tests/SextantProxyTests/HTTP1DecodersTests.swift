import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SextantProxy

/// The proxy's HTTP/1 decoders against NIO's `HTTPRequestDecoder`/`HTTPResponseDecoder` (llhttp), the
/// reference they replace. Every stream below goes through both, whole and cut at every byte (or at many
/// points), and must give the same messages: heads, body bytes, trailers, ends, and an error where llhttp
/// finds one. Where the two are meant to differ (ours is stricter), the case says so and checks ours alone.
@Suite struct HTTP1DecodersTests {
    /// Renders a request part.
    static func describe(_ part: HTTPServerRequestPart) -> String {
        switch part {
        case .head(let h):
            return "head:\(h.method.rawValue) \(h.uri) \(h.version) \(h.headers.map { "\($0.name)=\($0.value)" }) keepAlive=\(h.isKeepAlive)"
        case .body(let b): return "body:" + String(decoding: b.readableBytesView, as: UTF8.self)
        case .end(let t): return "end:\(t.map { $0.map { "\($0.name)=\($0.value)" } }?.description ?? "nil")"
        }
    }

    static func describe(_ part: HTTPClientResponsePart) -> String {
        switch part {
        case .head(let h):
            return "head:\(h.status.code) \(h.status.reasonPhrase) \(h.version) \(h.headers.map { "\($0.name)=\($0.value)" })"
        case .body(let b): return "body:" + String(decoding: b.readableBytesView, as: UTF8.self)
        case .end(let t): return "end:\(t.map { $0.map { "\($0.name)=\($0.value)" } }?.description ?? "nil")"
        }
    }

    /// Feeds `pieces` to a request decoder and renders what it made. `ours` picks the decoder; the upgrade
    /// case removes the decoder after the stream and reports the bytes it forwards.
    static func requests(_ pieces: [ByteBuffer], ours: Bool, close: Bool = true) throws -> [String] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        if ours {
            try channel.pipeline.syncOperations.addHandler(HTTP1RequestDecoder())
        } else {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        }
        return try collect(channel, pieces, close: close, render: { ($0 as? HTTPServerRequestPart).map(describe) }) { channel in
            if ours {
                _ = channel.pipeline.syncOperations.removeHandler(try channel.pipeline.syncOperations.handler(type: HTTP1RequestDecoder.self))
            } else {
                _ = channel.pipeline.syncOperations.removeHandler(
                    try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
                )
            }
        }
    }

    /// Feeds `pieces` to a response decoder after request heads with `methods` went out.
    /// `raw`: our decoder parses heads with their fields left in the bytes (the upstream side's mode).
    static func responses(_ pieces: [ByteBuffer], methods: [HTTPMethod], ours: Bool, close: Bool = true, raw: Bool = false) throws -> [String] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        if ours {
            let decoder = HTTP1ResponseDecoder(rawFields: raw)
            try channel.pipeline.syncOperations.addHandler(HTTP1RequestEncoder(responseDecoder: decoder))
            try channel.pipeline.syncOperations.addHandler(decoder)
        } else {
            try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)))
        }
        for m in methods {
            try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: m, uri: "/")))
            try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        }
        while try channel.readOutbound(as: IOData.self) != nil {}
        return try collect(channel, pieces, close: close, render: { ($0 as? HTTPClientResponsePart).map(describe) }) { channel in
            if ours {
                _ = channel.pipeline.syncOperations.removeHandler(try channel.pipeline.syncOperations.handler(type: HTTP1ResponseDecoder.self))
            } else {
                _ = channel.pipeline.syncOperations.removeHandler(
                    try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
                )
            }
        }
    }

    /// Writes the pieces, renders each part, and after the last piece either removes the decoder (when
    /// `close` is false: the bytes it forwards are reported as `left:`) or closes the channel.
    static func collect(
        _ channel: EmbeddedChannel, _ pieces: [ByteBuffer], close: Bool, render: (Any) -> String?,
        remove: (EmbeddedChannel) throws -> Void
    ) throws -> [String] {
        var out: [String] = []
        func note(_ s: String) {
            if s.hasPrefix("body:"), let last = out.last, last.hasPrefix("body:") {
                out[out.count - 1] = last + s.dropFirst(5)
            } else {
                out.append(s)
            }
        }
        func take() throws {
            while let item = try channel.readInbound(as: Any.self) {
                if let s = render(item) {
                    note(s)
                } else if let b = item as? ByteBuffer ?? { if case .byteBuffer(let b) = item as? IOData { b } else { nil } }() {
                    out.append("left:" + String(decoding: b.readableBytesView, as: UTF8.self))
                } else {
                    out.append("unexpected: \(item)")
                }
            }
        }
        var failed = false
        for piece in pieces {
            do { try channel.writeInbound(piece) } catch { failed = true }
            try take()
            if failed { break }
        }
        if !failed {
            if close {
                channel.pipeline.fireChannelInactive()
                do { try channel.throwIfErrorCaught() } catch { failed = true }
            } else {
                try remove(channel)
                channel.embeddedEventLoop.run()
            }
            try take()
        }
        if failed { out.append("error") }
        return out
    }

    /// The stream whole, and cut in two at every byte (or at `stride` steps for long streams), and in single bytes.
    static func cuts(_ s: String) -> [[ByteBuffer]] {
        let bytes = Array(s.utf8)
        var all: [[ByteBuffer]] = [[ByteBuffer(bytes: bytes)]]
        let step = max(1, bytes.count / 64)
        for k in Swift.stride(from: 1, to: bytes.count, by: step) {
            all.append([ByteBuffer(bytes: bytes[..<k]), ByteBuffer(bytes: bytes[k...])])
        }
        all.append(bytes.map { ByteBuffer(bytes: [$0]) })
        return all
    }

    /// Streams of requests both decoders must read alike.
    static let requestStreams: [String] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /p?q=1 HTTP/1.0\r\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
        "POST /u HTTP/1.1\r\ncontent-length: 0\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1;x\r\n world\r\n0\r\n\r\n",
        "POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\nGrpc-Status: 0\r\n\r\n",
        "POST /t HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nX-Spaces:   padded value\r\nEmpty:\r\nX-Obs: caf\u{e9}\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\nB: x\r\n\r\nGET /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcDELETE /3 HTTP/1.1\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "PATCH /p HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok",
        "GET / HTTP/1.1\r\nConnection: keep-alive, foo\r\nFoo: bar\r\n\r\n",
        "GET /very/long/\(String(repeating: "x", count: 3000)) HTTP/1.1\r\nH: \(String(repeating: "v", count: 5000))\r\n\r\n",
        // Tabs inside values (field-value bytes), at every offset within a word and at a word's end.
        "GET / HTTP/1.1\r\nX-Tabs: a\tb\tc\td\te\tf\tg\th\ti\tj\r\nY: 1234567\t12345678\t\tx\r\nZ: \t\t\t\t\t\t\t\tz\r\n\r\n",
        // Errors.
        "GET / HTTP/1.1\r\nX: 1234567\u{1}abcdefgh\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\tb\u{1f}cdefghij\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
        "GET / HTTP/1.1\r\nName : v\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        "GET / HTTP/9\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        // Cut short by the close.
        "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: a\r\n",
    ]

    @Test func requestsMatchNIO() throws {
        for stream in Self.requestStreams {
            let reference = try Self.requests([ByteBuffer(string: stream)], ours: false)
            for pieces in Self.cuts(stream) {
                let ours = try Self.requests(pieces, ours: true)
                #expect(ours == reference, "\(stream.debugDescription) in \(pieces.count) pieces")
                if ours != reference { break }
            }
        }
    }

    /// Where ours is stricter than llhttp (RFC 9112's MAYs taken the strict way): both refuse, or llhttp
    /// accepts and ours refuses; ours never accepts what llhttp refuses.
    @Test(arguments: [
        "GET / HTTP/1.1\nHost: a\n\n",  // bare LF (§2.2)
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  // obsolete line folding (§5.2)
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",  // a request body that cannot be framed (§6.3)
        "GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",  // a repeated Content-Length
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",  // a lone CR
        "GET / HTTP/1.1\r\nX: abcdefgh\u{7f}ijklmnop\r\n\r\n",  // DEL, not a field-value byte (RFC 9110 §5.5)
        "GET / HTTP/1.1\r\nX: abc\tdefg\u{7f}\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",  // not one space between the parts of the request line (§3)
    ])
    func requestsOursRefuses(stream: String) throws {
        for pieces in Self.cuts(stream) {
            #expect(try Self.requests(pieces, ours: true).last == "error", "\(stream.debugDescription)")
        }
    }

    /// Where ours is meant to read differently from llhttp: a field value loses its trailing whitespace as well
    /// as its leading (RFC 9110 §5.5; llhttp keeps trailing whitespace), and an unknown status keeps its reason
    /// phrase (NIO's decoder drops it).
    @Test func trimsValuesAndKeepsUnknownReasons() throws {
        let request = try Self.requests([ByteBuffer(string: "GET / HTTP/1.1\r\nX:  a b \t \r\n\r\n")], ours: true)
        #expect(request.first == "head:GET / HTTP/1.1 [\"X=a b\"] keepAlive=true")
        let response = try Self.responses([ByteBuffer(string: "HTTP/1.1 599 Custom Thing\r\nContent-Length: 0\r\n\r\n")], methods: [.GET], ours: true)
        #expect(response.first == "head:599 Custom Thing HTTP/1.1 [\"Content-Length=0\"]")
    }

    /// The proxy's keep-alive answer (a scan in place) against NIO's (`HTTPHeaders.isKeepAlive`), which the
    /// proxy used while NIO's decoder pre-computed it.
    @Test func keepAliveMatchesNIO() {
        let sets: [[(String, String)]] = [
            [], [("Connection", "close")], [("connection", "keep-alive")], [("Connection", "Keep-Alive, Upgrade")],
            [("Connection", " close ,foo")], [("Connection", "keep-alive"), ("Connection", "close")],
            [("Connection", "keep-alive, keep-alive")], [("Connection", "")], [("Connection", ",,")],
            [("Connection", "closed")], [("X-Connection", "close")], [("CONNECTION", "CLOSE")],
            [("Connection", "close, keep-alive")], [("Connection", "keep-alive"), ("connection", "x-a")],
        ]
        for fields in sets {
            for version in [HTTPVersion.http1_1, .http1_0, .http2] {
                let headers = HTTPHeaders(fields)
                let nio = HTTPRequestHead(version: version, method: .GET, uri: "/", headers: headers).isKeepAlive
                #expect(HopByHop(headers).isKeepAlive(version: version) == nio, "\(fields) \(version)")
            }
        }
    }

    /// Common names and values come back as literals; whatever the spelling, the string has the bytes received.
    @Test func commonFieldsAreTheBytesReceived() {
        let samples = [
            "Host", "host", "HOST", "Date", "ETag", "Etag", "Vary", "Hose", "Content-Length", "content-length", "Content-length",
            "x-request-id", "X-Request-Id", "x-request-ie", "te", "TE", "x-envoy-upstream-service-time", "", "a", "0", "*/*",
            "keep-alive", "Keep-Alive", "close", "closf", "application/grpc", "application/grpd", "gzip, deflate", "caf\u{e9}",
        ]
        for text in samples {
            let bytes = Array(text.utf8)
            bytes.withUnsafeBytes { p in
                #expect(Common.name(p) == text)
                #expect(Common.value(p) == text)
            }
        }
    }

    @Test func headerOverflowIsReportedAsSuch() throws {
        let channel = EmbeddedChannel(handler: HTTP1RequestDecoder())
        defer { _ = try? channel.finish() }
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100 * 1024)
        #expect(throws: HTTPParserError.headerOverflow) { try channel.writeInbound(ByteBuffer(string: big)) }
        // Nothing more is decoded after an error.
        try channel.writeInbound(ByteBuffer(string: "\r\n\r\nGET / HTTP/1.1\r\n\r\n"))
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == nil)
    }

    /// After an upgrade request both decoders stop; the bytes after it go to the next handler on removal.
    @Test(arguments: [
        "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{81}\u{5}hello",
        "GET /ws HTTP/1.1\r\nConnection: keep-alive, upgrade\r\nUpgrade: h2c\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        "POST /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 2\r\n\r\nabrest",
    ])
    func upgradeLeavesTheRestToTheNextHandler(stream: String) throws {
        let reference = try Self.requests([ByteBuffer(string: stream)], ours: false, close: false)
        #expect(reference.last?.hasPrefix("left:") == true, "\(reference)")
        for pieces in Self.cuts(stream) {
            var ours = try Self.requests(pieces, ours: true, close: false)
            // Bytes held in one buffer or two come out as one or two reads.
            if ours.count > reference.count, let a = ours.popLast(), let b = ours.last, b.hasPrefix("left:") {
                ours[ours.count - 1] = b + a.dropFirst(5)
            }
            #expect(ours == reference, "\(stream.debugDescription) in \(pieces.count) pieces")
        }
    }

    /// A decoder removed by a handler while it handles an event (not after the read) hands on the bytes after
    /// that event, as they were read: here a second request, after the first one's head.
    @Test func removedWhileAnEventIsHandledLeavesTheBytesAfterIt() throws {
        final class RemoveOnHead: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = Any
            let decoder: HTTP1RequestDecoder
            var seen: [String] = []
            init(_ decoder: HTTP1RequestDecoder) { self.decoder = decoder }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let item = unwrapInboundIn(data)
                if case .head(let h) = item as? HTTPServerRequestPart {
                    seen.append("head:\(h.uri)")
                    context.pipeline.syncOperations.removeHandler(decoder, promise: nil)
                } else if let b = item as? ByteBuffer ?? { if case .byteBuffer(let b) = item as? IOData { b } else { nil } }() {
                    seen.append("left:" + String(buffer: b))
                } else {
                    seen.append("other")
                }
            }
        }
        let second = "GET /b HTTP/1.1\r\nHost: y\r\n\r\n"
        let decoder = HTTP1RequestDecoder()
        let handler = RemoveOnHead(decoder)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([decoder, handler])
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + second))
        #expect(handler.seen == ["head:/a", "left:" + second])
        _ = try channel.finish()
    }

    /// Responses, with the methods of the requests they answer.
    static let responseStreams: [(String, [HTTPMethod])] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", [.GET]),
        ("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", [.GET, .POST]),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n", [.POST]),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", [.HEAD]),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", [.HEAD, .GET]),
        ("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", [.GET, .GET]),
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", [.POST]),
        ("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", [.GET]),
        ("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nuntil the close", [.GET]),
        ("HTTP/1.0 200 OK\r\n\r\nold style", [.GET]),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw to the close", [.GET]),
        ("HTTP/1.1 599 \r\nContent-Length: 1\r\n\r\n!", [.GET]),
        ("HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n!", [.GET]),
        ("HTTP/1.1 418\r\nContent-Length: 1\r\n\r\n!", [.GET]),
        ("HTTP/1.1 200 OK\r\nX-Space:  v\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n", [.GET]),
        // Errors.
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", [.GET]),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", [.GET]),
        ("HTTP/1.1 2x0 OK\r\n\r\n", [.GET]),
        ("HTTX/1.1 200 OK\r\n\r\n", [.GET]),
        ("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", [.GET]),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [.GET]),
    ]

    @Test func responsesMatchNIO() throws {
        for (stream, methods) in Self.responseStreams {
            let reference = try Self.responses([ByteBuffer(string: stream)], methods: methods, ours: false)
            for pieces in Self.cuts(stream) {
                let ours = try Self.responses(pieces, methods: methods, ours: true)
                #expect(ours == reference, "\(stream.debugDescription) in \(pieces.count) pieces")
                let raw = try Self.responses(pieces, methods: methods, ours: true, raw: true)
                #expect(raw == reference, "raw fields: \(stream.debugDescription) in \(pieces.count) pieces")
                if ours != reference || raw != reference { break }
            }
        }
    }

    @Test func switchingProtocolsLeavesTheRestToTheNextHandler() throws {
        let stream = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{81}\u{2}hi"
        let reference = try Self.responses([ByteBuffer(string: stream)], methods: [.GET], ours: false, close: false)
        #expect(reference.last?.hasPrefix("left:") == true, "\(reference)")
        for pieces in Self.cuts(stream) {
            var ours = try Self.responses(pieces, methods: [.GET], ours: true, close: false)
            if ours.count > reference.count, let a = ours.popLast(), let b = ours.last, b.hasPrefix("left:") {
                ours[ours.count - 1] = b + a.dropFirst(5)
            }
            #expect(ours == reference, "\(pieces.count) pieces")
        }
    }
}
