import Logging
import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

/// Wall-clock "now" the processors under test believe they started at (Unix nanoseconds).
let processorStart: UInt64 = 1_700_000_000_000_000_000
let pipeline = PipelineID(.metrics)

func settings(_ type: String, _ telemetry: SelfTelemetry) -> ComponentSettings {
    ComponentSettings(id: ComponentID(type: type), kind: .processor, logger: Logger(label: "test"), telemetry: telemetry)
}

func resource(_ service: String, _ extra: [KeyValue] = []) -> Resource {
    Resource(attributes: [KeyValue("service.name", .string(service))] + extra)
}

/// A batch holding one metric under one resource and scope.
func batch(_ metric: Metric, resource: Resource = resource("svc"), scope: InstrumentationScope = InstrumentationScope(name: "lib")) -> Telemetry {
    .metrics(MetricsData(resourceMetrics: [ResourceMetrics(resource: resource, scopeMetrics: [ScopeMetrics(scope: scope, metrics: [metric])])]))
}

func sum(
    _ name: String, _ points: [NumberDataPoint], _ t: AggregationTemporality = .cumulative, monotonic: Bool = true
) -> Metric {
    Metric(name: name, data: .sum(points, temporality: t, isMonotonic: monotonic))
}

func point(_ v: Int64, start: UInt64, time: UInt64, _ attrs: [KeyValue] = []) -> NumberDataPoint {
    NumberDataPoint(attributes: attrs, startTimeUnixNano: start, timeUnixNano: time, value: .int(v))
}

func dpoint(_ v: Double, start: UInt64, time: UInt64, _ attrs: [KeyValue] = []) -> NumberDataPoint {
    NumberDataPoint(attributes: attrs, startTimeUnixNano: start, timeUnixNano: time, value: .double(v))
}

func hpoint(
    count: UInt64, sum: Double, buckets: [UInt64], bounds: [Double] = [1, 10], start: UInt64, time: UInt64, _ attrs: [KeyValue] = [],
    min: Double? = nil, max: Double? = nil
) -> HistogramDataPoint {
    HistogramDataPoint(
        attributes: attrs, startTimeUnixNano: start, timeUnixNano: time, count: count, sum: sum, bucketCounts: buckets,
        explicitBounds: bounds, min: min, max: max)
}

let s0 = processorStart + 1_000  // a start time after the processor started
func t(_ seconds: UInt64) -> UInt64 { processorStart + seconds * 1_000_000_000 }

/// Every metric the consumer received, flattened with its resource and scope, in order.
func received(_ r: RecordingConsumer) -> [(resource: Resource, scope: InstrumentationScope, metric: Metric)] {
    r.batches.flatMap { b -> [(Resource, InstrumentationScope, Metric)] in
        guard case .metrics(let m) = b else { return [] }
        return m.resourceMetrics.flatMap { rm in rm.scopeMetrics.flatMap { sm in sm.metrics.map { (rm.resource, sm.scope, $0) } } }
    }.map { (resource: $0.0, scope: $0.1, metric: $0.2) }
}

/// The number points of every sum received, in order.
func sumPoints(_ r: RecordingConsumer) -> [NumberDataPoint] {
    received(r).flatMap { e -> [NumberDataPoint] in
        if case .sum(let p, _, _) = e.metric.data { return p }
        return []
    }
}

func histogramPoints(_ r: RecordingConsumer) -> [HistogramDataPoint] {
    received(r).flatMap { e -> [HistogramDataPoint] in
        if case .histogram(let p, _) = e.metric.data { return p }
        return []
    }
}

/// A compact view of a number point: start, time, value (as a double).
struct NP: Equatable, CustomStringConvertible {
    var start: UInt64
    var time: UInt64
    var value: Double
    init(_ start: UInt64, _ time: UInt64, _ value: Double) {
        self.start = start
        self.time = time
        self.value = value
    }
    init(_ p: NumberDataPoint) { self.init(p.startTimeUnixNano, p.timeUnixNano, p.value.asDouble) }
    var description: String { "(\(start), \(time), \(value))" }
}

/// A registry with the test components and the metrics processors (plus filter/attributes).
func metricsRegistry(_ h: TestHarness) -> ComponentRegistry {
    var r = h.registry()
    r.register(CumulativeToDeltaProcessorFactory())
    r.register(DeltaToCumulativeProcessorFactory())
    r.register(CardinalityGuardProcessorFactory())
    r.register(FilterProcessorFactory())
    r.register(AttributesProcessorFactory())
    return r
}

/// The diagnostics (`file:line:column: error: ...`) of a collector config, or [] when it loads.
func configErrors(_ yaml: String) -> [String] {
    do {
        _ = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: metricsRegistry(TestHarness()))
        return []
    } catch let e as ConfigError {
        return e.diagnostics.map(\.description)
    } catch {
        return ["unexpected \(error)"]
    }
}

/// A metrics pipeline `testrecv → processors → testexp`, built and started from YAML.
struct MetricsPipeline {
    let graph: CollectorGraph
    let harness: TestHarness
    let telemetry: SelfTelemetry

    init(processors: String, names: [String]) async throws {
        harness = TestHarness()
        let registry = metricsRegistry(harness)
        let config = try CollectorConfig.load(
            yaml: """
                receivers:
                  testrecv:
                processors:
                \(processors)
                exporters:
                  testexp:
                service:
                  pipelines:
                    metrics: {receivers: [testrecv], processors: [\(names.joined(separator: ", "))], exporters: [testexp]}
                """, registry: registry)
        telemetry = SelfTelemetry()
        graph = try CollectorGraph.build(config, registry: registry, telemetry: telemetry, logger: Logger(label: "t"))
        try await graph.start()
    }

    func send(_ t: Telemetry) async throws { try await harness.send(t, via: "testrecv") }
    var output: RecordingConsumer { harness.exporter("testexp") }
}
