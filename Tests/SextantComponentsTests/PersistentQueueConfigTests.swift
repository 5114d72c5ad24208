#if canImport(Glibc)
import Glibc
#endif
import Logging
import SextantCollector
import SextantModel
import SextantPipeline
import SextantTesting
import Testing

/// `file_storage` and `sending_queue::storage` in real configs: wiring through the collector graph and
/// the errors a wrong config produces, each at its position.
@Suite struct PersistentQueueConfigTests {
    func errors(_ yaml: String) -> [String] {
        do {
            _ = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: BuiltinComponents.registry)
            return []
        } catch let e as ConfigError {
            return e.diagnostics.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func referencesAreCheckedWithPositions() {
        let yaml = """
            extensions:
              file_storage/a:
                directory: /tmp/q
                max_size: 1KiB
              file_storage/off:
                directory: /tmp/q
              file_storage/nodir:
                fsync: false
            receivers:
              otlp:
                protocols: {http: {endpoint: "127.0.0.1:0"}}
            exporters:
              file/undefined:
                path: /tmp/x
                sending_queue: {storage: file_storage/b}
              file/disabled:
                path: /tmp/x
                sending_queue: {storage: file_storage/off}
              file/wrongtype:
                path: /tmp/x
                sending_queue: {storage: health_check}
              file/nostorage:
                path: /tmp/x
                sending_queue: {when_full: drop_oldest}
              file/badpolicy:
                path: /tmp/x
                sending_queue: {storage: file_storage/a, when_full: drop}
            service:
              extensions: [file_storage/a, file_storage/nodir]
              pipelines:
                logs:
                  receivers: [otlp]
                  exporters: [file/undefined, file/disabled, file/wrongtype, file/nostorage, file/badpolicy]
            """
        #expect(
            errors(yaml) == [
                "c.yaml:4:15: error: extensions::file_storage/a::max_size must be at least 65536, found 1024",
                "c.yaml:8:5: error: extensions::file_storage/nodir::directory is required (where the queues are kept)",
                "c.yaml:15:30: error: exporters::file/undefined::sending_queue::storage references extension 'file_storage/b' which is not defined under 'extensions' (did you mean 'file_storage/a'?)",
                "c.yaml:18:30: error: exporters::file/disabled::sending_queue::storage references extension 'file_storage/off', which is not enabled: add it to service::extensions",
                "c.yaml:21:30: error: exporters::file/wrongtype::sending_queue::storage must name a file_storage extension (file_storage[/name]), found 'health_check'",
                "c.yaml:24:32: error: exporters::file/nostorage::sending_queue::when_full applies to a persistent queue: set exporters::file/nostorage::sending_queue::storage too",
                "c.yaml:27:57: error: exporters::file/badpolicy::sending_queue::when_full: 'drop' is not one of block, drop_oldest",
            ])
    }

    /// The graph creates the extension first and hands it to the exporter, whose batches go through
    /// the queue's directory (`exporter_<id>`) to the file.
    @Test func collectorGraphWiresTheQueueThroughTheExtension() async throws {
        let dir = "/tmp/sextant-pq-graph-\(UInt64.random(in: 0...UInt64.max))"
        let yaml = """
            extensions:
              file_storage/q:
                directory: \(dir)/queue
                fsync: false
            receivers:
              otlp:
                protocols: {http: {endpoint: "127.0.0.1:0"}}
            exporters:
              file:
                path: \(dir)/out.jsonl
                format: json
                sending_queue: {storage: file_storage/q, when_full: block, block_timeout: 100ms}
            service:
              extensions: [file_storage/q]
              pipelines:
                traces: {receivers: [otlp], exporters: [file]}
            """
        let running = try await start(yaml)
        let storage = running.component("extension/file_storage/q", as: FileStorage.self)
        #expect(storage.settings.directory == "\(dir)/queue")
        let exporter = running.graph.nodes.first { $0.label == "exporter/file" }!.component as! any ConsumingComponent
        try await exporter.consume(TestData.traces(4, firstSpan: 1))
        // A persistent queue is not drained at shutdown (what is queued stays on disk), so wait for the
        // queue's worker to have sent the batch; shutting down at once made this test fail on a busy machine.
        let sent = { running.telemetry.value("sextant_exporter_sent_items_total", labels: [("exporter", "file"), ("signal", "traces")]) }
        #expect(await eventually { sent() == 4 })
        await running.graph.shutdown()
        #expect(sent() == 4)
        #expect(running.telemetry.value("sextant_exporter_queue_capacity", labels: [("exporter", "file")]) == 1 << 30)
        #expect(access("\(dir)/queue/exporter_file/cursor", F_OK) == 0)
    }
}
