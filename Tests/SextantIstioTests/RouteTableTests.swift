import SextantIstio
import SextantPipeline
import Testing

/// Routing decisions with Istio's semantics: host forms, first-match-wins, match conditions, weights.
@Suite struct RouteTableTests {
    let table: RouteTable

    init() throws {
        let d = Diagnostics()
        var res = IstioResources()
        IstioConfigLoader.read(IstioConfigTests.bookinfo + "\n" + Self.extra, file: "mesh.yaml", into: &res, diagnostics: d)
        IstioConfigLoader.validate(res, diagnostics: d)
        #expect(!d.hasErrors, "\(d.all)")
        table = RouteTable(resources: res, identity: ProxyIdentity(workload: "productpage-v1", namespace: "default", labels: ["app": "productpage"]))
    }

    static let extra = """
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: ratings, namespace: default}
        spec:
          hosts: [ratings]
          resolution: STATIC
          ports: [{number: 9080, name: http}]
          endpoints: [{address: 127.0.0.1, ports: {http: 19100}, labels: {version: v1}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: ratings, namespace: default}
        spec:
          hosts: [ratings]
          http:
          - match:
            - queryParams: {debug: {exact: "1"}}
              method: {exact: POST}
            directResponse: {status: 418, body: {string: teapot}}
          - match:
            - sourceLabels: {app: reviews}
              withoutHeaders: {x-skip: {prefix: ""}}
            route: [{destination: {host: ratings}}]
          - match:
            - uri: {regex: "/old/[0-9]+"}
            redirect: {uri: /new, redirectCode: 302}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: wildcard, namespace: default}
        spec:
          hosts: ["*.example.com"]
          http:
          - route: [{destination: {host: ratings, port: {number: 9080}}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: plain, namespace: default}
        spec:
          hosts: [plain.default.svc.cluster.local]
          resolution: STATIC
          ports: [{number: 8080, name: http}]
          endpoints: [{address: 127.0.0.1, ports: {http: 19200}}]
        """

    func decide(_ authority: String, _ path: String = "/", method: String = "GET", headers: [(name: String, value: String)] = [], labels: [String: String] = [:]) -> (String, String)? {
        let head = RequestHead(authority: authority, path: path, method: method, headers: headers, port: HostName.splitAuthority(authority).port ?? 80, sourceLabels: labels)
        guard case .route(let r, let vh) = table.route(head) else { return nil }
        return (r.name, vh)
    }

    @Test func theHeadIsMadeOnlyForAVirtualServicesRules() {
        var made = 0
        func head(_ authority: String, _ path: String) -> () -> RequestHead {
            {
                made += 1
                return RequestHead(authority: authority, path: path, method: "GET", port: HostName.splitAuthority(authority).port ?? 80)
            }
        }
        // A service without a VirtualService: its own route, by host and port alone.
        guard case .route(let plain, let vh) = table.route(host: "plain", port: 8080, head: head("plain:8080", "/")) else {
            Issue.record("no route to plain")
            return
        }
        #expect(made == 0 && plain.virtualService == nil && vh == "plain.default.svc.cluster.local:8080")
        if case .route = table.route(host: "nothing", port: 80, head: head("nothing", "/")) { Issue.record("routed an unknown host") }
        #expect(made == 0)
        // A VirtualService's rules read the head once, and decide as `route(_:)` does.
        guard case .route(let r, _) = table.route(host: "ratings", port: 9080, head: head("ratings:9080", "/old/12")) else {
            Issue.record("no route to ratings")
            return
        }
        #expect(made == 1 && r.virtualService == "default/ratings" && r.rule.redirect != nil)
        #expect(decide("ratings:9080", "/old/12")?.0 == r.name)
    }

    @Test func everyHostFormReachesTheService() {
        for authority in ["reviews", "reviews:9080", "reviews.default", "reviews.default.svc", "REVIEWS.default.svc.cluster.local:9080"] {
            #expect(decide(authority)?.1.hasPrefix("reviews.default.svc.cluster.local") == true, "\(authority)")
        }
        #expect(decide("unknown.default.svc.cluster.local") == nil)
        #expect(decide("api.example.com")?.1 == "*.example.com:80")
        // A short form of a service in another namespace needs at least `name.namespace`.
        #expect(decide("details.other") == nil)
        #expect(decide("Reviews.Default.SVC:9080")?.1 == "reviews.default.svc.cluster.local:9080")
    }

