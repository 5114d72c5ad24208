import SextantIstio
import SextantPipeline
import Testing

/// Loading Istio resources as `kubectl get -o yaml` prints them, and every error at once with file:line.
@Suite struct IstioConfigTests {
    static func load(_ yaml: String) -> (IstioResources, [ConfigDiagnostic]) {
        let d = Diagnostics()
        var res = IstioResources()
        IstioConfigLoader.read(yaml, file: "mesh.yaml", into: &res, diagnostics: d)
        IstioConfigLoader.validate(res, diagnostics: d)
        return (res, d.all)
    }

    static let bookinfo = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: reviews
          namespace: default
          uid: 5b0a4c8e-0000-4000-8000-000000000001
          resourceVersion: "12345"
          generation: 1
          creationTimestamp: "2026-11-20T10:00:00Z"
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: "{}"
        spec:
          hosts: [reviews.default.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports:
          - {number: 9080, name: http, protocol: HTTP}
          endpoints:
          - {address: 127.0.0.1, ports: {http: 19081}, labels: {app: reviews, version: v1}}
          - {address: 127.0.0.1, ports: {http: 19082}, labels: {app: reviews, version: v2}}
          - {address: 127.0.0.1, ports: {http: 19083}, labels: {app: reviews, version: v3}}
        status: {}
        ---
        apiVersion: networking.istio.io/v1beta1
        kind: DestinationRule
        metadata: {name: reviews}
        spec:
          host: reviews
          trafficPolicy:
            loadBalancer: {simple: LEAST_REQUEST}
            connectionPool:
              tcp: {maxConnections: 10, connectTimeout: 250ms}
              http: {http1MaxPendingRequests: 5, maxRequestsPerConnection: 100}
            outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 50}
          subsets:
          - {name: v1, labels: {version: v1}}
          - name: v2
            labels: {version: v2}
            trafficPolicy:
              loadBalancer:
                consistentHash: {httpHeaderName: x-user}
          - {name: v3, labels: {version: v3}}
        ---
        apiVersion: networking.istio.io/v1alpha3
        kind: VirtualService
        metadata: {name: reviews, namespace: default}
        spec:
          hosts: [reviews]
          http:
          - name: jason
            match:
            - headers:
                end-user: {exact: jason}
            route:
            - destination: {host: reviews, subset: v2}
          - name: canary
            match:
            - uri: {prefix: /reviews}
              ignoreUriCase: true
            route:
            - destination: {host: reviews, subset: v1}
              weight: 80
            - destination: {host: reviews, subset: v3}
              weight: 20
            timeout: 2s
            retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,connect-failure,418"}
            fault:
              delay: {fixedDelay: 100ms, percentage: {value: 10}}
              abort: {httpStatus: 503, percentage: {value: 1.5}}
          - route:
            - destination: {host: reviews, subset: v1}
        """

    @Test func loadsBookinfoAsKubectlPrintsIt() throws {
        let (res, diags) = Self.load(Self.bookinfo)
        #expect(diags.isEmpty, "\(diags)")
        #expect(res.serviceEntries.count == 1 && res.destinationRules.count == 1 && res.virtualServices.count == 1)
        let vs = res.virtualServices[0]
        #expect(vs.http.count == 3)
        #expect(vs.http[1].timeout == .seconds(2))
        let retry = try #require(vs.http[1].retries)
        #expect(retry.attempts == 3 && retry.perTryTimeout == .milliseconds(500))
        #expect(retry.retryOn.fiveXX && retry.retryOn.connectFailure && retry.retryOn.statusCodes == [418])
        #expect(vs.http[1].fault?.delay?.percentage == 10)
        #expect(vs.http[1].fault?.abort?.kind == .httpStatus(503))
        #expect(vs.http[1].fault?.abort?.percentage == 1.5)
        let dr = res.destinationRules[0]
        #expect(dr.trafficPolicy.connectionPool?.maxConnections == 10)
        #expect(dr.trafficPolicy.outlierDetection?.consecutive5xxErrors == 3)
        #expect(dr.subsets[1].trafficPolicy?.loadBalancer == .consistentHash(.header("x-user"), minimumRingSize: 1024))
    }

    @Test func reportsEveryErrorWithItsPosition() {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: bad}
            spec:
              hosts: [reviews]
              http:
              - match:
                - uri: {prefx: /x}
                route:
                - destination: {host: reviews, subset: nope}
                  weight: 70
                - destination: {host: reviews}
                  weight: 20
                timeoutt: 1s
                retries: {attempts: 2, retryOn: "5xx,bogus"}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualServce
            metadata: {name: typo}
            spec: {}
            ---
            apiVersion: networking.istio.io/v2
            kind: DestinationRule
            metadata: {name: r}
            spec:
              host: reviews
              trafficPolicy:
                loadBalancer: {simple: FASTEST}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: ignored}
            """
        let (_, diags) = Self.load(yaml)
        let errors = diags.filter { $0.severity == .error }.map(\.description)
        let warnings = diags.filter { $0.severity == .warning }.map(\.description)
        #expect(errors.contains { $0.hasPrefix("mesh.yaml:8:") && $0.contains("unknown key 'prefx'") && $0.contains("did you mean 'prefix'") })
        #expect(errors.contains { $0.contains("weights must add up to 100, found 90") })
        #expect(errors.contains { $0.hasPrefix("mesh.yaml:14:") && $0.contains("unknown key 'timeoutt'") && $0.contains("'timeout'") })
        #expect(errors.contains { $0.contains("unknown retry condition 'bogus'") })
        #expect(errors.contains { $0.hasPrefix("mesh.yaml:18:") && $0.contains("unknown kind 'VirtualServce'") })
        #expect(errors.contains { $0.contains("unknown API version networking.istio.io/v2") })
        #expect(errors.contains { $0.contains("'FASTEST' is not one of ROUND_ROBIN") })
        #expect(errors.contains { $0.hasPrefix("mesh.yaml:7:") && $0.contains("routes to subset 'nope' of reviews, which no DestinationRule defines") })
        #expect(warnings.contains { $0.contains("apps/v1 Deployment is not an Istio resource; ignored") })
        #expect(errors.count == 8, "\(errors)")
    }

    @Test func readsKubectlListsAndMeshConfig() throws {
        let yaml = """
            apiVersion: v1
            kind: List
            metadata: {resourceVersion: ""}
            items:
            - apiVersion: networking.istio.io/v1
              kind: ServiceEntry
              metadata: {name: details, namespace: default}
              spec:
                hosts: [details.default.svc.cluster.local]
                ports: [{number: 9080, name: http-details}]
                resolution: STATIC
                endpoints: [{address: 127.0.0.1, ports: {http-details: 19090}}]
            ---
            apiVersion: install.istio.io/v1alpha1
            kind: IstioOperator
            metadata: {name: control-plane, namespace: istio-system}
            spec:
              profile: demo
              components: {egressGateways: [{name: istio-egressgateway, enabled: false}]}
              meshConfig:
                accessLogFile: /dev/stdout
                accessLogEncoding: JSON
                enableTracing: true
                outboundTrafficPolicy: {mode: REGISTRY_ONLY}
                defaultConfig:
                  concurrency: 2
                  tracing: {sampling: 100.0}
                extensionProviders:
                - name: zipkin
                  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
                - name: otel
                  opentelemetry: {service: collector, port: 4317}
                defaultProviders: {tracing: [zipkin]}
            ---
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: mesh-default, namespace: istio-system}
            spec:
              tracing:
              - providers: [{name: otel}]
                randomSamplingPercentage: 25
            """
        let (res, diags) = Self.load(yaml)
        #expect(diags.filter { $0.severity == .error }.isEmpty, "\(diags)")
        #expect(diags.contains { $0.severity == .warning && $0.message.contains("outboundTrafficPolicy") })
        #expect(res.serviceEntries.first?.ports.first?.selectedProtocol == .http)
        #expect(res.mesh.accessLogFile == "/dev/stdout" && res.mesh.accessLogEncoding == .json)
        #expect(res.mesh.tracingSampling == 100)
        #expect(res.mesh.extensionProviders.map(\.name) == ["zipkin", "otel"])
        #expect(res.mesh.defaultTracingProviders == ["zipkin"])
        #expect(res.telemetry.first?.randomSamplingPercentage == 25)
        #expect(res.telemetry.first?.tracingProviders == ["otel"])
    }

    @Test func aMissingDocumentSeparatorIsAnErrorNotASilentDrop() {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: a}
            spec: {hosts: [a.example.com], ports: [{number: 80, name: http}], resolution: DNS}
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: b}
            spec: {hosts: [b.example.com], ports: [{number: 80, name: http}], resolution: DNS}
            """
        let (_, diags) = Self.load(yaml)
        #expect(diags.contains { $0.severity == .error && $0.message.contains("duplicated key(s): 'apiVersion', 'kind'") }, "\(diags)")
    }

    @Test func requestAuthenticationIsReadAndItsErrorsReported() throws {
        let (res, diags) = Self.load("""
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: jwt, namespace: istio-system}
            spec:
              selector: {matchLabels: {istio: ingressgateway}}
              jwtRules:
              - issuer: https://issuer.example.com
                jwksUri: https://issuer.example.com/keys
                fromHeaders: [{name: X-Token, prefix: "Token "}]
                outputClaimToHeaders: [{header: X-Sub, claim: sub}]
              - issuer: https://other.example.com
              - jwks: '{"keys": []}'
                jwksUri: ftp://x
                forwardOrginalToken: true
            """)
        let errors = diags.filter { $0.severity == .error }.map(\.message)
        #expect(errors.count == 4, "\(errors)")
        #expect(errors.contains { $0.contains("jwksUri or jwks is required") })
        #expect(errors.contains { $0.contains("issuer is required") })
        #expect(errors.contains { $0.contains("must be an http:// or https:// URL") })
        #expect(errors.contains { $0.contains("unknown key 'forwardOrginalToken'") && $0.contains("did you mean") })
        let ra = try #require(res.requestAuthentications.first)
        let rule = ra.rules[0]
        #expect(rule.fromHeaders.map(\.name) == ["x-token"] && rule.fromHeaders[0].prefix == "Token " && rule.fromParams.isEmpty)
        #expect(rule.outputClaimToHeaders.map(\.header) == ["x-sub"])
        #expect(ra.rules[1].fromHeaders.map(\.name) == ["authorization"] && ra.rules[1].fromParams == ["access_token"])
        #expect(ra.applies(to: ProxyIdentity(workload: "gw", namespace: "default", labels: ["istio": "ingressgateway"], mode: .gateway)))
        #expect(!ra.applies(to: ProxyIdentity(workload: "reviews-v1", namespace: "default", labels: ["app": "reviews"])))
    }

    @Test func protocolSelectionFollowsIstio() {
        #expect(ServicePort(number: 1, name: "grpc-demosvr", protocolName: nil, targetPort: nil).selectedProtocol == .grpc)
        #expect(ServicePort(number: 1, name: "http2", protocolName: nil, targetPort: nil).selectedProtocol == .http2)
        #expect(ServicePort(number: 1, name: "tcp-db", protocolName: nil, targetPort: nil).selectedProtocol == .tcp)
        #expect(ServicePort(number: 1, name: "web", protocolName: nil, targetPort: nil).selectedProtocol == .unknown)
        #expect(ServicePort(number: 1, name: "web", protocolName: "TCP", targetPort: nil).selectedProtocol == .tcp)
    }
}
