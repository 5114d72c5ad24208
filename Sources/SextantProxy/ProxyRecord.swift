import NIOCore
import NIOHTTP1
import SextantIstio
import SextantModel

/// Envoy's `%RESPONSE_FLAGS%` (stream_info `ResponseFlag`), the short codes access logs, Istio's
/// `response_flags` label and spans carry.
public struct ResponseFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noHealthyUpstream = ResponseFlags(rawValue: 1 << 0)  // UH
    public static let upstreamConnectionFailure = ResponseFlags(rawValue: 1 << 1)  // UF
    public static let upstreamOverflow = ResponseFlags(rawValue: 1 << 2)  // UO
    public static let noRouteFound = ResponseFlags(rawValue: 1 << 3)  // NR
    public static let upstreamRetryLimitExceeded = ResponseFlags(rawValue: 1 << 4)  // URX
    public static let noClusterFound = ResponseFlags(rawValue: 1 << 5)  // NC
    public static let downstreamConnectionTermination = ResponseFlags(rawValue: 1 << 6)  // DC
    public static let upstreamRequestTimeout = ResponseFlags(rawValue: 1 << 7)  // UT
    public static let localReset = ResponseFlags(rawValue: 1 << 8)  // LR
    public static let upstreamRemoteReset = ResponseFlags(rawValue: 1 << 9)  // UR
    public static let upstreamConnectionTermination = ResponseFlags(rawValue: 1 << 10)  // UC
    public static let delayInjected = ResponseFlags(rawValue: 1 << 11)  // DI
    public static let faultInjected = ResponseFlags(rawValue: 1 << 12)  // FI
    public static let invalidHeader = ResponseFlags(rawValue: 1 << 13)  // IH
    public static let downstreamProtocolError = ResponseFlags(rawValue: 1 << 14)  // DPE
    public static let upstreamProtocolError = ResponseFlags(rawValue: 1 << 15)  // UPE

    /// Codes in Envoy's print order (`source/common/stream_info/utility.cc`), joined with `,`; `-` if none.
    static let codes: [(ResponseFlags, String)] = [
        (.noHealthyUpstream, "UH"), (.upstreamConnectionFailure, "UF"), (.upstreamOverflow, "UO"), (.noRouteFound, "NR"),
        (.upstreamRetryLimitExceeded, "URX"), (.noClusterFound, "NC"), (.downstreamConnectionTermination, "DC"),
        (.upstreamRequestTimeout, "UT"), (.localReset, "LR"), (.upstreamRemoteReset, "UR"),
        (.upstreamConnectionTermination, "UC"), (.delayInjected, "DI"), (.faultInjected, "FI"), (.invalidHeader, "IH"),
        (.downstreamProtocolError, "DPE"), (.upstreamProtocolError, "UPE"),
    ]

    public var description: String {
        if isEmpty { return "-" }
        return Self.codes.filter { contains($0.0) }.map(\.1).joined(separator: ",")
    }
}

/// Everything the telemetry tap learns about one request, filled in as the request goes through the
/// proxy (no extra work on the request path beyond storing these values).
public struct ProxyRecord: Sendable {
    /// Direction of the listener: `outbound` (the workload's own calls) or `inbound` (calls to it).
    public enum Direction: String, Sendable { case outbound, inbound }

