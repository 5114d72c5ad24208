import SextantModel

/// Jaeger ↔ OTLP model, following the OpenTelemetry Collector's translator
/// (opentelemetry-collector-contrib `pkg/translator/jaeger`: `jaegerthrift_to_traces.go`,
/// `jaegerproto_to_traces.go`, `traces_to_jaegerproto.go`) and the OpenTelemetry specification's
/// Jaeger exporter mapping (`specification/trace/sdk_exporters/jaeger.md`).
///
/// In short: `Process.serviceName` ↔ resource `service.name`, process tags ↔ the other resource
/// attributes; `traceIdHigh`/`traceIdLow` ↔ the 128-bit trace ID; the parent ↔ `parentSpanId`
/// and the first same-trace `CHILD_OF` reference, other references ↔ links (with an
/// `opentracing.ref_type` attribute); logs ↔ events (name in the `event` field); and these tags ↔
/// span fields: `span.kind`, `error`/`otel.status_code`/`otel.status_description`,
/// `w3c.tracestate`, `otel.scope.name`/`otel.scope.version`. Times are microseconds in Jaeger,
/// nanoseconds in OTLP. Of the Jaeger flags only the sampled bit has an OTLP (W3C) meaning.
public enum JaegerTranslator {
    /// Translated spans plus those that could not be translated.
    public struct DecodeOutcome: Sendable, Equatable {
        public var traces: TracesData
        /// Spans dropped because OTLP cannot carry them (all-zero trace ID or zero span ID).
        public var rejectedSpans: Int
        /// Why the first span was dropped (with the total when more were); `nil` when none were.
        public var rejectionReason: String?

        public init(traces: TracesData, rejectedSpans: Int = 0, rejectionReason: String? = nil) {
            self.traces = traces
            self.rejectedSpans = rejectedSpans
            self.rejectionReason = rejectionReason
        }
    }

    /// Tag and attribute keys of the mapping.
    enum Key {
        static let serviceName = "service.name"
        static let spanKind = "span.kind"
        static let error = "error"
        static let statusCode = "otel.status_code"
        static let statusDescription = "otel.status_description"
        static let httpStatusCode = "http.status_code"
        static let httpStatusMessage = "http.status_message"
        static let traceState = "w3c.tracestate"
        static let scopeName = "otel.scope.name"
        static let scopeVersion = "otel.scope.version"
        /// The names used before semantic conventions 1.17.
        static let libraryName = "otel.library.name"
        static let libraryVersion = "otel.library.version"
        /// The log field holding an event's name (specification, Jaeger exporter, "Events").
        static let event = "event"
        static let refType = "opentracing.ref_type"
        static let hostname = "hostname"
        static let hostName = "host.name"
        static let jaegerVersion = "jaeger.version"
        static let exporterVersion = "opencensus.exporterversion"
    }

    /// Status tag values (specification, "non-OTLP exporters", "Span Status").
    enum StatusValue {
        static let ok = "OK"
        static let error = "ERROR"
    }

    enum RefTypeValue {
        static let childOf = "child_of"
        static let followsFrom = "follows_from"
    }

    /// The service name the collector gives a resource without attributes.
    public static let noServiceName = "OTLPResourceNoServiceName"

    /// The W3C `sampled` trace flag, the low bit of OTLP `Span.flags`.
    static let sampledTraceFlag: UInt32 = 0x01
}

extension AnyValue {
    /// The string, or "" for other kinds (pdata `Value.Str()`).
    var stringOrEmpty: String {
        if case .string(let s) = self { return s }
        return ""
    }
}
