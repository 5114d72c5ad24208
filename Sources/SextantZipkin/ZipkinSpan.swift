import SextantModel

/// One Zipkin v2 span as it is on the wire (zipkin-api `zipkin2-api.yaml` `Span`, `zipkin.proto`
/// `Span`), before translation. Both wire formats decode into this, so the mapping to
/// OpenTelemetry lives in one place (``ZipkinTranslation``); encoding goes the other way through
/// ``ZipkinOutgoingSpan``.
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
    /// Tags with unique keys; every value is a `.string`. In wire order, a repeated key keeping its
    /// first position and its last value (as a JSON object or protobuf map does).
    var tags: [KeyValue] = []
    var debug = false
    var shared = false
}

/// Where the tags with a ``ZipkinTagRole`` are in a span's tag list, so the mapping can read,
/// replace and drop them without searching. Fixed storage: no allocation unless a span carries
/// resource or link tags.
struct ZipkinTagPositions {
    /// Position + 1 of the tag of each single-valued role (statusCode … peerService), 0 when absent.
    private var single: (
        Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32,
        Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    /// Positions of resource-attribute tags, in order.
    var resource: [Int] = []
    /// Positions of `otlp.link.<i>` tags, in order.
    var links: [Int] = []

    /// Positions of the tags in `tags`, classified by key.
    init(of tags: [KeyValue]) {
        for i in tags.indices {
            if let role = ZipkinTagRole.of(tags[i].key) { record(role, at: i) }
        }
    }

    init() {}

    mutating func record(_ role: ZipkinTagRole, at position: Int) {
        switch role {
        case .resource: resource.append(position)
        case .link: links.append(position)
        default: self[role] = position
        }
    }

    /// The position of the tag with a single-valued role.
    subscript(role: ZipkinTagRole) -> Int? {
        get {
            precondition(role.rawValue < ZipkinTagRole.link.rawValue)
            let v = withUnsafeBytes(of: single) { $0.load(fromByteOffset: role.rawValue * 4, as: Int32.self) }
            return v == 0 ? nil : Int(v) - 1
        }
        set {
            precondition(role.rawValue < ZipkinTagRole.link.rawValue)
            let v = Int32(truncatingIfNeeded: (newValue ?? -1) + 1)
            withUnsafeMutableBytes(of: &single) { $0.storeBytes(of: v, toByteOffset: role.rawValue * 4, as: Int32.self) }
        }
    }
}

/// A set of tag positions to drop; no allocation for the first 64 positions.
struct ZipkinDroppedTags {
    private var low: UInt64 = 0
    private var high: Set<Int> = []

    var isEmpty: Bool { low == 0 && high.isEmpty }

    mutating func insert(_ position: Int) {
        if position < 64 { low |= 1 << UInt64(position) } else { high.insert(position) }
    }

    func contains(_ position: Int) -> Bool {
        position < 64 ? low & (1 << UInt64(position)) != 0 : high.contains(position)
    }

    /// Removes the dropped positions from `tags`, keeping the order of the rest.
    func remove(from tags: inout [KeyValue]) {
        guard !isEmpty else { return }
        var kept = 0
        for i in tags.indices where !contains(i) {
            if kept != i { tags.swapAt(kept, i) }
            kept += 1
        }
        tags.removeLast(tags.count - kept)
    }
}

/// zipkin.proto `Span.Kind`; JSON uses the names without the `SPAN_KIND_` prefix.
enum ZipkinKind: Int32 {
    case unspecified = 0
    case client = 1
    case server = 2
    case producer = 3
    case consumer = 4

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