    public var direction: Direction
    /// Wall-clock start, nanoseconds since the Unix epoch (`%START_TIME%`).
    public var startUnixNanos: UInt64
    /// Monotonic duration until the last byte was sent downstream (`%DURATION%`), in nanoseconds: the metrics,
    /// the log line and the span read it as a number (`Duration.components` divides 128 bits, ~90
    /// instructions a read).
    public var durationNanoseconds: Int64 = 0
    /// `durationNanoseconds` as a `Duration`.
    public var duration: Duration {
        get { .nanoseconds(durationNanoseconds) }
        set { durationNanoseconds = newValue.timeAmount.nanoseconds }
    }
    /// Whole milliseconds of the duration, as Envoy prints `%DURATION%`.
    var durationMilliseconds: Int64 { durationNanoseconds / 1_000_000 }
    /// Time from the upstream request start to its response head (`x-envoy-upstream-service-time`).
    public var upstreamServiceTime: Duration? {
        get { upstreamServiceNanoseconds.map { .nanoseconds($0) } }
        set { upstreamServiceNanoseconds = newValue?.timeAmount.nanoseconds }
    }
    /// `upstreamServiceTime` in nanoseconds, as the request path sets it (a `Duration` costs 128-bit arithmetic
    /// to make and to print).
    var upstreamServiceNanoseconds: Int64?
    /// `upstreamServiceNanoseconds` in whole milliseconds (0 when unset): the value of the proxy's own
    /// `x-envoy-upstream-service-time`.
    var upstreamServiceMilliseconds: Int64 { (upstreamServiceNanoseconds ?? 0) / 1_000_000 }
    public var method: String
    /// The path as received (`X-ENVOY-ORIGINAL-PATH?:PATH`).
    public var path: String
    /// `HTTP/1.1`, `HTTP/2`, ...
    public var protocolName: String
    public var authority: String
    /// The request's headers as received (an `HTTPHeaders` of `requestFields`, made for whoever asks).
    public var requestHeaders: HTTPHeaders {
        get { HTTPHeaders(requestFields) }
        set {
            requestFields = newValue.map { ($0.name, $0.value) }
            knownRequestFields = nil
        }
    }
    /// The request's header fields as received, in order: the list the proxy read them into, shared, not
    /// copied (an `HTTPHeaders` lookup copies each name it passes; `requestHeader(lowercased:)` reads by index).
    var requestFields: [(String, String)]

    /// The first value of the request header `name`, given in lower case (matched in any case).
    func requestHeader(lowercased name: String) -> String? { Self.first(lowercased: name, in: requestFields) }

    /// Request fields that Istio's access log or the span read on every request.
    enum KnownRequestField: Sendable {
        case userAgent, forwardedFor, originalPath

        var name: String {
            switch self {
            case .userAgent: "user-agent"
            case .forwardedFor: "x-forwarded-for"
            case .originalPath: "x-envoy-original-path"
            }
        }

        init?(lowercased name: String) {
            switch name {
            case "user-agent": self = .userAgent
            case "x-forwarded-for": self = .forwardedFor
            case "x-envoy-original-path": self = .originalPath
            default: return nil
            }
        }
    }

    /// Where each `KnownRequestField` first is in `requestFields` (-1: absent), noted by the proxy in its one
    /// pass over the fields it received; nil (a record made otherwise, or fields replaced since) when they
    /// must be looked up by name. Looking them up cost ~180 instructions each, four times a request.
    struct KnownRequestFields: Sendable {
        // 16 bits each keep the record (swapped whole when a request ends) small; a head with more fields
        // is not noted.
        var userAgent: Int16 = -1
        var forwardedFor: Int16 = -1
        var originalPath: Int16 = -1
    }
    var knownRequestFields: KnownRequestFields?

    /// `requestHeader(lowercased:)` of a known field, by the index the proxy noted when it has one.
    func requestHeader(_ field: KnownRequestField) -> String? {
        guard let known = knownRequestFields else { return requestHeader(lowercased: field.name) }
        let i: Int16
        switch field {
        case .userAgent: i = known.userAgent
        case .forwardedFor: i = known.forwardedFor
        case .originalPath: i = known.originalPath
        }
        return i >= 0 ? requestFields[Int(i)].1 : nil
    }

