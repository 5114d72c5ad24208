import SextantModel
import SextantPipeline

/// `networking.istio.io` `VirtualService`: routing rules for a set of hosts.
public struct VirtualService: Sendable {
    public var meta: ObjectMeta
    /// Hosts as written (short names are qualified against `meta.namespace` by the route table).
    public var hosts: [String]
    /// Gateways the rules apply to; empty means `mesh` (sidecars only).
    public var gateways: [String]
    public var http: [HTTPRoute]
    public var tcp: [TCPRoute]
}

/// One `http[]` rule of a `VirtualService`; the first rule whose `match` (any of) succeeds wins.
public struct HTTPRoute: Sendable {
    public var name: String?
    public var match: [HTTPMatchRequest]
    public var route: [HTTPRouteDestination]
    public var redirect: HTTPRedirect?
    public var directResponse: HTTPDirectResponse?
    public var rewrite: HTTPRewrite?
    public var timeout: Duration?
    public var retries: HTTPRetry?
    public var fault: HTTPFault?
    public var mirror: Destination?
    public var mirrorPercentage: Double?
    public var corsPolicy: CorsPolicy?
    public var headers: HeaderOperations
    /// Where the rule is written, for messages.
    public var location: SourceLocation?
}

/// `HTTPMatchRequest`: every condition present must hold.
public struct HTTPMatchRequest: Sendable {
    public var name: String?
    public var uri: StringMatch?
    public var scheme: StringMatch?
    public var method: StringMatch?
    public var authority: StringMatch?
    /// Header names are lower-cased (HTTP header names are case-insensitive).
    public var headers: [(String, StringMatch)]
    public var withoutHeaders: [(String, StringMatch)]
    public var queryParams: [(String, StringMatch)]
    public var port: Int?
    public var sourceLabels: [String: String]
    public var sourceNamespace: String?
    public var gateways: [String]
    public var ignoreUriCase: Bool
}

/// `Destination`: a service host, an optional subset of its endpoints and a port.
public struct Destination: Sendable, Hashable {
    public var host: String
    public var subset: String?
    public var port: Int?
}

/// `HTTPRouteDestination`: a destination with its share of traffic and header edits.
public struct HTTPRouteDestination: Sendable {
    public var destination: Destination
    public var weight: Int
    public var headers: HeaderOperations
}

/// `Headers`: request and response header edits.
public struct HeaderOperations: Sendable {
    public struct Operations: Sendable {
        public var `set`: [(String, String)] = []
        public var add: [(String, String)] = []
        public var remove: [String] = []
        public init() {}
        public init(set: [(String, String)], add: [(String, String)], remove: [String]) {
            self.`set` = set
            self.add = add
            self.remove = remove
        }
        public var isEmpty: Bool { `set`.isEmpty && add.isEmpty && remove.isEmpty }
    }
    public var request = Operations()
    public var response = Operations()
    public init() {}
    public init(request: Operations, response: Operations) {
        self.request = request
        self.response = response
    }
    public var isEmpty: Bool { request.isEmpty && response.isEmpty }
}

/// `HTTPRedirect`: answers with a redirect instead of forwarding.
public struct HTTPRedirect: Sendable {
    public var uri: String?
    public var authority: String?
    public var port: Int?
    public var scheme: String?
    /// 301 unless set (Istio's default).
    public var redirectCode: Int
}

/// `HTTPDirectResponse`: answers with a fixed status and optional body.
public struct HTTPDirectResponse: Sendable {
    public var status: Int
    public var body: [UInt8]?
}

/// `HTTPRewrite`: rewrites the matched URI prefix (or the whole path for exact matches) and the authority.
public struct HTTPRewrite: Sendable {
    public var uri: String?
    public var authority: String?
}

/// `HTTPRetry`. `retryOn` is Envoy's comma-separated policy list; numbers are retriable status codes.
public struct HTTPRetry: Sendable {
    public var attempts: Int
    public var perTryTimeout: Duration?
    public var retryOn: RetryOn
}

