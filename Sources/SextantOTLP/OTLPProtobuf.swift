import SextantModel

/// OTLP binary protobuf encoding (specification.md, "Binary Protobuf Encoding"), straight into and
/// out of the model.
///
/// Decoding rejects malformed wire data with ``OTLPDecodingError`` and drops well-formed but
/// invalid items (counted in ``DecodeResult/rejected``). Encoding is canonical: fields in
/// field-number order, defaults omitted, minimal varints, packed repeated scalars — the bytes the
/// reference Go and Python encoders produce for the same message.
public enum OTLPProtobuf {
    // MARK: Requests

    /// Decodes an `ExportTraceServiceRequest` (wire-identical to `TracesData`).
    public static func decodeTraces(_ bytes: UnsafeRawBufferPointer) throws -> DecodeResult<TracesData> {
        try decodeRequest(bytes, decodeTracesData)
    }

    /// Decodes an `ExportMetricsServiceRequest` (wire-identical to `MetricsData`).
    public static func decodeMetrics(_ bytes: UnsafeRawBufferPointer) throws -> DecodeResult<MetricsData> {
        try decodeRequest(bytes, decodeMetricsData)
    }

    /// Decodes an `ExportLogsServiceRequest` (wire-identical to `LogsData`).
    public static func decodeLogs(_ bytes: UnsafeRawBufferPointer) throws -> DecodeResult<LogsData> {
        try decodeRequest(bytes, decodeLogsData)
    }

    /// Runs `decode` over a whole request with one ``RequestStrings`` table for all its readers; the
    /// table lives until `decode` returns, as the readers' unowned references need.
    private static func decodeRequest<T>(
        _ bytes: UnsafeRawBufferPointer,
        _ decode: (inout ProtoReader, inout Rejections) throws(OTLPDecodingError) -> T
    ) throws(OTLPDecodingError) -> DecodeResult<T> {
        let strings = RequestStrings()
        var r = ProtoReader(bytes, strings: strings)
        var rejections = Rejections()
        let data = try withExtendedLifetime(strings) { () throws(OTLPDecodingError) in try decode(&r, &rejections) }
        return rejections.result(data)
    }

    /// Decodes the export request of `signal`.
    public static func decode(_ signal: Signal, _ bytes: UnsafeRawBufferPointer) throws -> DecodeResult<Telemetry> {
        switch signal {
        case .traces: return try decodeTraces(bytes).map(Telemetry.traces)
        case .metrics: return try decodeMetrics(bytes).map(Telemetry.metrics)
        case .logs: return try decodeLogs(bytes).map(Telemetry.logs)
        }
    }

    /// Decodes an `ExportTraceServiceRequest`, keeping `bytes` themselves as the batch when they are
    /// in the canonical encoding (``EncodedTraces``): the model is then built only if something reads
    /// it, and encoding the batch returns these bytes. Otherwise the same as ``decodeTraces(_:)-swift.type.method``.
    public static func decodeTraces(keeping bytes: [UInt8]) throws -> DecodeResult<TracesData> {
        if let kept = bytes.withUnsafeBytes({ CanonicalTraces.check($0) }) {
            return DecodeResult(data: TracesData(encoded: encodedTraces(bytes, kept.spanCount, kept.extent)))
        }
        return try decodeTraces(bytes)
    }

    /// The same for bytes the caller does not keep: they are copied only when they are kept.
    public static func decodeTraces(keepingCopyOf bytes: UnsafeRawBufferPointer) throws -> DecodeResult<TracesData> {
        if let kept = CanonicalTraces.check(bytes) {
            return DecodeResult(data: TracesData(encoded: encodedTraces(Array(bytes), kept.spanCount, kept.extent)))
        }
        return try decodeTraces(bytes)
    }

    /// Decodes the export request of `signal`, keeping canonical trace requests encoded (see
    /// ``decodeTraces(keeping:)``).
    public static func decode(_ signal: Signal, keeping bytes: [UInt8]) throws -> DecodeResult<Telemetry> {
        signal == .traces ? try decodeTraces(keeping: bytes).map(Telemetry.traces) : try decode(signal, bytes)
    }

    /// The same for bytes the caller does not keep.
    public static func decode(_ signal: Signal, keepingCopyOf bytes: UnsafeRawBufferPointer) throws -> DecodeResult<Telemetry> {
        signal == .traces ? try decodeTraces(keepingCopyOf: bytes).map(Telemetry.traces) : try decode(signal, bytes)
    }

    /// Whether `bytes` are a canonical `ExportTraceServiceRequest` (what ``decodeTraces(keeping:)`` keeps).
    public static func isCanonicalTraces(_ bytes: UnsafeRawBufferPointer) -> (spanCount: Int, extent: AttributeExtent)? {
        CanonicalTraces.check(bytes)
    }

    /// A request ``isCanonicalTraces(_:)`` accepts, without the empty resource, scope and status
    /// messages it may hold: then exactly what encoding its decoded model gives (for tests and fuzzing).
    public static func withoutEmptyMessages(canonicalTraces bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { CanonicalTraces.withoutEmptyMessages($0) }
    }

    static func encodedTraces(_ bytes: [UInt8], _ spanCount: Int, _ extent: AttributeExtent) -> EncodedTraces {
        EncodedTraces(bytes: bytes, spanCount: spanCount, extent: extent, decoder: decodeCanonicalChunk)
    }

