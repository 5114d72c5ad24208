#if canImport(Glibc)
import Glibc
#endif
import SextantJaeger
import SextantModel
import SextantReceivers
import SextantTesting
import SextantThrift
import Testing

/// Sends one UDP datagram to 127.0.0.1:port.
func sendUDP(_ bytes: [UInt8], port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { a in
        a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}

@Suite(.serialized) struct JaegerComponentTests {
    func sink() async throws -> Running {
        try await start(
            """
            receivers:
              jaeger:
                protocols:
                  thrift_http: {endpoint: "127.0.0.1:0"}
                  thrift_compact: {endpoint: "127.0.0.1:0"}
                  thrift_binary: {endpoint: "127.0.0.1:0"}
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [jaeger], exporters: [testexp]}
            """)
    }

    func sampleBatch(_ name: String) -> JaegerBatch {
        JaegerBatch(
            process: JaegerProcess(serviceName: "frontend", tags: [.string("hostname", "node-1")]),
            spans: [
                JaegerSpan(
                    traceIdLow: 0x1111, traceIdHigh: 0x2222, spanId: 0x33, parentSpanId: 0, operationName: name, references: [], flags: 1,
                    startTime: 1_700_000_000_000_000, duration: 1500, tags: [.string("span.kind", "server"), .bool("error", true)], logs: [])
            ])
    }

    @Test func exporterToHTTPReceiver() async throws {
        let back = try await sink()
        let port = back.component("receiver/jaeger", as: JaegerReceiver.self).httpPort!
        let front = try await start(
            """
            receivers:
              testrecv:
            exporters:
              jaeger_thrift: {endpoint: "http://127.0.0.1:\(port)/api/traces"}
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [jaeger_thrift]}
            """)
        let span = Span(
            traceID: TraceID(high: 9, low: 10), spanID: SpanID(11), parentSpanID: SpanID(12), name: "GET /", kind: .client,
            startTimeUnixNano: 1_700_000_000_000_001_000, endTimeUnixNano: 1_700_000_000_000_501_000,
            attributes: [KeyValue("http.status_code", .int(503))], status: SpanStatus(code: .error, message: "unavailable"))
        try await front.harness.send(
            .traces(TracesData(resourceSpans: [ResourceSpans(resource: Resource(attributes: [KeyValue("service.name", .string("web"))]), scopeSpans: [ScopeSpans(spans: [span])])])),
            via: "testrecv")
        let got = back.harness.exporter("testexp")
        #expect(await eventually { got.itemCount == 1 })
        let s = try #require(got.spans.first)
        #expect(s.traceID == span.traceID && s.spanID == span.spanID && s.parentSpanID == span.parentSpanID)
        #expect(s.kind == .client && s.name == "GET /")
        #expect(s.startTimeUnixNano == span.startTimeUnixNano && s.endTimeUnixNano == span.endTimeUnixNano)
        #expect(s.status.code == .error && s.status.message == "unavailable")
        #expect(s.attributes[key: "http.status_code"] == .int(503))
        await front.graph.shutdown()
        await back.graph.shutdown()
    }

    @Test func udpCompactAndBinaryKeepServingAfterBadDatagrams() async throws {
        let back = try await sink()
        let recv = back.component("receiver/jaeger", as: JaegerReceiver.self)
        let compact = try #require(recv.udpPort(.compact))
        let binary = try #require(recv.udpPort(.binary))
        sendUDP([0x82, 0x21, 0x01], port: compact)  // truncated compact message
        sendUDP(Array(repeating: 0xff, count: 64), port: binary)
        sendUDP(JaegerThrift.encodeAgentEmitBatch(sampleBatch("via-compact"), protocol: .compact, seqID: 1), port: compact)
        sendUDP(JaegerThrift.encodeAgentEmitBatch(sampleBatch("via-binary"), protocol: .binary, seqID: 2), port: binary)
        let got = back.harness.exporter("testexp")
        #expect(await eventually { got.itemCount == 2 })
        #expect(Set(got.spans.map(\.name)) == ["via-compact", "via-binary"])
        #expect(got.spans.allSatisfy { $0.kind == .server && $0.status.code == .error && $0.traceID == TraceID(high: 0x2222, low: 0x1111) })
        #expect(back.telemetry.value("sextant_receiver_malformed_datagrams_total", labels: [("receiver", "jaeger")]) == 2)
        await back.graph.shutdown()
    }

    @Test func httpBadInput() async throws {
        let back = try await sink()
        let port = back.component("receiver/jaeger", as: JaegerReceiver.self).httpPort!
        let c = try RawHTTPClient(port: port)
        var truncated = JaegerThrift.encodeBatch(sampleBatch("x"), protocol: .binary)
        truncated.removeLast(10)
        c.post("/api/traces", body: truncated, headers: [("Content-Type", "application/x-thrift")])
        let r = try c.readResponse()
        #expect(r.status == 400 && r.text.contains("Unable to process request body"))
        c.post("/api/traces", body: [1, 2, 3], headers: [("Content-Type", "application/json")])
        #expect(try c.readResponse().status == 415)
        c.post("/api/traces", body: JaegerThrift.encodeBatch(sampleBatch("ok"), protocol: .binary), headers: [("Content-Type", "application/x-thrift")])
        #expect(try c.readResponse().status == 202)
        #expect(back.harness.exporter("testexp").spans.map(\.name) == ["ok"])
        await back.graph.shutdown()
    }
}
