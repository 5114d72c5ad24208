import SextantPipeline

/// Who the proxy stands for (`--workload`, `--namespace`, `--label`, `--mode`).
public struct ProxyIdentity: Sendable, Equatable {
    public enum Mode: String, Sendable { case sidecar, gateway }
    public var workload: String
    public var namespace: String
    public var labels: [String: String]
    public var mode: Mode

    public init(workload: String, namespace: String, labels: [String: String] = [:], mode: Mode = .sidecar) {
        self.workload = workload
        self.namespace = namespace
        self.labels = labels
        self.mode = mode
    }
}

/// An upstream cluster: Envoy's `outbound|<port>|<subset>|<host>`.
public struct ClusterKey: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var subset: String?

    public init(host: String, port: Int, subset: String? = nil) {
        self.host = host
        self.port = port
        self.subset = subset
    }

    /// The name Envoy and Istio use (`%UPSTREAM_CLUSTER%`, `upstream_cluster` span tag).
    public var description: String { "outbound|\(port)|\(subset ?? "")|\(host)" }
}

/// One upstream endpoint of a cluster.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var address: String
    public var port: Int
    public var labels: [String: String]
    public var weight: Int
    public var serviceAccount: String?

    public init(address: String, port: Int, labels: [String: String], weight: Int, serviceAccount: String?) {
        self.address = address
        self.port = port
        self.labels = labels
        self.weight = weight
        self.serviceAccount = serviceAccount
    }

    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// A cluster with its endpoints and the traffic policy that applies to it.
public struct Cluster: Sendable {
    public var key: ClusterKey
    public var endpoints: [Endpoint]
    public var policy: TrafficPolicy
    public var protocolName: ServiceProtocol
    /// Namespace of the `ServiceEntry` that defines the service (Istio's `destination_service_namespace`).
    public var serviceNamespace: String
    /// Short service name (`destination_service_name`).
    public var serviceName: String

    public init(
        key: ClusterKey, endpoints: [Endpoint], policy: TrafficPolicy, protocolName: ServiceProtocol, serviceNamespace: String,
        serviceName: String
    ) {
        self.key = key
        self.endpoints = endpoints
        self.policy = policy
        self.protocolName = protocolName
        self.serviceNamespace = serviceNamespace
        self.serviceName = serviceName
    }
}

/// One compiled `http[]` rule, with its destinations resolved to clusters. A class: built once per
/// table and handed to every request it routes, so passing it on is one reference count, not a copy of
/// the rule's every field.
public final class CompiledRoute: Sendable {
    /// `http[].name`, or `default` as Istio names unnamed routes (`%ROUTE_NAME%`).
    public let name: String
    /// `namespace/name` of the VirtualService, nil for the implicit route to a service.
    public let virtualService: String?
    public let rule: HTTPRoute
    public let destinations: [(cluster: ClusterKey, weight: Int, headers: HeaderOperations)]
    public let mirror: ClusterKey?
    /// The rule changes the request's fields (a URI or authority rewrite, request header operations), so a
    /// proxy cannot send the fields it received as they are: decided once here, not per request.
    public let editsRequest: Bool
    /// For each destination: the response header operations to apply, the rule's followed by the
    /// destination's (merged once here, not per request).
    public let responseOperations: [HeaderOperations.Operations]
    /// For each destination: its own request header operations, nil when it has none (reading an empty
    /// destination's `headers` per request copied six lists).
    public let destinationRequestOperations: [HeaderOperations.Operations?]

    public init(
        name: String, virtualService: String?, rule: HTTPRoute, destinations: [(cluster: ClusterKey, weight: Int, headers: HeaderOperations)],
        mirror: ClusterKey?
    ) {
        self.name = name
        self.virtualService = virtualService
        self.rule = rule
        self.destinations = destinations
        self.mirror = mirror
        editsRequest = rule.rewrite?.uri != nil || rule.rewrite?.authority != nil || !rule.headers.request.isEmpty
        responseOperations = destinations.map { d in
            var ops = rule.headers.response
            ops.set += d.headers.response.set
            ops.add += d.headers.response.add
            ops.remove += d.headers.response.remove
            return ops
        }
        destinationRequestOperations = destinations.map { $0.headers.request.isEmpty ? nil : $0.headers.request }
    }

