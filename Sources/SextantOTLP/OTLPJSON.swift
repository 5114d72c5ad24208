import SextantModel

/// The OTLP JSON encoding (specification.md, "JSON Protobuf Encoding"): the proto3 JSON mapping
/// with hex trace/span IDs and integer enums.
///
/// Encoding writes compact JSON (one line, no trailing newline) with lowerCamelCase keys in
/// field-number order and proto3 defaults omitted. Decoding accepts lowerCamelCase and the original
/// snake_case names, enum names as well as integers, 64-bit integers as strings or numbers, and
/// ignores unknown keys. Invalid JSON, invalid UTF-8 and non-hex IDs throw ``OTLPDecodingError``;
/// invalid items are dropped and counted as in ``OTLPProtobuf``.
public enum OTLPJSON {
    // MARK: Requests

    /// Decodes an `ExportTraceServiceRequest`.
    public static func decodeTraces(_ bytes: UnsafeRawBufferPointer) throws -> DecodeResult<TracesData> {
        var r = JSONReader(bytes, sharingStrings: true)
        var rejections = Rejections()
        let data = try decodeTracesData(&r, &rejections)
        try r.finish()
        return rejections.result(data)
    }

    /// Decodes an `ExportMetricsServiceRequest`.
    public static func decodeMetrics(_ bytes: UnsafeRawBufferPointer) throws -> DecodeResult<MetricsData> {
        var r = JSONReader(bytes, sharingStrings: true)
        var rejections = Rejections()
        let data = try decodeMetricsData(&r, &rejections)
        try r.finish()
        return rejections.result(data)
    }

    /// Decodes an `ExportLogsServiceRequest`.
    public static func decodeLogs(_ bytes: UnsafeRawBufferPointer) throws -> DecodeResult<LogsData> {
        var r = JSONReader(bytes, sharingStrings: true)
        var rejections = Rejections()
        let data = try decodeLogsData(&r, &rejections)
        try r.finish()
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

    /// Encodes `data` as an `ExportTraceServiceRequest`.
    public static func encode(_ data: TracesData) -> [UInt8] {
        JSONWriter.document(estimatedSize: estimatedSize(data)) { encodeTracesData(data, &$0) }
    }

    /// Encodes `data` as an `ExportMetricsServiceRequest`.
    public static func encode(_ data: MetricsData) -> [UInt8] {
        JSONWriter.document(estimatedSize: estimatedSize(data)) { encodeMetricsData(data, &$0) }
    }

    /// Encodes `data` as an `ExportLogsServiceRequest`.
    public static func encode(_ data: LogsData) -> [UInt8] {
        JSONWriter.document(estimatedSize: estimatedSize(data)) { encodeLogsData(data, &$0) }
    }

    /// Encodes the export request for the batch's signal.
    public static func encode(_ t: Telemetry) -> [UInt8] {
        switch t {
        case .traces(let d): return encode(d)
        case .metrics(let d): return encode(d)
        case .logs(let d): return encode(d)
        }
    }

    // MARK: Responses

    /// Encodes an `Export{Trace,Metrics,Logs}ServiceResponse`: `{}` for full success, else
    /// `{"partialSuccess":{"rejectedSpans":"3","errorMessage":"..."}}` with the signal's counter name.
    public static func encodeExportResponse(_ signal: Signal, partialSuccess: PartialSuccess?) -> [UInt8] {
        JSONWriter.document(estimatedSize: 64 + (partialSuccess?.errorMessage.utf8.count ?? 0)) { w in
            w.beginObject()
            if let partialSuccess {
                w.key("partialSuccess")
                w.beginObject()
                if partialSuccess.rejected != 0 {
                    switch signal {
                    case .traces: w.key("rejectedSpans")
                    case .metrics: w.key("rejectedDataPoints")
                    case .logs: w.key("rejectedLogRecords")
                    }
                    w.quoted(partialSuccess.rejected)
                }
                w.stringField("errorMessage", partialSuccess.errorMessage)
                w.endObject()
            }
            w.endObject()
        }
    }

    /// Decodes an `Export*ServiceResponse` of any signal; `nil` when `partialSuccess` is absent.
    public static func decodeExportResponse(_ bytes: UnsafeRawBufferPointer) throws -> PartialSuccess? {
        var r = JSONReader(bytes)
        var result: PartialSuccess?
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            guard key.is("partialSuccess", or: "partial_success") else {
                try r.skipValue()
                continue
            }
            var partial = PartialSuccess(rejected: 0, errorMessage: "")
            var inner = try r.beginObject()
            while let k = try r.nextKey(&inner) {
                if try r.consumeNull() { continue }
                if k.is("rejectedSpans", or: "rejected_spans") || k.is("rejectedDataPoints", or: "rejected_data_points")
                    || k.is("rejectedLogRecords", or: "rejected_log_records")
                {
                    partial.rejected = try r.readInt64()
                } else if k.is("errorMessage", or: "error_message") {
                    partial.errorMessage = try r.readString()
                } else {
                    try r.skipValue()
                }
            }
            result = partial
        }
        try r.finish()
        return result
    }

    public static func decodeExportResponse(_ bytes: [UInt8]) throws -> PartialSuccess? {
        try bytes.withUnsafeBytes { try decodeExportResponse($0) }
    }

    /// Encodes a `google.rpc.Status` as `{"code":3,"message":"..."}` (defaults omitted).
    public static func encodeStatus(code: Int32, message: String) -> [UInt8] {
        JSONWriter.document(estimatedSize: 32 + message.utf8.count) { w in
            w.beginObject()
            w.int32Field("code", code)
            w.stringField("message", message)
            w.endObject()
        }
    }

    /// Decodes a `google.rpc.Status`, ignoring `details`.
    public static func decodeStatus(_ bytes: UnsafeRawBufferPointer) throws -> (code: Int32, message: String) {
        var r = JSONReader(bytes)
        var code: Int32 = 0
        var message = ""
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("code") {
                code = try r.readInt32()
            } else if key.is("message") {
                message = try r.readString()
            } else {
                try r.skipValue()
            }
        }
        try r.finish()
        return (code, message)
    }

    public static func decodeStatus(_ bytes: [UInt8]) throws -> (code: Int32, message: String) {
        try bytes.withUnsafeBytes { try decodeStatus($0) }
    }
}