/// The parsed `retryOn` conditions (Envoy `x-envoy-retry-on` / `x-envoy-retry-grpc-on` names).
public struct RetryOn: Sendable, Equatable {
    public var fiveXX = false
    public var gatewayError = false
    public var reset = false
    public var connectFailure = false
    public var refusedStream = false
    public var retriableStatusCodes = false
    public var retriable4xx = false
    /// gRPC conditions, matched against `grpc-status`.
    public var grpcCancelled = false
    public var grpcDeadlineExceeded = false
    public var grpcResourceExhausted = false
    public var grpcUnavailable = false
    public var grpcInternal = false
    /// Status codes listed in `retryOn` (they imply `retriable-status-codes`).
    public var statusCodes: Set<Int> = []

    public init() {}

    /// Istio's default policy: `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`
    /// with 503 as the retriable status code.
    public static let istioDefault: RetryOn = {
        var r = RetryOn()
        r.connectFailure = true
        r.refusedStream = true
        r.grpcUnavailable = true
        r.grpcCancelled = true
        r.retriableStatusCodes = true
        r.statusCodes = [503]
        return r
    }()

    /// Parses `retryOn`; unknown condition names are returned for the caller to report.
    public static func parse(_ text: String) -> (RetryOn, unknown: [String]) {
        var r = RetryOn()
        var unknown: [String] = []
        for raw in text.split(separator: ",") {
            let word = String(raw).trimmingSpaces
            switch word {
            case "5xx": r.fiveXX = true
            case "gateway-error": r.gatewayError = true
            case "reset", "reset-before-request": r.reset = true
            case "connect-failure": r.connectFailure = true
            case "refused-stream": r.refusedStream = true
            case "retriable-status-codes": r.retriableStatusCodes = true
            case "retriable-4xx": r.retriable4xx = true
            case "cancelled": r.grpcCancelled = true
            case "deadline-exceeded": r.grpcDeadlineExceeded = true
            case "resource-exhausted": r.grpcResourceExhausted = true
            case "unavailable": r.grpcUnavailable = true
            case "internal": r.grpcInternal = true
            case "envoy-ratelimited", "retriable-headers", "http3-post-connect-failure": break
            default:
                if let code = Int(word), (100...599).contains(code) {
                    r.statusCodes.insert(code)
                    r.retriableStatusCodes = true
                } else {
                    unknown.append(word)
                }
            }
        }
        return (r, unknown)
    }

    /// Whether an upstream answer with `status` (and optional `grpc-status`) should be retried.
    public func retries(status: Int, grpcStatus: Int?) -> Bool {
        if fiveXX && status >= 500 { return true }
        if gatewayError && (status == 502 || status == 503 || status == 504) { return true }
        if retriable4xx && status == 409 { return true }
        if retriableStatusCodes && Self.contains(statusCodes, status) { return true }
        if let g = grpcStatus {
            if grpcCancelled && g == 1 { return true }
            if grpcDeadlineExceeded && g == 4 { return true }
            if grpcResourceExhausted && g == 8 { return true }
            if grpcInternal && g == 13 { return true }
            if grpcUnavailable && g == 14 { return true }
        }
        return false
    }

    /// `codes.contains(status)`, looking at each code when there are a few (Istio's default lists one): hashing
    /// the status, on every response, costs more.
    private static func contains(_ codes: Set<Int>, _ status: Int) -> Bool {
        codes.count <= 4 ? codes.contains { $0 == status } : codes.contains(status)
    }
}

/// `HTTPFaultInjection`: delay and/or abort a share of requests.
public struct HTTPFault: Sendable {
    public struct Delay: Sendable {
        public var fixedDelay: Duration
        /// Percentage of requests delayed (100 when not set, as in Istio).
        public var percentage: Double
    }
    public struct Abort: Sendable {
        public enum Kind: Sendable, Equatable {
            case httpStatus(Int)
            case grpcStatus(String)
        }
        public var kind: Kind
        public var percentage: Double
    }
    public var delay: Delay?
    public var abort: Abort?
}

/// `CorsPolicy`.
public struct CorsPolicy: Sendable {
    public var allowOrigins: [StringMatch]
    public var allowMethods: [String]
    public var allowHeaders: [String]
    public var exposeHeaders: [String]
    public var maxAge: Duration?
    public var allowCredentials: Bool?
}

