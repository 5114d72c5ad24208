import NIOCore
import NIOEmbedded
import NIOHTTP1
import SextantModel
import Testing

@testable import SextantProxy

/// The proxy's one-pass HTTP/1 encoders against NIO's `HTTPRequestEncoder`/`HTTPResponseEncoder`, the
/// reference they replace: every message below must come out byte for byte the same from both, framing
/// headers (dropped, kept or added) included.
@Suite struct HTTP1EncodersTests {
    /// Everything `handler` writes for `parts`, as one string.
    static func encode<H: ChannelOutboundHandler>(_ handler: H, _ parts: [H.OutboundIn]) throws -> String {
        let channel = EmbeddedChannel(handler: handler)
        defer { _ = try? channel.finish() }
        var promises: [EventLoopFuture<Void>] = []
        for part in parts {
            let p = channel.eventLoop.makePromise(of: Void.self)
            channel.write(part, promise: p)
            promises.append(p.futureResult)
        }
        channel.flush()
        var out = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let b) = data else { Issue.record("file region"); continue }
            out += String(buffer: b)
        }
        // Every write's promise completes, in order.
        for f in promises { try f.wait() }
        return out
    }

    static func body(_ s: String) -> IOData { .byteBuffer(ByteBuffer(string: s)) }

    /// A response head's fields as the upstream side parses them (left in the bytes), or nil if none came.
    static func rawFields(_ head: String) throws -> RawFields? {
        var parser = HTTP1Parser(kind: .response, rawResponseFields: true)
        var buffer = ByteBuffer(string: head)
        var raw: RawFields?
        try parser.decode(&buffer, nextMethod: { .GET }) { event, _ in
            if case .rawResponseHead(_, let fields) = event { raw = fields }
            return true
        }
        return raw
    }

    static let headerSets: [[(String, String)]] = [
        [],
        [("Host", "upstream:80"), ("x-request-id", "abc")],
        [("content-length", "5")],
        [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        [("transfer-encoding", "chunked")],
        [("transfer-encoding", "gzip"), ("Transfer-Encoding", "chunked")],
        [("TRANSFER-ENCODING", "chunked"), ("x", "ü ☃ non-ASCII"), ("content-type", "text/plain")],
        [("a-very-long-header-name-indeed", String(repeating: "v", count: 3000)), ("k", "")],
    ]

    @Test(arguments: [HTTPMethod.GET, .HEAD, .POST, .PUT, .PATCH, .TRACE, .DELETE, .OPTIONS, .RAW(value: "PURGE")])
    func requestsMatchNIO(method: HTTPMethod) throws {
        for version in [HTTPVersion.http1_1, .http1_0] {
            for headers in Self.headerSets {
                var head = HTTPRequestHead(version: version, method: method, uri: "/p?q=1&r=%20")
                for (n, v) in headers { head.headers.add(name: n, value: v) }
                let parts: [HTTPClientRequestPart] = [.head(head), .body(Self.body("hello")), .body(Self.body("")), .body(Self.body("world!")), .end(nil)]
                let ours = try Self.encode(HTTP1RequestEncoder(), parts)
                let nio = try Self.encode(HTTPRequestEncoder(), parts)
                #expect(ours == nio, "\(method) \(version) \(headers)")
            }
        }
    }

    @Test(arguments: [
        HTTPResponseStatus.ok, .noContent, .notModified, .switchingProtocols, .continue, .notFound,
        .serviceUnavailable, .custom(code: 299, reasonPhrase: "Odd"), .custom(code: 150, reasonPhrase: "Info"),
    ])
    func responsesMatchNIO(status: HTTPResponseStatus) throws {
        for version in [HTTPVersion.http1_1, .http1_0, HTTPVersion(major: 1, minor: 2)] {
            for headers in Self.headerSets {
                var head = HTTPResponseHead(version: version, status: status)
                for (n, v) in headers { head.headers.add(name: n, value: v) }
                for trailers in [nil, HTTPHeaders(), HTTPHeaders([("grpc-status", "0"), ("grpc-message", "fine")])] {
                    let parts: [HTTPServerResponsePart] = [.head(head), .body(Self.body(String(repeating: "x", count: 300))), .end(trailers)]
                    let ours = try Self.encode(HTTP1ResponseEncoder(), parts)
                    let nio = try Self.encode(HTTPResponseEncoder(), parts)
                    #expect(ours == nio, "\(status) \(version) \(headers) \(String(describing: trailers))")
                }
            }
        }
    }

    /// A response to HEAD: the head as it is (framing headers included), no body, no last chunk; the next
    /// response on the connection is framed normally again.
    @Test func responsesToHEADHaveNoBody() throws {
        let encoder = HTTP1ResponseEncoder()
        let channel = EmbeddedChannel(handler: encoder)
        defer { _ = try? channel.finish() }
        func read() throws -> String {
            var out = ""
            while let data = try channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let b) = data { out += String(buffer: b) }
            }
            return out
        }
        var chunked = HTTPResponseHead(version: .http1_1, status: .ok)
        chunked.headers.add(name: "transfer-encoding", value: "chunked")
        for head in [chunked, HTTPResponseHead(version: .http1_1, status: .ok)] {
            encoder.respondingToHEAD = true
            channel.write(HTTPServerResponsePart.head(head), promise: nil)
            let body = channel.eventLoop.makePromise(of: Void.self)
            channel.write(HTTPServerResponsePart.body(Self.body("not for HEAD")), promise: body)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
            try body.futureResult.wait()
            #expect(try read() == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            #expect(!encoder.respondingToHEAD)
            channel.write(HTTPServerResponsePart.head(head), promise: nil)
            channel.write(HTTPServerResponsePart.body(Self.body("abc")), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
            #expect(try read() == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        }
    }

    /// Keep-alive: the framing of one message does not leak into the next on the same encoder.
    @Test func consecutiveMessagesMatchNIO() throws {
        var chunked = HTTPResponseHead(version: .http1_1, status: .ok)
        chunked.headers.add(name: "transfer-encoding", value: "chunked")
        var sized = HTTPResponseHead(version: .http1_1, status: .ok)
        sized.headers.add(name: "content-length", value: "3")
        let parts: [HTTPServerResponsePart] = [
            .head(chunked), .body(Self.body("abc")), .end(nil),
            .head(sized), .body(Self.body("abc")), .end(nil),
            .head(HTTPResponseHead(version: .http1_1, status: .ok)), .body(Self.body("tail")), .end(nil),
        ]
        let ours = try Self.encode(HTTP1ResponseEncoder(), parts)
        #expect(ours == (try Self.encode(HTTPResponseEncoder(), parts)))
        #expect(ours.contains("3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\ntransfer-encoding: chunked"))
    }

    /// A received head's fields left in its bytes (`RawFields`, parsed by the proxy's own parser in the mode
    /// the upstream side uses), some dropped, then the proxy's own: written from the bytes, the head must be
    /// byte for byte the one written from the same fields as strings, and frame the body the same way, for
    /// every status and version, framing fields (dropped, kept or added) included.
    @Test(arguments: [
        HTTPResponseStatus.ok, .noContent, .notModified, .notFound, .custom(code: 299, reasonPhrase: "Odd"),
    ])
    func rawResponseHeadsMatchTheStringPath(status: HTTPResponseStatus) throws {
        // The proxy's fields in each shape: with and without its peer header and `connection: close`, service
        // times of one digit and several.
        let addedShapes = [
            ProxiedResponseFields(peer: nil, serviceMilliseconds: 3),
            ProxiedResponseFields(peer: "peer-metadata", serviceMilliseconds: 1_234_567, close: true),
            ProxiedResponseFields(peer: "p", serviceMilliseconds: 10),
            ProxiedResponseFields(peer: nil, serviceMilliseconds: 0, close: true),
        ]
        for (index, version) in [HTTPVersion.http1_1, .http1_0].enumerated() {
            for headers in Self.headerSets + [[("Server", "nginx"), ("Connection", "keep-alive"), ("ETag", "\"a-1\"")]] {
                // The parser refuses Content-Length with Transfer-Encoding in a response: such a head never
                // reaches the writer from the bytes.
                guard !(headers.contains { $0.0.lowercased() == "content-length" }
                    && headers.contains { $0.0.lowercased() == "transfer-encoding" }) else { continue }
                // Lines with extra whitespace (rewritten), lines as the writer writes them (copied whole, in
                // runs), and the two alternating; every other field dropped, or none.
                for shape in 0..<3 {
                    for dropEveryOther in [true, false] {
                        let added = addedShapes[(shape + 2 * index + (dropEveryOther ? 1 : 0)) % addedShapes.count]
                        var text = "HTTP/\(version.major).\(version.minor) \(status.code) \(status.reasonPhrase)\r\n"
                        for (i, (n, v)) in headers.enumerated() {
                            text += shape == 0 || (shape == 2 && i % 2 == 0) ? "\(n):  \(v) \r\n" : "\(n): \(v)\r\n"
                        }
                        text += "\r\n"
                        guard var raw = try Self.rawFields(text) else {
                            Issue.record("no raw head for \(text.debugDescription)")
                            continue
                        }
                        // `list` must leave the dropped fields out.
                        if dropEveryOther { for i in raw.spans.indices where i % 2 == 1 { raw.spans[i].dropped = true } }
                        let kept = headers.enumerated().filter { !dropEveryOther || $0.offset % 2 == 0 }.map(\.element)
                        #expect(raw.list.map { "\($0.0)=\($0.1)" } == kept.map { "\($0.0)=\($0.1)" })
                        for (n, v) in kept { #expect(raw.first(lowercased: n.lowercased()) == kept.first { $0.0.lowercased() == n.lowercased() }?.1 ?? v) }
                        let head = HTTPResponseHead(version: version, status: status)
                        var fromBytes = HTTP1HeadWriter()
                        var fromStrings = HTTP1HeadWriter()
                        let a = fromBytes.response(head, raw: raw, added: added, reserve: 100, allocator: ByteBufferAllocator())
                        let b = fromStrings.response(head, fields: raw.list + added.list, allocator: ByteBufferAllocator())
                        #expect(String(buffer: a) == String(buffer: b), "\(status) \(version) \(headers) shape \(shape)")
                        #expect(fromBytes.isChunked == fromStrings.isChunked)
                        #expect(a.capacity >= a.readableBytes + 100)
                    }
                }
            }
        }
    }

    /// `ResponseFields`, what the access log reads: a lookup by name finds a received field (in any case)
    /// before an added one, never a dropped one, as `HTTPHeaders` made of the same fields would.
    @Test func responseFieldsLookUpWithoutMakingHeaders() throws {
        var fields = try #require(try Self.rawFields("HTTP/1.1 200 OK\r\nServer: up\r\nX-Trace: a\r\nx-trace: b\r\nContent-Length: 0\r\n\r\n"))
        fields.spans[0].dropped = true
        let sent = ResponseFields.raw(fields, added: [("server", "istio-envoy"), ("x-extra", "1")])
        #expect(sent.first(lowercased: "server") == "istio-envoy")
        #expect(sent.first(lowercased: "x-trace") == "a")
        #expect(sent.first(lowercased: "x-extra") == "1")
        #expect(sent.first(lowercased: "content-length") == "0")
        #expect(sent.first(lowercased: "absent") == nil)
        #expect(sent.headers.map { "\($0.name)=\($0.value)" } == ["X-Trace=a", "x-trace=b", "Content-Length=0", "server=istio-envoy", "x-extra=1"])
        var record = ProxyRecord(direction: .outbound, startUnixNanos: 0, method: "GET", path: "/", protocolName: "HTTP/1.1", authority: "a", requestHeaders: [:])
        record.responseFields = sent
        #expect(record.responseHeader(lowercased: "x-trace") == "a")
        // The proxy's raw path: its own fields are found by name as their list has them.
        for added in [ProxiedResponseFields(peer: "me", serviceMilliseconds: 12, close: true), ProxiedResponseFields(peer: nil, serviceMilliseconds: -5)] {
            let proxied = ResponseFields.proxied(fields, added: added)
            for name in ["server", "x-envoy-upstream-service-time", "connection", PeerMetadata.header, "x-trace", "content-length", "absent"] {
                #expect(proxied.first(lowercased: name) == ResponseFields.raw(fields, added: added.list).first(lowercased: name), "\(name)")
            }
            #expect(proxied.headers.map { "\($0.name)=\($0.value)" } == ResponseFields.raw(fields, added: added.list).headers.map { "\($0.name)=\($0.value)" })
        }
        #expect(ProxiedResponseFields(peer: nil, serviceMilliseconds: -5).list.map { "\($0.0)=\($0.1)" } == [
            "x-envoy-upstream-service-time=0", "server=istio-envoy",
        ])
        #expect(record.responseHeaders["x-extra"] == ["1"])
    }

    /// A head's buffer is kept by the encoder once handed to the channel, and reused for the next head when the
    /// channel has let go of it (here: once the test read it): same storage, right bytes. One still held is not
    /// written over.
    @Test func headBuffersAreReusedOnceTheChannelLetsGo() throws {
        let encoder = HTTP1ResponseEncoder()
        let channel = EmbeddedChannel(handler: encoder)
        defer { _ = try? channel.finish() }
        let fields = try #require(try Self.rawFields("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: up\r\n\r\n"))
        var sized = HTTPResponseHead(version: .http1_1, status: .ok)
        sized.headers.add(name: "content-length", value: "3")
        /// Writes one response (from raw fields, its body joining the head, or from a head) and reads it back,
        /// with the address of the first buffer's bytes; `keep` holds on to what was read.
        func respond(_ body: String, raw useRaw: Bool, keep: inout [ByteBuffer]) throws -> (String, UInt) {
            if useRaw {
                #expect(encoder.sendHead(HTTPResponseHead(version: .http1_1, status: .ok), raw: fields, added: ProxiedResponseFields(peer: nil, serviceMilliseconds: 7)))
            } else {
                channel.write(HTTPServerResponsePart.head(sized), promise: nil)
            }
            channel.write(HTTPServerResponsePart.body(Self.body(body)), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
            var out = ""
            var address: UInt = 0
            while let data = try channel.readOutbound(as: IOData.self) {
                guard case .byteBuffer(let b) = data else { continue }
                if address == 0 { address = b.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
                out += String(buffer: b)
                keep.append(b)
            }
            return (out, address)
        }
        for useRaw in [true, false] {
            let expected = useRaw
                ? ["HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: up\r\nx-envoy-upstream-service-time: 7\r\nserver: istio-envoy\r\n\r\nabc",
                   "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: up\r\nx-envoy-upstream-service-time: 7\r\nserver: istio-envoy\r\n\r\nxyz"]
                : ["HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc", "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nxyz"]
            var held: [ByteBuffer] = []
            let (first, a) = try respond("abc", raw: useRaw, keep: &held)
            held.removeAll()
            let (second, b) = try respond("xyz", raw: useRaw, keep: &held)
            #expect([first, second] == expected)
            #expect(a == b, "the second head reuses the first one's storage")
            // The second response is still held by the reader: the third gets new storage, and the held bytes stay.
            let (third, c) = try respond("abc", raw: useRaw, keep: &held)
            #expect(third == expected[0] && c != b)
            #expect(String(buffer: held[0]) == String(decoding: expected[1].utf8.prefix(held[0].readableBytes), as: UTF8.self))
        }
    }

    /// The trace context's fields written from the IDs after the list (`InjectedTrace`) are the lines
    /// `TraceContext.inject` adds as strings, in every shape: sampled or not, with a parent or without, a
    /// trace state or none, the single `b3` replaced or not, on a request that gets a chunked body and one
    /// that does not.
    @Test func injectedTraceFieldsMatchTheStrings() {
        let allocator = ByteBufferAllocator()
        let base: [(String, String)] = [("host", "reviews:9080"), ("x-request-id", "abc"), ("x-forwarded-proto", "http")]
        for method in [HTTPMethod.GET, .POST] {
            let head = HTTPRequestHead(version: .http1_1, method: method, uri: "/reviews/1", headers: HTTPHeaders(base))
            for sampled in [true, false] {
                for parent in [nil, SpanID(0x2122_2324_2526_2728)] {
                    for state in [nil, "vendor=1,other=x"] {
                        for b3 in [false, true] {
                            let t = TraceContext(
                                traceID: TraceID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10), spanID: SpanID(0xa1b2_c3d4_e5f6_0718),
                                parentSpanID: parent, sampled: sampled, traceState: state)
                            var strings = base
                            t.inject(into: &strings, b3: b3)
                            var fromStrings = HTTP1HeadWriter()
                            var fromIDs = HTTP1HeadWriter()
                            let a = fromStrings.request(head, fields: strings, allocator: allocator)
                            let injected = InjectedTrace(context: t, b3: b3)
                            let b = fromIDs.request(head, fields: base, trace: injected, allocator: allocator)
                            #expect(String(buffer: b) == String(buffer: a), "\(method) \(sampled) \(String(describing: parent)) \(String(describing: state)) \(b3)")
                            // Sized exactly: the head fills what was reserved for it.
                            var plainWriter = HTTP1HeadWriter()
                            let plain = plainWriter.request(head, fields: base, allocator: allocator)
                            #expect(b.readableBytes == plain.readableBytes + injected.byteCount)
                            // And the strings form, for HTTP/2 and mirrors, carries the same fields.
                            #expect(injected.adding(to: head).headers.map { "\($0.name): \($0.value)" } == strings.map { "\($0.0): \($0.1)" })
                        }
                    }
                }
            }
        }
    }


    /// Fields kept as a mask over the received list (`ForwardedFields`) are written as their list would be:
    /// for requests with and without a body, with framing fields dropped, kept or left out by the mask, with
    /// each of the proxy's fields and none, with and without trace fields after them; and sized exactly.
    @Test func forwardedFieldsWriteWhatTheirListWrites() {
        let allocator = ByteBufferAllocator()
        let received: [(String, String)] = [
            ("host", "reviews:9080"), ("connection", "keep-alive, x-hop"), ("x-hop", "1"), ("content-length", "5"),
            ("transfer-encoding", "chunked"), ("user-agent", "curl/8"), ("x-sextant-peer-metadata", "abc"), ("x-request-id", "id"),
        ]
        let trace = InjectedTrace(
            context: TraceContext(
                traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), parentSpanID: SpanID(4), sampled: true, traceState: nil),
            b3: false)
        let masks: [UInt64] = [0, 0b110, 0b1_0110, 0b1_1110, 0b100_0110, 0xFF]
        for method in [HTTPMethod.GET, .POST, .TRACE] {
            let head = HTTPRequestHead(version: .http1_1, method: method, uri: "/r?a=1")
            for mask in masks {
                for added in 0..<16 {
                    var f = ForwardedFields()
                    f.dropped = mask
                    if added & 1 != 0 { f.peer = "peer-value" }
                    if added & 2 != 0 { f.upgrade = "websocket" }
                    f.teTrailers = added & 4 != 0
                    f.forwardedProto = added & 8 != 0
                    for t in [nil, trace] {
                        var fromMask = HTTP1HeadWriter()
                        var fromList = HTTP1HeadWriter()
                        let a = fromMask.request(head, received: received, forwarded: f, trace: t, allocator: allocator)
                        let b = fromList.request(head, fields: f.list(received), trace: t, allocator: allocator)
                        #expect(String(buffer: a) == String(buffer: b), "\(method) \(mask) \(added) \(t != nil)")
                        #expect(fromMask.isChunked == fromList.isChunked)
                    }
                    // The proxy's lines are the size counted for them.
                    var bytes = [UInt8](repeating: 0, count: 512)
                    let written = bytes.withUnsafeMutableBytes { raw in
                        var out = HTTP1HeadWriter.Out(raw)
                        f.writeAdded(into: &out)
                        return out.index
                    }
                    #expect(written == f.addedByteCount)
                    let lines = f.added.map { "\($0.0): \($0.1)\r\n" }.joined()
                    #expect(String(decoding: bytes[..<written], as: UTF8.self) == lines)
                }
            }
        }
        // The list: received fields not dropped, in order, then the proxy's in their fixed order.
        var f = ForwardedFields()
        f.drop(1)
        f.drop(2)
        f.peer = "p"
        f.upgrade = "websocket"
        f.teTrailers = true
        f.forwardedProto = true
        #expect(f.list(Array(received.prefix(4))).map { "\($0.0)=\($0.1)" } == [
            "host=reviews:9080", "content-length=5", "x-sextant-peer-metadata=p", "connection=upgrade", "upgrade=websocket",
            "te=trailers", "x-forwarded-proto=http",
        ])
    }
}
