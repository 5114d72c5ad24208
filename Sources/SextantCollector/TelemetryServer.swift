import Logging
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantPipeline
import SextantSecurity
import ServiceLifecycle

/// Serves the collector's own metrics (`/metrics`, Prometheus text 0.0.4), liveness (`/healthz`)
/// and readiness (`/readyz`, 503 until every component has started and again while shutting down);
/// over HTTPS with `service::telemetry::metrics::tls` (mutual with `client_ca_file`).
public final class TelemetryServer: Service {
    private let host: String
    private let port: Int
    private let tls: TLSSettings?
    private let telemetry: SelfTelemetry
    private let readiness: Readiness
    private let logger: Logger
    private let bound: AsyncStream<Int>.Continuation
    /// Yields the bound port once listening (useful with port 0).
    public let boundPort: AsyncStream<Int>

    public init(host: String, port: Int, tls: TLSSettings? = nil, telemetry: SelfTelemetry, readiness: Readiness, logger: Logger) {
        self.host = host
        self.port = port
        self.tls = tls
        self.telemetry = telemetry
        self.readiness = readiness
        self.logger = logger
        (boundPort, bound) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func run() async throws {
        let telemetry = self.telemetry
        let readiness = self.readiness
        var serverConfig = HTTPServerConfiguration(host: host, port: port, maxRequestBodySize: 1 << 16)
        serverConfig.tls = try tls?.makeContext(applicationProtocols: ["http/1.1"])
        let server = try await HTTPServer.start(serverConfig, logger: logger) { request in
            guard request.head.method == .GET || request.head.method == .HEAD else {
                return .text(.methodNotAllowed, "only GET is supported")
            }
            switch request.path {
            case "/metrics":
                return HTTPResponse(
                    status: .ok, headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"],
                    body: ByteBuffer(string: telemetry.renderPrometheusText()))
            case "/healthz":
                return .text(.ok, "ok")
            case "/readyz":
                return readiness.isReady ? .text(.ok, "ready") : .text(.serviceUnavailable, "not ready")
            default:
                return .text(.notFound, "not found; try /metrics, /healthz, /readyz")
            }
        }
        bound.yield(server.port)
        logger.info("self-telemetry listening", metadata: ["endpoint": "\(tls == nil ? "http" : "https")://\(host):\(server.port)"])
        try? await gracefulShutdown()
        await server.shutdown()
    }
}
