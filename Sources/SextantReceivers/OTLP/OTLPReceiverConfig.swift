import SextantModel
import SextantPipeline
import SextantSecurity

/// `otlp` receiver config: `protocols: {http: {...}, grpc: {...}}` as in the OTel Collector.
public struct OTLPReceiverConfig: ComponentConfig {
    /// `protocols.http`.
    public struct HTTP: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 4318
        public var maxRequestBodySize = 20 << 20
        public var tracesPath = "/v1/traces"
        public var metricsPath = "/v1/metrics"
        public var logsPath = "/v1/logs"
        /// `tls` and `auth` of `protocols::http`.
        public var security = ServerSecurity()
    }

    /// `protocols.grpc`.
    public struct GRPC: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 4317
        /// Largest accepted message (after decompression); larger ones fail with RESOURCE_EXHAUSTED.
        public var maxRecvMsgSize = 4 << 20
        /// `tls` and `auth` of `protocols::grpc`.
        public var security = ServerSecurity()
    }

    public var http: HTTP?
    public var grpc: GRPC?

    static func parse(_ r: inout ConfigReader) -> OTLPReceiverConfig {
        var c = OTLPReceiverConfig()
        var protocols = r.section("protocols")
        if protocols.keys.contains("http") {
            var h = protocols.section("http")
            var http = HTTP()
            (http.host, http.port) = h.endpoint("endpoint", default: "localhost:4318")
            http.maxRequestBodySize = h.byteSize("max_request_body_size", default: http.maxRequestBodySize, min: 1)
            http.tracesPath = h.string("traces_url_path", default: http.tracesPath)
            http.metricsPath = h.string("metrics_url_path", default: http.metricsPath)
            http.logsPath = h.string("logs_url_path", default: http.logsPath)
            for (key, path) in [("traces_url_path", http.tracesPath), ("metrics_url_path", http.metricsPath), ("logs_url_path", http.logsPath)]
            where !path.hasPrefix("/") {
                h.error(key, "\(h.path)::\(key) must start with '/', found '\(path)'")
            }
            http.security = ServerSecurity.parse(&h)
            h.finish()
            c.http = http
        }
        if protocols.keys.contains("grpc") {
            var g = protocols.section("grpc")
            var grpc = GRPC()
            (grpc.host, grpc.port) = g.endpoint("endpoint", default: "localhost:4317")
            grpc.maxRecvMsgSize = g.int("max_recv_msg_size_mib", default: 4, min: 1, max: 1024) << 20
            grpc.security = ServerSecurity.parse(&g)
            g.finish()
            c.grpc = grpc
        }
        if c.http == nil && c.grpc == nil {
            protocols.error(nil, "\(r.path) must enable at least one protocol under 'protocols' (grpc, http)")
        }
        protocols.finish()
        return c
    }
}

public struct OTLPReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "otlp"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "OTLP over gRPC (4317) and HTTP (4318; protobuf and JSON), gzip, partial success"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { OTLPReceiverConfig.parse(&r) }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        OTLPReceiver(config as! OTLPReceiverConfig, settings: settings, consumers: consumers)
    }
}

