import SextantCollector
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

/// `memory_limiter`: above the soft limit, data is refused as overload (429 / RESOURCE_EXHAUSTED), never
/// dropped silently or answered with 500; below it, data flows.
@Suite(.serialized) struct MemoryLimiterTests {
    func collector(limitMiB: Int) async throws -> Running {
        try await start(
            """
            receivers:
              otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
            processors:
              memory_limiter: {check_interval: 100ms, limit_mib: \(limitMiB), spike_limit_mib: \(max(1, limitMiB / 5))}
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [otlp], processors: [memory_limiter], exporters: [testexp]}
            """)
    }

    func post(_ port: Int) throws -> RawHTTPClient.Response {
        guard case .traces(let t) = TestData.traces(3) else { fatalError() }
        let c = try RawHTTPClient(port: port)
        c.post("/v1/traces", body: OTLPProtobuf.encode(t), headers: [("Content-Type", "application/x-protobuf")])
        return try c.readResponse()
    }

    @Test func refusesWith429AboveTheSoftLimit() async throws {
        // The test process itself uses far more than 2 MiB, so the limiter refuses from its first check.
        let r = try await collector(limitMiB: 2)
        let response = try post(r.receiver.httpPort!)
        #expect(response.status == 429)
        #expect(response.header("retry-after") != nil)
        #expect(try OTLPProtobuf.decodeStatus(response.body).message.contains("memory_limiter"))
        #expect(r.harness.exporter("testexp").itemCount == 0)
        #expect(r.telemetry.value("sextant_processor_memory_limiter_refused_items_total", labels: [("processor", "memory_limiter"), ("pipeline", "traces")]) == 3)
        await r.graph.shutdown()
    }

    @Test func passesDataBelowTheLimit() async throws {
        let r = try await collector(limitMiB: 100_000)
        #expect(try post(r.receiver.httpPort!).status == 200)
        #expect(r.harness.exporter("testexp").itemCount == 3)
        await r.graph.shutdown()
    }

    @Test func configNeedsALimitAndAnInterval() throws {
        do {
            _ = try CollectorConfig.load(
                yaml: """
                    receivers: {testrecv: {}}
                    processors: {memory_limiter: {}}
                    exporters: {testexp: {}}
                    service: {pipelines: {traces: {receivers: [testrecv], processors: [memory_limiter], exporters: [testexp]}}}
                    """, file: "m.yaml", registry: TestHarness().registry(base: BuiltinComponents.registry))
            Issue.record("expected errors")
        } catch let e as ConfigError {
            let text = e.diagnostics.map(\.message)
            #expect(text.contains { $0.contains("check_interval is required") })
            #expect(text.contains { $0.contains("needs limit_mib or limit_percentage") })
        }
    }
}
