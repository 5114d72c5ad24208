import SextantModel
import SextantOTLP

/// Decodes `bytes` as each OTLP message Sextant reads, in one encoding, and re-encodes whatever
/// decodes in both encodings (OTLP/HTTP serves the same data as protobuf and JSON).
public enum OTLPRoundTrip {
    public enum Encoding: String, Sendable { case protobuf, json }

    public static func run(_ bytes: UnsafeRawBufferPointer, as encoding: Encoding) {
        for signal in Signal.allCases {
            let decoded: DecodeResult<Telemetry>?
            switch encoding {
            case .protobuf: decoded = try? OTLPProtobuf.decode(signal, bytes)
            case .json: decoded = try? OTLPJSON.decode(signal, bytes)
            }
            if let decoded { requests(decoded.data, signal, from: encoding) }
        }

        let partial: PartialSuccess??
        let status: (code: Int32, message: String)?
        switch encoding {
        case .protobuf:
            partial = try? OTLPProtobuf.decodeExportResponse(bytes)
            status = try? OTLPProtobuf.decodeStatus(bytes)
        case .json:
            partial = try? OTLPJSON.decodeExportResponse(bytes)
            status = try? OTLPJSON.decodeStatus(bytes)
        }
        if let partial {
            for signal in Signal.allCases {
                _ = reDecode(
                    "OTLPProtobuf.decodeExportResponse(encodeExportResponse(\(signal))) of a \(encoding) response",
                    OTLPProtobuf.encodeExportResponse(signal, partialSuccess: partial)
                ) { try OTLPProtobuf.decodeExportResponse($0) }
                _ = reDecode(
                    "OTLPJSON.decodeExportResponse(encodeExportResponse(\(signal))) of a \(encoding) response",
                    OTLPJSON.encodeExportResponse(signal, partialSuccess: partial)
                ) { try OTLPJSON.decodeExportResponse($0) }
            }
        }
        if let status {
            _ = reDecode(
                "OTLPProtobuf.decodeStatus(encodeStatus) of a \(encoding) status",
                OTLPProtobuf.encodeStatus(code: status.code, message: status.message)
            ) { try OTLPProtobuf.decodeStatus($0) }
            _ = reDecode(
                "OTLPJSON.decodeStatus(encodeStatus) of a \(encoding) status",
                OTLPJSON.encodeStatus(code: status.code, message: status.message)
            ) { try OTLPJSON.decodeStatus($0) }
        }
    }

    private static func requests(_ data: Telemetry, _ signal: Signal, from encoding: Encoding) {
        _ = reDecode("OTLPProtobuf.decode(\(signal), OTLPProtobuf.encode(_)) of a \(encoding) request", OTLPProtobuf.encode(data)) {
            try OTLPProtobuf.decode(signal, $0)
        }
        _ = reDecode("OTLPJSON.decode(\(signal), OTLPJSON.encode(_)) of a \(encoding) request", OTLPJSON.encode(data)) {
            try OTLPJSON.decode(signal, $0)
        }
    }
}
