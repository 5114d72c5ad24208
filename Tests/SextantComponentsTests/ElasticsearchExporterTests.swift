import Foundation
import Logging
import NIOCore
import SextantExporters
import SextantHTTP
import SextantModel
import SextantPipeline
import Synchronization
import Testing

/// An in-process `_bulk` stub: records each request and answers each document with the next status
/// from its script (201 once the script runs out), or a whole-request status.
struct BulkStub: Sendable {
    struct Received: Sendable {
        var headers: [(String, String)]
        var lines: [String]
        var documents: [String] { stride(from: 1, to: lines.count, by: 2).map { lines[$0] } }
    }

    final class Script: Sendable {
        struct State {
            var wholeRequest: [Int] = []
            var itemStatuses: [Int] = []
            var received: [Received] = []
        }

        let state: Mutex<State>

        init(whole: [Int], items: [Int]) { state = Mutex(State(wholeRequest: whole, itemStatuses: items)) }

        func answer(_ request: HTTPRequest) -> HTTPResponse {
            let text = String(buffer: request.body)
            let lines = text.split(separator: "\n").map(String.init)
            let headers = request.head.headers.map { ($0.name.lowercased(), $0.value) }
            return state.withLock { s in
                s.received.append(Received(headers: headers, lines: lines))
                if !s.wholeRequest.isEmpty {
                    return HTTPResponse.text(.init(statusCode: s.wholeRequest.removeFirst()), #"{"error":"scripted"}"#)
                }
                var items: [String] = []
                for _ in 0..<(lines.count / 2) {
                    let status = s.itemStatuses.isEmpty ? 201 : s.itemStatuses.removeFirst()
                    let error = status < 300 ? "" : #","error":{"type":"scripted_\#(status)","reason":"scripted status \#(status)"}"#
                    items.append(#"{"create":{"_index":"x","status":\#(status)\#(error)}}"#)
                }
                return HTTPResponse.text(.ok, #"{"took":1,"errors":true,"items":["# + items.joined(separator: ",") + "]}")
            }
        }
    }

    let server: HTTPServer
    let script: Script

    var received: [Received] { script.state.withLock { $0.received } }
    var url: String { "http://127.0.0.1:\(server.port)" }

    /// `whole`: statuses for whole requests, in turn; `items`: statuses for documents, in turn.
    static func start(whole: [Int] = [], items: [Int] = []) async throws -> BulkStub {
        let script = Script(whole: whole, items: items)
        let server = try await HTTPServer.start(HTTPServerConfiguration(host: "127.0.0.1", port: 0), logger: Logger(label: "stub")) {
            script.answer($0)
        }
        return BulkStub(server: server, script: script)
    }

    func stop() async { await server.shutdown() }
}

func esAccessLogs(_ n: Int) -> Telemetry {
    let records = (0..<n).map { i in
        LogRecord(
            timeUnixNano: 1_606_339_578_409_000_000 + UInt64(i), body: .string("line \(i)"),
            attributes: [KeyValue("http.response.status_code", .int(200)), KeyValue("seq", .string("\(i)"))])
    }
    return .logs(
        LogsData(resourceLogs: [
            ResourceLogs(resource: Resource(attributes: [KeyValue("service.name", .string("svc"))]), scopeLogs: [ScopeLogs(logRecords: records)])
        ]))
}

func esSettings(_ telemetry: SelfTelemetry, id: String = "elasticsearch") -> ComponentSettings {
    ComponentSettings(id: ComponentID(parsing: id)!, kind: .exporter, logger: Logger(label: "t"), telemetry: telemetry)
}

func esConfig(_ yaml: String) throws -> ElasticsearchExporterConfig {
    let diagnostics = Diagnostics()
    guard let root = YAMLLoader.parse(yaml, file: "test.yaml", diagnostics: diagnostics, environment: [:]) else {
        throw ESConfigTestError(messages: diagnostics.errors.map(\.description))
    }
    var reader = ConfigReader(root, path: "exporters::elasticsearch", diagnostics: diagnostics)
    let c = ElasticsearchExporterFactory().parseConfig(&reader)
    reader.finish()
    if diagnostics.hasErrors { throw ESConfigTestError(messages: diagnostics.errors.map(\.description)) }
    return c as! ElasticsearchExporterConfig
}

struct ESConfigTestError: Error { var messages: [String] }

@Suite(.serialized) struct ElasticsearchExporterTests {
    func counter(_ t: SelfTelemetry, _ name: String, signal: String? = "logs") -> Int64 {
        var labels = [("exporter", "elasticsearch")]
        if let signal { labels.append(("signal", signal)) }
        return t.value(name, labels: labels) ?? 0
    }

    @Test func retriesOnlyRetryableItemsAndDeadLettersTheRest() async throws {
        let stub = try await BulkStub.start(items: [201, 400, 429, 503, 201, 503])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("es-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = try esConfig(
            """
            endpoints: [\(stub.url)]
            logs_index: "logs-%{+yyyy.MM.dd}"
            flush: {bytes: 1MiB, interval: 50ms}
            retry: {initial_interval: 10ms, max_interval: 20ms, max_retries: 3}
            dead_letter_file: \(dir)/dead.ndjson
            """)
        c.numWorkers = 1
        let t = SelfTelemetry()
        let exporter = ElasticsearchExporter(c, settings: esSettings(t))
        try await exporter.start()
        try await exporter.consume(esAccessLogs(4))
        await exporter.shutdown()
        await stub.stop()

        let requests = stub.received
        #expect(requests.count == 3)
        #expect(requests[0].documents.count == 4)
        // Second attempt: only the 429 and 503 documents (seq 2, 3); the third: the one that got 503 again.
        #expect(requests[1].documents.map { $0.contains(#""seq":"2""#) || $0.contains(#""seq":"3""#) } == [true, true])
        #expect(requests[2].documents.count == 1 && requests[2].documents[0].contains(#""seq":"3""#))
        #expect(requests[0].lines[0] == #"{"create":{"_index":"logs-2020.11.25"}}"#)
        #expect(requests[0].headers.contains { $0 == ("content-type", "application/x-ndjson") })
        #expect(counter(t, "sextant_exporter_sent_items_total") == 3)
        #expect(counter(t, "sextant_exporter_send_failed_items_total") == 1)
        #expect(counter(t, "sextant_elasticsearch_retried_documents_total", signal: nil) == 3)
        #expect(counter(t, "sextant_elasticsearch_dead_lettered_documents_total", signal: nil) == 1)
        #expect(counter(t, "sextant_elasticsearch_bulk_requests_total", signal: nil) == 3)
        let dead = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8).split(separator: "\n")
        #expect(dead.count == 1)
        let entry = try JSONSerialization.jsonObject(with: Data(dead[0].utf8)) as! [String: Any]
        #expect(entry["status"] as? Int == 400)
        #expect(entry["index"] as? String == "logs-2020.11.25")
        #expect((entry["error"] as? [String: Any])?["type"] as? String == "scripted_400")
        #expect(((entry["document"] as? [String: Any])?["labels"] as? [String: Any])?["seq"] as? String == "1")
    }

    /// `sending_queue`: `consume` returns once the batch is queued, even while the cluster answers 503;
    /// the queue's worker then retries per document, and every document is counted once (not also by
    /// the queue).
    @Test func sendingQueueAcknowledgesAtOnceAndRetriesPerItem() async throws {
        let stub = try await BulkStub.start(whole: [503, 503], items: [201, 429, 201])
        let c = try esConfig(
            """
            endpoints: [\(stub.url)]
            retry: {initial_interval: 5ms, max_interval: 10ms, max_retries: 5}
            sending_queue: {queue_size: 10, num_consumers: 1}
            """)
        #expect(c.queue.enabled && c.queue.queueSize == 10 && c.queue.numConsumers == 1)
        let t = SelfTelemetry()
        let exporter = ElasticsearchExporter(c, settings: esSettings(t))
        try await exporter.start()
        try await exporter.consume(esAccessLogs(3))
        #expect(counter(t, "sextant_exporter_sent_items_total") == 0)  // queued, not yet indexed
        #expect(await esEventually { counter(t, "sextant_exporter_sent_items_total") == 3 })
        await exporter.shutdown()
        await stub.stop()
        // Two whole-request 503s, then 3 documents of which one got 429, then that one alone.
        #expect(stub.received.map(\.documents.count) == [3, 3, 3, 1])
        #expect(counter(t, "sextant_exporter_sent_items_total") == 3)
        #expect(counter(t, "sextant_exporter_send_failed_items_total") == 0)
        #expect(counter(t, "sextant_elasticsearch_retried_documents_total", signal: nil) == 7)
    }

    @Test func sendingQueueIsOffUnlessConfigured() throws {
        #expect(try esConfig("endpoints: [http://127.0.0.1:9200]").queue.enabled == false)
        #expect(try esConfig("endpoints: [http://127.0.0.1:9200]\nnum_workers: 3\nsending_queue: {}").queue.numConsumers == 3)
        #expect(throws: ESConfigTestError.self) {
            try esConfig("endpoints: [http://127.0.0.1:9200]\nsending_queue: {when_full: block}")
        }
    }

