import SextantPipeline

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `networking.istio.io` `DestinationRule`: subsets and traffic policy for one host.
public struct DestinationRule: Sendable {
    public var meta: ObjectMeta
    public var host: String
    public var trafficPolicy: TrafficPolicy
    public var subsets: [Subset]

    /// `Subset`: endpoints selected by labels, with an optional policy that overrides the rule's.
    public struct Subset: Sendable {
        public var name: String
        public var labels: [String: String]
        public var trafficPolicy: TrafficPolicy?
    }
}

/// `TrafficPolicy`. Absent fields stay `nil` so a subset's policy can be layered over the rule's.
public struct TrafficPolicy: Sendable {
    public var loadBalancer: LoadBalancerSettings?
    public var connectionPool: ConnectionPoolSettings?
    public var outlierDetection: OutlierDetectionSettings?
    public var tls: ClientTLSSettings?
    public var portLevelSettings: [(port: Int, policy: TrafficPolicy)] = []

    public init() {}

    /// The policy for `port`: port-level settings override the top-level ones field by field, and
    /// `subset` overrides both, as Istio merges them.
    public func resolved(port: Int?, subset: TrafficPolicy?) -> TrafficPolicy {
        var out = self
        out.portLevelSettings = []
        if let port, let p = portLevelSettings.first(where: { $0.port == port })?.policy { out.overlay(p) }
        if let subset {
            out.overlay(subset)
            if let port, let p = subset.portLevelSettings.first(where: { $0.port == port })?.policy { out.overlay(p) }
        }
        return out
    }

    private mutating func overlay(_ p: TrafficPolicy) {
        if let v = p.loadBalancer { loadBalancer = v }
        if let v = p.connectionPool { connectionPool = v }
        if let v = p.outlierDetection { outlierDetection = v }
        if let v = p.tls { tls = v }
    }
}

/// `LoadBalancerSettings`: a simple policy or consistent hashing.
public enum LoadBalancerSettings: Sendable, Equatable {
    public enum Simple: String, Sendable, CaseIterable {
        case roundRobin = "ROUND_ROBIN"
        case leastRequest = "LEAST_REQUEST"
        case random = "RANDOM"
        case passthrough = "PASSTHROUGH"
        /// `UNSPECIFIED` and `LEAST_CONN` (its deprecated alias) select Envoy's default.
        case unspecified = "UNSPECIFIED"
        case leastConn = "LEAST_CONN"
    }

    /// What a consistent-hash policy hashes.
    public enum HashKey: Sendable, Equatable {
        case header(String)
        case cookie(name: String, path: String?, ttl: Duration?)
        case sourceIP
        case queryParameter(String)
    }

    case simple(Simple)
    /// Ring hash (`ringHash.minimumRingSize`, default 1024 as in Envoy).
    case consistentHash(HashKey, minimumRingSize: Int)
}

/// `ConnectionPoolSettings` (tcp + http). Absent limits are Envoy's defaults (effectively unlimited).
public struct ConnectionPoolSettings: Sendable, Equatable {
    public var maxConnections: Int?
    public var connectTimeout: Duration?
    public var http1MaxPendingRequests: Int?
    public var http2MaxRequests: Int?
    public var maxRequestsPerConnection: Int?
    public var maxRetries: Int?
    public var idleTimeout: Duration?
    public init() {}
}

/// `OutlierDetection`, with Istio's defaults for fields left out.
public struct OutlierDetectionSettings: Sendable, Equatable {
    public var consecutive5xxErrors: Int? = 5
    public var consecutiveGatewayErrors: Int?
    public var interval: Duration = .seconds(10)
    public var baseEjectionTime: Duration = .seconds(30)
    public var maxEjectionPercent: Int = 10
    public var minHealthPercent: Int = 0
    public init() {}
}

