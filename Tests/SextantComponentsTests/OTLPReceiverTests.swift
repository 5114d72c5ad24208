import Logging
import SextantCollector
import SextantHTTP
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantReceivers
import SextantTesting
import Testing

/// The OTLP/HTTP receiver in a real collector graph, over real sockets, against the bad-input rules:
/// each bad request gets its status and reason, and neither the connection's neighbours nor the
/// process are disturbed.
@Suite(.serialized) struct OTLPReceiverTests {
    /// Starts `otlp` (port 0, small limits) → `testexp`, runs `body`, shuts down.
    func withReceiver(maxBody: Int = 64 << 10, _ body: (Int, TestHarness) async throws -> Void) async throws {
        let h = TestHarness()
        let registry = h.registry(base: BuiltinComponents.registry)
        let config = try CollectorConfig.load(
            yaml: """
                receivers:
                  otlp:
                    protocols:
                      http:
                        endpoint: 127.0.0.1:0
                        max_request_body_size: \(maxBody)
                exporters:
                  testexp:
                service:
                  pipelines:
                    traces: {receivers: [otlp], exporters: [testexp]}
                    logs: {receivers: [otlp], exporters: [testexp]}
                """, registry: registry)
        let graph = try CollectorGraph.build(config, registry: registry, telemetry: SelfTelemetry(), logger: Logger(label: "t"))
        try await graph.start()
        let receiver = graph.nodes.first { $0.label == "receiver/otlp" }!.component as! OTLPReceiver
        do {
            try await body(receiver.httpPort!, h)
        } catch {
            await graph.shutdown()
            throw error
        }
        await graph.shutdown()
    }

    func protobufTraces(_ n: Int, traceIDBytes: [UInt8]? = nil) -> [UInt8] {
        guard case .traces(let t) = TestData.traces(n) else { return [] }
        return OTLPProtobuf.encode(t)
    }

