import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantPipeline

/// One HTTP POST as the HTTP-based exporters send it, and the retry classification they share.
enum HTTPPoster {
    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// POSTs `body` (gzip-compressed when asked) and reads at most 1 MiB of the answer. A transport
    /// failure (refused, reset, timeout) is retryable.
    static func post(
        _ url: String, contentType: String, body: [UInt8], gzip: Bool, headers: [(String, String)], timeout: Duration
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "User-Agent", value: "sextant")
        var payload = body
        if gzip {
            payload = Inflater.gzip(body)
            request.headers.add(name: "Content-Encoding", value: "gzip")
        }
        for (k, v) in headers { request.headers.replaceOrAdd(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: payload))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(timeout))
            let reply = try await response.body.collect(upTo: 1 << 20)
            return Reply(
                status: Int(response.status.code), headers: response.headers,
                body: reply.getBytes(at: reply.readerIndex, length: reply.readableBytes) ?? [])
        } catch {
            throw ConsumerError.retryable("POST \(url) failed: \(error)")
        }
    }

    /// Throws for a non-2xx reply: 429 and 5xx (except 501) are retryable, honouring `Retry-After`
    /// in seconds; anything else is permanent. `retryable` narrows the retried set (OTLP/HTTP retries
    /// only 429, 502, 503, 504).
    static func check(_ reply: Reply, url: String, detail: String, retryable: (Int) -> Bool = { $0 == 429 || ($0 >= 500 && $0 != 501) })
        throws
    {
        guard !(200..<300).contains(reply.status) else { return }
        let message = "HTTP \(reply.status) from \(url): \(detail)"
        if retryable(reply.status) {
            throw ConsumerError.retryable(message, after: reply.headers.first(name: "retry-after").flatMap(Int.init).map { .seconds($0) })
        }
        throw ConsumerError.permanent(message)
    }
}
