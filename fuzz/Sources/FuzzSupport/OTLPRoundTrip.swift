import SextantModel
import SextantOTLP

/// Decodes `bytes` as each OTLP message Sextant reads, in one encoding, and re-encodes whatever
/// decodes in both encodings (OTLP/HTTP serves the same data as protobuf and JSON).
public enum OTLPRoundTrip {
    public enum Encoding: String, Sendable { case protobuf, json }

    public static func run(_ bytes: UnsafeRawBufferPointer, as encoding: Encoding) {
        if encoding == .protobuf { keptTraces(bytes) }
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

    /// A trace request kept as its bytes must be one the decoder takes whole and re-encodes to the
    /// same bytes (up to empty resource, scope and status messages), with the span count and limits
    /// extent the model has (see `CanonicalTraces`).
    private static func keptTraces(_ bytes: UnsafeRawBufferPointer) {
        guard let kept = OTLPProtobuf.isCanonicalTraces(bytes) else { return }
        let input = Array(bytes)
        let decoded: DecodeResult<TracesData>
        do {
            decoded = try OTLPProtobuf.decodeTraces(input)
        } catch {
            roundTripCheck(false, "a kept trace request does not decode", "\(error)\ninput (hex): \(hexDump(input))")
            return
        }
        roundTripCheck(decoded.rejected == 0, "a kept trace request drops spans", "input (hex): \(hexDump(input))")
        roundTripCheck(decoded.data.spanCount == kept.spanCount, "a kept trace request miscounts spans", "input (hex): \(hexDump(input))")
        // The same bytes, but for the empty resource, scope and status messages our encoder leaves out.
        let reencoded = OTLPProtobuf.encode(decoded.data)
        roundTripCheck(
            reencoded == OTLPProtobuf.withoutEmptyMessages(canonicalTraces: input), "a kept trace request re-encodes differently",
            "input (hex): \(hexDump(input))\nre-encoded (hex): \(hexDump(reencoded))")
        var model = Telemetry.traces(decoded.data)
        var keptBatch = Telemetry.traces(TracesData(encoded: EncodedTraces(bytes: input, spanCount: kept.spanCount, extent: kept.extent, decoder: { _ in [] })))
        // The extent decides whether limits touch the batch: it must agree with the model at every limit.
        let limits = TelemetryLimits(
            maxAttributes: max(1, kept.extent.attributes), maxAttributeValueLength: max(1, kept.extent.valueLength),
            maxEvents: max(1, kept.extent.events), maxLinks: max(1, kept.extent.links))
        roundTripCheck(limits.apply(to: &model).isZero, "a kept trace request exceeds its own extent", "input (hex): \(hexDump(input))")
        roundTripCheck(limits.apply(to: &keptBatch).isZero, "limits at the extent change a kept batch", "input (hex): \(hexDump(input))")
        for tighter in [
            TelemetryLimits(maxAttributes: kept.extent.attributes - 1, maxAttributeValueLength: 0, maxEvents: 0, maxLinks: 0),
            TelemetryLimits(maxAttributes: 0, maxAttributeValueLength: kept.extent.valueLength - 1, maxEvents: 0, maxLinks: 0),
            TelemetryLimits(maxAttributes: 0, maxAttributeValueLength: 0, maxEvents: kept.extent.events - 1, maxLinks: 0),
            TelemetryLimits(maxAttributes: 0, maxAttributeValueLength: 0, maxEvents: 0, maxLinks: kept.extent.links - 1),
        ] where !tighter.isUnlimited && tighter.maxAttributes >= 0 && tighter.maxAttributeValueLength >= 0 && tighter.maxEvents >= 0 && tighter.maxLinks >= 0 {
            var m = Telemetry.traces(decoded.data)
            roundTripCheck(!tighter.apply(to: &m).isZero, "a kept trace request's extent is larger than its model's", "input (hex): \(hexDump(input))")
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
