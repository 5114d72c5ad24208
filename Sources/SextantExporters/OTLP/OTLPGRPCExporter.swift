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

/// `otlp` exporter: `Export` calls to an OTLP/gRPC server through one multiplexed HTTP/2 connection
/// (`GRPCUnaryClient`).
///
/// Status handling follows the OTLP spec §"Failures": UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED,
/// ABORTED, OUT_OF_RANGE, DATA_LOSS and RESOURCE_EXHAUSTED are retried with backoff; any other
/// code drops the batch (counted). A partial success is logged with the server's message.
///
/// TLS (the default, as in the OTel Collector; `tls::insecure: true` for plaintext) uses the context
/// `TLSSettings` builds, offering ALPN `h2`; `auth::authenticator` adds its headers as metadata.
public final class OTLPGRPCExporter: ConsumingComponent {
    private let client: GRPCUnaryClient?
    private let setupError: (any Error)?
    /// The `auth` extension, found when the graph is built (extensions exist by then); a failure
    /// stops the start.
    private let authenticator: Result<(any ClientAuthenticator)?, any Error>
    private let helper: ExporterHelper<ContinuousClock>

    public init(_ config: OTLPExporterConfig, settings: ComponentSettings) {
        let authenticator = Result { try config.security.auth.map { try $0.clientAuthenticator(settings) } }
        self.authenticator = authenticator
        var client: GRPCUnaryClient?
        var setupError: (any Error)?
        do {
            let hp = HostPort.parse(config.endpoint)!
            var clientConfig = GRPCUnaryClient.Configuration(host: hp.host, port: hp.port)
            clientConfig.compression = config.compression == .gzip ? .gzip : .none
            clientConfig.gzipLevel = config.gzipLevel
            if !config.plaintext {
                // Certificate files are read here, when the graph is built, before anything starts.
                clientConfig.tls = try config.security.tls.makeContext(applicationProtocols: ["h2", "grpc-exp"])
                clientConfig.serverHostname = config.security.tls.serverHostname(for: hp.host)
            }
            client = GRPCUnaryClient(clientConfig)
        } catch {
            setupError = error
        }
        self.client = client
        self.setupError = setupError
        let headers = config.headers.map { ($0.0.lowercased(), $0.1) }
        let timeout = config.helper.timeout
        let logger = settings.logger
        let credentials = (try? authenticator.get()) ?? nil
        self.helper = ExporterHelper(config.helper, component: settings) { [client] batch in
            guard let client else { throw ConsumerError.permanent("gRPC client could not be created") }
            var metadata = headers
            for (k, v) in credentials?.requestHeaders() ?? [] {
                let name = k.lowercased()
                metadata.removeAll { $0.0 == name }
                metadata.append((name, v))
            }
            do throws(GRPCStatus) {
                let reply = try await client.unary(
                    path: OTLPGRPCNames.exportPath(batch.signal), messageParts: OTLPProtobuf.encodeParts(batch), metadata: metadata, timeout: timeout)
                if let partial = try? OTLPProtobuf.decodeExportResponse(reply), partial.rejected > 0 || !partial.errorMessage.isEmpty {
                    logger.warning(
                        "partial success from OTLP server", metadata: ["rejected": "\(partial.rejected)", "message": "\(partial.errorMessage)"])
                }
            } catch {
                throw Self.classify(error)
            }
        }
    }

    /// It sends the OTLP protobuf encoding, which a kept batch already is.
    public var readsTraceModel: Bool { false }

    /// OTLP spec retryable gRPC codes.
    static func classify(_ status: GRPCStatus) -> ConsumerError {
        switch status.code {
        case GRPCStatus.cancelled, GRPCStatus.deadlineExceeded, GRPCStatus.aborted, GRPCStatus.outOfRange, GRPCStatus.unavailable,
            GRPCStatus.dataLoss, GRPCStatus.resourceExhausted:
            return .retryable("gRPC \(status)")
        default:
            return .permanent("gRPC \(status)")
        }
    }

    public func start() async throws {
        if let setupError { throw setupError }
        _ = try authenticator.get()
        helper.start()
    }

    public func shutdown() async {
        await helper.shutdown()
        await client?.close()
    }

    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}