    /// The first value of the field `name` (given in lower case; matched in any case) in a field list, read by
    /// index. Lengths first: reading a name's length retains nothing, comparing its bytes retains the name.
    static func first(lowercased name: String, in fields: [(String, String)]) -> String? {
        let n = name.utf8.count
        for i in fields.indices where fields[i].0.utf8.count == n && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: name) {
            return fields[i].1
        }
        return nil
    }
    /// The request's first `content-type` is `application/grpc*` (Istio's `request_protocol="grpc"`); set by
    /// the proxy as it reads the head.
    public var isGRPC = false
    /// The response's headers as sent downstream. Usually kept as the received head's bytes plus the proxy's
    /// fields: this makes `HTTPHeaders` of them; `responseHeader(_:)` looks one up without doing so.
    public var responseHeaders: HTTPHeaders {
        get { responseFields.headers }
        set { responseFields = .headers(newValue) }
    }
    var responseFields = ResponseFields.headers([:])

    /// The first value of the response header `name`, given in lower case (matched in any case).
    public func responseHeader(lowercased name: String) -> String? { responseFields.first(lowercased: name) }
    public var responseCode: Int = 0
    public var responseCodeDetails: String = ""
    public var responseFlags: ResponseFlags = []
    public var bytesReceived: Int = 0
    public var bytesSent: Int = 0
    public var upstreamHost: String?
    public var upstreamTransportFailureReason: String?
    public var routeName: String?
    /// The names that come from the cluster a request was routed to, behind one reference.
    public var destination = Destination.none
    /// Envoy's cluster name (`%UPSTREAM_CLUSTER%`).
    public var upstreamCluster: String? {
        get { destination.upstreamCluster }
        set { destination = destination.with { $0.upstreamCluster = newValue } }
    }
    /// Istio's span name when the proxy knows it in advance: an outbound request routed to a cluster, whose
    /// `<service>:<port>/*` is made once per cluster. Nil: the span builder derives it from the record.
    public var spanName: String? {
        get { destination.spanName }
        set { destination = destination.with { $0.spanName = newValue } }
    }
    /// Service name and namespace of the destination (Istio `destination_service*`).
    public var destinationService: String? {
        get { destination.service }
        set { destination = destination.with { $0.service = newValue } }
    }
    public var destinationServiceName: String? {
        get { destination.serviceName }
        set { destination = destination.with { $0.serviceName = newValue } }
    }
    public var destinationServiceNamespace: String? {
        get { destination.serviceNamespace }
        set { destination = destination.with { $0.serviceNamespace = newValue } }
    }

    /// Where a request went, as the observers name it: five names that come from one cluster, made once per
    /// cluster (`ClusterRuntime.outboundDestination`) and shared by its requests' records, so that a record
    /// takes and drops one reference for them, not five. Immutable: a record's setters replace it.
    public final class Destination: Sendable {
        public let upstreamCluster: String?
        public let spanName: String?
        public let service: String?
        public let serviceName: String?
        public let serviceNamespace: String?

        public init(
            upstreamCluster: String? = nil, spanName: String? = nil, service: String? = nil, serviceName: String? = nil,
            serviceNamespace: String? = nil
        ) {
            self.upstreamCluster = upstreamCluster
            self.spanName = spanName
            self.service = service
            self.serviceName = serviceName
            self.serviceNamespace = serviceNamespace
        }

        /// None of the names.
        public static let none = Destination()

        fileprivate struct Names {
            var upstreamCluster, spanName, service, serviceName, serviceNamespace: String?
        }

        /// A copy with `edit` applied.
        fileprivate func with(_ edit: (inout Names) -> Void) -> Destination {
            var n = Names(
                upstreamCluster: upstreamCluster, spanName: spanName, service: service, serviceName: serviceName,
                serviceNamespace: serviceNamespace)
            edit(&n)
            return Destination(
                upstreamCluster: n.upstreamCluster, spanName: n.spanName, service: n.service, serviceName: n.serviceName,
                serviceNamespace: n.serviceNamespace)
        }
    }
    /// Labels of the chosen endpoint (`version` feeds `destination_version`).
    public var upstreamLabels: [String: String] = [:]
    /// The downstream connection's names, behind one reference.
    public var downstream = Downstream.none
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    public var downstreamRemoteAddress: String? {
        get { downstream.remoteAddress }
        set { downstream = Downstream(remoteAddress: newValue, localAddress: downstream.localAddress, peerPrincipal: downstream.peerPrincipal) }
    }
    /// The proxy's own address on the upstream connection (`%UPSTREAM_LOCAL_ADDRESS%`).
    public var upstreamLocalAddress: String?
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    public var downstreamLocalAddress: String? {
        get { downstream.localAddress }
        set { downstream = Downstream(remoteAddress: downstream.remoteAddress, localAddress: newValue, peerPrincipal: downstream.peerPrincipal) }
    }
    public var attempts: Int = 0
    public var requestID: String = ""
    /// The other proxy's identity, from `x-sextant-peer-metadata` (the server's on outbound records, the
    /// client's on inbound ones); nil when the peer has no proxy.
    public var peer: PeerMetadata? {
        get { peerBox?.value }
        set { peerBox = newValue.map(PeerBox.init) }
    }
    /// `peer`, boxed: inline its 121 bytes made every record, and the exchange that holds one, that much larger
    /// (see `DownstreamHandler.Exchange.Rare`), and most records have none.
    private var peerBox: PeerBox?
    private final class PeerBox: Sendable {
        let value: PeerMetadata
        init(_ value: PeerMetadata) { self.value = value }
    }
    /// The SPIFFE ID of the downstream's certificate when it connected with mesh mTLS
    /// (`%DOWNSTREAM_PEER_URI_SAN%`; Istio's `source_principal` on inbound records).
    public var downstreamPeerPrincipal: String? {
        get { downstream.peerPrincipal }
        set { downstream = Downstream(remoteAddress: downstream.remoteAddress, localAddress: downstream.localAddress, peerPrincipal: newValue) }
    }

    /// The downstream connection's names: made once per connection (`DownstreamHandler`) and shared by its
    /// requests' records, which then take and drop one reference for them, not three. Immutable: a record's
    /// setters replace it.
    public final class Downstream: Sendable {
        public let remoteAddress: String?
        public let localAddress: String?
        public let peerPrincipal: String?

        public init(remoteAddress: String? = nil, localAddress: String? = nil, peerPrincipal: String? = nil) {
            self.remoteAddress = remoteAddress
            self.localAddress = localAddress
            self.peerPrincipal = peerPrincipal
        }

        /// None of the names.
        public static let none = Downstream()
    }
    /// The SPIFFE ID of the upstream's certificate when the request went over mesh mTLS
    /// (`%UPSTREAM_PEER_URI_SAN%`; `destination_principal` on outbound records).
    public var upstreamPeerPrincipal: String?
    /// `grpc-status` of the response (headers or trailers), for gRPC calls.
    public var grpcStatus: String?
    /// gRPC messages in each direction (`istio_request_messages_total` / `istio_response_messages_total`).
    public var requestMessages = GRPCMessageCounter()
    public var responseMessages = GRPCMessageCounter()
    /// This hop's trace and span when tracing is on (sampled or not), for access-log correlation.
    public var traceID: TraceID?
    public var spanID: SpanID?

    public init(
        direction: Direction, startUnixNanos: UInt64, method: String, path: String, protocolName: String, authority: String,
        requestHeaders: HTTPHeaders
    ) {
        self.init(
            direction: direction, startUnixNanos: startUnixNanos, method: method, path: path, protocolName: protocolName,
            authority: authority, requestFields: requestHeaders.map { ($0.name, $0.value) })
    }

    /// A record whose request headers are `requestFields`, kept as they are.
    init(
        direction: Direction, startUnixNanos: UInt64, method: String, path: String, protocolName: String, authority: String,
        requestFields: [(String, String)]
    ) {
        self.direction = direction
        self.startUnixNanos = startUnixNanos
        self.method = method
        self.path = path
        self.protocolName = protocolName
        self.authority = authority
        self.requestFields = requestFields
    }
}

