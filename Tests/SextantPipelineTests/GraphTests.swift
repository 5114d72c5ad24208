import Logging
import SextantModel
import SextantPipeline
import SextantTesting
import Testing

@Suite struct GraphTests {
    func build(_ yaml: String, _ h: TestHarness) throws -> CollectorGraph {
        let config = try CollectorConfig.load(yaml: yaml, registry: h.registry())
        return try CollectorGraph.build(config, registry: h.registry(), telemetry: SelfTelemetry(), logger: Logger(label: "test"))
    }

    @Test func fanInFanOutAndPerPipelineProcessors() async throws {
        let h = TestHarness()
        let g = try build(
            """
            receivers:
              testrecv/a:
              testrecv/b:
            processors:
              testproc:
                tag: p
            exporters:
              testexp/1:
              testexp/2:
            service:
              pipelines:
                traces:
                  receivers: [testrecv/a, testrecv/b]
                  processors: [testproc]
                  exporters: [testexp/1, testexp/2]
                traces/raw:
                  receivers: [testrecv/a]
                  exporters: [testexp/2]
            """, h)
        try await g.start()
        try await h.send(TestData.traces(3), via: "testrecv/a")
        try await h.send(TestData.traces(2), via: "testrecv/b")
        await g.shutdown()
        // testexp/1: both receivers through the processor; testexp/2: that plus the raw pipeline.
        #expect(h.exporter("testexp/1").itemCount == 5)
        #expect(h.exporter("testexp/1").spans.allSatisfy { $0.attributes[key: "tag"] == .string("p") })
        #expect(h.exporter("testexp/2").itemCount == 8)
        #expect(h.exporter("testexp/2").spans.filter { $0.attributes[key: "tag"] == nil }.count == 3)
    }

    @Test func startsDownstreamFirstAndStopsUpstreamFirst() async throws {
        let h = TestHarness()
        let g = try build(
            """
            receivers:
              testrecv:
            processors:
              testproc/1:
              testproc/2:
            exporters:
              testexp:
            connectors:
              testconn:
            service:
              pipelines:
                traces:
                  receivers: [testrecv]
                  processors: [testproc/1, testproc/2]
                  exporters: [testconn]
                metrics:
                  receivers: [testconn]
                  processors: [testproc/1]
                  exporters: [testexp]
            """, h)
        try await g.start()
        try await h.send(TestData.traces(4), via: "testrecv")
        await g.shutdown()
        #expect(
            h.log.all == [
                "start exporter/testexp", "start processor/testproc/1@metrics", "start connector/testconn",
                "start processor/testproc/2@traces", "start processor/testproc/1@traces", "start receiver/testrecv",
                "stop receiver/testrecv", "stop processor/testproc/1@traces", "stop processor/testproc/2@traces",
                "stop connector/testconn", "stop processor/testproc/1@metrics", "stop exporter/testexp",
            ])
        // The connector turned 4 spans into 4 metric points.
        #expect(h.exporter("testexp").batches.map(\.signal) == [.metrics])
        #expect(h.exporter("testexp").itemCount == 4)
    }

    @Test func fanOutReportsTheMostSevereError() async throws {
        let a = RecordingConsumer()
        let b = RecordingConsumer()
        a.failNext([.permanent("bad")])
        b.failNext([.overloaded("full")])
        let fan = FanOutConsumer([a, b])
        await #expect(throws: ConsumerError.self) { try await fan.consume(TestData.traces(1)) }
        do {
            try await fan.consume(TestData.traces(1))
        } catch {
            Issue.record("second call should succeed: \(error)")
        }
        #expect(a.itemCount == 1 && b.itemCount == 1)
    }
}