    @Test func authoritiesSplitIntoLowerCaseHostAndPort() {
        let cases: [(String, String, Int?)] = [
            ("reviews", "reviews", nil), ("Reviews:9080", "reviews", 9080), ("[::1]:8080", "::1", 8080), ("[FE80::1]", "fe80::1", nil),
            ("::1", "::1", nil), ("host:", "host:", nil), ("host:http", "host:http", nil), ("ÉTÉ.example:80", "été.example", 80), ("", "", nil),
            // The one-pass path (lower case, one colon, digits) and what it leaves to the general one.
            ("reviews.default.svc.cluster.local:9080", "reviews.default.svc.cluster.local", 9080), ("a:0080", "a", 80),
            ("a:+80", "a", 80), ("a:8 0", "a:8 0", nil), ("a:b:80", "a:b:80", nil), ("a:1234567890123456789", "a", 1_234_567_890_123_456_789),
            ("a:99999999999999999999", "a:99999999999999999999", nil), (":80", "", 80),
        ]
        for (authority, host, port) in cases {
            let split = HostName.splitAuthority(authority)
            #expect(split.host == host && split.port == port, "\(authority) → \(split)")
        }
    }

    @Test func asciiCaseInsensitiveEquality() {
        #expect(HostName.equalsIgnoringASCIICase("Content-Type", lowercased: "content-type"))
        #expect(HostName.equalsIgnoringASCIICase("X-A-Very-Long-Header-Name-Over-Fifteen", lowercased: "x-a-very-long-header-name-over-fifteen"))
        #expect(!HostName.equalsIgnoringASCIICase("Content-Typf", lowercased: "content-type"))
        #expect(!HostName.equalsIgnoringASCIICase("content-type", lowercased: "content-typ"))
        #expect(!HostName.equalsIgnoringASCIICase("ÉTÉ", lowercased: "été"), "only ASCII letters fold")
        #expect(HostName.equalsIgnoringASCIICase("", lowercased: ""))
    }