/// Counts gRPC messages in a body stream: each is a 1-byte flag and a 4-byte big-endian length, then that
/// many bytes (gRPC over HTTP/2, "Length-Prefixed-Message"). Works on any split of the stream.
public struct GRPCMessageCounter: Sendable {
    public private(set) var messages = 0
    /// Payload bytes of the current message still to skip.
    private var remaining = 0
    /// Header bytes of the next message seen so far (0...4), and its length being assembled.
    private var headerSeen = 0
    private var length = 0

    public init() {}

    public mutating func consume(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            var i = 0
            while i < bytes.count {
                if remaining > 0 {
                    let skip = min(remaining, bytes.count - i)
                    remaining -= skip
                    i += skip
                    continue
                }
                if headerSeen == 0 { messages += 1 } else { length = length << 8 | Int(bytes[i]) }
                headerSeen += 1
                i += 1
                if headerSeen == 5 {
                    remaining = length
                    headerSeen = 0
                    length = 0
                }
            }
        }
    }
}

/// Receives every finished request. Implementations must be cheap and never block: they run on the
/// connection's event loop after the response is complete.
public protocol ProxyObserver: Sendable {
    func requestFinished(_ record: ProxyRecord)
}

/// The observer used when telemetry is off.
public struct NoProxyObserver: ProxyObserver {
    public init() {}
    public func requestFinished(_ record: ProxyRecord) {}
}

