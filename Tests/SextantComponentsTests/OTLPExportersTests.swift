import Logging
import SextantCollector
import SextantExporters
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantReceivers
import SextantTesting
import Testing

/// Our OTLP exporters (gRPC and HTTP) into our OTLP receiver (gRPC and HTTP), end to end over sockets.
@Suite(.serialized) struct OTLPExportersTests {
    func sink() async throws -> Running {
        try await start(
            """
            receivers:
              otlp:
                protocols:
                  grpc: {endpoint: "127.0.0.1:0"}
                  http: {endpoint: "127.0.0.1:0"}
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [otlp], exporters: [testexp]}
                metrics: {receivers: [otlp], exporters: [testexp]}
                logs: {receivers: [otlp], exporters: [testexp]}
            """)
    }

    func exporterFront(_ exporter: String) async throws -> Running {
        try await start(
            """
            receivers:
              testrecv:
            exporters:
              \(exporter)
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [\(exporter.split(separator: ":")[0])]}
                logs: {receivers: [testrecv], exporters: [\(exporter.split(separator: ":")[0])]}
                metrics: {receivers: [testrecv], exporters: [\(exporter.split(separator: ":")[0])]}
            """)
    }

    @Test(arguments: ["grpc-gzip", "grpc-none", "http-proto", "http-json"])
    func exportsEverySignalLosslessly(_ mode: String) async throws {
        let back = try await sink()
        let exporter: String
        switch mode {
        case "grpc-gzip":
            exporter = "otlp: {endpoint: \"127.0.0.1:\(back.receiver.grpcPort!)\", tls: {insecure: true}, compression_params: {level: 1}}"
        case "grpc-none": exporter = "otlp: {endpoint: \"127.0.0.1:\(back.receiver.grpcPort!)\", tls: {insecure: true}, compression: none}"
        case "http-proto": exporter = "otlphttp: {endpoint: \"http://127.0.0.1:\(back.receiver.httpPort!)\", compression_params: {level: 9}}"
        default: exporter = "otlphttp: {endpoint: \"http://127.0.0.1:\(back.receiver.httpPort!)\", encoding: json, compression: none}"
        }
        let front = try await exporterFront(exporter)
        var traces = TestData.traces(5)
        if case .traces(var t) = traces {
            t.resourceSpans[0].scopeSpans[0].spans[0].events = [SpanEvent(timeUnixNano: 1500, name: "e", attributes: [KeyValue("k", .bool(true))])]
            t.resourceSpans[0].scopeSpans[0].spans[1].parentSpanID = SpanID(1)
            t.resourceSpans[0].scopeSpans[0].spans[2].status = SpanStatus(code: .error, message: "boom")
            traces = .traces(t)
        }
        try await front.harness.send(traces, via: "testrecv")
        try await front.harness.send(TestData.logs(3), via: "testrecv")
        try await front.harness.send(TestData.gauges(4), via: "testrecv")
        let got = back.harness.exporter("testexp")
        #expect(await eventually { got.itemCount == 12 })
        #expect(got.batches.contains(traces))
        #expect(got.batches.contains(TestData.logs(3)))
        #expect(got.batches.contains(TestData.gauges(4)))
        await front.graph.shutdown()
        await back.graph.shutdown()
    }

    @Test func httpExporterRetriesOn503AndDropsOn400() async throws {
        let back = try await sink()
        back.harness.exporter("testexp").failNext([.retryable("down")])
        let front = try await exporterFront(
            "otlphttp: {endpoint: \"http://127.0.0.1:\(back.receiver.httpPort!)\", retry_on_failure: {initial_interval: 10ms, randomization_factor: 0}}")
        try await front.harness.send(TestData.traces(2), via: "testrecv")  // 503, then retried → accepted
        #expect(await eventually { back.harness.exporter("testexp").itemCount == 2 })
        back.harness.exporter("testexp").failNext([.permanent("mapping")])
        try await front.harness.send(TestData.logs(1), via: "testrecv")  // 400: dropped, not retried
        let labels = [("exporter", "otlphttp"), ("signal", "logs")]
        #expect(await eventually { front.telemetry.value("sextant_exporter_send_failed_items_total", labels: labels) == 1 })
        #expect(front.telemetry.value("sextant_exporter_retries_total", labels: [("exporter", "otlphttp"), ("signal", "traces")]) == 1)
        #expect(front.telemetry.value("sextant_exporter_retries_total", labels: labels) == 0)
        #expect(back.harness.exporter("testexp").itemCount == 2)
        await front.graph.shutdown()
        await back.graph.shutdown()
    }
}
