import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SextantIstio
import SextantPrometheus

/// Workload identity exchanged between proxies in the `x-sextant-peer-metadata` header (Istio's peer
/// metadata exchange idea: Istio sends `x-envoy-peer-metadata`): the client's identity rides on requests,
/// the server's on responses, so that both reporters can fill both sides of Istio's labels.
public struct PeerMetadata: Sendable, Equatable {
    /// Lower case, 23 bytes (the proxy's response path matches it by length first).
    public static let header = "x-sextant-peer-metadata"

    public var workload = "unknown"
    public var namespace = "unknown"
    public var app = "unknown"
    public var version = "unknown"
    public var canonicalService = "unknown"
    public var canonicalRevision = "latest"
    /// On requests: the destination service the client's proxy chose (`destination_service`), so the
    /// server side never falls back to the Host header (unbounded values).
    public var service: String?
    /// On requests: that service's port, which names the server-side span (`<service>:<port>/*`).
    public var servicePort: Int?

    public init() {}

    /// The identity of a proxy from its `--workload`, `--namespace` and `--label`s, with Istio's
    /// canonical-service rules (`service.istio.io/canonical-name`, else `app`, else the workload).
    public init(identity: ProxyIdentity) {
        workload = identity.workload
        namespace = identity.namespace
        app = identity.labels["app"] ?? "unknown"
        version = identity.labels["version"] ?? "unknown"
        canonicalService = identity.labels["service.istio.io/canonical-name"] ?? identity.labels["app"] ?? identity.workload
        canonicalRevision = identity.labels["service.istio.io/canonical-revision"] ?? identity.labels["version"] ?? "latest"
    }

    /// `k=v,k=v`: label values cannot contain `,` or `=`, so no escaping is needed.
    public var headerValue: String {
        var s = "workload=\(workload),namespace=\(namespace),app=\(app),version=\(version),cs=\(canonicalService),cr=\(canonicalRevision)"
        if let service { s += ",service=\(service)" }
        if let servicePort { s += ",port=\(servicePort)" }
        return s
    }

    public init?(headerValue: String) {
        var m = PeerMetadata()
        var any = false
        for pair in headerValue.split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[1].count <= 253 else { continue }
            let v = String(kv[1])
            any = true
            switch kv[0] {
            case "workload": m.workload = v
            case "namespace": m.namespace = v
            case "app": m.app = v
            case "version": m.version = v
            case "cs": m.canonicalService = v
            case "cr": m.canonicalRevision = v
            case "service": m.service = v
            case "port": m.servicePort = Int(v).flatMap { (1...65535).contains($0) ? $0 : nil }
            default: any = any || false
            }
        }
        guard any else { return nil }
        self = m
    }
}

/// Istio's standard metrics (names, labels in Istio's order, Envoy's default histogram buckets) built
/// from the proxy's request records and rendered in the Prometheus text format at the admin endpoint's
/// `/stats/prometheus`. Series not updated for `expiry` are dropped so label churn cannot grow memory
/// without bound.
public final class IstioMetrics: ProxyObserver, @unchecked Sendable {
    /// Envoy's `HistogramSettingsImpl::defaultBuckets()`.
    static let buckets: [Double] = [
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1_800_000, 3_600_000,
    ]
    static let labelNames = [
        "reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
        "source_canonical_service", "source_canonical_revision", "source_cluster", "destination_workload",
        "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
        "destination_service", "destination_service_name", "destination_service_namespace", "destination_canonical_service",
        "destination_canonical_revision", "destination_cluster", "request_protocol", "response_flags",
        "connection_security_policy", "response_code", "grpc_response_status",
    ]

    struct Histogram {
        var counts = [UInt64](repeating: 0, count: IstioMetrics.buckets.count)
        var sum = 0.0
        var count: UInt64 = 0

        mutating func observe(_ v: Double) {
            if let i = IstioMetrics.buckets.firstIndex(where: { v <= $0 }) { counts[i] += 1 }
            sum += v
            count += 1
        }
    }

    struct HTTPSeries {
        var requests: UInt64 = 0
        var requestMessages: UInt64 = 0
        var responseMessages: UInt64 = 0
        var duration = Histogram()
        var requestBytes = Histogram()
        var responseBytes = Histogram()
        var lastUpdate: NIODeadline = CoarseClock.now()
    }