/// `ClientTLSSettings`: how the client side's proxy secures connections to the destination.
///
/// `SIMPLE` and `MUTUAL` originate TLS to the upstream (Istio's TLS origination) with the files named
/// here; `ISTIO_MUTUAL` uses the proxy's own mesh certificate. Certificates come from file paths only:
/// `credentialName` (a Kubernetes secret) is a config error.
public struct ClientTLSSettings: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case disable = "DISABLE"
        /// TLS to the upstream, its certificate verified against `caCertificates` (else the system roots).
        case simple = "SIMPLE"
        /// Mutual TLS with `clientCertificate` + `privateKey` (required) presented to the upstream.
        case mutual = "MUTUAL"
        /// Mutual TLS with the proxy's own mesh certificate (`--cert`, `--key`, `--ca`): proxy to proxy.
        case istioMutual = "ISTIO_MUTUAL"
    }

    public var mode: Mode
    /// SNI sent in the ClientHello (Istio's default for ISTIO_MUTUAL: `outbound_.<port>_.<subset>_.<host>`).
    public var sni: String?
    /// Identities (URI SANs, e.g. SPIFFE IDs) the server's certificate must present one of; empty accepts
    /// any identity of the mesh's trust domain.
    public var subjectAltNames: [String]
    /// SIMPLE/MUTUAL: PEM bundle that verifies the upstream's certificate; the system roots when nil.
    public var caCertificates: String?
    /// MUTUAL: the PEM certificate chain presented to the upstream.
    public var clientCertificate: String?
    /// MUTUAL: the PEM private key of `clientCertificate` (a path; the key itself is read when connecting).
    public var privateKey: String?
    /// SIMPLE/MUTUAL: encrypt but accept any upstream certificate (no chain or name check).
    public var insecureSkipVerify = false

    public init(mode: Mode, sni: String? = nil, subjectAltNames: [String] = []) {
        self.mode = mode
        self.sni = sni
        self.subjectAltNames = subjectAltNames
    }

    /// TLS the proxy originates with files of its own (`SIMPLE`, `MUTUAL`), as opposed to mesh mTLS.
    public var isOrigination: Bool { mode == .simple || mode == .mutual }
}

// MARK: - Parsing

extension DestinationRule {
    static func parse(_ spec: inout ConfigReader, meta: ObjectMeta) -> DestinationRule {
        let host = spec.string("host", default: "")
        if host.isEmpty { spec.error(nil, "DestinationRule \(meta.name): spec.host is required") }
        let policy = spec.optionalSection("trafficPolicy").map { s in
            var s = s
            return TrafficPolicy.parse(&s)
        } ?? TrafficPolicy()
        var seen = Set<String>()
        let subsets = spec.sectionList("subsets").map { s -> Subset in
            var s = s
            let name = s.string("name", default: "")
            if name.isEmpty { s.error(nil, "\(s.path): subset name is required") }
            if !seen.insert(name).inserted { s.error("name", "\(s.path): duplicate subset '\(name)'") }
            let labels = s.labels("labels")
            let p = s.optionalSection("trafficPolicy").map { t in
                var t = t
                return TrafficPolicy.parse(&t)
            }
            s.finish()
            return Subset(name: name, labels: labels, trafficPolicy: p)
        }
        _ = spec.stringList("exportTo")
        _ = spec.raw("workloadSelector")
        spec.finish()
        return DestinationRule(meta: meta, host: host, trafficPolicy: policy, subsets: subsets)
    }
}

extension TrafficPolicy {
    static func parse(_ r: inout ConfigReader) -> TrafficPolicy {
        var p = TrafficPolicy()
        if var s = r.optionalSection("loadBalancer") { p.loadBalancer = LoadBalancerSettings.parse(&s) }
        if var s = r.optionalSection("connectionPool") { p.connectionPool = ConnectionPoolSettings.parse(&s) }
        if var s = r.optionalSection("outlierDetection") { p.outlierDetection = OutlierDetectionSettings.parse(&s) }
        if var s = r.optionalSection("tls") { p.tls = ClientTLSSettings.parse(&s) }
        p.portLevelSettings = r.sectionList("portLevelSettings").compactMap { s in
            var s = s
            guard let port = s.portSelector("port") else {
                s.error(nil, "\(s.path): port is required")
                return nil
            }
            let inner = TrafficPolicy.parse(&s)
            return (port, inner)
        }
        for k in ["tunnel", "proxyProtocol", "retryBudget"] where r.has(k) {
            r.warning(k, "trafficPolicy.\(k) is not supported by sextant proxy; ignored")
        }
        r.finish()
        return p
    }
}