/// One `tcp[]` rule of a `VirtualService`.
public struct TCPRoute: Sendable {
    public struct Match: Sendable {
        public var port: Int?
        public var sourceLabels: [String: String]
        public var gateways: [String]
    }
    public var match: [Match]
    public var route: [(destination: Destination, weight: Int)]
}

// MARK: - Parsing

extension VirtualService {
    static func parse(_ spec: inout ConfigReader, meta: ObjectMeta) -> VirtualService {
        let hosts = spec.stringList("hosts")
        if hosts.isEmpty { spec.error(nil, "VirtualService \(meta.name): spec.hosts must list at least one host") }
        let gateways = spec.stringList("gateways")
        let http = spec.sectionList("http").map { r in
            var r = r
            return HTTPRoute.parse(&r)
        }
        let tcp = spec.sectionList("tcp").map { r in
            var r = r
            return TCPRoute.parse(&r)
        }
        if spec.has("tls") {
            spec.warning("tls", "VirtualService \(meta.name): tls routes (SNI passthrough) are not supported by sextant proxy; ignored")
        }
        _ = spec.stringList("exportTo")
        if spec.has("delegate") { spec.error("delegate", "VirtualService delegation is not supported") }
        spec.finish()
        return VirtualService(meta: meta, hosts: hosts, gateways: gateways, http: http, tcp: tcp)
    }
}

extension HTTPRoute {
    static func parse(_ r: inout ConfigReader) -> HTTPRoute {
        let name = r.optionalString("name")
        let match = r.sectionList("match").map { m in
            var m = m
            return HTTPMatchRequest.parse(&m)
        }
        let route = r.sectionList("route").map { d in
            var d = d
            return HTTPRouteDestination.parse(&d)
        }
        let redirect = r.optionalSection("redirect").map { s in
            var s = s
            return HTTPRedirect.parse(&s)
        }
        let direct = r.optionalSection("directResponse").map { s in
            var s = s
            return HTTPDirectResponse.parse(&s)
        }
        var rewrite: HTTPRewrite?
        if var s = r.optionalSection("rewrite") {
            rewrite = HTTPRewrite(uri: s.optionalString("uri"), authority: s.optionalString("authority"))
            if s.has("uriRegexRewrite") { s.error("uriRegexRewrite", "rewrite.uriRegexRewrite is not supported") }
            s.finish()
        }
        let timeout = r.protoDuration("timeout")
        let retries = r.optionalSection("retries").map { s in
            var s = s
            return HTTPRetry.parse(&s)
        }
        let fault = r.optionalSection("fault").map { s in
            var s = s
            return HTTPFault.parse(&s)
        }
        let mirror = r.optionalSection("mirror").map { s in
            var s = s
            return Destination.parse(&s)
        }
        let mirrorPercentage = r.percentage("mirrorPercentage")
        if r.has("mirrors") { r.error("mirrors", "http.mirrors (several mirrors) is not supported; use mirror") }
        let cors = r.optionalSection("corsPolicy").map { s in
            var s = s
            return CorsPolicy.parse(&s)
        }
        let headers = r.optionalSection("headers").map { s in
            var s = s
            return HeaderOperations.parse(&s)
        } ?? HeaderOperations()
        r.finish()

        let actions = [!route.isEmpty, redirect != nil, direct != nil].filter { $0 }.count
        if actions != 1 {
            r.error(nil, "\(r.path): set exactly one of route, redirect or directResponse")
        }
        if route.count > 1 || route.contains(where: { $0.weight != 0 }) {
            let total = route.reduce(0) { $0 + $1.weight }
            if route.count > 1 && total != 100 && total != 0 {
                r.error("route", "\(r.path)::route: weights must add up to 100, found \(total)")
            }
        }
        return HTTPRoute(
            name: name, match: match, route: route, redirect: redirect, directResponse: direct, rewrite: rewrite,
            timeout: timeout, retries: retries, fault: fault, mirror: mirror,
            mirrorPercentage: mirror == nil ? nil : (mirrorPercentage ?? 100), corsPolicy: cors, headers: headers,
            location: r.location)
    }
}

