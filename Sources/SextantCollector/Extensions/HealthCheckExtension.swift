import Logging
import NIOCore
import SextantHTTP
import SextantPipeline
import SextantSecurity
import Synchronization

/// `health_check` extension (as in the OTel Collector): `GET <path>` on its own endpoint answers 200
/// `{"status":"Server available"}` once every component is running, 503 before and during shutdown.
public struct HealthCheckExtensionFactory: ExtensionFactory {
    struct Config: ComponentConfig {
        var host = "127.0.0.1"
        var port = 13133
        var path = "/"
        /// `tls` (confighttp's server `tls`): HTTPS, mutual with `client_ca_file`.
        var tls: TLSSettings?
    }

    public init() {}
    public let type = "health_check"
    public let summary = "HTTP health endpoint for load balancers and orchestrators"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = Config()
        (c.host, c.port) = r.endpoint("endpoint", default: "localhost:13133")
        c.path = r.string("path", default: "/")
        c.tls = TLSSettings.parseServer(&r)
        return c
    }

    public func makeExtension(_ settings: ComponentSettings, config: any ComponentConfig) throws -> any Component {
        HealthCheckExtension(config as! Config, settings: settings)
    }
}

/// The running `health_check` endpoint.
public final class HealthCheckExtension: Component {
    private let config: HealthCheckExtensionFactory.Config
    private let settings: ComponentSettings
    private let server = Mutex<HTTPServer?>(nil)

    init(_ config: HealthCheckExtensionFactory.Config, settings: ComponentSettings) {
        self.config = config
        self.settings = settings
    }

    /// The bound port (after `start`).
    public var port: Int? { server.withLock { $0?.port } }

    public func start() async throws {
        let path = config.path
        let readiness = settings.readiness
        var serverConfig = HTTPServerConfiguration(host: config.host, port: config.port, maxRequestBodySize: 1024)
        serverConfig.tls = try config.tls?.makeContext(applicationProtocols: ["http/1.1"])
        let s = try await HTTPServer.start(serverConfig, logger: settings.logger) { request in
            guard request.path == path else { return .text(.notFound, "not found") }
            let ready = readiness.isReady
            return HTTPResponse(
                status: ready ? .ok : .serviceUnavailable, headers: ["content-type": "application/json"],
                body: ByteBuffer(string: ready ? #"{"status":"Server available"}"# : #"{"status":"Server not available"}"#))
        }
        server.withLock { $0 = s }
    }

    public func shutdown() async { await server.withLock { $0 }?.shutdown() }
}
