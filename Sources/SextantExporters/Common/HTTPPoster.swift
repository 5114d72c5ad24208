import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantPipeline
import SextantSecurity
import Synchronization

/// The HTTP client an exporter posts through, with its `tls` and `auth` applied.
///
/// Without a `tls` block the process-wide `HTTPClient.shared` serves (`https://` then verifies
/// against the system roots); with one, the exporter owns a client whose swift-nio-ssl configuration
/// comes from `TLSSettings` (CA, client certificate, versions, `insecure_skip_verify`) and is shut
/// down with it. The authenticator's headers (`Authorization: Basic|Bearer …`) are added per request.
final class HTTPExportClient: Sendable {
    private let security: ClientSecurity
    private let configured: Bool
    private let settings: ComponentSettings
    private let state = Mutex<(client: HTTPClient, owned: Bool, authenticator: (any ClientAuthenticator)?)?>(nil)

    /// `configured`: the exporter has a `tls` block (else the shared client serves).
    init(_ security: ClientSecurity, configured: Bool, settings: ComponentSettings) {
        self.security = security
        self.configured = configured
        self.settings = settings
    }

    /// Reads the certificate files and finds the authenticator; an error stops the collector's start.
    func start() throws {
        let authenticator = try security.auth.map { try $0.clientAuthenticator(settings) }
        if configured {
            var config = HTTPClient.Configuration()
            config.tlsConfiguration = try security.tls.makeConfiguration()
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
            state.withLock { $0 = (client, true, authenticator) }
        } else {
            state.withLock { $0 = (.shared, false, authenticator) }
        }
    }

    /// The client and this request's credentials.
    func current() throws -> (HTTPClient, [(String, String)]) {
        guard let s = state.withLock({ $0 }) else { throw ConsumerError.retryable("exporter is not started") }
        return (s.client, s.authenticator?.requestHeaders() ?? [])
    }

    func shutdown() async {
        guard let s = state.withLock({ s in defer { s = nil }; return s }), s.owned else { return }
        try? await s.client.shutdown()
    }
}

extension ClientSecurity {
    /// Reads an HTTP exporter's `tls` and `auth`. The URL scheme decides whether TLS is used;
    /// `server_name_override` is refused because AsyncHTTPClient always checks the URL's host.
    static func parseHTTP(_ r: inout ConfigReader) -> (security: ClientSecurity, configured: Bool) {
        let configured = r.has("tls")
        let security = ClientSecurity.parse(&r)
        if security.tls.serverNameOverride != nil {
            let tls = r.section("tls")
            tls.error("server_name_override", "\(tls.qualified("server_name_override")) is supported by the otlp (gRPC) exporter only; HTTP exporters check the URL's host")
        }
        return (security, configured)
    }
}

/// One HTTP POST as the HTTP-based exporters send it, and the retry classification they share.
enum HTTPPoster {
    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// POSTs `body` (gzip-compressed when asked) and reads at most 1 MiB of the answer. A transport
    /// failure (refused, reset, timeout, TLS handshake) is retryable.
    static func post(
        _ url: String, contentType: String, body: [UInt8], gzip: Bool, gzipLevel: Int32 = -1, headers: [(String, String)],
        timeout: Duration, via client: HTTPExportClient
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "User-Agent", value: "sextant")
        var payload = body
        if gzip {
            payload = Inflater.gzip(body, level: gzipLevel)
            request.headers.add(name: "Content-Encoding", value: "gzip")
        }
        for (k, v) in headers { request.headers.replaceOrAdd(name: k, value: v) }
        let (http, credentials) = try client.current()
        for (k, v) in credentials { request.headers.replaceOrAdd(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: payload))
        do {
            let response = try await http.execute(request, timeout: TimeAmount(timeout))
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
