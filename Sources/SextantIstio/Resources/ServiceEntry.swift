import SextantPipeline

/// The Kubernetes object metadata we use; everything else `kubectl get -o yaml` prints is accepted.
public struct ObjectMeta: Sendable {
    public var name: String
    /// `default` when absent, as `kubectl apply` would place it.
    public var namespace: String
    public var labels: [String: String]
    /// Where the resource was defined, for messages and `/config_dump`.
    public var location: SourceLocation
}

/// `networking.istio.io` `ServiceEntry`: a service (hosts + ports) and its endpoints.
public struct ServiceEntry: Sendable {
    public var meta: ObjectMeta
    public var hosts: [String]
    public var addresses: [String]
    public var ports: [ServicePort]
    public var location: Location
    public var resolution: Resolution
    public var endpoints: [WorkloadEntry]

    public enum Location: String, Sendable {
        case meshExternal = "MESH_EXTERNAL"
        case meshInternal = "MESH_INTERNAL"
    }

    public enum Resolution: String, Sendable, CaseIterable {
        case none = "NONE"
        case staticAddress = "STATIC"
        case dns = "DNS"
        case dnsRoundRobin = "DNS_ROUND_ROBIN"
    }
}

/// `ServicePort`. The protocol decides how the proxy treats the port (Istio's protocol selection).
public struct ServicePort: Sendable, Hashable {
    public var number: Int
    public var name: String
    public var protocolName: String?
    public var targetPort: Int?

    public init(number: Int, name: String, protocolName: String? = nil, targetPort: Int? = nil) {
        self.number = number
        self.name = name
        self.protocolName = protocolName
        self.targetPort = targetPort
    }

    /// Istio's protocol selection: the explicit `protocol`, else the port name's prefix
    /// (`<protocol>[-<suffix>]`), else unknown (the proxy sniffs).
    public var selectedProtocol: ServiceProtocol {
        if let p = protocolName, let v = ServiceProtocol(istioName: p) { return v }
        let prefix = name.split(separator: "-", maxSplits: 1).first.map(String.init) ?? name
        return ServiceProtocol(istioName: prefix) ?? .unknown
    }
}

/// The protocols Istio distinguishes for routing.
public enum ServiceProtocol: String, Sendable {
    case http = "HTTP"
    case http2 = "HTTP2"
    case grpc = "GRPC"
    case tcp = "TCP"
    case tls = "TLS"
    case https = "HTTPS"
    case mongo = "MONGO"
    case redis = "REDIS"
    case mysql = "MYSQL"
    case unknown = "UNKNOWN"

    /// Case-insensitive, as Istio reads port names (`grpc-web` counts as gRPC-Web → HTTP).
    public init?(istioName: String) {
        switch istioName.uppercased() {
        case "HTTP": self = .http
        case "HTTP2", "H2C": self = .http2
        case "GRPC": self = .grpc
        case "GRPC-WEB": self = .http
        case "TCP": self = .tcp
        case "TLS": self = .tls
        case "HTTPS": self = .https
        case "MONGO": self = .mongo
        case "REDIS": self = .redis
        case "MYSQL": self = .mysql
        default: return nil
        }
    }

    /// Whether the proxy routes requests on it (HTTP/1.1, HTTP/2, gRPC) rather than bytes.
    public var isHTTP: Bool { self == .http || self == .http2 || self == .grpc }
}

/// `WorkloadEntry` as used inline in `ServiceEntry.endpoints`.
public struct WorkloadEntry: Sendable, Hashable {
    public var address: String
    /// Port name → port number on this endpoint (e.g. its sidecar's inbound listener).
    public var ports: [String: Int]
    public var labels: [String: String]
    public var weight: Int
    public var serviceAccount: String?
    public var locality: String?
    public var network: String?
}

// MARK: - Parsing