    struct TCPSeries {
        var sent: UInt64 = 0
        var received: UInt64 = 0
        var opened: UInt64 = 0
        var closed: UInt64 = 0
        var lastUpdate: NIODeadline = CoarseClock.now()
    }

    public let me: PeerMetadata
    /// This proxy's SPIFFE ID (its mesh certificate's URI SAN), reported for its side of mTLS connections.
    let principal: String
    let expiry: TimeAmount
    let version: String
    private let lock = NIOLock()
    private var http: [[String]: HTTPSeries] = [:]
    /// Where the last HTTP request's series is in `http`; an index is valid only until keys are added or
    /// removed, so every such change resets or replaces it.
    private var lastHTTP: Dictionary<[String], HTTPSeries>.Index?
    /// What decided the labels of the series at `lastHTTP`.
    private var lastInputs: LabelInputs?
    private var tcp: [[String]: TCPSeries] = [:]

    /// What an HTTP record's labels (`labels(for:)`) are made from, besides this proxy's own identity. Most
    /// requests repeat the previous one's: comparing these (mostly the same string storage, so pointer-equal)
    /// costs a fraction of making, comparing and freeing 25 label strings. A class, so that reading the kept
    /// one retains one object, not each of its strings.
    private final class LabelInputs {
        let direction: ProxyRecord.Direction
        let peer: PeerMetadata?
        let upstreamLabels: [String: String]
        /// The destination service's names (and the cluster's, which do not count), by reference: records of
        /// one cluster share it, so the usual comparison is one of identity.
        let destination: ProxyRecord.Destination
        let upstreamPeerPrincipal: String?
        let downstreamPeerPrincipal: String?
        let isGRPC: Bool
        let responseFlags: ResponseFlags
        let responseCode: Int
        let grpcStatus: String?

        init(_ r: ProxyRecord) {
            direction = r.direction
            peer = r.peer
            upstreamLabels = r.upstreamLabels
            destination = r.destination
            upstreamPeerPrincipal = r.upstreamPeerPrincipal
            downstreamPeerPrincipal = r.downstreamPeerPrincipal
            isGRPC = r.isGRPC
            responseFlags = r.responseFlags
            responseCode = r.responseCode
            grpcStatus = r.grpcStatus
        }

        /// Whether `r` (an HTTP record) gets the same labels.
        func matches(_ r: ProxyRecord) -> Bool {
            responseCode == r.responseCode && responseFlags == r.responseFlags && direction == r.direction
                && isGRPC == r.isGRPC && grpcStatus == r.grpcStatus && peer == r.peer
                && (destination === r.destination
                    || (destination.service == r.destinationService && destination.serviceName == r.destinationServiceName
                        && destination.serviceNamespace == r.destinationServiceNamespace))
                && upstreamPeerPrincipal == r.upstreamPeerPrincipal && downstreamPeerPrincipal == r.downstreamPeerPrincipal
                // The endpoint's labels count only where they name the destination (no peer metadata).
                && (direction == .inbound || r.peer != nil || upstreamLabels == r.upstreamLabels)
        }
    }

    public init(identity: ProxyIdentity, version: String, expiry: Duration = .seconds(600), principal: String? = nil) {
        me = PeerMetadata(identity: identity)
        self.principal = principal ?? "unknown"
        self.version = version
        self.expiry = expiry.timeAmount
    }

    public func requestFinished(_ r: ProxyRecord) {
        // Series expire after minutes: the coarse clock is precise enough and much cheaper per request.
        let now = CoarseClock.now()
        let isTCP = r.protocolName == "TCP"
        // Most requests repeat the previous series: no labels are made for them.
        let repeated = !isTCP && lock.withLock { () -> Bool in
            guard let i = lastHTTP, lastInputs?.matches(r) == true else { return false }
            // Updated in place: a copy out and back would copy the bucket arrays.
            Self.update(&http.values[i], r, now)
            return true
        }
        if repeated { return }
        let labels = labels(for: r)
        lock.withLock {
            // Updated in place (`default:` subscript), as above.
            if isTCP {
                Self.update(&tcp[labels, default: TCPSeries()], r, now)
            } else if let i = http.index(forKey: labels) {
                Self.update(&http.values[i], r, now)
                lastHTTP = i
                lastInputs = LabelInputs(r)
            } else {
                var series = HTTPSeries()
                Self.update(&series, r, now)
                http[labels] = series
                lastHTTP = http.index(forKey: labels)
                lastInputs = LabelInputs(r)
            }
        }
    }