    /// Picks a destination by weight, as its index in `destinations` (the request path reads the fields it
    /// needs from there instead of copying the whole destination: its cluster key's strings, its header edits'
    /// lists); `random` is uniform in `0..<100` (weights add up to 100) or any value when there is one
    /// destination.
    public func pick(random: Int) -> Int? {
        guard destinations.count > 1 else { return destinations.isEmpty ? nil : 0 }
        var total = 0
        for d in destinations { total += d.weight }
        guard total > 0 else { return 0 }
        var r = random % total
        for i in destinations.indices {
            if r < destinations[i].weight { return i }
            r -= destinations[i].weight
        }
        return destinations.count - 1
    }
}

/// What the proxy knows of a request when it routes it.
public struct RequestHead: Sendable {
    public var authority: String
    /// The path with its query string, as in the request line.
    public var path: String
    public var method: String
    public var scheme: String
    /// Headers as received (any case); repeated names appear several times.
    public var headers: [(name: String, value: String)]
    /// Port the request is addressed to (from the authority, else the listener's).
    public var port: Int
    public var sourceLabels: [String: String]
    public var sourceNamespace: String?
    /// The gateway (`namespace/name`) the request arrived through, nil on a sidecar.
    public var gateway: String?
    /// The verified JWT's claims (`RequestAuthentication`) by path (`groups`, `nested.key`), each with its
    /// values (a list claim has several): what `headers` matches on `@request.auth.claims.<path>` read.
    public var claims: [String: [String]]
    /// `authority`'s host as `HostName.splitAuthority` gives it, when the caller has split it already;
    /// otherwise `RouteTable.route` splits `authority` itself.
    public var host: String?

    public init(
        authority: String, path: String, method: String, scheme: String = "http", headers: [(name: String, value: String)] = [],
        port: Int = 80, sourceLabels: [String: String] = [:], sourceNamespace: String? = nil, gateway: String? = nil,
        claims: [String: [String]] = [:], host: String? = nil
    ) {
        self.claims = claims
        self.host = host
        self.authority = authority
        self.path = path
        self.method = method
        self.scheme = scheme
        self.headers = headers
        self.port = port
        self.sourceLabels = sourceLabels
        self.sourceNamespace = sourceNamespace
        self.gateway = gateway
    }

    /// The first value of header `name` (given in lower case); names compare ASCII case-insensitively,
    /// so callers can pass headers as received without lower-casing every name per request.
    public func header(_ name: String) -> String? {
        headers.first { HostName.equalsIgnoringASCIICase($0.name, lowercased: name) }?.value
    }

    /// The path without the query string.
    public var pathOnly: Substring { path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }

    /// The decoded value of query parameter `name`, if present.
    public func query(_ name: String) -> String? {
        guard let q = path.firstIndex(of: "?") else { return nil }
        for pair in path[path.index(after: q)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if kv.first.map(String.init) == name { return kv.count > 1 ? String(kv[1]) : "" }
        }
        return nil
    }
}

/// The outcome of routing one request.
public enum RouteDecision: Sendable {
    /// No virtual host or no rule matched: 404 with response flag `NR`.
    case noRoute
    case route(CompiledRoute, virtualHost: String)
}

/// The routing table compiled from Istio resources for one proxy: immutable and shared by all
/// connections; a reload builds a new one and swaps it in.
public final class RouteTable: Sendable {
    public let identity: ProxyIdentity
    public let clusters: [ClusterKey: Cluster]
    /// Fully qualified host → service definition.
    let services: [String: ServiceEntry]
    /// Exact host → routes (from VirtualServices), checked before wildcard hosts.
    let exactHosts: [String: [CompiledRoute]]
    let wildcardHosts: [(pattern: String, routes: [CompiledRoute])]
    /// Every name an authority may use for an exact or service host — the host itself and the short
    /// forms `HostName.expansion` expands to it — → what it routes to, built once so routing a request is one
    /// lookup instead of expanding and hashing each candidate.
    let hostIndex: [String: HostTarget]
    /// Fully qualified host → the `tcp[]` rules of its VirtualService.
    let tcpRules: [String: [TCPRoute]]
    /// Gateway mode: the ports of the selected Gateways' servers and the hosts each accepts.
    public let gatewayServers: [(gateway: String, server: Gateway.Server)]
    public let mesh: MeshConfig
    public let telemetry: [TelemetryResource]
    /// The `RequestAuthentication` resources that apply to this proxy.
    public let requestAuthentications: [RequestAuthentication]
    /// Every `PeerAuthentication` (mesh, namespace and workload levels); see `peerAuthenticationMode(port:)`.
    public let peerAuthentications: [PeerAuthentication]
    /// Non-fatal findings (a VirtualService shadowed by another for the same host, ...).
    public let warnings: [String]