    /// Decodes one chunk of an ``EncodedTraces``; it passed ``CanonicalTraces``, so it decodes whole.
    @Sendable static func decodeCanonicalChunk(_ chunk: [UInt8]) -> [ResourceSpans] {
        do {
            return try decodeTraces(chunk).data.resourceSpans
        } catch {
            assertionFailure("a canonical trace request failed to decode: \(error)")
            return []
        }
    }

    public static func decodeTraces(_ bytes: [UInt8]) throws -> DecodeResult<TracesData> {
        try bytes.withUnsafeBytes { try decodeTraces($0) }
    }

    public static func decodeMetrics(_ bytes: [UInt8]) throws -> DecodeResult<MetricsData> {
        try bytes.withUnsafeBytes { try decodeMetrics($0) }
    }

    public static func decodeLogs(_ bytes: [UInt8]) throws -> DecodeResult<LogsData> {
        try bytes.withUnsafeBytes { try decodeLogs($0) }
    }

    public static func decode(_ signal: Signal, _ bytes: [UInt8]) throws -> DecodeResult<Telemetry> {
        try bytes.withUnsafeBytes { try decode(signal, $0) }
    }

    /// Encodes `data` as an `ExportTraceServiceRequest` / `TracesData`.
    public static func encode(_ data: TracesData) -> [UInt8] {
        if let e = data.encoded { return e.bytes }
        var w = ProtoWriter(capacity: data.spanCount * 320)
        encodeTracesData(data, &w)
        return w.bytes()
    }

    /// Encodes `data` as an `ExportMetricsServiceRequest` / `MetricsData`.
    public static func encode(_ data: MetricsData) -> [UInt8] {
        var w = ProtoWriter(capacity: data.dataPointCount * 128)
        encodeMetricsData(data, &w)
        return w.bytes()
    }

    /// Encodes `data` as an `ExportLogsServiceRequest` / `LogsData`.
    public static func encode(_ data: LogsData) -> [UInt8] {
        var w = ProtoWriter(capacity: data.logRecordCount * 192)
        encodeLogsData(data, &w)
        return w.bytes()
    }

    /// Encodes the export request for the batch's signal.
    public static func encode(_ t: Telemetry) -> [UInt8] {
        switch t {
        case .traces(let d): return encode(d)
        case .metrics(let d): return encode(d)
        case .logs(let d): return encode(d)
        }
    }

    /// The export request for the batch as consecutive parts: a kept trace batch's chunks as they are
    /// (joining them would copy the batch once more), otherwise one encoding.
    public static func encodeParts(_ t: Telemetry) -> [[UInt8]] {
        if case .traces(let d) = t, let e = d.encoded { return e.chunks }
        return [encode(t)]
    }

    // MARK: Responses

    /// Encodes an `Export{Trace,Metrics,Logs}ServiceResponse`. Its `partial_success` field (1) holds
    /// `rejected_<items>` (1, int64) and `error_message` (2); the layout is the same for all three
    /// signals. `nil` encodes full success: an empty message (specification.md, "Full Success").
    public static func encodeExportResponse(_ signal: Signal, partialSuccess: PartialSuccess?) -> [UInt8] {
        guard let partialSuccess else { return [] }
        var w = ProtoWriter(capacity: 64 + partialSuccess.errorMessage.utf8.count)
        w.stringField(2, partialSuccess.errorMessage)
        w.int64Field(1, partialSuccess.rejected)
        w.lengthPrefix(1, since: 0)
        return w.bytes()
    }

    /// Decodes an `Export*ServiceResponse`; `nil` when `partial_success` is absent.
    public static func decodeExportResponse(_ bytes: UnsafeRawBufferPointer) throws -> PartialSuccess? {
        var r = ProtoReader(bytes)
        var result: PartialSuccess?
        while r.hasMore {
            let tag = try r.readTag()
            guard tag == 1 << 3 | 2 else {
                try r.skip(tag: tag, in: "ExportServiceResponse")
                continue
            }
            var m = try r.readMessage()
            var partial = result ?? PartialSuccess(rejected: 0, errorMessage: "")
            while m.hasMore {
                let t = try m.readTag()
                switch t {
                case 1 << 3 | 0: partial.rejected = Int64(bitPattern: try m.readVarint())
                case 2 << 3 | 2: partial.errorMessage = try m.readString(in: "ExportPartialSuccess")
                default: try m.skip(tag: t, in: "ExportPartialSuccess")
                }
            }
            result = partial
        }
        return result
    }

    public static func decodeExportResponse(_ bytes: [UInt8]) throws -> PartialSuccess? {
        try bytes.withUnsafeBytes { try decodeExportResponse($0) }
    }

    /// Encodes a `google.rpc.Status` (`code` = 1, `message` = 2; `details` = 3 is never written),
    /// the body of OTLP/HTTP error responses (specification.md, "Failures").
    public static func encodeStatus(code: Int32, message: String) -> [UInt8] {
        var w = ProtoWriter(capacity: 32 + message.utf8.count)
        w.stringField(2, message)
        w.int32Field(1, code)
        return w.bytes()
    }

    /// Decodes a `google.rpc.Status`, ignoring `details`.
    public static func decodeStatus(_ bytes: UnsafeRawBufferPointer) throws -> (code: Int32, message: String) {
        var r = ProtoReader(bytes)
        var code: Int32 = 0
        var message = ""
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 0: code = try r.readInt32()
            case 2 << 3 | 2: message = try r.readString(in: "google.rpc.Status")
            default: try r.skip(tag: tag, in: "google.rpc.Status")
            }
        }
        return (code, message)
    }

    public static func decodeStatus(_ bytes: [UInt8]) throws -> (code: Int32, message: String) {
        try bytes.withUnsafeBytes { try decodeStatus($0) }
    }
}
