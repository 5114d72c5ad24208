import SextantIstio
import SextantPipeline
import Testing

/// `DestinationRule` client TLS and `PeerAuthentication`, and how they resolve for one workload.
@Suite struct MeshSecurityConfigTests {
    static func load(_ yaml: String) -> (IstioResources, [ConfigDiagnostic]) { IstioConfigTests.load(yaml) }

    static let reviews = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: reviews, namespace: default}
        spec:
          hosts: [reviews.default.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}]
          endpoints: [{address: 127.0.0.1, ports: {http: 19081, grpc: 19091}, labels: {app: reviews, version: v1}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews, namespace: default}
        spec:
          host: reviews
          trafficPolicy:
            tls: {mode: ISTIO_MUTUAL}
            portLevelSettings:
            - port: {number: 9090}
              tls: {mode: DISABLE}
          subsets:
          - name: v1
            labels: {version: v1}
            trafficPolicy:
              tls:
                mode: ISTIO_MUTUAL
                sni: reviews-v1.example
                subjectAltNames: [spiffe://cluster.local/ns/default/sa/bookinfo-reviews]
        """

    @Test func destinationRuleTLSIsLayeredByPortAndSubset() throws {
        let (res, diags) = Self.load(Self.reviews)
        #expect(diags.filter { $0.severity == .error }.isEmpty, "\(diags)")
        let table = RouteTable(resources: res, identity: ProxyIdentity(workload: "productpage-v1", namespace: "default"))
        let host = "reviews.default.svc.cluster.local"
        let plain = try #require(table.clusters[ClusterKey(host: host, port: 9080)])
        #expect(plain.policy.tls == ClientTLSSettings(mode: .istioMutual))
        // The port-level DISABLE wins over the rule's ISTIO_MUTUAL for port 9090.
        let grpc = try #require(table.clusters[ClusterKey(host: host, port: 9090)])
        #expect(grpc.policy.tls?.mode == .disable)
        // The subset's own tls replaces the rule's (sni and subjectAltNames included).
        let v1 = try #require(table.clusters[ClusterKey(host: host, port: 9080, subset: "v1")])
        #expect(v1.policy.tls?.sni == "reviews-v1.example")
        #expect(v1.policy.tls?.subjectAltNames == ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"])
    }

    @Test func unknownClientTLSModesFail() {
        let (_, diags) = Self.load(
            """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: bad, namespace: default}
            spec:
              host: bad.example.com
              trafficPolicy: {tls: {mode: ISTIO_MUTAL}}
            """)
        #expect(diags.contains { $0.severity == .error && $0.message.contains("ISTIO_MUTAL") }, "\(diags)")
    }

    static let fixtures = "/" + #filePath.split(separator: "/").dropLast(2).joined(separator: "/") + "/SextantSecurityTests/Fixtures"

    /// TLS origination: SIMPLE and MUTUAL read their files' paths, layered like any other tls setting.
    @Test func simpleAndMutualOriginationSettings() throws {
        let (res, diags) = Self.load(
            """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: ext, namespace: default}
            spec:
              hosts: [api.example.com]
              location: MESH_EXTERNAL
              resolution: STATIC
              ports: [{number: 443, name: https, protocol: HTTP}]
              endpoints: [{address: 127.0.0.1, ports: {https: 8443}}]
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: ext, namespace: default}
            spec:
              host: api.example.com
              trafficPolicy:
                tls:
                  mode: SIMPLE
                  caCertificates: \(Self.fixtures)/ca.crt
                  sni: api.example.com
                  subjectAltNames: [api.example.com]
              subsets:
              - name: mtls
                labels: {}
                trafficPolicy:
                  tls: {mode: MUTUAL, clientCertificate: \(Self.fixtures)/client.crt, privateKey: \(Self.fixtures)/client.key, insecureSkipVerify: true}
            """)
        #expect(diags.filter { $0.severity == .error }.isEmpty, "\(diags)")
        let table = RouteTable(resources: res, identity: ProxyIdentity(workload: "app", namespace: "default"))
        let simple = try #require(table.clusters[ClusterKey(host: "api.example.com", port: 443)]?.policy.tls)
        #expect(simple.mode == .simple && simple.isOrigination && simple.caCertificates == "\(Self.fixtures)/ca.crt")
        #expect(simple.sni == "api.example.com" && simple.subjectAltNames == ["api.example.com"] && !simple.insecureSkipVerify)
        let mutual = try #require(table.clusters[ClusterKey(host: "api.example.com", port: 443, subset: "mtls")]?.policy.tls)
        #expect(mutual.mode == .mutual && mutual.clientCertificate == "\(Self.fixtures)/client.crt" && mutual.insecureSkipVerify)
        #expect(mutual.caCertificates == nil)  // the subset's tls replaces the rule's whole: system roots
    }

    @Test func originationConfigErrorsPointAtTheirLines() {
        let (_, diags) = Self.load(
            """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: a, namespace: default}
            spec:
              host: a.example.com
              trafficPolicy:
                tls:
                  mode: MUTUAL
                  clientCertificate: \(Self.fixtures)/client.crt
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: b, namespace: default}
            spec:
              host: b.example.com
              trafficPolicy:
                tls:
                  mode: SIMPLE
                  credentialName: b-credential
                  caCertificates: /nonexistent/ca.pem
            """)
        let errors = diags.filter { $0.severity == .error }.map(\.description)
        #expect(errors.contains { $0.contains("mesh.yaml:8:") && $0.contains("MUTUAL requires privateKey") }, "\(errors)")
        #expect(!errors.contains { $0.contains("requires clientCertificate") }, "\(errors)")
        #expect(
            errors.contains { $0.contains("mesh.yaml:19:") && $0.contains("not supported: needs Kubernetes secrets; use file paths") },
            "\(errors)")
        #expect(errors.contains { $0.contains("mesh.yaml:20:") && $0.contains("cannot read '/nonexistent/ca.pem'") }, "\(errors)")
    }

    static let peerAuthentications = """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: default, namespace: istio-system}
        spec:
          mtls: {mode: STRICT}
        ---
        apiVersion: security.istio.io/v1beta1
        kind: PeerAuthentication
        metadata: {name: default, namespace: legacy}
        spec:
          mtls: {mode: PERMISSIVE}
        ---
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: reviews, namespace: default}
        spec:
          selector: {matchLabels: {app: reviews}}
          mtls: {mode: UNSET}
          portLevelMtls:
            "9080": {mode: DISABLE}
        """

    @Test func peerAuthenticationPrecedence() {
        let (res, diags) = Self.load(Self.peerAuthentications)
        #expect(diags.isEmpty, "\(diags)")
        #expect(res.peerAuthentications.count == 3)
        func mode(_ ns: String, _ labels: [String: String], port: Int?) -> PeerAuthentication.Mode {
            PeerAuthentication.effectiveMode(res.peerAuthentications, identity: ProxyIdentity(workload: "w", namespace: ns, labels: labels), port: port)
        }
        // Mesh-wide STRICT applies where nothing narrower says otherwise.
        #expect(mode("default", ["app": "ratings"], port: 9080) == .strict)
        // A namespace policy overrides the mesh's.
        #expect(mode("legacy", [:], port: 9080) == .permissive)
        // The workload policy's UNSET inherits STRICT; its port-level DISABLE applies to that port only.
        #expect(mode("default", ["app": "reviews"], port: 9080) == .disable)
        #expect(mode("default", ["app": "reviews"], port: 9090) == .strict)
        // Nothing at all: Istio's default, PERMISSIVE.
        #expect(PeerAuthentication.effectiveMode([], identity: ProxyIdentity(workload: "w", namespace: "default"), port: 80) == .permissive)
    }

    @Test func peerAuthenticationErrors() {
        let (_, diags) = Self.load(
            """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: a, namespace: default}
            spec:
              mtls: {mode: STRICTER}
              portLevelMtls:
                "9080": {mode: STRICT}
              unknownField: 1
            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: b, namespace: default}
            spec:
              selector: {matchLabels: {app: x}}
              portLevelMtls:
                http: {mode: STRICT}
            """)
        let errors = diags.filter { $0.severity == .error }.map(\.message)
        #expect(errors.contains { $0.contains("STRICTER") }, "\(diags)")
        #expect(errors.contains { $0.contains("unknownField") }, "\(diags)")
        #expect(errors.contains { $0.contains("'http' is not a port number") }, "\(diags)")
        #expect(diags.contains { $0.severity == .warning && $0.message.contains("needs a selector") }, "\(diags)")
    }
}