    private static func update(_ s: inout TCPSeries, _ r: ProxyRecord, _ now: NIODeadline) {
        s.sent += UInt64(max(0, r.bytesSent))
        s.received += UInt64(max(0, r.bytesReceived))
        s.opened += 1
        s.closed += 1
        s.lastUpdate = now
    }

    private static func update(_ s: inout HTTPSeries, _ r: ProxyRecord, _ now: NIODeadline) {
        s.requests += 1
        s.requestMessages += UInt64(r.requestMessages.messages)
        s.responseMessages += UInt64(r.responseMessages.messages)
        s.duration.observe(Double(r.durationNanoseconds) / 1e6)
        s.requestBytes.observe(Double(r.bytesReceived))
        s.responseBytes.observe(Double(r.bytesSent))
        s.lastUpdate = now
    }

    /// The 25 label values, in `labelNames` order.
    func labels(for r: ProxyRecord) -> [String] {
        let source: PeerMetadata
        let destination: PeerMetadata
        let reporter: String
        var destinationService = r.destinationService ?? "unknown"
        var destinationServiceName = r.destinationServiceName ?? "unknown"
        var destinationServiceNamespace = r.destinationServiceNamespace ?? "unknown"
        // Principals are the SPIFFE IDs of the mTLS connection's two certificates; Istio's
        // `connection_security_policy` is `mutual_tls`/`none` on the server's side, `unknown` on the client's.
        let sourcePrincipal: String
        let destinationPrincipal: String
        let securityPolicy: String
        switch r.direction {
        case .outbound:
            sourcePrincipal = r.upstreamPeerPrincipal == nil ? "unknown" : principal
            destinationPrincipal = r.upstreamPeerPrincipal ?? "unknown"
            securityPolicy = "unknown"
        case .inbound:
            sourcePrincipal = r.downstreamPeerPrincipal ?? "unknown"
            destinationPrincipal = r.downstreamPeerPrincipal == nil ? "unknown" : principal
            securityPolicy = r.downstreamPeerPrincipal == nil ? "none" : "mutual_tls"
        }
        switch r.direction {
        case .outbound:
            reporter = "source"
            source = me
            // The server's proxy says who answered; without one, the endpoint's labels are all we know.
            if let peer = r.peer {
                destination = peer
            } else {
                var d = PeerMetadata()
                d.app = r.upstreamLabels["app"] ?? "unknown"
                d.version = r.upstreamLabels["version"] ?? "unknown"
                d.canonicalService = r.upstreamLabels["service.istio.io/canonical-name"] ?? r.upstreamLabels["app"] ?? "unknown"
                d.canonicalRevision = r.upstreamLabels["version"] ?? "latest"
                destination = d
            }
        case .inbound:
            reporter = "destination"
            source = r.peer ?? PeerMetadata()
            destination = me
            destinationService = r.peer?.service ?? "unknown"
            if let s = r.peer?.service, s.hasSuffix(".svc.cluster.local") {
                let parts = s.split(separator: ".")
                destinationServiceName = String(parts[0])
                destinationServiceNamespace = parts.count > 1 ? String(parts[1]) : "unknown"
            } else {
                destinationServiceName = r.peer?.service ?? "unknown"
                destinationServiceNamespace = me.namespace
            }
        }
        let isTCP = r.protocolName == "TCP"
        let grpc = r.isGRPC
        return [
            reporter, source.workload, source.namespace, sourcePrincipal, source.app, source.version, source.canonicalService,
            source.canonicalRevision, "unknown", destination.workload, destination.namespace, destinationPrincipal, destination.app,
            destination.version, destinationService, destinationServiceName, destinationServiceNamespace,
            destination.canonicalService, destination.canonicalRevision, "unknown",
            isTCP ? "tcp" : (grpc ? "grpc" : "http"), r.responseFlags.description,
            securityPolicy, isTCP ? "" : String(r.responseCode), r.grpcStatus ?? "",
        ]
    }

