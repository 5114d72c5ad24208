import NIOCore
import SextantIstio
import Synchronization

/// Per-endpoint counters shared by every event loop.
final class EndpointState: Sendable {
    let endpoint: Endpoint
    /// Requests in flight to this endpoint (for `LEAST_REQUEST`).
    let active = Atomic<Int>(0)
    /// "address:port" (`%UPSTREAM_HOST%`).
    let key: String
    /// The key of the connection pools: mesh-mTLS connections are never handed to plain-text users of the
    /// same address, or the other way round.
    let poolKey: String
    /// How connections to this endpoint are secured: the cluster's `ISTIO_MUTUAL` settings, or Istio's
    /// auto mTLS (no tls setting, a sidecar-labelled endpoint); nil for plain text.
    let meshTLS: ClientTLSSettings?
    /// `meshTLS` comes from auto mTLS: plain text when the proxy has no mesh certificate.
    let isAutoMTLS: Bool
    /// TLS origination (`SIMPLE`/`MUTUAL`) with the cluster's files, shared by its endpoints.
    let origination: OriginationTLS?

    /// The label Istio puts on endpoints that have a sidecar.
    static let tlsModeLabel = "security.istio.io/tlsMode"

    init(_ endpoint: Endpoint, policy: ClientTLSSettings?, autoMTLS: Bool, origination: OriginationTLS? = nil, clusterName: String = "") {
        self.endpoint = endpoint
        self.key = endpoint.description
        self.origination = policy?.isOrigination == true ? origination : nil
        if let policy {
            meshTLS = policy.mode == .istioMutual ? policy : nil
            isAutoMTLS = false
        } else if autoMTLS && endpoint.labels[Self.tlsModeLabel] == "istio" {
            meshTLS = ClientTLSSettings(mode: .istioMutual)
            isAutoMTLS = true
        } else {
            meshTLS = nil
            isAutoMTLS = false
        }
        // Originated TLS is pooled per cluster: two rules may trust different CAs for one address.
        self.poolKey = meshTLS != nil ? key + "|mtls" : self.origination != nil ? key + "|tls|" + clusterName : key
    }
}

/// Outlier detection state of a cluster behind a lock (updated from every event loop).
final class OutlierBox: Sendable {
    let detector: Mutex<OutlierDetector>
    init(_ d: OutlierDetector) { detector = Mutex(d) }
}

/// A cluster as the data plane uses it: endpoints, load balancer, circuit-breaker counters and
/// outlier detection. Built with each route table; shared by all connections until the next reload.
final class ClusterRuntime: Sendable {
    let cluster: Cluster
    let endpoints: [EndpointState]
    let policy: LoadBalancerSettings
    let ring: RingHash?
    let outlier: OutlierBox?
    let roundRobin = Atomic<Int>(0)
    /// Open upstream connections of this cluster (`tcp.maxConnections`).
    let connections = Atomic<Int>(0)
    /// Requests waiting for a connection (`http.http1MaxPendingRequests`).
    let pending = Atomic<Int>(0)
    /// Requests in flight (`http.http2MaxRequests`, which Envoy applies to HTTP/1.1 too).
    let activeRequests = Atomic<Int>(0)

    let maxConnections: Int
    let maxPending: Int
    let maxRequests: Int
    let maxRequestsPerConnection: Int?
    let connectTimeout: Duration
    /// `connectionPool.http.idleTimeout` as NIO's `TimeAmount`, converted once: the pool compares it on every
    /// reuse.
    let idleTimeout: TimeAmount

    /// Envoy's cluster name (`outbound|9080|v1|reviews.default.svc.cluster.local`, `inbound|9080||`).
    let name: String
    /// The span name of an outbound request routed here (`<host>:<port>/*`, `SpanBuilder`), made once.
    let outboundSpanName: String?
    /// A record's names for a request routed here (`ProxyRecord.destination`): the cluster, the span name and
    /// the destination service's.
    let outboundDestination: ProxyRecord.Destination
    /// A record's names for a request an inbound listener sends to its app through this cluster: the cluster's.
    let inboundDestination: ProxyRecord.Destination

