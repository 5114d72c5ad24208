import GRPCCore

/// Passes gRPC messages through as bytes, so our own codecs (e.g. `OTLPProtobuf`) decode them and
/// can answer malformed input with `INVALID_ARGUMENT` and a precise reason.
public struct RawBytesCoding: MessageSerializer, MessageDeserializer {
    public typealias Message = [UInt8]

    public init() {}

    public func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }

    public func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}

/// The OTLP/gRPC services (opentelemetry-proto `collector/*/v1/*_service.proto`), each with one
/// unary method `Export`.
public enum OTLPGRPCMethods {
    public static let traces = MethodDescriptor(
        service: ServiceDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService"), method: "Export")
    public static let metrics = MethodDescriptor(
        service: ServiceDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.metrics.v1.MetricsService"), method: "Export")
    public static let logs = MethodDescriptor(
        service: ServiceDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.logs.v1.LogsService"), method: "Export")
}