extension HTTPMatchRequest {
    static func parse(_ m: inout ConfigReader) -> HTTPMatchRequest {
        func one(_ key: String, _ m: inout ConfigReader) -> StringMatch? {
            guard m.has(key) else { return nil }
            var s = m.section(key)
            return s.stringMatch()
        }
        let result = HTTPMatchRequest(
            name: m.optionalString("name"),
            uri: one("uri", &m),
            scheme: one("scheme", &m),
            method: one("method", &m),
            authority: one("authority", &m),
            // `@request.auth.claims.*` names a JWT claim, whose case matters.
            headers: m.stringMatchMap("headers").map { ($0.0.hasPrefix("@") ? $0.0 : $0.0.lowercased(), $0.1) },
            withoutHeaders: m.stringMatchMap("withoutHeaders").map { ($0.0.hasPrefix("@") ? $0.0 : $0.0.lowercased(), $0.1) },
            queryParams: m.stringMatchMap("queryParams"),
            port: m.portSelector("port"),
            sourceLabels: m.labels("sourceLabels"),
            sourceNamespace: m.optionalString("sourceNamespace"),
            gateways: m.stringList("gateways"),
            ignoreUriCase: m.bool("ignoreUriCase", default: false))
        _ = m.optionalString("statPrefix")
        m.finish()
        return result
    }
}

extension Destination {
    static func parse(_ r: inout ConfigReader) -> Destination {
        let host = r.string("host", default: "")
        if host.isEmpty { r.error(nil, "\(r.path): destination.host is required") }
        let d = Destination(host: host, subset: r.optionalString("subset"), port: r.portSelector("port"))
        r.finish()
        return d
    }
}

extension HTTPRouteDestination {
    static func parse(_ r: inout ConfigReader) -> HTTPRouteDestination {
        var ds = r.section("destination")
        let destination = Destination.parse(&ds)
        let weight = r.int("weight", default: 0, min: 0, max: 100)
        let headers = r.optionalSection("headers").map { s in
            var s = s
            return HeaderOperations.parse(&s)
        } ?? HeaderOperations()
        r.finish()
        return HTTPRouteDestination(destination: destination, weight: weight, headers: headers)
    }
}

extension HeaderOperations {
    static func parse(_ r: inout ConfigReader) -> HeaderOperations {
        func ops(_ key: String, _ r: inout ConfigReader) -> Operations {
            guard r.has(key) else { return Operations() }
            var s = r.section(key)
            let o = Operations(
                set: s.stringMap("set").map { ($0.0.lowercased(), $0.1) },
                add: s.stringMap("add").map { ($0.0.lowercased(), $0.1) },
                remove: s.stringList("remove").map { $0.lowercased() })
            s.finish()
            for (name, value) in o.set + o.add {
                if !HeaderOperations.isToken(name) { s.error(nil, "\(s.path): '\(name)' is not a valid header name") }
                if value.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
                    s.error(nil, "\(s.path): the value of header '\(name)' contains a line break or NUL")
                }
            }
            return o
        }
        let h = HeaderOperations(request: ops("request", &r), response: ops("response", &r))
        r.finish()
        return h
    }
}

extension HeaderOperations {
    /// RFC 9110 §5.6.2 `token`: the characters a header name may use.
    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }
}

extension HTTPRedirect {
    static func parse(_ r: inout ConfigReader) -> HTTPRedirect {
        let code = r.int("redirectCode", default: 301, min: 300, max: 399)
        let d = HTTPRedirect(
            uri: r.optionalString("uri"), authority: r.optionalString("authority"), port: r.portSelector("port"),
            scheme: r.optionalString("scheme"), redirectCode: code)
        _ = r.optionalString("derivePort")
        r.finish()
        return d
    }
}

extension HTTPDirectResponse {
    static func parse(_ r: inout ConfigReader) -> HTTPDirectResponse {
        let status = r.int("status", default: 200, min: 200, max: 599)
        var body: [UInt8]?
        if var b = r.optionalSection("body") {
            if let s = b.optionalString("string") {
                body = Array(s.utf8)
            } else if let s = b.optionalString("bytes") {
                if let decoded = Base64.decode(s) { body = decoded } else { b.error("bytes", "\(b.qualified("bytes")) must be base64") }
            }
            b.finish()
        }
        r.finish()
        return HTTPDirectResponse(status: status, body: body)
    }
}

