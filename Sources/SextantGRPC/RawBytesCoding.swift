import GRPCCore
import SextantModel
import SextantOTLP

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

/// The OTLP/gRPC `Export` methods (names from `OTLPGRPCNames`) as grpc-swift descriptors.
public enum OTLPGRPCMethods {
    public static let traces = export(.traces)
    public static let metrics = export(.metrics)
    public static let logs = export(.logs)

    private static func export(_ signal: Signal) -> MethodDescriptor {
        MethodDescriptor(service: ServiceDescriptor(fullyQualifiedService: OTLPGRPCNames.service(signal)), method: "Export")
    }
}