    /// The `PeerAuthentication` mode of this workload's inbound side for traffic to workload `port`.
    public func peerAuthenticationMode(port: Int?) -> PeerAuthentication.Mode {
        PeerAuthentication.effectiveMode(peerAuthentications, identity: identity, port: port)
    }

    public init(resources res: IstioResources, identity: ProxyIdentity) {
        self.identity = identity
        self.mesh = res.mesh
        self.telemetry = res.telemetry
        self.requestAuthentications = res.requestAuthentications.filter { $0.applies(to: identity) }
        self.peerAuthentications = res.peerAuthentications
        var warnings: [String] = []

        var services: [String: ServiceEntry] = [:]
        for se in res.serviceEntries {
            for h in se.hosts {
                let fqdn = HostName.qualify(h, namespace: se.meta.namespace)
                if services[fqdn] != nil {
                    warnings.append("host \(fqdn) is defined by several ServiceEntries; using the first")
                } else {
                    services[fqdn] = se
                }
            }
        }
        self.services = services

        // DestinationRule lookup: the proxy's namespace first, then the service's, then any (Istio's order).
        func rule(for host: String) -> DestinationRule? {
            let matching = res.destinationRules.filter { HostName.wildcard(HostName.qualify($0.host, namespace: $0.meta.namespace), matches: host) }
            return matching.first { $0.meta.namespace == identity.namespace && HostName.qualify($0.host, namespace: $0.meta.namespace) == host }
                ?? matching.first { HostName.qualify($0.host, namespace: $0.meta.namespace) == host }
                ?? matching.first
        }

        var clusters: [ClusterKey: Cluster] = [:]
        for (fqdn, se) in services {
            let dr = rule(for: fqdn)
            for port in se.ports {
                var subsets: [(String?, [String: String], TrafficPolicy?)] = [(nil, [:], nil)]
                subsets += (dr?.subsets ?? []).map { ($0.name, $0.labels, $0.trafficPolicy) }
                for (subset, labels, subsetPolicy) in subsets {
                    let key = ClusterKey(host: fqdn, port: port.number, subset: subset)
                    var endpoints: [Endpoint] = se.endpoints
                        .filter { e in labels.allSatisfy { e.labels[$0.key] == $0.value } }
                        .map { e in
                            Endpoint(
                                address: e.address, port: e.ports[port.name] ?? port.targetPort ?? port.number, labels: e.labels,
                                weight: max(e.weight, 1), serviceAccount: e.serviceAccount)
                        }
                    if se.endpoints.isEmpty && (se.resolution == .dns || se.resolution == .dnsRoundRobin || se.resolution == .none) {
                        endpoints = [Endpoint(address: fqdn, port: port.targetPort ?? port.number, labels: [:], weight: 1, serviceAccount: nil)]
                    }
                    let policy = (dr?.trafficPolicy ?? TrafficPolicy()).resolved(port: port.number, subset: subsetPolicy)
                    let shortName = fqdn.hasSuffix(".\(HostName.clusterDomain)") ? String(fqdn.split(separator: ".").first!) : fqdn
                    clusters[key] = Cluster(
                        key: key, endpoints: endpoints, policy: policy, protocolName: port.selectedProtocol,
                        serviceNamespace: se.meta.namespace, serviceName: shortName)
                }
            }
        }

        // Which VirtualServices apply to this proxy.
        var selectedGateways: [(String, Gateway)] = []
        if identity.mode == .gateway {
            for g in res.gateways where g.selector.allSatisfy({ identity.labels[$0.key] == $0.value }) {
                selectedGateways.append(("\(g.meta.namespace)/\(g.meta.name)", g))
            }
        }
        self.gatewayServers = selectedGateways.flatMap { name, g in g.servers.map { (name, $0) } }
        func applies(_ vs: VirtualService) -> Bool {
            let gws = vs.gateways.isEmpty ? ["mesh"] : vs.gateways
            switch identity.mode {
            case .sidecar:
                return gws.contains("mesh")
            case .gateway:
                return gws.contains { gw in
                    let qualified = gw.contains("/") ? gw : "\(vs.meta.namespace)/\(gw)"
                    return selectedGateways.contains { $0.0 == qualified }
                }
            }
        }

        var exact: [String: [CompiledRoute]] = [:]
        var wildcard: [(String, [CompiledRoute])] = []
        var owner: [String: String] = [:]
        var tcp: [String: [TCPRoute]] = [:]
        for vs in res.virtualServices where applies(vs) && !vs.tcp.isEmpty {
            for h in vs.hosts {
                let fqdn = HostName.qualify(h, namespace: vs.meta.namespace)
                if tcp[fqdn] == nil { tcp[fqdn] = vs.tcp }
            }
        }
        self.tcpRules = tcp
        for vs in res.virtualServices where applies(vs) {
            let vsName = "\(vs.meta.namespace)/\(vs.meta.name)"
            let routes = vs.http.map { rule -> CompiledRoute in
                func key(_ d: Destination) -> ClusterKey {
                    let host = HostName.qualify(d.host, namespace: vs.meta.namespace)
                    let port = d.port ?? services[host].flatMap { $0.ports.count == 1 ? $0.ports[0].number : nil } ?? 0
                    return ClusterKey(host: host, port: port, subset: d.subset)
                }
                return CompiledRoute(
                    name: rule.name ?? "default", virtualService: vsName, rule: rule,
                    destinations: rule.route.map { (key($0.destination), $0.weight, $0.headers) },
                    mirror: rule.mirror.map(key))
            }
            for h in vs.hosts {
                let fqdn = HostName.qualify(h, namespace: vs.meta.namespace)
                if let first = owner[fqdn] {
                    warnings.append("VirtualService \(vsName) is shadowed by \(first) for host \(fqdn)")
                    continue
                }
                owner[fqdn] = vsName
                if fqdn.hasPrefix("*") { wildcard.append((fqdn, routes)) } else { exact[fqdn] = routes }
            }
        }
        // Longest wildcard suffix first, so `*.api.example.com` wins over `*.example.com`.
        wildcard.sort { $0.0.count > $1.0.count }
        self.exactHosts = exact
        self.wildcardHosts = wildcard
        self.clusters = clusters
        self.warnings = warnings
        self.hostIndex = Self.hostIndex(exact: exact, services: services, proxyNamespace: identity.namespace)
    }