extension ClientTLSSettings {
    static func parse(_ s: inout ConfigReader) -> ClientTLSSettings {
        let raw = s.choice("mode", Mode.allCases.map(\.rawValue), default: "DISABLE")
        var t = ClientTLSSettings(mode: Mode(rawValue: raw) ?? .disable, sni: s.optionalString("sni"), subjectAltNames: s.stringList("subjectAltNames"))
        t.caCertificates = s.optionalString("caCertificates").flatMap { $0.isEmpty ? nil : $0 }
        t.clientCertificate = s.optionalString("clientCertificate").flatMap { $0.isEmpty ? nil : $0 }
        t.privateKey = s.optionalString("privateKey").flatMap { $0.isEmpty ? nil : $0 }
        t.insecureSkipVerify = s.bool("insecureSkipVerify", default: false)
        if let name = s.optionalString("credentialName"), !name.isEmpty {
            s.error(
                "credentialName",
                "\(s.qualified("credentialName")) is not supported: needs Kubernetes secrets; use file paths (caCertificates, clientCertificate, privateKey)")
        }
        if s.has("caCrl") { s.warning("caCrl", "\(s.qualified("caCrl")) is not supported by sextant proxy; revocation is not checked") }
        switch t.mode {
        case .mutual:
            for (key, value) in [("clientCertificate", t.clientCertificate), ("privateKey", t.privateKey)] where value == nil {
                s.error(nil, "\(s.path): mode MUTUAL requires \(key) (a PEM file path)")
            }
        case .simple:
            for key in ["clientCertificate", "privateKey"] where s.has(key) {
                s.warning(key, "\(s.qualified(key)) is ignored in mode SIMPLE (use MUTUAL to present a client certificate)")
            }
        case .istioMutual, .disable:
            for key in ["caCertificates", "clientCertificate", "privateKey", "insecureSkipVerify"] where s.has(key) {
                s.warning(key, "\(s.qualified(key)) is ignored in mode \(raw) (it applies to SIMPLE and MUTUAL)")
            }
        }
        if t.isOrigination {
            // Checked now so that a wrong path is reported at its line; the files are read when connecting.
            for (key, path) in [("caCertificates", t.caCertificates), ("clientCertificate", t.clientCertificate), ("privateKey", t.privateKey)] {
                guard let path else { continue }
                if access(path, R_OK) != 0 {
                    s.error(key, "\(s.qualified(key)): cannot read '\(path)': \(String(cString: strerror(errno)))")
                }
            }
        }
        s.finish()
        return t
    }
}