    @Test func wholeRequestRetryThenSuccess() async throws {
        let stub = try await BulkStub.start(whole: [429, 503])
        var c = try esConfig(
            """
            endpoints: [\(stub.url)]
            compression: gzip
            user: elastic
            password: changeme
            flush: {bytes: 100, interval: 1h}
            retry: {initial_interval: 5ms, max_interval: 10ms}
            """)
        c.numWorkers = 2
        let t = SelfTelemetry()
        let exporter = ElasticsearchExporter(c, settings: esSettings(t))
        try await exporter.start()
        // 100-byte flush threshold: the first document already fills a bulk.
        try await exporter.consume(esAccessLogs(1))
        await exporter.shutdown()
        await stub.stop()
        let requests = stub.received
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0.documents.count == 1 })
        #expect(requests[0].headers.contains { $0 == ("content-encoding", "gzip") })
        #expect(requests[0].headers.contains { $0 == ("authorization", "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==") })
        #expect(counter(t, "sextant_exporter_sent_items_total") == 1)
        #expect(counter(t, "sextant_exporter_send_failed_items_total") == 0)
    }

    @Test func exhaustedRetriesAndPermanentRequestErrorsFail() async throws {
        let stub = try await BulkStub.start(whole: [503, 503, 400])
        var c = try esConfig(
            """
            endpoints: [\(stub.url)]
            api_key: aWQ6a2V5
            flush: {interval: 10ms}
            retry: {initial_interval: 5ms, max_interval: 5ms, max_retries: 1}
            """)
        c.numWorkers = 1
        let t = SelfTelemetry()
        let exporter = ElasticsearchExporter(c, settings: esSettings(t))
        try await exporter.start()
        try await exporter.consume(esAccessLogs(2))
        #expect(await esEventually { stub.received.count == 2 })
        try await exporter.consume(esAccessLogs(3))
        await exporter.shutdown()
        await stub.stop()
        #expect(stub.received.count == 3)
        #expect(stub.received[0].headers.contains { $0 == ("authorization", "ApiKey aWQ6a2V5") })
        #expect(counter(t, "sextant_exporter_sent_items_total") == 0)
        #expect(counter(t, "sextant_exporter_send_failed_items_total") == 5)
    }

    @Test func unreachableEndpointFailsAfterRetries() async throws {
        let c = try esConfig(
            """
            endpoints: [http://127.0.0.1:1]
            flush: {interval: 10ms}
            retry: {initial_interval: 5ms, max_interval: 5ms, max_retries: 2}
            timeout: 2s
            """)
        let t = SelfTelemetry()
        let exporter = ElasticsearchExporter(c, settings: esSettings(t))
        try await exporter.start()
        try await exporter.consume(esAccessLogs(2))
        await exporter.shutdown()
        #expect(counter(t, "sextant_exporter_send_failed_items_total") == 2)
        #expect(counter(t, "sextant_elasticsearch_bulk_requests_total", signal: nil) == 3)
    }

    @Test func dataStreamModeAndSpans() async throws {
        let stub = try await BulkStub.start()
        let c = try esConfig(
            """
            endpoints: [\(stub.url)]
            data_stream: {dataset: envoy, namespace: prod}
            logs_dynamic_index: {enabled: true}
            """)
        let t = SelfTelemetry()
        let exporter = ElasticsearchExporter(c, settings: esSettings(t))
        try await exporter.start()
        var logs = esAccessLogs(2)
        if case .logs(var l) = logs {
            l.resourceLogs[0].scopeLogs[0].logRecords[1].attributes.append(KeyValue("data_stream.namespace", .string("staging")))
            logs = .logs(l)
        }
        try await exporter.consume(logs)
        let span = Span(traceID: TraceID(high: 0, low: 1), spanID: SpanID(2), name: "s", startTimeUnixNano: 1, endTimeUnixNano: 2)
        try await exporter.consume(.traces(TracesData(resourceSpans: [ResourceSpans(scopeSpans: [ScopeSpans(spans: [span])])])))
        await exporter.shutdown()
        await stub.stop()
        let lines = stub.received.flatMap(\.lines)
        #expect(lines.filter { $0.hasPrefix(#"{"create":"#) } == [
            #"{"create":{"_index":"logs-envoy-prod"}}"#, #"{"create":{"_index":"logs-envoy-staging"}}"#,
            #"{"create":{"_index":"traces-envoy-prod"}}"#,
        ])
        #expect(lines[1].contains(#""data_stream":{"dataset":"envoy","namespace":"prod","type":"logs"}"#))
        #expect(counter(t, "sextant_exporter_sent_items_total", signal: "traces") == 1)
    }

    @Test func fileExporterWritesECSLines() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ecs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = Diagnostics()
        let node = try #require(YAMLLoader.parse("{path: \(dir)/logs.ndjson, format: ecs}", file: "t.yaml", diagnostics: d, environment: [:]))
        var r = ConfigReader(node, path: "exporters::file", diagnostics: d)
        let config = FileExporterFactory().parseConfig(&r)
        r.finish()
        #expect(d.errors.isEmpty, "\(d.errors)")
        let s = ComponentSettings(id: ComponentID(type: "file"), kind: .exporter, logger: Logger(label: "t"), telemetry: SelfTelemetry())
        #expect(throws: (any Error).self) { try FileExporterFactory().makeExporter(s, config: config, signals: [.logs, .metrics]) }
        let exporter = try FileExporterFactory().makeExporter(s, config: config, signals: [.logs])
        try await exporter.start()
        try await exporter.consume(esAccessLogs(3))
        await exporter.shutdown()
        let lines = try String(contentsOfFile: dir + "/logs.ndjson", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(
            lines[0]
                == #"{"@timestamp":"2020-11-25T21:26:18.409000000Z","http":{"response":{"status_code":200}},"labels":{"seq":"0"},"message":"line 0","service":{"name":"svc"}}"#
        )
    }

    @Test(arguments: [
        ("endpoints: [ftp://x:9200]", "must be an http:// or https:// URL"),
        ("{}", "needs endpoints"),
        ("endpoints: [http://x]\nlogs_index: Logs", "lower case"),
        ("endpoints: [http://x]\nlogs_index: \"l-%{+yyyy.QQ}\"", "unsupported date pattern"),
        ("endpoints: [http://x]\ndata_stream: {dataset: a-b}", "cannot contain '-'"),
        ("endpoints: [http://x]\ndata_stream: {}\naction: index", "only create"),
        ("endpoints: [http://x]\napi_key: k\nuser: u", "not both"),
        ("endpoints: [http://x]\nflush: {bytes: 0}", "at least 1"),
        ("endpoints: [http://x]\nretry: {retry_on_status: [200]}", "not an HTTP status"),
        ("endpoints: [http://x]\nmapping: {mode: otel}", "not one of ecs, raw"),
        ("endpoints: [http://x]\nbogus: 1", "unknown key 'bogus'"),
    ])
    func configErrors(_ yaml: String, _ message: String) {
        do {
            _ = try esConfig(yaml)
            Issue.record("accepted: \(yaml)")
        } catch let e as ESConfigTestError {
            #expect(e.messages.contains { $0.contains(message) }, "\(e.messages)")
        } catch {
            Issue.record("\(error)")
        }
    }
}

/// Polls (real time, bounded to ~5 s).
func esEventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<2500 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}