    init(_ cluster: Cluster, name: String? = nil, autoMTLS: Bool = false) {
        self.cluster = cluster
        self.name = name ?? cluster.key.description
        outboundSpanName = SpanBuilder.clusterPort(self.name).map { SpanBuilder.name(cluster.key.host, $0) }
        outboundDestination = ProxyRecord.Destination(
            upstreamCluster: self.name, spanName: outboundSpanName, service: cluster.key.host, serviceName: cluster.serviceName,
            serviceNamespace: cluster.serviceNamespace)
        inboundDestination = ProxyRecord.Destination(upstreamCluster: self.name)
        let tls = cluster.policy.tls
        let origination = tls.flatMap { $0.isOrigination ? OriginationTLS($0, host: cluster.key.host) : nil }
        let clusterName = name ?? cluster.key.description
        self.endpoints = cluster.endpoints.map {
            EndpointState($0, policy: tls, autoMTLS: autoMTLS, origination: origination, clusterName: clusterName)
        }
        let lb = cluster.policy.loadBalancer ?? .simple(.unspecified)
        self.policy = lb
        if case .consistentHash(_, let size) = lb {
            ring = RingHash(endpoints: cluster.endpoints.map { ($0.description, $0.weight) }, minimumRingSize: size)
        } else {
            ring = nil
        }
        outlier = cluster.policy.outlierDetection.map { OutlierBox(OutlierDetector(settings: $0, endpointCount: cluster.endpoints.count)) }
        let pool = cluster.policy.connectionPool
        // Istio leaves Envoy's circuit breakers effectively unlimited unless a DestinationRule sets them.
        maxConnections = pool?.maxConnections ?? Int(UInt32.max)
        maxPending = pool?.http1MaxPendingRequests ?? Int(UInt32.max)
        maxRequests = pool?.http2MaxRequests ?? Int(UInt32.max)
        maxRequestsPerConnection = pool?.maxRequestsPerConnection
        connectTimeout = pool?.connectTimeout ?? .seconds(10)
        idleTimeout = (pool?.idleTimeout ?? .seconds(3600)).timeAmount
    }

    /// Chooses an endpoint: ejected endpoints and those already tried by this request are avoided
    /// (Istio's retry "on other hosts"), unless nothing else is left. Up to 64 endpoints (nearly every
    /// cluster) the candidates are a bit mask, so picking allocates nothing; larger clusters list them.
    /// `now` is read only when outlier detection is configured.
    func pick(
        hash: UInt64?, tried: EndpointSet, now: @autoclosure () -> ContinuousClock.Instant, random: inout some RandomNumberGenerator
    ) -> Int? {
        let n = endpoints.count
        guard n > 0 else { return nil }
        if n <= 64 {
            var healthy: UInt64 = n == 64 ? ~0 : (1 << UInt64(n)) - 1
            if let outlier {
                let now = now()
                outlier.detector.withLock { d in
                    for i in 0..<n where !d.isAvailable(i, now: now) { healthy &= ~(1 << UInt64(i)) }
                }
            }
            var mask = healthy & ~tried.low
            if mask == 0 { mask = healthy }
            guard mask != 0 else { return nil }
            let usable = mask
            return choose(
                count: usable.nonzeroBitCount, hash: hash, random: &random,
                nth: { k in
                    var m = usable
                    for _ in 0..<k { m &= m - 1 }
                    return m.trailingZeroBitCount
                },
                isUsable: { $0 < 64 && usable & (1 << UInt64($0)) != 0 })
        }
        var healthy = [Bool](repeating: true, count: n)
        if let outlier {
            let now = now()
            outlier.detector.withLock { d in
                for i in healthy.indices { healthy[i] = d.isAvailable(i, now: now) }
            }
        }
        var usable = healthy.indices.filter { healthy[$0] && !tried.contains($0) }
        let allTried = usable.isEmpty
        if allTried { usable = healthy.indices.filter { healthy[$0] } }
        guard !usable.isEmpty else { return nil }
        return choose(
            count: usable.count, hash: hash, random: &random, nth: { usable[$0] },
            isUsable: { healthy[$0] && (allTried || !tried.contains($0)) })
    }