    /// What a name in `hostIndex` routes to.
    enum HostTarget: Sendable {
        /// A VirtualService host: its `http[]` routes, tried in order.
        case routes(fqdn: String, [CompiledRoute])
        /// A service without a VirtualService: Istio's implicit route to it.
        case service(ImplicitRoutes)
    }

    /// The implicit route to a service with no VirtualService, per request port, built once.
    final class ImplicitRoutes: Sendable {
        /// Each declared port (once) with the route to it and its virtual-host name, in declaration order: a
        /// service declares a few ports, and a scan of them costs less per request than hashing the port.
        let byPort: [(port: Int, route: CompiledRoute, virtualHost: String)]
        /// Any other port: the service's one HTTP port (or its only port), if it has one.
        let fallback: (CompiledRoute, virtualHost: String)?

        init(fqdn: String, service se: ServiceEntry) {
            func route(_ port: Int) -> (CompiledRoute, virtualHost: String) {
                let rule = HTTPRoute(
                    name: "default", match: [], route: [], redirect: nil, directResponse: nil, rewrite: nil, timeout: nil,
                    retries: nil, fault: nil, mirror: nil, mirrorPercentage: nil, corsPolicy: nil, headers: HeaderOperations(),
                    location: nil)
                let key = ClusterKey(host: fqdn, port: port)
                return (CompiledRoute(name: "default", virtualService: nil, rule: rule, destinations: [(key, 100, HeaderOperations())], mirror: nil), "\(fqdn):\(port)")
            }
            var byPort: [(port: Int, route: CompiledRoute, virtualHost: String)] = []
            for p in se.ports where !byPort.contains(where: { $0.port == p.number }) {
                let (r, vh) = route(p.number)
                byPort.append((p.number, r, vh))
            }
            self.byPort = byPort
            let http = se.ports.filter { $0.selectedProtocol.isHTTP || $0.selectedProtocol == .unknown }
            let fallbackPort = http.count == 1 || se.ports.count == 1 ? (http.first ?? se.ports[0]).number : nil
            fallback = byPort.first { $0.port == fallbackPort }.map { ($0.route, $0.virtualHost) }
        }

