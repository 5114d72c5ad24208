import SextantModel
import SextantPipeline

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
    }

    public var http: HTTP?

    static func parse(_ r: inout ConfigReader) -> OTLPReceiverConfig {
        var c = OTLPReceiverConfig()
        var protocols = r.section("protocols")
        if protocols.has("http") || protocols.keys.contains("http") {
            var h = protocols.section("http")
            var http = HTTP()
            let endpoint = h.string("endpoint", default: "localhost:4318")
            if let hp = HostPort.parse(endpoint) {
                http.host = hp.host
                http.port = hp.port
            } else {
                h.error("endpoint", "\(h.path)::endpoint must be host:port, found '\(endpoint)'")
            }
            http.maxRequestBodySize = h.byteSize("max_request_body_size", default: http.maxRequestBodySize, min: 1)
            http.tracesPath = h.string("traces_url_path", default: http.tracesPath)
            http.metricsPath = h.string("metrics_url_path", default: http.metricsPath)
            http.logsPath = h.string("logs_url_path", default: http.logsPath)
            for (key, path) in [("traces_url_path", http.tracesPath), ("metrics_url_path", http.metricsPath), ("logs_url_path", http.logsPath)]
            where !path.hasPrefix("/") {
                h.error(key, "\(h.path)::\(key) must start with '/', found '\(path)'")
            }
            h.finish()
            c.http = http
        }
        if protocols.keys.contains("grpc") {
            _ = protocols.raw("grpc")
            protocols.error(
                "grpc", "\(protocols.path)::grpc: the OTLP/gRPC protocol is not available in this build yet; use http (port 4318)")
        }
        if c.http == nil && !protocols.keys.contains("grpc") {
            protocols.error(nil, "\(r.path) must enable at least one protocol under 'protocols' (http)")
        }
        protocols.finish()
        return c
    }
}

public struct OTLPReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "otlp"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "OTLP over HTTP (protobuf and JSON, gzip) on /v1/traces, /v1/metrics, /v1/logs"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { OTLPReceiverConfig.parse(&r) }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        OTLPReceiver(config as! OTLPReceiverConfig, settings: settings, consumers: consumers)
    }
}