    /// The load-balancing policy's choice among `count` usable endpoints, the `k`-th of which (in index
    /// order) is `nth(k)`.
    @inline(__always)
    private func choose(
        count: Int, hash: UInt64?, random: inout some RandomNumberGenerator, nth: (Int) -> Int, isUsable: (Int) -> Bool
    ) -> Int? {
        switch policy {
        case .consistentHash:
            return ring?.endpoint(for: hash ?? random.next(), usable: isUsable)
        case .simple(.random):
            return nth(Int.random(in: 0..<count, using: &random))
        case .simple(.roundRobin), .simple(.passthrough):
            let r = roundRobin.wrappingAdd(1, ordering: .relaxed).oldValue
            return nth(Int(UInt(bitPattern: r) % UInt(count)))
        case .simple(.leastRequest), .simple(.leastConn), .simple(.unspecified):
            // Envoy's LEAST_REQUEST with equal weights: the better of two random choices.
            guard count > 1 else { return nth(0) }
            let ka = Int.random(in: 0..<count, using: &random)
            var kb = Int.random(in: 0..<count, using: &random)
            if ka == kb { kb = (ka + 1) % count }
            let a = nth(ka)
            let b = nth(kb)
            return endpoints[a].active.load(ordering: .relaxed) <= endpoints[b].active.load(ordering: .relaxed) ? a : b
        }
    }

    /// Feeds outlier detection: an HTTP status, or nil for a connect failure / reset.
    /// `now` is read only when outlier detection is configured.
    func record(endpoint: Int, status: Int?, now: @autoclosure () -> ContinuousClock.Instant) {
        guard let outlier else { return }
        let now = now()
        outlier.detector.withLock { _ = $0.record(endpoint, status: status, now: now) }
    }

    /// Ejections so far (for `/config_dump` and tests).
    var ejections: Int { outlier?.detector.withLock { $0.ejections } ?? 0 }

    /// Takes a circuit-breaker slot if one is free.
    static func tryIncrement(_ counter: borrowing Atomic<Int>, limit: Int) -> Bool {
        while true {
            let current = counter.load(ordering: .relaxed)
            if current >= limit { return false }
            if counter.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged { return true }
        }
    }
}

/// One consistent view of the configuration: the route table and its clusters. Swapped whole on reload;
/// in-flight requests finish with the snapshot they started with.
final class ProxySnapshot: Sendable {
    let table: RouteTable
    let clusters: [ClusterKey: ClusterRuntime]
    let version: Int
    /// Computed once per configuration: routing needs the request headers only if a rule matches on them.
    let routingNeedsHeaders: Bool

    /// `RequestAuthentication` checks in force, nil when none applies.
    let jwt: JWTAuthenticator?

    init(table: RouteTable, version: Int, jwt: JWTAuthenticator? = nil) {
        self.table = table
        self.version = version
        self.jwt = jwt
        self.routingNeedsHeaders = table.matchesOnHeaders
        var c: [ClusterKey: ClusterRuntime] = [:]
        for (k, v) in table.clusters { c[k] = ClusterRuntime(v, autoMTLS: table.mesh.enableAutoMtls) }
        clusters = c
    }

    func cluster(_ key: ClusterKey, requestPort: Int) -> ClusterRuntime? {
        if let c = clusters[key] { return c }
        guard key.port == 0 else { return nil }
        return clusters[ClusterKey(host: key.host, port: requestPort, subset: key.subset)]
    }
}

/// Endpoint indices a request has tried: a bit each for the first 64, a set beyond. Allocates nothing for
/// the clusters nearly every request goes to.
struct EndpointSet: Sendable, ExpressibleByArrayLiteral {
    /// Indices 0..<64.
    private(set) var low: UInt64 = 0
    private var high: Set<Int> = []

    init() {}
    init(arrayLiteral elements: Int...) { for e in elements { insert(e) } }

    func contains(_ i: Int) -> Bool { i < 64 ? low & (1 << UInt64(i)) != 0 : high.contains(i) }

    mutating func insert(_ i: Int) {
        if i < 64 { low |= 1 << UInt64(i) } else { high.insert(i) }
    }
}
