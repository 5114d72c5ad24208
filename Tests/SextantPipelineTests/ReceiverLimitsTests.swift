import Logging
import SextantModel
import SextantPipeline
import SextantTesting
import Testing

/// The `limits:` block every receiver accepts: parsing, errors with positions, and enforcement
/// between a receiver and its pipelines.
@Suite struct ReceiverLimitsTests {
    static func yaml(_ receiver: String) -> String {
        """
        receivers:
          testrecv:
        \(receiver)
        exporters:
          testexp:
        service:
          pipelines:
            traces: {receivers: [testrecv], exporters: [testexp]}
            logs: {receivers: [testrecv], exporters: [testexp]}
        """
    }

    func errors(_ yaml: String) -> [String] {
        do {
            _ = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: TestHarness().registry())
            return []
        } catch let e as ConfigError {
            return e.diagnostics.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func absentBlockMeansDefaults() throws {
        let c = try CollectorConfig.load(yaml: Self.yaml(""), registry: TestHarness().registry())
        let def = try #require(c.definition(.receiver, ComponentID(type: "testrecv")))
        #expect(def.limits == ReceiverLimits())
        #expect(def.limits.telemetry == TelemetryLimits(maxAttributes: 128, maxAttributeValueLength: 65536, maxEvents: 128, maxLinks: 128))
        #expect(def.limits.maxConnections == 1000)
    }

    @Test func parsesEveryKeyNextToTheReceiversOwn() throws {
        let c = try CollectorConfig.load(
            yaml: Self.yaml(
                """
                    tag: t
                    limits: {max_attributes: 16, max_attribute_value_length: 4KiB, max_events: 0, max_links: 2, max_connections: 8}
                """), registry: TestHarness().registry())
        let def = try #require(c.definition(.receiver, ComponentID(type: "testrecv")))
        #expect(
            def.limits
                == ReceiverLimits(
                    telemetry: TelemetryLimits(maxAttributes: 16, maxAttributeValueLength: 4096, maxEvents: 0, maxLinks: 2), maxConnections: 8))
    }

    @Test func errorsHaveTheirPositions() {
        let got = errors(
            Self.yaml(
                """
                    limits:
                      max_atributes: 3
                      max_events: -1
                      max_connections: 0
                      max_attribute_value_length: lots
                """))
        #expect(
            got == [
                "c.yaml:4:7: error: unknown key 'max_atributes' in receivers::testrecv::limits (did you mean 'max_attributes'?)",
                "c.yaml:5:19: error: receivers::testrecv::limits::max_events must be at least 0, found -1",
                "c.yaml:6:24: error: receivers::testrecv::limits::max_connections must be at least 1, found 0",
                "c.yaml:7:35: error: receivers::testrecv::limits::max_attribute_value_length must be a byte size such as 20971520 or 20MiB, found 'lots'",
            ])
    }

    @Test func onlyReceiversHaveLimits() {
        let got = errors(
            """
            receivers:
              testrecv:
            exporters:
              testexp:
                limits: {max_attributes: 1}
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [testexp]}
            """)
        #expect(got == ["c.yaml:5:5: error: unknown key 'limits' in exporters::testexp"])
    }

    @Test func enforcedBetweenReceiverAndPipelinesAndCounted() async throws {
        let h = TestHarness()
        let telemetry = SelfTelemetry()
        let config = try CollectorConfig.load(
            yaml: Self.yaml("    limits: {max_attributes: 2, max_attribute_value_length: 4, max_events: 1, max_links: 1}"),
            registry: h.registry())
        let g = try CollectorGraph.build(config, registry: h.registry(), telemetry: telemetry, logger: Logger(label: "test"))
        try await g.start()
        let span = Span(
            traceID: TraceID(high: 0, low: 1), spanID: SpanID(1),
            attributes: [KeyValue("a", .string("abcdefgh")), KeyValue("b", .int(1)), KeyValue("c", .int(2))],
            events: [SpanEvent(name: "1"), SpanEvent(name: "2"), SpanEvent(name: "3")],
            links: [SpanLink(traceID: TraceID(high: 0, low: 2), spanID: SpanID(2)), SpanLink(traceID: TraceID(high: 0, low: 3), spanID: SpanID(3))])
        try await h.send(.traces(TracesData(resourceSpans: [ResourceSpans(scopeSpans: [ScopeSpans(spans: [span])])])), via: "testrecv")
        try await h.send(TestData.logs(3), via: "testrecv")
        await g.shutdown()

        let got = try #require(h.exporter("testexp").spans.first)
        #expect(got.attributes == [KeyValue("a", .string("abcd")), KeyValue("b", .int(1))])
        #expect(got.droppedAttributesCount == 1 && got.events.count == 1 && got.droppedEventsCount == 2)
        #expect(got.links.count == 1 && got.droppedLinksCount == 1)
        #expect(h.exporter("testexp").itemCount == 4)
        let labels = [("receiver", "testrecv")]
        #expect(telemetry.value("sextant_receiver_dropped_attributes_total", labels: labels) == 1)
        #expect(telemetry.value("sextant_receiver_truncated_attributes_total", labels: labels) == 1)
        #expect(telemetry.value("sextant_receiver_dropped_span_events_total", labels: labels) == 2)
        #expect(telemetry.value("sextant_receiver_dropped_span_links_total", labels: labels) == 1)
    }
}
