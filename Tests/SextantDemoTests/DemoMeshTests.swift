import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantIstio
import SextantPipeline
import SextantProxy
import Testing

@testable import SextantDemo

#if canImport(Glibc)
import Glibc
#endif

/// The demo's mesh (`pipelines/mesh/` plus the generated registry) loads without a warning and routes
/// as its comments say; its Bookinfo apps forward only what Istio asks applications to propagate.
@Suite struct DemoMeshTests {
    static let repo: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    /// The mesh files and a registry generated for `plan`, written to a temp file.
    static func meshFiles(_ plan: DemoPlan, collector: (String, Int)) throws -> [String] {
        let path = "/tmp/sextant-demo-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).yaml"
        try DemoRunner.write(path, plan.registryYAML(otlpGRPC: collector))
        return try DemoRunner.yamlFiles(in: "\(repo)/pipelines/mesh") + [path]
    }

    static func table(_ files: [String], _ identity: ProxyIdentity) throws -> RouteTable {
        let (resources, warnings) = try IstioConfigLoader.load(paths: files)
        #expect(warnings.isEmpty, "\(warnings)")
        let table = RouteTable(resources: resources, identity: identity)
        #expect(table.warnings.isEmpty, "\(table.warnings)")
        return table
    }

    static let productpage = ProxyIdentity(workload: "productpage-v1", namespace: "default", labels: ["app": "productpage", "version": "v1"])

    @Test func registryPointsEveryServiceAtItsSidecarsInboundListener() throws {
        let plan = DemoPlan(basePort: 30000)
        let table = try Self.table(try Self.meshFiles(plan, collector: ("127.0.0.1", 4317)), Self.productpage)
        for w in plan.workloads where w.service != "mongodb" {
            let c = try #require(table.clusters[ClusterKey(host: "\(w.service).default.svc.cluster.local", port: 9080, subset: w.version)])
            #expect(c.endpoints.map(\.description) == ["\(w.ip):\(w.inboundPort)"], "\(w.name)")
        }
        let mongo = try #require(table.clusters[ClusterKey(host: "mongodb.default.svc.cluster.local", port: 27017)])
        #expect(mongo.protocolName == .tcp)
        #expect(table.tcpPorts == [27017])
        #expect(Set(plan.adminTargets).count == 9)
        let all = plan.workloads.flatMap { w in [w.appPort, w.inboundPort, w.outboundPort, w.adminPort, DemoPlan.mongoPort].map { "\(w.ip):\($0)" } }
            + ["\(plan.host):\(plan.gatewayPort)", "\(plan.host):\(plan.gatewayAdminPort)"]
        #expect(Set(all).count == all.count, "the port plan reuses an address")
        #expect(DemoPlan.isPodNetwork("127.0.0") && DemoPlan.isPodNetwork("127.42.7"))
        #expect(!DemoPlan.isPodNetwork("10.0.0") && !DemoPlan.isPodNetwork("127.0.0.1") && !DemoPlan.isPodNetwork("127.0.256"))
    }

    @Test func jasonGoesToReviewsV2AndOthersToTheCanary() throws {
        let table = try Self.table(try Self.meshFiles(DemoPlan(basePort: 30000), collector: ("127.0.0.1", 4317)), Self.productpage)
        let jason = RequestHead(authority: "reviews:9080", path: "/reviews/0", method: "GET", headers: [("end-user", "jason")], port: 9080)
        guard case .route(let r, _) = table.route(jason) else { Issue.record("no route for jason"); return }
        #expect(r.destinations.map(\.cluster.subset) == ["v2"])
        let anyone = RequestHead(authority: "reviews:9080", path: "/reviews/0", method: "GET", port: 9080)
        guard case .route(let c, _) = table.route(anyone) else { Issue.record("no route"); return }
        #expect(c.destinations.map { "\($0.cluster.subset ?? "-"):\($0.weight)" } == ["v1:80", "v2:10", "v3:10"])
        let ratings = RequestHead(authority: "ratings:9080", path: "/ratings/0", method: "GET", port: 9080)
        guard case .route(let f, _) = table.route(ratings) else { Issue.record("no ratings route"); return }
        #expect(f.rule.fault != nil)
        #expect(f.destinations.map { "\($0.cluster.subset ?? "-"):\($0.weight)" } == ["v1:80", "v2:20"])
    }