/// A response's headers as the proxy sent them on: a received head's fields (those not dropped) followed by
/// the fields the proxy added, or a plain `HTTPHeaders` when they were edited otherwise. `HTTPHeaders` is made
/// only for whoever asks (`ProxyRecord.responseHeaders`); a lookup by name reads the bytes.
enum ResponseFields: Sendable {
    case headers(HTTPHeaders)
    case raw(RawFields, added: [(String, String)])
    /// `raw` as the proxy's raw response path sends it on: the upstream's `x-envoy-upstream-service-time`
    /// dropped and the proxy's own in `added`, the record's `upstreamServiceMilliseconds`. The access log
    /// writes that number instead of looking the field up.
    case proxied(RawFields, added: ProxiedResponseFields)

    var headers: HTTPHeaders {
        switch self {
        case .headers(let h): return h
        case .raw(let r, let added): return HTTPHeaders(r.list + added)
        case .proxied(let r, let added): return HTTPHeaders(r.list + added.list)
        }
    }

    /// The first value of the header `name` (given in lower case; matched in any case).
    func first(lowercased name: String) -> String? {
        switch self {
        case .headers(let h): return h.first(name: name)
        case .raw(let r, let added):
            if let v = r.first(lowercased: name) { return v }
            return ProxyRecord.first(lowercased: name, in: added)
        case .proxied(let r, let added):
            if let v = r.first(lowercased: name) { return v }
            return added.first(lowercased: name)
        }
    }
}

/// The fields the proxy adds to a response it forwards, in the order it sends them: its identity toward
/// another proxy (`peer`, on the inbound side), `x-envoy-upstream-service-time` and `server: istio-envoy`
/// (as Envoy sets them), and `connection: close` when the downstream connection ends with this response.
/// Kept as these values rather than a list: the raw response path writes them straight into the head
/// (`HTTP1HeadWriter.response(_:raw:added:reserve:allocator:)`), and the access log looks them up by name.
struct ProxiedResponseFields: Sendable {
    var peer: String?
    /// Never negative.
    var serviceMilliseconds: Int
    var close = false

    init(peer: String?, serviceMilliseconds: Int64, close: Bool = false) {
        self.peer = peer
        self.serviceMilliseconds = Int(max(0, serviceMilliseconds))
        self.close = close
    }

    static let serviceTimeName = "x-envoy-upstream-service-time"

    /// The fields as a list, in the order sent.
    var list: [(String, String)] {
        var out: [(String, String)] = []
        if let peer { out.append((PeerMetadata.header, peer)) }
        out.append((Self.serviceTimeName, String(serviceMilliseconds)))
        out.append(("server", "istio-envoy"))
        if close { out.append(("connection", "close")) }
        return out
    }

    /// The first value of the field `name` (in lower case), as `list` would give it.
    func first(lowercased name: String) -> String? {
        if let peer, name == PeerMetadata.header { return peer }
        switch name {
        case Self.serviceTimeName: return String(serviceMilliseconds)
        case "server": return "istio-envoy"
        case "connection": return close ? "close" : nil
        default: return nil
        }
    }
}
