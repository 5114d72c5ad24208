import SextantModel

/// The OTLP/gRPC services (opentelemetry-proto `collector/<signal>/v1/<signal>_service.proto`), each with
/// one unary method `Export`: the one place their names are spelled, for the receiver's server and the
/// gRPC clients alike.
public enum OTLPGRPCNames {
    /// The fully qualified service of `signal`, e.g. `opentelemetry.proto.collector.trace.v1.TraceService`.
    public static func service(_ signal: Signal) -> String {
        switch signal {
        case .traces: return "opentelemetry.proto.collector.trace.v1.TraceService"
        case .metrics: return "opentelemetry.proto.collector.metrics.v1.MetricsService"
        case .logs: return "opentelemetry.proto.collector.logs.v1.LogsService"
        }
    }

    /// The HTTP/2 `:path` of `Export` for `signal` ("gRPC over HTTP2": `/<service>/<method>`).
    public static func exportPath(_ signal: Signal) -> String { "/\(service(signal))/Export" }
}
