import Logging
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantPrometheus
import SextantSecurity
import SextantSnappy
import Synchronization

/// `prometheusremotewrite` receiver config.
public struct PrometheusRemoteWriteReceiverConfig: ComponentConfig {
    public var host = "127.0.0.1"
    public var port = 9091
    /// Bounds the compressed body and, separately, the decompressed message.
    public var maxRequestBodySize = 20 << 20
    /// `tls` and `auth`.
    public var security = ServerSecurity()
}

public struct PrometheusRemoteWriteReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "prometheusremotewrite"
    public let signals: Set<Signal> = [.metrics]
    public let summary = "Prometheus remote write 1.0: POST /api/v1/write, snappy-compressed protobuf WriteRequest"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = PrometheusRemoteWriteReceiverConfig()
        (c.host, c.port) = r.endpoint("endpoint", default: "localhost:9091")
        c.maxRequestBodySize = r.byteSize("max_request_body_size", default: c.maxRequestBodySize, min: 1)
        c.security = ServerSecurity.parse(&r)
        return c
    }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        PrometheusRemoteWriteReceiver(config as! PrometheusRemoteWriteReceiverConfig, settings: settings, next: consumers[.metrics]!)
    }
}

/// Accepts what Prometheus's `remote_write` sends (Remote-Write 1.0 specification): `POST /api/v1/write`
/// with a Snappy block-compressed protobuf `WriteRequest`, and answers 204 like Prometheus's own
/// receiver. Series become OTLP metrics by `RemoteWrite.WriteRequest.toMetrics()` (gauges, `_total`
/// series monotonic cumulative sums, `job`/`instance` → resource). Corrupt Snappy or protobuf → 400
/// with the reason; a body or decompressed message above `max_request_body_size` → 413; a pipeline
/// refusal → 429 (overload) or 503 with `Retry-After`, which Prometheus retries; a remote-write 2.0
/// request (`proto=io.prometheus.write.v2.Request`) → 415.
public final class PrometheusRemoteWriteReceiver: Component {
    private let config: PrometheusRemoteWriteReceiverConfig
    private let next: any Consumer
    private let settings: ComponentSettings
    private let logger: Logger
    private let metrics: ReceiverMetrics
    private let server = Mutex<HTTPServer?>(nil)

    public init(_ config: PrometheusRemoteWriteReceiverConfig, settings: ComponentSettings, next: any Consumer) {
        self.config = config
        self.next = next
        self.settings = settings
        self.logger = settings.logger
        self.metrics = ReceiverMetrics(settings, transport: "http")
    }

    public var port: Int? { server.withLock { $0?.port } }

    public func start() async throws {
        // Snappy is this protocol's own encoding: the server must not try to inflate it.
        var serverConfig = HTTPServerConfiguration(
            host: config.host, port: config.port, maxRequestBodySize: config.maxRequestBodySize, decompress: false)
        try serverConfig.secure(config.security, settings: settings)
        serverConfig.limitConnections(settings)
        let s = try await HTTPServer.start(serverConfig, logger: logger) { [self] request in await handle(request) }
        server.withLock { $0 = s }
        logger.info(
            "Prometheus remote-write receiver listening",
            metadata: config.security.logMetadata(endpoint: "\(config.security.tls == nil ? "http" : "https")://\(config.host):\(s.port)/api/v1/write"))
    }

    public func shutdown() async { await server.withLock { $0 }?.shutdown() }

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard request.path == "/api/v1/write" else { return .text(.notFound, "unknown path \(request.path); use /api/v1/write") }
        guard request.head.method == .POST else {
            var r = HTTPResponse.text(.methodNotAllowed, "use POST")
            r.headers.add(name: "allow", value: "POST")
            return r
        }
        if let encoding = request.head.headers.first(name: "content-encoding")?.lowercased(), encoding != "snappy" {
            return .text(.unsupportedMediaType, "unsupported Content-Encoding '\(encoding)'; remote write uses snappy")
        }
        if let type = request.head.headers.first(name: "content-type"), type.contains("io.prometheus.write.v2") {
            return .text(.unsupportedMediaType, "remote write 2.0 is not supported; send remote write 1.0 (prometheus.WriteRequest)")
        }
        if let mediaType = request.mediaType, mediaType != "application/x-protobuf" {
            return .text(.unsupportedMediaType, "unsupported content type '\(mediaType)'; use application/x-protobuf")
        }
        let decoded: RemoteWrite.WriteRequest
        do {
            let raw = try request.body.withUnsafeReadableBytes { bytes in
                try Snappy.decompress(bytes, maxLength: config.maxRequestBodySize)
            }
            decoded = try RemoteWrite.WriteRequest.decode(raw)
        } catch let e as Snappy.Failure {
            return .text(e.kind == .tooLarge ? .payloadTooLarge : .badRequest, "\(e)")
        } catch {
            return .text(.badRequest, "malformed remote-write WriteRequest: \(error)")
        }
        let (data, points, rejected) = decoded.toMetrics()
        let histograms = decoded.timeseries.reduce(0) { $0 + $1.skippedHistograms }
        if rejected > 0 || histograms > 0 {
            metrics.refused(.metrics, rejected + histograms)
            logger.warning(
                "dropped remote-write samples", metadata: ["without_name": "\(rejected)", "native_histograms": "\(histograms)"])
        }
        if points > 0 {
            do {
                try await next.consume(.metrics(data))
                metrics.accepted(.metrics, points)
            } catch {
                metrics.refused(.metrics, points)
                return .refusal(ConsumerError.classify(error))
            }
        }
        return HTTPResponse(status: .noContent)
    }
}
