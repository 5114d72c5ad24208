import SextantModel
import SextantReceivers
import SextantTesting
import SextantZipkin
import Testing

/// Our `zipkin` exporter into our `zipkin` receiver over sockets, both formats; bad input on the receiver.
@Suite(.serialized) struct ZipkinComponentTests {
    func sink() async throws -> Running {
        try await start(
            """
            receivers:
              zipkin: {endpoint: "127.0.0.1:0", max_request_body_size: 65536}
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [zipkin], exporters: [testexp]}
            """)
    }

    func sample() -> TracesData {
        var span = Span(
            traceID: TraceID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10), spanID: SpanID(0xabc), parentSpanID: SpanID(0xdef),
            name: "GET /items", kind: .server, startTimeUnixNano: 1_700_000_000_000_000_000, endTimeUnixNano: 1_700_000_000_250_000_000,
            attributes: [KeyValue("http.method", .string("GET"))])
        span.events = [SpanEvent(timeUnixNano: 1_700_000_000_100_000_000, name: "cache.miss")]
        span.status = SpanStatus(code: .error, message: "boom")
        return TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [KeyValue("service.name", .string("frontend"))]),
                scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "lib", version: "1.0"), spans: [span])])
        ])
    }

    @Test(arguments: ["json", "proto"])
    func exporterToReceiver(_ format: String) async throws {
        let back = try await sink()
        let port = back.component("receiver/zipkin", as: ZipkinReceiver.self).port!
        let front = try await start(
            """
            receivers:
              testrecv:
            exporters:
              zipkin: {endpoint: "http://127.0.0.1:\(port)/api/v2/spans", format: \(format)}
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [zipkin]}
            """)
        try await front.harness.send(.traces(sample()), via: "testrecv")
        let got = back.harness.exporter("testexp")
        #expect(await eventually { got.itemCount == 1 })
        let s = try #require(got.spans.first)
        let want = sample().resourceSpans[0].scopeSpans[0].spans[0]
        #expect(s.traceID == want.traceID && s.spanID == want.spanID && s.parentSpanID == want.parentSpanID)
        #expect(s.name == want.name && s.kind == .server)
        #expect(s.startTimeUnixNano == want.startTimeUnixNano && s.endTimeUnixNano == want.endTimeUnixNano)
        #expect(s.status == want.status)
        #expect(s.events.map(\.name) == ["cache.miss"] && s.events[0].timeUnixNano == want.events[0].timeUnixNano)
        #expect(s.attributes[key: "http.method"] == .string("GET"))
        guard case .traces(let t) = got.batches[0] else { return }
        #expect(t.resourceSpans[0].resource.serviceName == "frontend")
        #expect(t.resourceSpans[0].scopeSpans[0].scope.name == "lib")
        await front.graph.shutdown()
        await back.graph.shutdown()
    }

    @Test func receiverBadInput() async throws {
        let back = try await sink()
        let port = back.component("receiver/zipkin", as: ZipkinReceiver.self).port!
        let c = try RawHTTPClient(port: port)
        c.post("/api/v2/spans", body: Array("[{\"traceId\":".utf8), headers: [("Content-Type", "application/json")])
        let bad = try c.readResponse()
        #expect(bad.status == 400 && bad.text.contains("malformed Zipkin JSON"))
        c.post("/api/v2/spans", body: Array(#"[{"traceId":"00000000000000000000000000000000","id":"0000000000000001","name":"x"}]"#.utf8), headers: [("Content-Type", "application/json")])
        let zero = try c.readResponse()
        #expect(zero.status == 400 && zero.text.contains("no valid spans"))
        c.post(
            "/api/v2/spans",
            body: Array(#"[{"traceId":"zz","id":"0000000000000001"},{"traceId":"0000000000000001","id":"0000000000000002","name":"ok"}]"#.utf8),
            headers: [("Content-Type", "application/json")])
        #expect(try c.readResponse().status == 202)
        c.post("/api/v2/spans", body: [UInt8](repeating: 0x20, count: 70000), headers: [("Content-Type", "application/json")])
        #expect(try c.readResponse().status == 413)
        let c2 = try RawHTTPClient(port: port)
        c2.post("/api/v1/spans", body: Array("[]".utf8), headers: [("Content-Type", "application/json")])
        #expect(try c2.readResponse().status == 404)
        #expect(back.harness.exporter("testexp").spans.map(\.name) == ["ok"])
        #expect(back.telemetry.value("sextant_receiver_refused_items_total", labels: [("receiver", "zipkin"), ("signal", "traces"), ("transport", "http")]) == 2)
        await back.graph.shutdown()
    }
}
