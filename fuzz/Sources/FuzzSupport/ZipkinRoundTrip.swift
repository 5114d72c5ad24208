import SextantModel
import SextantZipkin

/// Decodes `bytes` as a Zipkin v2 span list in one format and re-encodes what decodes in both
/// (the zipkin exporter writes either).
public enum ZipkinRoundTrip {
    public enum Format: String, Sendable { case json, proto }

    public static func run(_ bytes: UnsafeRawBufferPointer, as format: Format) {
        let decoded: ZipkinDecodeResult?
        switch format {
        case .json: decoded = try? ZipkinV2.decodeJSON(bytes)
        case .proto: decoded = try? ZipkinV2.decodeProto(bytes)
        }
        guard let traces = decoded?.data else { return }
        _ = reDecode("ZipkinV2.decodeJSON(encodeJSON(_)) of \(format) spans", ZipkinV2.encodeJSON(traces)) {
            try ZipkinV2.decodeJSON($0)
        }
        _ = reDecode("ZipkinV2.decodeProto(encodeProto(_)) of \(format) spans", ZipkinV2.encodeProto(traces)) {
            try ZipkinV2.decodeProto($0)
        }
    }
}
