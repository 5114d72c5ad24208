import Logging
import NIOCore
import SextantHTTP
import Testing

/// HTTP/1.1 pipelining (RFC 9112 §9.3.2) in `HTTPServer`, which queues requests itself: every request
/// sent back to back on one connection is answered once, in order, including requests answered at once
/// (a refused encoding) between ones the responder takes time over, and more than the queue holds
/// before reading pauses.
@Suite("HTTP server pipelining")
struct HTTPServerPipeliningTests {
    /// Echoes `path:body` after a short wait, so later requests arrive while it is being answered.
    static func start() async throws -> HTTPServer {
        try await HTTPServer.start(HTTPServerConfiguration(host: "127.0.0.1", port: 0, maxRequestBodySize: 4096), logger: Logger(label: "test")) { request in
            try? await Task.sleep(for: .milliseconds(2))
            return .text(.ok, request.head.uri + ":" + String(buffer: request.body))
        }
    }

    static func request(_ path: String, _ body: String, headers: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)"
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try await Self.start()
        defer { Task { await server.shutdown() } }
        let client = try RawHTTPClient(port: server.port)
        client.send(
            Self.request("/a", "one") + Self.request("/b", "two", headers: "Content-Encoding: br\r\n") + Self.request("/c", "")
                + Self.request("/d", "four"))
        var answers: [String] = []
        for _ in 0..<4 {
            let r = try client.readResponse()
            answers.append("\(r.status) \(r.text)")
        }
        #expect(answers == ["200 /a:one\n", "415 unsupported Content-Encoding 'br'\n", "200 /c:\n", "200 /d:four\n"])
        // The connection is still usable afterwards.
        client.send(Self.request("/e", "five"))
        #expect(try client.readResponse().text == "/e:five\n")
    }

    @Test func aLongPipelinePausesReadingAndLosesNothing() async throws {
        let server = try await Self.start()
        defer { Task { await server.shutdown() } }
        let client = try RawHTTPClient(port: server.port)
        // 200 requests of three parts each: far past the 64 parts that pause reading.
        client.send((0..<200).map { Self.request("/\($0)", String(repeating: "x", count: $0 % 7)) }.joined())
        for i in 0..<200 {
            let r = try client.readResponse()
            #expect(r.status == 200 && r.text == "/\(i):" + String(repeating: "x", count: i % 7) + "\n")
        }
        client.send(Self.request("/last", "ok"))
        #expect(try client.readResponse().text == "/last:ok\n")
    }

    @Test func aClosingRequestDropsWhatWasPipelinedAfterIt() async throws {
        let server = try await Self.start()
        defer { Task { await server.shutdown() } }
        let client = try RawHTTPClient(port: server.port)
        client.send(Self.request("/a", "1", headers: "Connection: close\r\n") + Self.request("/b", "2"))
        let r = try client.readResponse()
        #expect(r.status == 200, "\(r.status) \(r.text) \(r.headers)")
        #expect(r.text == "/a:1\n" && r.header("connection") == "close")
        #expect(client.isClosedByPeer())
    }

    @Test func malformedBytesAreAnsweredAfterTheRequestsBeforeThem() async throws {
        let server = try await Self.start()
        defer { Task { await server.shutdown() } }
        let client = try RawHTTPClient(port: server.port)
        client.send(Self.request("/a", "1") + Self.request("/b", "2") + "NOT HTTP AT ALL\r\n\r\n")
        #expect(try client.readResponse().text == "/a:1\n")
        #expect(try client.readResponse().text == "/b:2\n")
        let bad = try client.readResponse()
        #expect(bad.status == 400 && bad.header("connection") == "close")
        #expect(client.isClosedByPeer())

        let idle = try RawHTTPClient(port: server.port)
        idle.send("NOT HTTP AT ALL\r\n\r\n")
        #expect(try idle.readResponse().status == 400)
        #expect(idle.isClosedByPeer())
    }
}