        func route(port: Int) -> RouteDecision {
            for i in byPort.indices where byPort[i].port == port { return .route(byPort[i].route, virtualHost: byPort[i].virtualHost) }
            guard let (r, vh) = fallback else { return .noRoute }
            return .route(r, virtualHost: vh)
        }
    }

    /// Builds `hostIndex`. A name that is itself a host wins over the same name as a short form, and a
    /// VirtualService host over a service; a short form is indexed under exactly the host
    /// `HostName.expansion` gives it.
    static func hostIndex(exact: [String: [CompiledRoute]], services: [String: ServiceEntry], proxyNamespace: String) -> [String: HostTarget] {
        var index: [String: HostTarget] = [:]
        for (fqdn, se) in services { index[fqdn] = .service(ImplicitRoutes(fqdn: fqdn, service: se)) }
        for (fqdn, routes) in exact { index[fqdn] = .routes(fqdn: fqdn, routes) }
        let literal = index
        for (fqdn, target) in literal {
            for alias in HostName.shortForms(of: fqdn, proxyNamespace: proxyNamespace) where index[alias] == nil {
                index[alias] = target
            }
        }
        return index
    }

    /// Ports on which services speak plain TCP (protocol `TCP`, `TLS`, `MONGO`, `REDIS`, `MYSQL`, or a
    /// port name saying so). Without an authority to route on, a TCP connection is routed by the port it
    /// arrives on, as Istio's per-port outbound listeners do; the proxy listens on each of these ports.
    public var tcpPorts: [Int] {
        var ports = Set<Int>()
        for se in services.values {
            for p in se.ports where !p.selectedProtocol.isHTTP && p.selectedProtocol != .unknown { ports.insert(p.number) }
        }
        return ports.sorted()
    }

    /// Routes a TCP connection that arrived on `port`: the service with a TCP port of that number (the
    /// first by host name if several share it), then the first `tcp[]` rule of its VirtualService whose
    /// `match` holds, else the service itself. Returns weighted destinations.
    public func tcpRoute(port: Int, sourceLabels: [String: String]) -> (service: String, destinations: [(cluster: ClusterKey, weight: Int)])? {
        let candidates = services.filter { _, se in
            se.ports.contains { $0.number == port && !$0.selectedProtocol.isHTTP && $0.selectedProtocol != .unknown }
        }.keys.sorted()
        guard let host = candidates.first else { return nil }
        for rule in tcpRules[host] ?? [] {
            let ok = rule.match.isEmpty || rule.match.contains { m in
                (m.port == nil || m.port == port) && m.sourceLabels.allSatisfy { sourceLabels[$0.key] == $0.value }
            }
            if ok {
                return (host, rule.route.map { d in
                    (ClusterKey(host: HostName.qualify(d.destination.host, namespace: identity.namespace), port: d.destination.port ?? port,
                        subset: d.destination.subset), d.weight)
                })
            }
        }
        return (host, [(ClusterKey(host: host, port: port), 100)])
    }

    /// Whether any rule matches on request headers: when none does, callers can skip collecting them.
    public var matchesOnHeaders: Bool {
        let all = exactHosts.values.flatMap { $0 } + wildcardHosts.flatMap(\.routes)
        return all.contains { r in r.rule.match.contains { !$0.headers.isEmpty || !$0.withoutHeaders.isEmpty } }
    }

    /// The hosts that have routes (VirtualService hosts, exact then wildcard), for `/config_dump`.
    public var hostNames: [String] { exactHosts.keys.sorted() + wildcardHosts.map(\.pattern) }

    /// The service definition for a fully qualified host.
    public func service(_ fqdn: String) -> ServiceEntry? { services[fqdn] }

    /// Resolves a cluster, filling a port-less key (a destination without `port`) from the request port.
    public func cluster(_ key: ClusterKey, requestPort: Int) -> Cluster? {
        if let c = clusters[key] { return c }
        guard key.port == 0 else { return nil }
        return clusters[ClusterKey(host: key.host, port: requestPort, subset: key.subset)]
    }