    /// Prometheus text exposition 0.0.4 of the current state, families and series sorted.
    public func render() -> String {
        let now = NIODeadline.now()
        let (httpSeries, tcpSeries) = lock.withLock { () -> ([([String], HTTPSeries)], [([String], TCPSeries)]) in
            http = http.filter { now - $0.value.lastUpdate < expiry }
            lastHTTP = nil
            tcp = tcp.filter { now - $0.value.lastUpdate < expiry }
            return (http.map { ($0.key, $0.value) }, tcp.map { ($0.key, $0.value) })
        }
        let h = httpSeries.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        let t = tcpSeries.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        var out = ""
        out += "# HELP istio_build Istio component build information.\n# TYPE istio_build gauge\nistio_build{component=\"proxy\",tag=\"\(version)\"} 1\n"
        if !h.isEmpty {
            out += "# HELP istio_request_bytes Size of HTTP request bodies, bytes.\n# TYPE istio_request_bytes histogram\n"
            for (l, s) in h { histogram(&out, "istio_request_bytes", l, s.requestBytes) }
            out += "# HELP istio_request_duration_milliseconds Duration of HTTP requests, milliseconds.\n# TYPE istio_request_duration_milliseconds histogram\n"
            for (l, s) in h { histogram(&out, "istio_request_duration_milliseconds", l, s.duration) }
            out += "# HELP istio_requests_total Requests handled, by source, destination and response.\n# TYPE istio_requests_total counter\n"
            for (l, s) in h { Self.sample(&out, "istio_requests_total", l, nil, String(s.requests)) }
            out += "# HELP istio_response_bytes Size of HTTP response bodies, bytes.\n# TYPE istio_response_bytes histogram\n"
            for (l, s) in h { histogram(&out, "istio_response_bytes", l, s.responseBytes) }
            // gRPC only (request_protocol="grpc"), as Istio reports them.
            let grpc = h.filter { $0.0[20] == "grpc" }
            if !grpc.isEmpty {
                out += "# HELP istio_request_messages_total gRPC messages sent by clients.\n# TYPE istio_request_messages_total counter\n"
                for (l, s) in grpc { Self.sample(&out, "istio_request_messages_total", l, nil, String(s.requestMessages)) }
                out += "# HELP istio_response_messages_total gRPC messages sent by servers.\n# TYPE istio_response_messages_total counter\n"
                for (l, s) in grpc { Self.sample(&out, "istio_response_messages_total", l, nil, String(s.responseMessages)) }
            }
        }
        if !t.isEmpty {
            let families: [(String, (TCPSeries) -> UInt64)] = [
                ("istio_tcp_connections_closed_total", { $0.closed }), ("istio_tcp_connections_opened_total", { $0.opened }),
                ("istio_tcp_received_bytes_total", { $0.received }), ("istio_tcp_sent_bytes_total", { $0.sent }),
            ]
            let help = [
                "istio_tcp_connections_closed_total": "TCP connections closed.",
                "istio_tcp_connections_opened_total": "TCP connections opened.",
                "istio_tcp_received_bytes_total": "Bytes received from downstream on TCP connections.",
                "istio_tcp_sent_bytes_total": "Bytes sent to downstream on TCP connections.",
            ]
            for (name, value) in families {
                out += "# HELP \(name) \(help[name]!)\n# TYPE \(name) counter\n"
                for (l, s) in t { Self.sample(&out, name, l, nil, String(value(s))) }
            }
        }
        return out
    }

    private func histogram(_ out: inout String, _ name: String, _ labels: [String], _ h: Histogram) {
        var cumulative: UInt64 = 0
        for (i, bound) in Self.buckets.enumerated() {
            cumulative += h.counts[i]
            Self.sample(&out, name + "_bucket", labels, ("le", PrometheusText.number(bound)), String(cumulative))
        }
        Self.sample(&out, name + "_bucket", labels, ("le", "+Inf"), String(h.count))
        Self.sample(&out, name + "_sum", labels, nil, PrometheusText.number(h.sum))
        Self.sample(&out, name + "_count", labels, nil, String(h.count))
    }

    /// One sample line; labels in Istio's order (not sorted), escaped by the exposition writer.
    private static func sample(_ out: inout String, _ name: String, _ values: [String], _ extra: (String, String)?, _ value: String) {
        out += name
        PrometheusText.appendLabels(Array(zip(labelNames, values)), extra, to: &out)
        out += " "
        out += value
        out += "\n"
    }
}

/// Several observers behind one: the built-in metrics plus whatever the caller adds.
struct CombinedObserver: ProxyObserver {
    let observers: [any ProxyObserver]
    func requestFinished(_ record: ProxyRecord) {
        for o in observers { o.requestFinished(record) }
    }
}