    /// A canonical trace request travels as its bytes only when nothing downstream reads the model: here
    /// `batch` and an exporter that says it does not (as `otlp` does); a second exporter that reads the
    /// model turns it off. Either way the same spans arrive.
    @Test func keepsTraceRequestsEncodedOnlyWhenNothingReadsTheModel() async throws {
        for (exporters, kept) in [("[passthrough]", true), ("[passthrough, testexp]", false)] {
            let h = TestHarness()
            let registry = h.registry(base: BuiltinComponents.registry)
            let config = try CollectorConfig.load(
                yaml: """
                    receivers:
                      otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}
                    processors:
                      batch: {timeout: 1ms}
                    exporters:
                      testexp:
                      testexp/passthrough: {reads_model: false}
                    service:
                      pipelines:
                        traces: {receivers: [otlp], processors: [batch], exporters: \(exporters.replacingOccurrences(of: "passthrough", with: "testexp/passthrough"))}
                    """, registry: registry)
            let telemetry = SelfTelemetry()
            let graph = try CollectorGraph.build(config, registry: registry, telemetry: telemetry, logger: Logger(label: "t"))
            try await graph.start()
            let receiver = graph.nodes.first { $0.label == "receiver/otlp" }!.component as! OTLPReceiver
            let c = try RawHTTPClient(port: receiver.httpPort!)
            c.post("/v1/traces", body: protobufTraces(3), headers: [("Content-Type", "application/x-protobuf")])
            #expect(try c.readResponse().status == 200)
            let out = h.exporter("testexp/passthrough")
            #expect(await eventually { out.itemCount == 3 })
            guard case .traces(let t)? = out.batches.first else {
                Issue.record("no traces")
                await graph.shutdown()
                return
            }
            #expect((t.encoded != nil) == kept, "\(exporters)")
            #expect(
                telemetry.value("sextant_receiver_kept_encoded_spans_total", labels: [("receiver", "otlp"), ("transport", "http")])
                    == (kept ? 3 : nil), "\(exporters)")
            guard case .traces(let expected) = TestData.traces(3) else { return }
            #expect(t == expected)
            await graph.shutdown()
        }
    }

    @Test func acceptsProtobufJSONAndGzip() async throws {
        try await withReceiver { port, h in
            let c = try RawHTTPClient(port: port)
            c.post("/v1/traces", body: protobufTraces(3), headers: [("Content-Type", "application/x-protobuf")])
            let r1 = try c.readResponse()
            #expect(r1.status == 200)
            #expect(r1.header("content-type") == "application/x-protobuf")
            #expect(try OTLPProtobuf.decodeExportResponse(r1.body) == nil)

            guard case .traces(let t) = TestData.traces(2) else { return }
            c.post("/v1/traces", body: OTLPJSON.encode(t), headers: [("Content-Type", "application/json; charset=utf-8")])
            let r2 = try c.readResponse()
            #expect(r2.status == 200 && r2.text == "{}")

            c.post(
                "/v1/traces", body: Inflater.gzip(protobufTraces(4)),
                headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")])
            #expect(try c.readResponse().status == 200)
            #expect(h.exporter("testexp").itemCount == 9)
        }
    }

    @Test func malformedBodiesGet400WithStatusAndTheConnectionSurvives() async throws {
        try await withReceiver { port, h in
            let c = try RawHTTPClient(port: port)
            c.post("/v1/traces", body: [0x0a, 0xff, 0xff, 0xff, 0x0f, 1], headers: [("Content-Type", "application/x-protobuf")])
            let r = try c.readResponse()
            #expect(r.status == 400)
            let status = try OTLPProtobuf.decodeStatus(r.body)
            #expect(status.code == 3)
            #expect(status.message.contains("malformed protobuf traces request"))

            c.post("/v1/logs", body: Array("{\"resourceLogs\": [".utf8), headers: [("Content-Type", "application/json")])
            let j = try c.readResponse()
            #expect(j.status == 400)
            #expect(j.text.contains("\"code\":3"))

            // Same connection, still serving.
            c.post("/v1/traces", body: protobufTraces(1), headers: [("Content-Type", "application/x-protobuf")])
            #expect(try c.readResponse().status == 200)
            #expect(h.exporter("testexp").itemCount == 1)
        }
    }

    @Test func statusCodesForPathMethodAndMediaType() async throws {
        try await withReceiver { port, _ in
            let c = try RawHTTPClient(port: port)
            c.post("/v1/nope", body: [], headers: [("Content-Type", "application/x-protobuf")])
            #expect(try c.readResponse().status == 404)
            c.post("/v1/metrics", body: [], headers: [("Content-Type", "application/x-protobuf")])
            #expect(try c.readResponse().status == 404)  // no metrics pipeline uses this receiver
            c.send("GET /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n")
            let get = try c.readResponse()
            #expect(get.status == 405 && get.header("allow") == "POST")
            c.post("/v1/traces", body: Array("x".utf8), headers: [("Content-Type", "text/plain")])
            #expect(try c.readResponse().status == 415)
            c.post("/v1/traces", body: Array("x".utf8), headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "br")])
            #expect(try c.readResponse().status == 415)
        }
    }

    @Test func oversizedBodiesGet413() async throws {
        try await withReceiver(maxBody: 1024) { port, h in
            // Declared too large: refused before reading the body, connection closed.
            let c = try RawHTTPClient(port: port)
            c.post("/v1/traces", body: [UInt8](repeating: 0, count: 4096), headers: [("Content-Type", "application/x-protobuf")])
            let r = try c.readResponse()
            #expect(r.status == 413)
            #expect(try OTLPProtobuf.decodeStatus(r.body).message.contains("exceeds the limit of 1024 bytes"))

            // Chunked, growing past the limit while streaming.
            let c2 = try RawHTTPClient(port: port)
            c2.send("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in 0..<3 { c2.send("200\r\n" + String(repeating: "a", count: 512) + "\r\n") }
            #expect(try c2.readResponse().status == 413)

            // A gzip bomb: 2 KiB on the wire, 10 MiB inflated. Refused at the limit, not inflated whole.
            let bomb = Inflater.gzip([UInt8](repeating: 0, count: 10 << 20), level: 9)
            #expect(bomb.count < 1024 * 12)
            let c3 = try RawHTTPClient(port: port)
            let small = Array(bomb.prefix(1024))  // keep under the compressed limit: a truncated bomb still inflates past 1 KiB
            c3.post("/v1/traces", body: small, headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")])
            let b = try c3.readResponse()
            #expect(b.status == 413)
            #expect(try OTLPProtobuf.decodeStatus(b.body).message.contains("decompressed body exceeds the limit"))
            // Keep-alive survives a 413 that was fully read.
            c3.post("/v1/traces", body: protobufTraces(1), headers: [("Content-Type", "application/x-protobuf")])
            #expect(try c3.readResponse().status == 200)

            // A corrupt gzip body is a 400.
            c3.post("/v1/traces", body: [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad], headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")])
            #expect(try c3.readResponse().status == 400)
            #expect(h.exporter("testexp").itemCount == 1)
        }
    }

    @Test func malformedHTTPClosesOnlyThatConnection() async throws {
        try await withReceiver { port, _ in
            let good = try RawHTTPClient(port: port)
            let bad = try RawHTTPClient(port: port)
            bad.send("THIS IS NOT HTTP\r\n\r\n")
            let r = try bad.readResponse()
            #expect(r.status == 400)
            #expect(bad.isClosedByPeer())
            good.post("/v1/traces", body: protobufTraces(1), headers: [("Content-Type", "application/x-protobuf")])
            #expect(try good.readResponse().status == 200)
        }
    }

    @Test func partialSuccessForInvalidSpanIDs() async throws {
        try await withReceiver { port, h in
            guard case .traces(var t) = TestData.traces(3) else { return }
            t.resourceSpans[0].scopeSpans[0].spans[1].traceID = .zero
            let c = try RawHTTPClient(port: port)
            c.post("/v1/traces", body: OTLPProtobuf.encode(t), headers: [("Content-Type", "application/x-protobuf")])
            let r = try c.readResponse()
            #expect(r.status == 200)
            let partial = try #require(try OTLPProtobuf.decodeExportResponse(r.body))
            #expect(partial.rejected == 1)
            #expect(!partial.errorMessage.isEmpty)
            #expect(h.exporter("testexp").itemCount == 2)
        }
    }

    @Test func overloadedPipelineAnswers429WithRetryAfter() async throws {
        try await withReceiver { port, h in
            h.exporter("testexp").failNext([.overloaded("queue full"), .retryable("backend down")])
            let c = try RawHTTPClient(port: port)
            c.post("/v1/traces", body: protobufTraces(1), headers: [("Content-Type", "application/x-protobuf")])
            let r = try c.readResponse()
            #expect(r.status == 429)
            #expect(r.header("retry-after") != nil)
            #expect(try OTLPProtobuf.decodeStatus(r.body).code == 8)
            c.post("/v1/traces", body: protobufTraces(1), headers: [("Content-Type", "application/x-protobuf")])
            let r2 = try c.readResponse()
            #expect(r2.status == 503)
            #expect(try OTLPProtobuf.decodeStatus(r2.body).code == 14)
        }
    }
}

@Suite struct HealthCheckTests {
    @Test func healthCheckFollowsReadiness() async throws {
        let registry = BuiltinComponents.registry
        let config = try CollectorConfig.load(
            yaml: """
                extensions:
                  health_check:
                    endpoint: 127.0.0.1:0
                receivers:
                  otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
                exporters:
                  debug:
                service:
                  extensions: [health_check]
                  pipelines:
                    logs: {receivers: [otlp], exporters: [debug]}
                """, registry: registry)
        let readiness = Readiness()
        let graph = try CollectorGraph.build(
            config, registry: registry, telemetry: SelfTelemetry(), logger: Logger(label: "t"), readiness: readiness)
        #expect(graph.nodes.first?.label == "extension/health_check")
        try await graph.start()
        let port = try #require((graph.nodes[0].component as? HealthCheckExtension)?.port)
        let c = try RawHTTPClient(port: port)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let before = try c.readResponse()
        #expect(before.status == 503 && before.text == #"{"status":"Server not available"}"#)
        readiness.set(true)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let after = try c.readResponse()
        #expect(after.status == 200 && after.text == #"{"status":"Server available"}"#)
        await graph.shutdown()
    }
}
