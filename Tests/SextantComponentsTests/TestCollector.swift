import Logging
import SextantCollector
import SextantPipeline
import SextantReceivers
import SextantTesting

/// A collector graph built from YAML with the built-in components plus the test ones, started.
struct Running {
    let graph: CollectorGraph
    let harness: TestHarness
    let telemetry: SelfTelemetry

    func component<T>(_ label: String, as type: T.Type) -> T {
        graph.nodes.first { $0.label == label }!.component as! T
    }

    var receiver: OTLPReceiver { component("receiver/otlp", as: OTLPReceiver.self) }
}

func start(_ yaml: String) async throws -> Running {
    let h = TestHarness()
    let registry = h.registry(base: BuiltinComponents.registry)
    let config = try CollectorConfig.load(yaml: yaml, registry: registry)
    let telemetry = SelfTelemetry()
    let g = try CollectorGraph.build(config, registry: registry, telemetry: telemetry, logger: Logger(label: "t"))
    try await g.start()
    return Running(graph: g, harness: h, telemetry: telemetry)
}

/// Polls (in real time, bounded to ~10 s) until `condition` holds.
func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<5000 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}