    /// The word-at-a-time comparison answers what the byte rule answers: every byte value at every position
    /// of names 1–20 bytes long (short ones take the byte loop, longer ones whole and overlapping words), both
    /// as the compared bytes and as the expected lower-case ones.
    @Test func wordComparisonAgreesWithTheByteRule() {
        func byteRule(_ a: [UInt8], _ b: [UInt8]) -> Bool {
            a.count == b.count && zip(a, b).allSatisfy { x, y in ((x >= 0x41 && x <= 0x5a) ? x | 0x20 : x) == y }
        }
        var mismatches = 0
        for length in 1...20 {
            let base = Array("x-envoy-upstream-svc".utf8.prefix(length))
            for position in 0..<length {
                for value in 0...255 {
                    var a = base
                    a[position] = UInt8(value)
                    for (x, y) in [(a, base), (base, a), (a, a.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 })] {
                        let words = x.withUnsafeBytes { p in y.withUnsafeBytes { HostName.equalsIgnoringASCIICase(p, lowercased: $0) } }
                        if words != byteRule(x, y) { mismatches += 1 }
                    }
                }
            }
        }
        #expect(mismatches == 0)
        #expect([UInt8]().withUnsafeBytes { HostName.equalsIgnoringASCIICase($0, lowercased: $0) })
    }

    /// The routing table indexes short forms by inverting `HostName.expansion`: every short form it lists
    /// must expand back to the host, and every name that expands to a host must be listed.
    @Test func shortFormsInvertExpansion() {
        let names = [
            "reviews", "reviews.default", "reviews.default.svc", "reviews.default.svc.cluster.local", "reviews.other",
            "reviews.other.svc.cluster.local", "a.b.c", "a.b.c.svc", "a.b.c.svc.cluster.local", "x.svc", "x.svc.cluster.local",
            "api.example.com", "example.com", "svc", "cluster.local", "default.svc.cluster.local", "",
        ]
        for fqdn in names {
            let forms = HostName.shortForms(of: fqdn, proxyNamespace: "default")
            for short in names + forms {
                let expands = HostName.expansion(of: short, proxyNamespace: "default") == fqdn
                #expect(forms.contains(short) == expands, "\(short) → \(fqdn)")
            }
        }
        #expect(HostName.shortForms(of: "reviews.default.svc.cluster.local", proxyNamespace: "default").sorted() == ["reviews", "reviews.default", "reviews.default.svc"])
        #expect(HostName.shortForms(of: "reviews.other.svc.cluster.local", proxyNamespace: "default").sorted() == ["reviews.other", "reviews.other.svc"])
    }

    @Test func firstMatchingRuleWins() {
        #expect(decide("reviews:9080", headers: [("end-user", "jason")])?.0 == "jason")
        #expect(decide("reviews:9080", "/REVIEWS/1")?.0 == "canary")
        #expect(decide("reviews:9080", "/other")?.0 == "default")
        #expect(decide("reviews:9080", headers: [("end-user", "jasonx")])?.0 == "default")
    }

    @Test func matchConditions() {
        let teapot = RequestHead(authority: "ratings:9080", path: "/x?a=2&debug=1", method: "POST", port: 9080)
        guard case .route(let r, _) = table.route(teapot) else { Issue.record("no route"); return }
        #expect(r.rule.directResponse?.status == 418)
        #expect(r.rule.directResponse?.body == Array("teapot".utf8))
        #expect(decide("ratings:9080", "/x?debug=1", method: "GET") == nil)
        #expect(decide("ratings:9080", labels: ["app": "reviews"]) != nil)
        #expect(decide("ratings:9080", headers: [("x-skip", "y")], labels: ["app": "reviews"]) == nil)
        let old = RequestHead(authority: "ratings", path: "/old/42", method: "GET", port: 80)
        guard case .route(let redirect, _) = table.route(old) else { Issue.record("no route"); return }
        #expect(redirect.rule.redirect?.redirectCode == 302)
        #expect(decide("ratings", "/old/x") == nil)
    }

    @Test func weightedDestinationsSplitAsConfigured() throws {
        let head = RequestHead(authority: "reviews:9080", path: "/reviews", method: "GET", port: 9080)
        guard case .route(let r, _) = table.route(head) else { Issue.record("no route"); return }
        var counts: [String: Int] = [:]
        for i in 0..<100 { counts[r.destinations[r.pick(random: i)!].cluster.subset!, default: 0] += 1 }
        #expect(counts == ["v1": 80, "v3": 20])
        let v3 = try #require(table.cluster(r.destinations[1].cluster, requestPort: 9080))
        #expect(v3.key.description == "outbound|9080|v3|reviews.default.svc.cluster.local")
        #expect(v3.endpoints.map(\.description) == ["127.0.0.1:19083"])
        #expect(v3.policy.loadBalancer == .simple(.leastRequest))
        #expect(v3.policy.connectionPool?.maxConnections == 10)
        let v2 = try #require(table.cluster(ClusterKey(host: "reviews.default.svc.cluster.local", port: 9080, subset: "v2"), requestPort: 9080))
        #expect(v2.policy.loadBalancer == .consistentHash(.header("x-user"), minimumRingSize: 1024))
        #expect(v2.serviceName == "reviews" && v2.serviceNamespace == "default")
    }

    @Test func tcpConnectionsAreRoutedByPort() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: db}
            spec:
              hosts: [db]
              resolution: STATIC
              ports: [{number: 3306, name: mysql}]
              endpoints: [{address: 127.0.0.1, ports: {mysql: 13306}, labels: {version: v1}}]
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: db}
            spec: {host: db, subsets: [{name: v1, labels: {version: v1}}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: db}
            spec:
              hosts: [db]
              tcp:
              - match: [{port: 3306, sourceLabels: {app: other}}]
                route: [{destination: {host: db}}]
              - route: [{destination: {host: db, subset: v1}, weight: 100}]
            """
        let d = Diagnostics()
        var res = IstioResources()
        IstioConfigLoader.read(yaml, file: "tcp.yaml", into: &res, diagnostics: d)
        #expect(!d.hasErrors, "\(d.all)")
        let t = RouteTable(resources: res, identity: ProxyIdentity(workload: "app", namespace: "default", labels: ["app": "web"]))
        #expect(t.tcpPorts == [3306])
        let route = try #require(t.tcpRoute(port: 3306, sourceLabels: ["app": "web"]))
        #expect(route.service == "db.default.svc.cluster.local")
        #expect(route.destinations.map(\.cluster.description) == ["outbound|3306|v1|db.default.svc.cluster.local"])
        #expect(t.tcpRoute(port: 9999, sourceLabels: [:]) == nil)
    }

    @Test func ringHashIsStickyAndMovesLittle() {
        let four = RingHash(endpoints: (0..<4).map { ("10.0.0.\($0):80", 1) })
        let five = RingHash(endpoints: (0..<5).map { ("10.0.0.\($0):80", 1) })
        var same = 0
        var perEndpoint = [Int](repeating: 0, count: 4)
        for k in 0..<2000 {
            let h = StableHash.hash("user-\(k)")
            let a = four.endpoint(for: h)!
            perEndpoint[a] += 1
            #expect(four.endpoint(for: h) == a)
            if five.endpoint(for: h) == a { same += 1 }
        }
        // A fifth endpoint should take about a fifth of the keys and leave the rest where they were.
        #expect(same > 1400, "only \(same) of 2000 keys stayed")
        #expect(perEndpoint.allSatisfy { $0 > 300 }, "\(perEndpoint)")
        #expect(four.endpoint(for: 42, usable: { $0 != four.endpoint(for: 42) }) != four.endpoint(for: 42))
    }

    @Test func outlierDetectionEjectsAndReturns() {
        var s = OutlierDetectionSettings()
        s.consecutive5xxErrors = 3
        s.baseEjectionTime = .seconds(5)
        s.maxEjectionPercent = 50
        var d = OutlierDetector(settings: s, endpointCount: 4)
        let t0 = ContinuousClock.now
        var ejected = d.record(0, status: 500, now: t0)
        #expect(!ejected)
        ejected = d.record(0, status: 200, now: t0)
        #expect(!ejected)
        for _ in 0..<2 { d.record(0, status: 503, now: t0) }
        ejected = d.record(0, status: nil, now: t0)
        #expect(ejected)
        var available = d.isAvailable(0, now: t0 + .seconds(4))
        #expect(!available)
        for _ in 0..<3 { d.record(1, status: 500, now: t0) }
        // 50 % of 4 endpoints: a third ejection is refused.
        for _ in 0..<3 { d.record(2, status: 500, now: t0) }
        #expect(d.ejectedCount(now: t0) == 2)
        available = d.isAvailable(2, now: t0)
        #expect(available)
        available = d.isAvailable(0, now: t0 + .seconds(5))
        #expect(available)
        // The second ejection lasts twice as long.
        for _ in 0..<3 { d.record(0, status: 500, now: t0 + .seconds(6)) }
        available = d.isAvailable(0, now: t0 + .seconds(15))
        #expect(!available)
        available = d.isAvailable(0, now: t0 + .seconds(16))
        #expect(available)
    }

    @Test func retryOnDefaultsAndConditions() {
        let def = RetryOn.istioDefault
        #expect(def.retries(status: 503, grpcStatus: nil))
        #expect(!def.retries(status: 500, grpcStatus: nil))
        #expect(def.retries(status: 200, grpcStatus: 14))
        let (gw, unknown) = RetryOn.parse("gateway-error, reset")
        #expect(unknown.isEmpty && gw.reset)
        #expect(gw.retries(status: 504, grpcStatus: nil) && !gw.retries(status: 500, grpcStatus: nil))
        // Listed codes, a few (each looked at) and many (hashed).
        var few = RetryOn()
        few.retriableStatusCodes = true
        few.statusCodes = [409, 429]
        #expect(few.retries(status: 429, grpcStatus: nil) && !few.retries(status: 503, grpcStatus: nil))
        var many = few
        many.statusCodes = [409, 429, 500, 502, 503, 504]
        #expect(many.retries(status: 502, grpcStatus: nil) && !many.retries(status: 404, grpcStatus: nil))
    }
}
