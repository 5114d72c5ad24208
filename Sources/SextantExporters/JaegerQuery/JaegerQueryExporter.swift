import Logging
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantSecurity
import SextantTraceStore
import Synchronization

/// `jaeger_query` exporter config.
public struct JaegerQueryExporterConfig: ComponentConfig {
    public var host = "127.0.0.1"
    public var port = 16686
    public var maxSpans = 100_000
    public var maxBytes = 64 << 20
    public var helper = ExporterHelperSettings.synchronous
    /// `tls`: serve the query API over HTTPS (a `configtls` server block; mutual with `client_ca_file`).
    public var tls: TLSSettings?
}

public struct JaegerQueryExporterFactory: ExporterFactory {
    public init() {}
    public let type = "jaeger_query"
    public let signals: Set<Signal> = [.traces]
    public let summary = "keeps recent traces in memory and serves Jaeger's query API (Jaeger UI, Grafana)"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = JaegerQueryExporterConfig()
        (c.host, c.port) = r.endpoint("endpoint", default: "localhost:16686")
        c.maxSpans = r.int("max_spans", default: c.maxSpans, min: 1)
        c.maxBytes = r.byteSize("max_bytes", default: c.maxBytes, min: 1024)
        c.tls = TLSSettings.parseServer(&r)
        c.helper = ExporterHelperSettings.parse(&r, defaults: c.helper)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        JaegerQueryExporter(config as! JaegerQueryExporterConfig, settings: settings)
    }
}

/// The embedded trace backend: spans go into a bounded in-memory `TraceStore` (oldest traces evicted
/// first, evictions counted) and are served over Jaeger's query HTTP API (`/api/services`,
/// `/api/services/{service}/operations`, `/api/operations`, `/api/traces`, `/api/traces/{id}`), which
/// the Jaeger UI and Grafana's Jaeger data source read.
public final class JaegerQueryExporter: ConsumingComponent {
    public let store: TraceStore
    private let config: JaegerQueryExporterConfig
    private let logger: Logger
    private let helper: ExporterHelper<ContinuousClock>
    private let server = Mutex<HTTPServer?>(nil)

    public init(_ config: JaegerQueryExporterConfig, settings: ComponentSettings) {
        let store = TraceStore(maxSpans: config.maxSpans, maxBytes: config.maxBytes)
        self.store = store
        self.config = config
        self.logger = settings.logger
        let labels = [("exporter", settings.id.description)]
        let evicted = settings.telemetry.counter(
            "sextant_exporter_jaeger_query_evicted_spans_total", help: "Spans evicted from the in-memory trace store to stay within its bounds.",
            labels: labels)
        let stored = settings.telemetry.gauge("sextant_exporter_jaeger_query_spans", help: "Spans held in the in-memory trace store.", labels: labels)
        helper = ExporterHelper(config.helper, component: settings) { batch in
            guard case .traces(let t) = batch else { return }
            let before = store.stats.evictedSpans
            store.insert(t)
            let after = store.stats
            evicted.add(after.evictedSpans - before)
            stored.set(after.spans)
        }
    }

    public var port: Int? { server.withLock { $0?.port } }

    public func start() async throws {
        let store = self.store
        var serverConfig = HTTPServerConfiguration(host: config.host, port: config.port, maxRequestBodySize: 1 << 16)
        serverConfig.tls = try config.tls?.makeContext(applicationProtocols: ["http/1.1"])
        let s = try await HTTPServer.start(serverConfig, logger: logger) { request in
            guard request.head.method == .GET else { return .text(.methodNotAllowed, "only GET is supported") }
            let (status, body) = JaegerQueryAPI.handle(path: String(request.path), query: request.query, store: store, now: SystemTime.nowNanos())
            return HTTPResponse(
                status: HTTPResponseStatus(statusCode: status), headers: ["content-type": "application/json"], body: ByteBuffer(bytes: body))
        }
        server.withLock { $0 = s }
        helper.start()
        logger.info("Jaeger query API listening", metadata: ["endpoint": "\(config.tls == nil ? "http" : "https")://\(config.host):\(s.port)/api/services"])
    }

    public func shutdown() async {
        await helper.shutdown()
        await server.withLock { $0 }?.shutdown()
    }

    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}
