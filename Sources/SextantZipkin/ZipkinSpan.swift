import SextantModel

/// One Zipkin v2 span as it is on the wire (zipkin-api `zipkin2-api.yaml` `Span`, `zipkin.proto`
/// `Span`), before translation. Both wire formats decode into and encode from this, so the
/// mapping to OpenTelemetry lives in one place (``ZipkinTranslation``).
struct ZipkinSpan {
    /// 64-bit trace IDs have `high == 0`.
    var traceID = TraceID.zero
    var parentID: SpanID?
    var id = SpanID.zero
    var kind = ZipkinKind.unspecified
    var name = ""
    /// Epoch microseconds; `0` when absent.
    var timestamp: UInt64 = 0
    /// Microseconds; `0` when absent.
    var duration: UInt64 = 0
    var localEndpoint: ZipkinEndpoint?
    var remoteEndpoint: ZipkinEndpoint?
    var annotations: [ZipkinAnnotation] = []
    /// In wire order on decode, sorted by key on encode.
    var tags: [(key: String, value: String)] = []
    var debug = false
    var shared = false
}

/// zipkin.proto `Span.Kind`; JSON uses the names without the `SPAN_KIND_` prefix.
enum ZipkinKind: Int32 {
    case unspecified = 0
    case client = 1
    case server = 2
    case producer = 3
    case consumer = 4

    init(jsonName: String) {
        switch jsonName {
        case "CLIENT": self = .client
        case "SERVER": self = .server
        case "PRODUCER": self = .producer
        case "CONSUMER": self = .consumer
        default: self = .unspecified
        }
    }

    var jsonName: String? {
        switch self {
        case .unspecified: return nil
        case .client: return "CLIENT"
        case .server: return "SERVER"
        case .producer: return "PRODUCER"
        case .consumer: return "CONSUMER"
        }
    }
}

/// zipkin.proto `Endpoint`. Addresses are kept as text (JSON's form); the protobuf codec converts
/// its 4- and 16-byte forms with ``IPAddress``.
struct ZipkinEndpoint: Equatable {
    var serviceName = ""
    var ipv4 = ""
    var ipv6 = ""
    /// `0` when absent.
    var port: UInt16 = 0

    var isEmpty: Bool { serviceName.isEmpty && ipv4.isEmpty && ipv6.isEmpty && port == 0 }
}

/// zipkin.proto `Annotation`: a timestamped event.
struct ZipkinAnnotation: Equatable {
    /// Epoch microseconds.
    var timestamp: UInt64
    var value: String
}