extension LoadBalancerSettings {
    static func parse(_ r: inout ConfigReader) -> LoadBalancerSettings {
        var result = LoadBalancerSettings.simple(.unspecified)
        if let s = r.optionalString("simple") {
            if let v = Simple(rawValue: s) {
                result = .simple(v)
            } else {
                r.error("simple", "\(r.qualified("simple")): '\(s)' is not one of \(Simple.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if var c = r.optionalSection("consistentHash") {
            var keys: [HashKey] = []
            if let h = c.optionalString("httpHeaderName") { keys.append(.header(h.lowercased())) }
            if var k = c.optionalSection("httpCookie") {
                let name = k.string("name", default: "")
                if name.isEmpty { k.error(nil, "\(k.path): name is required") }
                keys.append(.cookie(name: name, path: k.optionalString("path"), ttl: k.protoDuration("ttl")))
                k.finish()
            }
            if c.bool("useSourceIp", default: false) { keys.append(.sourceIP) }
            if let q = c.optionalString("httpQueryParameterName") { keys.append(.queryParameter(q)) }
            var ringSize = c.int("minimumRingSize", default: 1024, min: 1)
            if var ring = c.optionalSection("ringHash") {
                ringSize = ring.int("minimumRingSize", default: ringSize, min: 1)
                ring.finish()
            }
            if c.has("maglev") { c.warning("maglev", "consistentHash.maglev is served by the ring hash") }
            c.finish()
            if keys.count != 1 {
                c.error(nil, "\(c.path): set exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName")
            } else {
                if r.has("simple") { r.error("consistentHash", "\(r.path): set only one of simple or consistentHash") }
                result = .consistentHash(keys[0], minimumRingSize: min(ringSize, 1 << 16))
            }
        }
        for k in ["localityLbSetting", "warmupDurationSecs", "warmup"] where r.has(k) {
            r.warning(k, "loadBalancer.\(k) is not supported by sextant proxy; ignored")
        }
        r.finish()
        return result
    }
}

extension ConnectionPoolSettings {
    static func parse(_ r: inout ConfigReader) -> ConnectionPoolSettings {
        var c = ConnectionPoolSettings()
        if var t = r.optionalSection("tcp") {
            if t.has("maxConnections") { c.maxConnections = t.int("maxConnections", default: 0, min: 1) }
            c.connectTimeout = t.protoDuration("connectTimeout")
            _ = t.raw("tcpKeepalive")
            _ = t.raw("maxConnectionDuration")
            _ = t.raw("idleTimeout")
            t.finish()
        }
        if var h = r.optionalSection("http") {
            if h.has("http1MaxPendingRequests") { c.http1MaxPendingRequests = h.int("http1MaxPendingRequests", default: 0, min: 1) }
            if h.has("http2MaxRequests") { c.http2MaxRequests = h.int("http2MaxRequests", default: 0, min: 1) }
            if h.has("maxRequestsPerConnection") {
                let v = h.int("maxRequestsPerConnection", default: 0, min: 0)
                c.maxRequestsPerConnection = v == 0 ? nil : v
            }
            if h.has("maxRetries") { c.maxRetries = h.int("maxRetries", default: 0, min: 0) }
            c.idleTimeout = h.protoDuration("idleTimeout")
            for k in ["h2UpgradePolicy", "useClientProtocol", "maxConcurrentStreams"] { _ = h.raw(k) }
            h.finish()
        }
        r.finish()
        return c
    }
}

extension OutlierDetectionSettings {
    static func parse(_ r: inout ConfigReader) -> OutlierDetectionSettings {
        var o = OutlierDetectionSettings()
        if r.has("consecutive5xxErrors") {
            let v = r.int("consecutive5xxErrors", default: 5, min: 0)
            o.consecutive5xxErrors = v == 0 ? nil : v
        } else if r.has("consecutiveErrors") {
            o.consecutive5xxErrors = r.int("consecutiveErrors", default: 5, min: 0)
        }
        if r.has("consecutiveGatewayErrors") {
            let v = r.int("consecutiveGatewayErrors", default: 0, min: 0)
            o.consecutiveGatewayErrors = v == 0 ? nil : v
        }
        o.interval = r.duration("interval", default: o.interval, allowZero: false)
        o.baseEjectionTime = r.duration("baseEjectionTime", default: o.baseEjectionTime, allowZero: false)
        o.maxEjectionPercent = r.int("maxEjectionPercent", default: o.maxEjectionPercent, min: 0, max: 100)
        o.minHealthPercent = r.int("minHealthPercent", default: 0, min: 0, max: 100)
        _ = r.raw("splitExternalLocalOriginErrors")
        _ = r.raw("consecutiveLocalOriginFailures")
        r.finish()
        return o
    }
}