extension ServiceEntry {
    static func parse(_ spec: inout ConfigReader, meta: ObjectMeta) -> ServiceEntry {
        let hosts = spec.stringList("hosts")
        if hosts.isEmpty { spec.error(nil, "ServiceEntry \(meta.name): spec.hosts must list at least one host") }
        let addresses = spec.stringList("addresses")
        var seenNumbers = Set<Int>()
        let ports = spec.sectionList("ports").compactMap { p -> ServicePort? in
            var p = p
            let numberGiven = p.has("number")
            let number = p.int("number", default: 0, min: 1, max: 65535)
            let name = p.string("name", default: "")
            let proto = p.optionalString("protocol")
            let target = p.has("targetPort") ? p.int("targetPort", default: 0, min: 1, max: 65535) : nil
            p.finish()
            if !numberGiven { p.error(nil, "\(p.path): number is required") }
            if name.isEmpty { p.error(nil, "\(p.path): name is required") }
            if let proto, ServiceProtocol(istioName: proto) == nil {
                p.error("protocol", "\(p.qualified("protocol")): unknown protocol '\(proto)'")
            }
            if !seenNumbers.insert(number).inserted { p.error("number", "\(p.path): duplicate port \(number)") }
            return number == 0 ? nil : ServicePort(number: number, name: name, protocolName: proto, targetPort: target)
        }
        if ports.isEmpty { spec.error("ports", "ServiceEntry \(meta.name): spec.ports must list at least one port") }
        let location = ServiceEntry.Location(rawValue: spec.choice("location", ["MESH_EXTERNAL", "MESH_INTERNAL"], default: "MESH_EXTERNAL"))!
        let resolution = ServiceEntry.Resolution(
            rawValue: spec.choice("resolution", Resolution.allCases.map(\.rawValue), default: "NONE"))!
        let portNames = Set(ports.map(\.name))
        let endpoints = spec.sectionList("endpoints").map { e -> WorkloadEntry in
            var e = e
            let address = e.string("address", default: "")
            if address.isEmpty { e.error(nil, "\(e.path): address is required") }
            var endpointPorts: [String: Int] = [:]
            for (name, value) in e.stringMap("ports") {
                if let n = Int(value), (1...65535).contains(n) {
                    endpointPorts[name] = n
                } else {
                    e.error("ports", "\(e.qualified("ports"))::\(name) must be a port number, found '\(value)'")
                }
                if !portNames.contains(name) {
                    e.error("ports", "\(e.qualified("ports")): '\(name)' is not the name of a port of this ServiceEntry")
                }
            }
            let w = WorkloadEntry(
                address: address, ports: endpointPorts, labels: e.labels("labels"),
                weight: e.int("weight", default: 1, min: 0), serviceAccount: e.optionalString("serviceAccount"),
                locality: e.optionalString("locality"), network: e.optionalString("network"))
            e.finish()
            return w
        }
        if resolution == .staticAddress && endpoints.isEmpty && !spec.has("workloadSelector") {
            spec.error("resolution", "ServiceEntry \(meta.name): resolution STATIC needs endpoints")
        }
        if resolution == .staticAddress {
            for (i, e) in endpoints.enumerated() where !IPAddressText.isIP(e.address) && !e.address.hasPrefix("unix://") {
                spec.error("endpoints", "ServiceEntry \(meta.name): endpoints[\(i)].address '\(e.address)' must be an IP address with resolution STATIC")
            }
        }
        _ = spec.stringList("exportTo")
        _ = spec.stringList("subjectAltNames")
        if spec.has("workloadSelector") {
            spec.warning("workloadSelector", "ServiceEntry \(meta.name): workloadSelector needs WorkloadEntry resources, which sextant proxy does not read; ignored")
        }
        spec.finish()
        return ServiceEntry(
            meta: meta, hosts: hosts, addresses: addresses, ports: ports, location: location, resolution: resolution,
            endpoints: endpoints)
    }
}

/// `networking.istio.io` `Gateway`: the listeners of a gateway proxy and the hosts each exposes.
public struct Gateway: Sendable {
    public struct Server: Sendable {
        public var port: ServicePort
        public var hosts: [String]
        public var name: String?
    }
    public var meta: ObjectMeta
    public var selector: [String: String]
    public var servers: [Server]

    static func parse(_ spec: inout ConfigReader, meta: ObjectMeta) -> Gateway {
        let selector = spec.labels("selector")
        let servers = spec.sectionList("servers").compactMap { s -> Server? in
            var s = s
            var p = s.section("port")
            let number = p.int("number", default: 0, min: 1, max: 65535)
            let port = ServicePort(
                number: number, name: p.string("name", default: ""), protocolName: p.optionalString("protocol"),
                targetPort: p.has("targetPort") ? p.int("targetPort", default: 0, min: 1, max: 65535) : nil)
            p.finish()
            if number == 0 { s.error("port", "\(s.path): port.number is required") }
            let hosts = s.stringList("hosts")
            if hosts.isEmpty { s.error(nil, "\(s.path): hosts must list at least one host") }
            if s.has("tls") { s.warning("tls", "\(s.path): gateway TLS termination is not supported yet; ignored") }
            _ = s.optionalString("bind")
            _ = s.optionalString("defaultEndpoint")
            let name = s.optionalString("name")
            s.finish()
            return number == 0 ? nil : Server(port: port, hosts: hosts, name: name)
        }
        if servers.isEmpty { spec.error("servers", "Gateway \(meta.name): spec.servers must list at least one server") }
        spec.finish()
        return Gateway(meta: meta, selector: selector, servers: servers)
    }
}

/// Minimal textual IP checks for config validation (no resolution, no allocation of addresses).
enum IPAddressText {
    static func isIP(_ s: String) -> Bool { isIPv4(s) || isIPv6(s) }

    static func isIPv4(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in
            !p.isEmpty && p.count <= 3 && p.allSatisfy(\.isASCII) && p.allSatisfy(\.isNumber) && Int(p)! <= 255
        }
    }

    static func isIPv6(_ s: String) -> Bool {
        guard s.contains(":") else { return false }
        return s.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && s.split(separator: ":", omittingEmptySubsequences: false).count <= 8
    }
}
