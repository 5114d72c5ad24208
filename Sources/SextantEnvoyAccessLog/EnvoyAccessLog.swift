import SextantModel

/// The access-log formats `EnvoyAccessLogParser` understands.
public enum EnvoyAccessLogFormat: String, Sendable, CaseIterable {
    /// Envoy's default text format (Envoy docs, "Access logging" → "Default format string").
    case envoyDefault = "envoy_default"
    /// Istio's default text format (istio/istio `pilot/pkg/model/telemetry_logging.go`, `EnvoyTextLogFormat`).
    case istioText = "istio_text"
    /// Istio's JSON encoding (same file, `EnvoyJSONLogFormatIstio`); extra keys are kept.
    case istioJSON = "istio_json"
}

/// One parsed access-log line. `nil` stands for a value Envoy printed as `-` (or JSON `null`).
public struct EnvoyAccessLogEntry: Sendable, Equatable {
    public var format: EnvoyAccessLogFormat
    /// `%START_TIME%` in Unix nanoseconds.
    public var startTimeUnixNano: UInt64?
    public var method: String?
    /// `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%`, query string included.
    public var path: String?
    /// `%PROTOCOL%`, e.g. `HTTP/1.1`.
    public var `protocol`: String?
    public var responseCode: Int64?
    /// `%RESPONSE_FLAGS%` split on `,` (empty when `-`).
    public var responseFlags: [String] = []
    public var responseCodeDetails: String?
    public var connectionTerminationDetails: String?
    public var upstreamTransportFailureReason: String?
    public var bytesReceived: Int64?
    public var bytesSent: Int64?
    /// `%DURATION%` in milliseconds.
    public var durationMillis: Int64?
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` in milliseconds.
    public var upstreamServiceTimeMillis: Int64?
    public var forwardedFor: String?
    public var userAgent: String?
    public var requestID: String?
    public var authority: String?
    public var upstreamHost: String?
    public var upstreamCluster: String?
    public var upstreamLocalAddress: String?
    public var downstreamLocalAddress: String?
    public var downstreamRemoteAddress: String?
    public var requestedServerName: String?
    public var routeName: String?
    /// JSON keys outside Istio's set (custom formats), in line order, rendered as strings.
    public var extra: [(key: String, value: String)] = []

    public init(format: EnvoyAccessLogFormat) { self.format = format }

    public static func == (a: EnvoyAccessLogEntry, b: EnvoyAccessLogEntry) -> Bool {
        a.format == b.format && a.startTimeUnixNano == b.startTimeUnixNano && a.method == b.method && a.path == b.path
            && a.protocol == b.protocol && a.responseCode == b.responseCode && a.responseFlags == b.responseFlags
            && a.responseCodeDetails == b.responseCodeDetails && a.connectionTerminationDetails == b.connectionTerminationDetails
            && a.upstreamTransportFailureReason == b.upstreamTransportFailureReason && a.bytesReceived == b.bytesReceived
            && a.bytesSent == b.bytesSent && a.durationMillis == b.durationMillis
            && a.upstreamServiceTimeMillis == b.upstreamServiceTimeMillis && a.forwardedFor == b.forwardedFor
            && a.userAgent == b.userAgent && a.requestID == b.requestID && a.authority == b.authority
            && a.upstreamHost == b.upstreamHost && a.upstreamCluster == b.upstreamCluster
            && a.upstreamLocalAddress == b.upstreamLocalAddress && a.downstreamLocalAddress == b.downstreamLocalAddress
            && a.downstreamRemoteAddress == b.downstreamRemoteAddress && a.requestedServerName == b.requestedServerName
            && a.routeName == b.routeName && a.extra.elementsEqual(b.extra, by: { $0.key == $1.key && $0.value == $1.value })
    }
}

/// Envoy `%RESPONSE_FLAGS%` short names (Envoy `source/common/stream_info/utility.h`).
public enum EnvoyResponseFlag {
    /// Every short flag Envoy prints, with what it means.
    public static let all: [(flag: String, meaning: String)] = [
        ("UH", "no healthy upstream host"), ("UF", "upstream connection failure"), ("UO", "upstream overflow (circuit breaking)"),
        ("NR", "no route configured"), ("URX", "upstream retry limit exceeded"), ("NC", "upstream cluster not found"),
        ("DT", "max stream duration reached"), ("DC", "downstream connection termination"),
        ("LH", "local service failed health check"), ("UT", "upstream request timeout"), ("LR", "connection local reset"),
        ("UR", "upstream remote reset"), ("UC", "upstream connection termination"), ("DI", "delayed by fault injection"),
        ("FI", "aborted by fault injection"), ("RL", "rate limited locally"), ("UAEX", "denied by external authorization"),
        ("RLSE", "rate limit service error"), ("IH", "invalid header value (strict header checks)"),
        ("SI", "stream idle timeout"), ("DPE", "downstream protocol error"), ("UPE", "upstream protocol error"),
        ("UMSDR", "upstream max stream duration reached"), ("OM", "overload manager terminated the request"),
        ("DF", "DNS resolution failed"), ("DO", "drop overload"), ("UDO", "upstream drop overload"),
    ]
}