    /// Routes a request: virtual host by authority (exact, then the shorter forms Istio accepts, then
    /// wildcards), then the first `http[]` rule whose match holds.
    public func route(_ head: RequestHead) -> RouteDecision {
        route(host: head.host ?? HostName.splitAuthority(head.authority).host, port: head.port) { head }
    }

    /// `route(_:)` for a request whose host (split from its authority) and port are known: `head` is made
    /// only when a VirtualService's rules must match it. A service's own route needs neither its path nor
    /// its headers, and making the head cost a proxied request ~1k instructions.
    public func route(host: String, port: Int, head: () -> RequestHead) -> RouteDecision {
        if identity.mode == .gateway && !gatewayAccepts(host) { return .noRoute }
        switch hostIndex[host] {
        case .routes(let fqdn, let routes)?:
            return first(routes, head(), virtualHost: "\(fqdn):\(port)")
        case .service(let implicit)?:
            return implicit.route(port: port)
        case nil:
            break
        }
        for (pattern, routes) in wildcardHosts where HostName.wildcard(pattern, matches: host) {
            return first(routes, head(), virtualHost: "\(pattern):\(port)")
        }
        return .noRoute
    }

    /// Whether a selected `Gateway` server exposes `host` (`hosts` entries may carry a `namespace/` prefix
    /// and be wildcards).
    func gatewayAccepts(_ host: String) -> Bool {
        gatewayServers.contains { _, server in
            server.hosts.contains { entry in
                let pattern = entry.split(separator: "/", maxSplits: 1).last.map { String($0).lowercased() } ?? entry
                return HostName.wildcard(pattern, matches: host)
            }
        }
    }

    private func first(_ routes: [CompiledRoute], _ head: RequestHead, virtualHost: String) -> RouteDecision {
        for r in routes where r.rule.match.isEmpty || r.rule.match.contains(where: { Self.matches($0, head, gatewayMode: identity.mode == .gateway) }) {
            return .route(r, virtualHost: virtualHost)
        }
        return .noRoute
    }

    /// `@request.auth.claims.groups` → `groups`; `@request.auth.claims.[a.b]` (a key holding dots) → `a.b`.
    static func claimPath(_ header: String) -> String? {
        let prefix = "@request.auth.claims."
        guard header.hasPrefix(prefix) else { return nil }
        var path = String(header.dropFirst(prefix.count))
        if path.hasPrefix("[") && path.hasSuffix("]") { path = String(path.dropFirst().dropLast()) }
        return path
    }

    /// `HTTPMatchRequest` semantics: every condition present must hold.
    static func matches(_ m: HTTPMatchRequest, _ head: RequestHead, gatewayMode: Bool) -> Bool {
        if let uri = m.uri, !uri.matches(String(head.pathOnly), ignoreCase: m.ignoreUriCase) { return false }
        if let s = m.scheme, !s.matches(head.scheme) { return false }
        if let s = m.method, !s.matches(head.method) { return false }
        if let s = m.authority, !s.matches(head.authority) { return false }
        if let p = m.port, p != head.port { return false }
        for (name, match) in m.headers {
            if let claim = Self.claimPath(name) {
                // Istio: a list claim matches when any of its items does.
                guard let values = head.claims[claim], values.contains(where: { match.matches($0) }) else { return false }
                continue
            }
            guard let v = head.header(name), match.matches(v) else { return false }
        }
        for (name, match) in m.withoutHeaders {
            if let claim = Self.claimPath(name) {
                if let values = head.claims[claim], values.contains(where: { match.matches($0) }) { return false }
                continue
            }
            if let v = head.header(name), match.matches(v) { return false }
        }
        for (name, match) in m.queryParams {
            guard let v = head.query(name), match.matches(v) else { return false }
        }
        if !m.sourceLabels.allSatisfy({ head.sourceLabels[$0.key] == $0.value }) { return false }
        if let ns = m.sourceNamespace, ns != head.sourceNamespace { return false }
        if !m.gateways.isEmpty {
            let via = head.gateway ?? "mesh"
            let short = via.split(separator: "/").last.map(String.init) ?? via
            if !m.gateways.contains(via) && !m.gateways.contains(short) { return false }
        }
        return true
    }
}
