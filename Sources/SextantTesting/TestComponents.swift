import SextantModel
import SextantPipeline
import Synchronization

/// Records lifecycle events of test components, in order, so tests can check start/stop ordering.
public final class LifecycleLog: Sendable {
    private let events = Mutex<[String]>([])
    public init() {}
    public func record(_ e: String) { events.withLock { $0.append(e) } }
    public var all: [String] { events.withLock { $0 } }
}

/// Test component factories: a receiver that exposes its consumers, a processor that tags data,
/// and an exporter that records. They share one `TestHarness` so tests can drive and inspect them.
public final class TestHarness: Sendable {
    public let log = LifecycleLog()
    private let receivers = Mutex<[ComponentID: [Signal: any Consumer]]>([:])
    private let exporters = Mutex<[ComponentID: RecordingConsumer]>([:])

    public init() {}

    /// A registry with `testrecv`, `testproc`, `testexp` (all signals) and `testconn` (traces→metrics).
    public func registry(base: ComponentRegistry = ComponentRegistry()) -> ComponentRegistry {
        var r = base
        r.register(Receiver(harness: self))
        r.register(Processor(harness: self))
        r.register(Exporter(harness: self))
        r.register(Connector(harness: self))
        return r
    }

    /// Pushes a batch into pipelines through receiver `id`.
    public func send(_ t: Telemetry, via id: String) async throws {
        let c = receivers.withLock { $0[ComponentID(parsing: id)!]?[t.signal] }
        guard let c else { throw ConsumerError.permanent("receiver \(id) has no \(t.signal) consumer") }
        try await c.consume(t)
    }

    /// What exporter `id` recorded.
    public func exporter(_ id: String) -> RecordingConsumer {
        exporters.withLock { e in
            let key = ComponentID(parsing: id)!
            if let r = e[key] { return r }
            let r = RecordingConsumer()
            e[key] = r
            return r
        }
    }

    /// The config of every test component: an optional `tag`; `testexp` also takes `reads_model`
    /// (default true: whether it says it reads a trace batch's model, see `Consumer.readsTraceModel`).
    public struct Config: ComponentConfig {
        public var tag: String
        public var readsModel = true
    }

    struct Lifecycle: ConsumingComponent {
        let label: String
        let log: LifecycleLog
        let next: (any Consumer)?
        let tag: String
        var readsTraceModel = true
        func start() async throws { log.record("start \(label)") }
        func shutdown() async { log.record("stop \(label)") }
        func consume(_ telemetry: Telemetry) async throws {
            guard let next else { return }
            if case .traces(var t) = telemetry, !tag.isEmpty {
                for i in t.resourceSpans.indices {
                    for j in t.resourceSpans[i].scopeSpans.indices {
                        for k in t.resourceSpans[i].scopeSpans[j].spans.indices {
                            t.resourceSpans[i].scopeSpans[j].spans[k].attributes.append(KeyValue("tag", .string(tag)))
                        }
                    }
                }
                try await next.consume(.traces(t))
            } else {
                try await next.consume(telemetry)
            }
        }
    }

    struct Receiver: ReceiverFactory {
        let harness: TestHarness
        let type = "testrecv"
        let signals: Set<Signal> = [.traces, .metrics, .logs]
        let summary = "test receiver"
        func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { Config(tag: r.string("tag", default: "")) }
        func makeReceiver(_ s: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws -> any Component {
            harness.receivers.withLock { $0[s.id] = consumers }
            return Lifecycle(label: "receiver/\(s.id)", log: harness.log, next: nil, tag: "")
        }
    }

    struct Processor: ProcessorFactory {
        let harness: TestHarness
        let type = "testproc"
        let signals: Set<Signal> = [.traces, .metrics, .logs]
        let summary = "test processor: adds attribute tag=<tag> to spans"
        func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { Config(tag: r.string("tag", default: "")) }
        func makeProcessor(_ s: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer) throws
            -> any ConsumingComponent
        {
            Lifecycle(label: "processor/\(s.id)@\(pipeline)", log: harness.log, next: next, tag: (config as! Config).tag)
        }
    }

    struct Exporter: ExporterFactory {
        let harness: TestHarness
        let type = "testexp"
        let signals: Set<Signal> = [.traces, .metrics, .logs]
        let summary = "test exporter: records batches"
        func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
            Config(tag: "", readsModel: r.bool("reads_model", default: true))
        }
        func makeExporter(_ s: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws -> any ConsumingComponent {
            Lifecycle(
                label: "exporter/\(s.id)", log: harness.log, next: harness.exporter(s.id.description), tag: "",
                readsTraceModel: (config as! Config).readsModel)
        }
    }

    /// Turns each span batch into a gauge with one point per span (a miniature span-metrics).
    struct Connector: ConnectorFactory {
        let harness: TestHarness
        let type = "testconn"
        let routes: Set<ConnectorRoute> = [ConnectorRoute(from: .traces, to: .metrics), ConnectorRoute(from: .traces, to: .traces)]
        let summary = "test connector"
        func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { Config(tag: "") }
        func makeConnector(_ s: ComponentSettings, config: any ComponentConfig, outputs: [Signal: any Consumer]) throws
            -> any ConsumingComponent
        {
            ConnectorImpl(label: "connector/\(s.id)", log: harness.log, outputs: outputs)
        }
    }

    struct ConnectorImpl: ConsumingComponent {
        let label: String
        let log: LifecycleLog
        let outputs: [Signal: any Consumer]
        func start() async throws { log.record("start \(label)") }
        func shutdown() async { log.record("stop \(label)") }
        func consume(_ telemetry: Telemetry) async throws {
            if let m = outputs[.metrics] { try await m.consume(TestData.gauges(telemetry.itemCount)) }
            if let t = outputs[.traces] { try await t.consume(telemetry) }
        }
    }
}
