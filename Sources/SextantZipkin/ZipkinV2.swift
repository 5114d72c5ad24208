import SextantModel
import SextantOTLP

/// A decoded Zipkin request: the spans as OpenTelemetry traces, and how many spans were dropped
/// for unusable identifiers and why (the first reason, with the total when more were dropped).
public typealias ZipkinDecodeResult = DecodeResult<TracesData>

/// A payload that is not well-formed Zipkin v2 JSON or protobuf (syntax, wire format, invalid
/// UTF-8, values out of range). The whole request is rejected; the message names the byte offset.
public struct ZipkinDecodingError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// The Zipkin v2 span formats (zipkin-api `zipkin2-api.yaml` JSON and `zipkin.proto` protobuf, as
/// accepted on `POST /api/v2/spans`) and their translation to and from the OpenTelemetry model.
///
/// Decoding drops (and counts) spans with a missing, malformed, wrong-length or all-zero trace ID
/// or span ID, and keeps the rest. Encoding is deterministic: tags are sorted by key (UTF-8 bytes).
public enum ZipkinV2 {
    /// Decodes a JSON array of spans.
    public static func decodeJSON(_ bytes: UnsafeRawBufferPointer) throws(ZipkinDecodingError) -> ZipkinDecodeResult {
        do {
            let (traces, rejections) = try readJSON(bytes)
            return rejections.result(traces)
        } catch {
            throw ZipkinDecodingError(error.message)
        }
    }

    /// Decodes a protobuf `ListOfSpans`.
    public static func decodeProto(_ bytes: UnsafeRawBufferPointer) throws(ZipkinDecodingError) -> ZipkinDecodeResult {
        do {
            let (traces, rejections) = try readProto(bytes)
            return rejections.result(traces)
        } catch {
            throw ZipkinDecodingError(error.message)
        }
    }

    public static func decodeJSON(_ bytes: [UInt8]) throws(ZipkinDecodingError) -> ZipkinDecodeResult {
        try withBytes(bytes, decodeJSON)
    }

    public static func decodeProto(_ bytes: [UInt8]) throws(ZipkinDecodingError) -> ZipkinDecodeResult {
        try withBytes(bytes, decodeProto)
    }

    private static func withBytes(
        _ bytes: [UInt8], _ decode: (UnsafeRawBufferPointer) throws(ZipkinDecodingError) -> ZipkinDecodeResult
    ) throws(ZipkinDecodingError) -> ZipkinDecodeResult {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(ZipkinDecodingError) in try decode(raw) } }
        return try result.get()
    }

    /// Encodes spans as a JSON array (`application/json`).
    public static func encodeJSON(_ traces: TracesData) -> [UInt8] {
        writeJSON(traces)
    }

    /// Encodes spans as a protobuf `ListOfSpans` (`application/x-protobuf`).
    public static func encodeProto(_ traces: TracesData) -> [UInt8] {
        writeProto(traces)
    }
}