extension HTTPRetry {
    static func parse(_ r: inout ConfigReader) -> HTTPRetry {
        let attempts = r.int("attempts", default: 0, min: 0)
        let perTry = r.protoDuration("perTryTimeout")
        var retryOn = RetryOn.istioDefault
        if let text = r.optionalString("retryOn") {
            let (parsed, unknown) = RetryOn.parse(text)
            retryOn = parsed
            for u in unknown { r.error("retryOn", "\(r.qualified("retryOn")): unknown retry condition '\(u)'") }
        }
        _ = r.bool("retryRemoteLocalities", default: false)
        r.finish()
        return HTTPRetry(attempts: attempts, perTryTimeout: perTry, retryOn: retryOn)
    }
}

extension HTTPFault {
    static func parse(_ r: inout ConfigReader) -> HTTPFault {
        var fault = HTTPFault()
        if var d = r.optionalSection("delay") {
            let fixed = d.duration("fixedDelay", default: .zero)
            if !d.has("fixedDelay") { d.error(nil, "\(d.path): fixedDelay is required") }
            let pct = d.percentage("percentage") ?? Double(d.int("percent", default: 100, min: 0, max: 100))
            if d.has("exponentialDelay") { d.error("exponentialDelay", "exponentialDelay is not supported") }
            d.finish()
            fault.delay = Delay(fixedDelay: fixed, percentage: pct)
        }
        if var a = r.optionalSection("abort") {
            let pct = a.percentage("percentage") ?? 100
            var kind: Abort.Kind?
            if a.has("httpStatus") {
                kind = .httpStatus(a.int("httpStatus", default: 503, min: 200, max: 599))
            }
            if let g = a.optionalString("grpcStatus") {
                if kind != nil { a.error("grpcStatus", "\(a.path): set only one of httpStatus or grpcStatus") }
                if GRPCStatusName.code(g) == nil { a.error("grpcStatus", "\(a.qualified("grpcStatus")): unknown gRPC status '\(g)'") }
                kind = .grpcStatus(g)
            }
            if a.has("http2Error") { a.error("http2Error", "abort.http2Error is not supported") }
            a.finish()
            if let kind {
                fault.abort = Abort(kind: kind, percentage: pct)
            } else {
                a.error(nil, "\(a.path): httpStatus or grpcStatus is required")
            }
        }
        r.finish()
        return fault
    }
}

extension CorsPolicy {
    static func parse(_ r: inout ConfigReader) -> CorsPolicy {
        let origins = r.sectionList("allowOrigins").compactMap { s -> StringMatch? in
            var s = s
            return s.stringMatch()
        }
        let p = CorsPolicy(
            allowOrigins: origins, allowMethods: r.stringList("allowMethods"), allowHeaders: r.stringList("allowHeaders"),
            exposeHeaders: r.stringList("exposeHeaders"), maxAge: r.protoDuration("maxAge"),
            allowCredentials: r.has("allowCredentials") ? r.bool("allowCredentials", default: false) : nil)
        _ = r.optionalString("unmatchedPreflights")
        r.finish()
        return p
    }
}

extension TCPRoute {
    static func parse(_ r: inout ConfigReader) -> TCPRoute {
        let match = r.sectionList("match").map { m -> Match in
            var m = m
            let v = Match(port: m.portSelector("port"), sourceLabels: m.labels("sourceLabels"), gateways: m.stringList("gateways"))
            _ = m.stringList("destinationSubnets")
            _ = m.optionalString("sourceNamespace")
            m.finish()
            return v
        }
        let route = r.sectionList("route").map { d -> (destination: Destination, weight: Int) in
            var d = d
            var ds = d.section("destination")
            let dest = Destination.parse(&ds)
            let w = d.int("weight", default: 0, min: 0, max: 100)
            d.finish()
            return (dest, w)
        }
        if route.isEmpty { r.error(nil, "\(r.path): route is required") }
        r.finish()
        return TCPRoute(match: match, route: route)
    }
}

/// gRPC status names as Istio's `abort.grpcStatus` accepts them.
public enum GRPCStatusName {
    static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// The numeric code for a status name (or a decimal string).
    public static func code(_ name: String) -> Int? {
        if let i = names.firstIndex(of: name.uppercased()) { return i }
        if let n = Int(name), (0...16).contains(n) { return n }
        return nil
    }
}
