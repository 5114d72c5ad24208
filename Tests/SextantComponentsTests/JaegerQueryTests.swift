import SextantExporters
import SextantModel
import SextantPipeline
import SextantTesting
import Testing

/// The embedded trace backend: spans in, Jaeger query API out, over a real socket.
@Suite(.serialized) struct JaegerQueryExporterTests {
    @Test func servesWhatItStored() async throws {
        let r = try await start(
            """
            receivers:
              testrecv:
            exporters:
              jaeger_query: {endpoint: "127.0.0.1:0", max_spans: 3}
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [jaeger_query]}
            """)
        let q = r.component("exporter/jaeger_query", as: JaegerQueryExporter.self)
        let now = SystemTime.nowNanos()  // searches look back two days by default, as jaeger-query does
        try await r.harness.send(
            traces([span("GET /a", trace: 1, id: 1, start: now, end: now + 2_000_000), span("db", trace: 1, id: 2, kind: .client, start: now, end: now + 1_000_000)]),
            via: "testrecv")
        let c = try RawHTTPClient(port: q.port!)
        c.send("GET /api/services HTTP/1.1\r\nHost: x\r\n\r\n")
        let services = try c.readResponse()
        #expect(services.status == 200 && services.text.contains(#""data":["checkout"]"#))
        c.send("GET /api/traces/\(TraceID(high: 7, low: 1).hex) HTTP/1.1\r\nHost: x\r\n\r\n")
        let trace = try c.readResponse()
        #expect(trace.status == 200 && trace.text.contains(#""operationName":"GET /a""#) && trace.text.contains(#""operationName":"db""#))
        c.send("GET /api/traces?service=checkout&operation=db HTTP/1.1\r\nHost: x\r\n\r\n")
        let found = try c.readResponse()
        #expect(found.status == 200 && found.text.contains(#""spanID":"0000000000000002""#), "\(found.text)")
        c.send("GET /api/traces HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try c.readResponse().status == 400)
        // Bounded: two more traces push the first one out (max_spans 3), and the eviction is counted.
        try await r.harness.send(traces([span("b", trace: 2, id: 3)]), via: "testrecv")
        try await r.harness.send(traces([span("c", trace: 3, id: 4)]), via: "testrecv")
        c.send("GET /api/traces/\(TraceID(high: 7, low: 1).hex) HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try c.readResponse().status == 404)
        #expect(r.telemetry.value("sextant_exporter_jaeger_query_evicted_spans_total", labels: [("exporter", "jaeger_query")]) == 2)
        await r.graph.shutdown()
    }
}