    @Test func gatewayServesTheProductPage() throws {
        let gateway = ProxyIdentity(
            workload: "istio-ingressgateway", namespace: "istio-system", labels: ["istio": "ingressgateway"], mode: .gateway)
        let table = try Self.table(try Self.meshFiles(DemoPlan(basePort: 30000), collector: ("127.0.0.1", 4317)), gateway)
        let head = RequestHead(authority: "bookinfo.example.com", path: "/productpage", method: "GET", port: 8080)
        guard case .route(let r, _) = table.route(head) else { Issue.record("no route"); return }
        #expect(r.destinations.map(\.cluster.host) == ["productpage.default.svc.cluster.local"])
        let other = RequestHead(authority: "bookinfo.example.com", path: "/admin", method: "GET", port: 8080)
        guard case .noRoute = table.route(other) else { Issue.record("/admin must not be routed"); return }
    }

    @Test func telemetryGoesToTheCollectorThroughItsServiceEntry() throws {
        let table = try Self.table(try Self.meshFiles(DemoPlan(basePort: 30000), collector: ("127.0.0.1", 43170)), Self.productpage)
        let tracing = try #require(TracingSettings.resolve(table))
        #expect(tracing.destination == .otlpGRPC(host: "127.0.0.1", port: 43170))
        #expect(tracing.samplingPercent == 100)
        let sinks = try AccessLogSink.resolve(table, fileOverride: "/tmp/x.log")
        #expect(sinks.count == 2)
        guard case .file(let path, .json) = sinks[0] else { Issue.record("first sink: \(sinks[0])"); return }
        #expect(path == "/tmp/x.log")
        guard case .openTelemetry(_, let destination, _, _) = sinks[1] else { Issue.record("second sink: \(sinks[1])"); return }
        #expect(destination == .otlpGRPC(host: "127.0.0.1", port: 43170))
    }

    @Test func scrapeOverlayKeepsThePipelinesReceivers() {
        let yaml = DemoPlan(basePort: 30000).scrapeOverlayYAML(pipeline: "metrics", receivers: ["otlp", "prometheusremotewrite"], interval: "5s")
        #expect(yaml.contains("receivers: [otlp, prometheusremotewrite, prometheus/mesh]"))
        #expect(yaml.contains(#"targets: ["127.0.0.1:30000", "127.0.0.11:30103", "127.0.0.12:30113""#))
    }

    /// productpage calls details and reviews through a stand-in sidecar that records what it receives:
    /// the trace, request-ID and routing headers go on; anything else stays behind.
    @Test func productpageForwardsOnlyThePropagatedHeaders() async throws {
        let logger = Logger(label: "test")
        let seen = Recorder()
        let sidecar = try await HTTPServer.start(HTTPServerConfiguration(host: "127.0.0.1", port: 0), logger: logger) { request in
            seen.add(request.head)
            var body = ByteBuffer()
            body.writeString(request.path.hasPrefix("/details") ? BookinfoApp.detailsJSON(id: "0") : #"{"reviews":[]}"#)
            return HTTPResponse(status: .ok, body: body)
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let w = DemoWorkload(service: "productpage", version: "v1", ip: "127.0.0.1", appPort: 0, inboundPort: 0, outboundPort: sidecar.port, adminPort: 0)
        let app = BookinfoApp(workload: w, client: client, logger: logger)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/productpage")
        let propagated: [(String, String)] = [
            ("x-request-id", "rid-1"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ("tracestate", "k=v"), ("x-b3-traceid", "0af7651916cd43dd8448eb211c80319c"), ("x-b3-spanid", "b7ad6b7169203331"),
            ("x-b3-sampled", "1"), ("end-user", "jason"), ("user-agent", "tester"),
        ]
        for (k, v) in propagated { head.headers.add(name: k, value: v) }
        head.headers.add(name: "x-not-propagated", value: "1")
        head.headers.add(name: "cookie", value: "session=secret")
        head.headers.add(name: PeerMetadata.header, value: "spoofed")
        let response = await app.respond(HTTPRequest(head: head, body: ByteBuffer()))
        try await client.shutdown()
        await sidecar.shutdown()
        #expect(response.status == .ok)
        let heads = seen.heads
        #expect(Set(heads.map(\.uri)) == ["/details/0", "/reviews/0"])
        for h in heads {
            for (k, v) in propagated { #expect(h.headers[k] == [v], "\(h.uri) \(k)") }
            #expect(h.headers["host"] == [h.uri.hasPrefix("/details") ? "details:9080" : "reviews:9080"])
            for name in ["x-not-propagated", "cookie", PeerMetadata.header] { #expect(!h.headers.contains(name: name), "\(h.uri) \(name)") }
        }
    }
}

/// Request heads seen by a test server, from any thread.
final class Recorder: Sendable {
    private let box = NIOLockedValueBox<[HTTPRequestHead]>([])
    func add(_ h: HTTPRequestHead) { box.withLockedValue { $0.append(h) } }
    var heads: [HTTPRequestHead] { box.withLockedValue { $0 } }
}
