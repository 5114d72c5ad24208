import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import SextantGRPC
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantSecurity
import Synchronization

public struct OTLPExporterFactory: ExporterFactory {
    public init() {}
    public let type = "otlp"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "sends OTLP over gRPC (gzip); also how to export to Jaeger ≥ 1.35"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { OTLPExporterConfig.parse(&r, grpc: true) }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        OTLPGRPCExporter(config as! OTLPExporterConfig, settings: settings)
    }
}

/// `otlp` exporter: `Export` calls to an OTLP/gRPC server through one multiplexed HTTP/2 connection.
///
/// Status handling follows the OTLP spec §"Failures": UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED,
/// ABORTED, OUT_OF_RANGE, DATA_LOSS and RESOURCE_EXHAUSTED are retried with backoff; any other
/// code drops the batch (counted). A partial success is logged with the server's message.
///
/// TLS (the default, as in the OTel Collector; `tls::insecure: true` for plaintext) uses the context
/// `TLSSettings` builds, offering ALPN `h2`; `auth::authenticator` adds its headers as metadata.
public final class OTLPGRPCExporter: ConsumingComponent {
    private let config: OTLPExporterConfig
    private let logger: Logger
    private let client: GRPCClient<HTTP2ClientTransport.Posix>?
    private let setupError: (any Error)?
    /// The `auth` extension, found when the graph is built (extensions exist by then); a failure
    /// stops the start.
    private let authenticator: Result<(any ClientAuthenticator)?, any Error>
    private let runTask = Mutex<Task<Void, Never>?>(nil)
    private let helper: ExporterHelper<ContinuousClock>

    public init(_ config: OTLPExporterConfig, settings: ComponentSettings) {
        self.config = config
        self.logger = settings.logger
        let authenticator = Result { try config.security.auth.map { try $0.clientAuthenticator(settings) } }
        self.authenticator = authenticator
        var client: GRPCClient<HTTP2ClientTransport.Posix>?
        var setupError: (any Error)?
        do {
            let hp = HostPort.parse(config.endpoint)!
            let target: any ResolvableTarget =
                hp.host.contains(":")
                ? .ipv6(address: hp.host, port: hp.port)
                : (hp.host.first?.isNumber == true ? .ipv4(address: hp.host, port: hp.port) : .dns(host: hp.host, port: hp.port))
            var transportConfig = HTTP2ClientTransport.Posix.Config.defaults
            transportConfig.compression.enabledAlgorithms = .all
            transportConfig.compression.algorithm = config.compression == .gzip ? .gzip : .none
            var security = HTTP2ClientTransport.Posix.TransportSecurity.plaintext
            if !config.plaintext {
                // Certificate files are read here, when the graph is built, before anything starts.
                let context = try config.security.tls.makeContext(applicationProtocols: ["h2", "grpc-exp"])
                transportConfig.secure(with: context, serverHostname: config.security.tls.serverHostname(for: hp.host))
                security = .customSecure
            }
            client = GRPCClient(transport: try HTTP2ClientTransport.Posix(target: target, transportSecurity: security, config: transportConfig))
        } catch {
            setupError = error
        }
        self.client = client
        self.setupError = setupError
        let headers = config.headers
        let timeout = config.helper.timeout
        let compression = config.compression
        let logger = settings.logger
        let credentials = (try? authenticator.get()) ?? nil
        self.helper = ExporterHelper(config.helper, component: settings) { [client] batch in
            guard let client else { throw ConsumerError.permanent("gRPC client could not be created") }
            var metadata = Metadata()
            for (k, v) in headers { metadata.addString(v, forKey: k.lowercased()) }
            for (k, v) in credentials?.requestHeaders() ?? [] { metadata.replaceOrAddString(v, forKey: k) }
            var options = CallOptions.defaults
            options.timeout = timeout
            options.compression = compression == .gzip ? .gzip : CompressionAlgorithm.none
            let method: MethodDescriptor
            switch batch.signal {
            case .traces: method = OTLPGRPCMethods.traces
            case .metrics: method = OTLPGRPCMethods.metrics
            case .logs: method = OTLPGRPCMethods.logs
            }
            do {
                let reply = try await client.unary(
                    request: ClientRequest(message: OTLPProtobuf.encode(batch), metadata: metadata), descriptor: method,
                    serializer: RawBytesCoding(), deserializer: RawBytesCoding(), options: options
                ) { response in try response.message }
                if let partial = try? OTLPProtobuf.decodeExportResponse(reply), partial.rejected > 0 || !partial.errorMessage.isEmpty {
                    logger.warning(
                        "partial success from OTLP server", metadata: ["rejected": "\(partial.rejected)", "message": "\(partial.errorMessage)"])
                }
            } catch let error as RPCError {
                throw Self.classify(error)
            }
        }
    }

    /// OTLP spec retryable gRPC codes.
    static func classify(_ error: RPCError) -> ConsumerError {
        switch error.code {
        case .cancelled, .deadlineExceeded, .aborted, .outOfRange, .unavailable, .dataLoss, .resourceExhausted:
            return .retryable("gRPC \(error.code): \(error.message)")
        default:
            return .permanent("gRPC \(error.code): \(error.message)")
        }
    }

    public func start() async throws {
        if let setupError { throw setupError }
        _ = try authenticator.get()
        let client = self.client!
        let logger = self.logger
        runTask.withLock {
            $0 = Task {
                do { try await client.runConnections() } catch { logger.error("OTLP/gRPC client stopped: \(error)") }
            }
        }
        helper.start()
    }

    public func shutdown() async {
        await helper.shutdown()
        client?.beginGracefulShutdown()
        await runTask.withLock { $0 }?.value
    }

    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}
