import Logging
import SextantModel
import SextantPipeline
import Synchronization

/// `spanmetrics` connector config (OTel Collector names and defaults).
public struct SpanMetricsConfig: ComponentConfig {
    public struct Dimension: Sendable, Equatable {
        public var name: String
        public var defaultValue: String?

        public init(name: String, defaultValue: String? = nil) {
            self.name = name
            self.defaultValue = defaultValue
        }
    }

    public var namespace = "traces.span.metrics"
    /// Histogram bounds in the histogram's unit.
    public var buckets: [Double] = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000]
    public var unitSeconds = false
    public var dimensions: [Dimension] = []
    public var exemplars = false
    public var maxExemplarsPerSeries = 10
    public var flushInterval: Duration = .seconds(60)
    public var delta = false
    /// Series beyond this are folded into one overflow series per resource.
    public var cardinalityLimit = 10_000

    public init() {}
}

public struct SpanMetricsConnectorFactory: ConnectorFactory {
    public init() {}
    public let type = "spanmetrics"
    public let routes: Set<ConnectorRoute> = [ConnectorRoute(from: .traces, to: .metrics)]
    public let summary = "R.E.D. metrics from spans: calls and duration by service, span name, kind, status"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = SpanMetricsConfig()
        c.namespace = r.string("namespace", default: c.namespace)
        var h = r.section("histogram")
        let unit = h.choice("unit", ["ms", "s"], default: "ms")
        c.unitSeconds = unit == "s"
        if h.keys.contains("exponential") {
            _ = h.raw("exponential")
            h.error("exponential", "\(h.qualified("exponential")): exponential histograms are not supported; use explicit buckets")
        }
        _ = h.bool("disable", default: false)
        var e = h.section("explicit")
        let bucketTexts = e.stringList("buckets")
        if !bucketTexts.isEmpty {
            var bounds: [Double] = []
            for b in bucketTexts {
                guard let d = GoDuration.parse(b) else {
                    e.error("buckets", "\(e.qualified("buckets")): '\(b)' is not a duration (e.g. 100ms)")
                    continue
                }
                let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
                bounds.append(c.unitSeconds ? seconds : seconds * 1000)
            }
            if bounds != bounds.sorted() { e.error("buckets", "\(e.qualified("buckets")) must be in increasing order") }
            c.buckets = bounds
        } else if !c.unitSeconds {
            // defaults already in ms
        } else {
            c.buckets = c.buckets.map { $0 / 1000 }
        }
        e.finish()
        h.finish()
        if let node = r.raw("dimensions") {
            if case .sequence(let items) = node.value {
                for (i, item) in items.enumerated() {
                    var d = ConfigReader(item, path: "\(r.qualified("dimensions"))[\(i)]", diagnostics: r.diagnostics)
                    let name = d.string("name", default: "")
                    if name.isEmpty { d.error(nil, "\(d.path): name is required") }
                    c.dimensions.append(.init(name: name, defaultValue: d.optionalString("default")))
                    d.finish()
                }
            } else {
                r.error("dimensions", "\(r.qualified("dimensions")) must be a list of {name, default}")
            }
        }
        var ex = r.section("exemplars")
        c.exemplars = ex.bool("enabled", default: false)
        c.maxExemplarsPerSeries = ex.int("max_per_data_point", default: c.maxExemplarsPerSeries, min: 1)
        ex.finish()
        c.flushInterval = r.duration("metrics_flush_interval", default: c.flushInterval, allowZero: false)
        c.delta =
            r.choice(
                "aggregation_temporality", ["AGGREGATION_TEMPORALITY_CUMULATIVE", "AGGREGATION_TEMPORALITY_DELTA"],
                default: "AGGREGATION_TEMPORALITY_CUMULATIVE") == "AGGREGATION_TEMPORALITY_DELTA"
        c.cardinalityLimit = r.int("aggregation_cardinality_limit", default: c.cardinalityLimit, min: 1)
        _ = r.int("dimensions_cache_size", default: 1000, min: 1)
        return c
    }

    public func makeConnector(_ settings: ComponentSettings, config: any ComponentConfig, outputs: [Signal: any Consumer]) throws
        -> any ConsumingComponent
    {
        SpanMetricsConnector(config as! SpanMetricsConfig, settings: settings, output: outputs[.metrics]!, clock: ContinuousClock())
    }
}

/// Aggregates spans into `<namespace>.calls` (monotonic sum) and `<namespace>.duration` (explicit
/// histogram) per resource and dimension set — `service.name`, `span.name`, `span.kind`,
/// `status.code` plus the configured dimensions (span attribute, else resource attribute, else the
/// default; a dimension without value and default is omitted). Emitted every
/// `metrics_flush_interval`, cumulative (start time = first sight) or delta; exemplars carry the
/// trace and span IDs of the spans they sample.
public final class SpanMetricsConnector<C: Clock>: ConsumingComponent where C.Duration == Duration {
    struct Series {
        var resource: Resource
        var attributes: [KeyValue]
        var startTime: UInt64
        var calls: UInt64 = 0
        var sum: Double = 0
        var bucketCounts: [UInt64]
        var exemplars: [Exemplar] = []
        var min = Double.infinity
        var max = -Double.infinity
    }

    private let config: SpanMetricsConfig
    private let output: any Consumer
    private let clock: C
    private let logger: Logger
    private let series = Mutex<[String: Series]>([:])
    private let ticker = Mutex<Task<Void, Never>?>(nil)
    private let overflowed: SelfTelemetry.Counter
    private let now: @Sendable () -> UInt64

    public init(
        _ config: SpanMetricsConfig, settings: ComponentSettings, output: any Consumer, clock: C,
        now: @escaping @Sendable () -> UInt64 = { SystemTime.nowNanos() }
    ) {
        self.config = config
        self.output = output
        self.clock = clock
        self.logger = settings.logger
        self.now = now
        overflowed = settings.telemetry.counter(
            "sextant_connector_spanmetrics_overflow_spans_total", help: "Spans counted in the overflow series (cardinality limit).",
            labels: [("connector", settings.id.description)])
    }

    public func start() async throws {
        let interval = config.flushInterval
        ticker.withLock {
            $0 = Task { [self] in
                while !Task.isCancelled {
                    do { try await clock.sleep(for: interval) } catch { return }
                    await flush()
                }
            }
        }
    }

    public func shutdown() async {
        ticker.withLock { $0 }?.cancel()
        await ticker.withLock { $0 }?.value
        await flush()
    }

    public func consume(_ telemetry: Telemetry) async throws {
        guard case .traces(let t) = telemetry else { return }
        let scale = config.unitSeconds ? 1e-9 : 1e-6
        let firstSeen = now()
        var overflow = 0
        series.withLock { all in
            for rs in t.resourceSpans {
                let serviceName = rs.resource.serviceName ?? "unknown_service"
                for ss in rs.scopeSpans {
                    for span in ss.spans {
                        var attrs: [KeyValue] = [
                            KeyValue("service.name", .string(serviceName)), KeyValue("span.name", .string(span.name)),
                            KeyValue("span.kind", .string(span.kind.description)),
                            KeyValue("status.code", .string(span.status.code.description)),
                        ]
                        for d in config.dimensions {
                            if let v = span.attributes[key: d.name] ?? rs.resource.attributes[key: d.name] {
                                attrs.append(KeyValue(d.name, v))
                            } else if let dv = d.defaultValue {
                                attrs.append(KeyValue(d.name, .string(dv)))
                            }
                        }
                        var key = Self.key(rs.resource.attributes) + "|" + Self.key(attrs)
                        if all[key] == nil && all.count >= config.cardinalityLimit {
                            attrs = [KeyValue("service.name", .string(serviceName)), KeyValue("otel.metric.overflow", .bool(true))]
                            key = Self.key(rs.resource.attributes) + "|" + Self.key(attrs)
                            overflow += 1
                        }
                        let value = Double(span.durationNanos) * scale
                        if all[key] == nil {
                            all[key] = Series(
                                resource: rs.resource, attributes: attrs, startTime: firstSeen,
                                bucketCounts: [UInt64](repeating: 0, count: config.buckets.count + 1))
                        }
                        all[key]!.calls += 1
                        all[key]!.sum += value
                        all[key]!.min = Swift.min(all[key]!.min, value)
                        all[key]!.max = Swift.max(all[key]!.max, value)
                        let bucket = config.buckets.firstIndex { value <= $0 } ?? config.buckets.count
                        all[key]!.bucketCounts[bucket] += 1
                        if config.exemplars && all[key]!.exemplars.count < config.maxExemplarsPerSeries {
                            all[key]!.exemplars.append(
                                Exemplar(timeUnixNano: span.endTimeUnixNano, value: .double(value), spanID: span.spanID, traceID: span.traceID))
                        }
                    }
                }
            }
        }
        overflowed.add(overflow)
    }

    /// Emits every series (and resets them when delta).
    public func flush() async {
        let time = now()
        let snapshot: [Series] = series.withLock { all in
            let out = all.keys.sorted().map { all[$0]! }
            if config.delta {
                all.removeAll()
            } else {
                for k in all.keys {
                    all[k]!.exemplars.removeAll()
                }
            }
            return out
        }
        guard !snapshot.isEmpty else { return }
        var byResource: [(Resource, [Series])] = []
        for s in snapshot {
            if let i = byResource.firstIndex(where: { $0.0 == s.resource }) { byResource[i].1.append(s) } else { byResource.append((s.resource, [s])) }
        }
        let temporality: AggregationTemporality = config.delta ? .delta : .cumulative
        let unit = config.unitSeconds ? "s" : "ms"
        var data = MetricsData()
        for (resource, list) in byResource {
            let calls = list.map { s in
                NumberDataPoint(attributes: s.attributes, startTimeUnixNano: s.startTime, timeUnixNano: time, value: .int(Int64(s.calls)), exemplars: s.exemplars)
            }
            let durations = list.map { s in
                HistogramDataPoint(
                    attributes: s.attributes, startTimeUnixNano: s.startTime, timeUnixNano: time, count: s.calls, sum: s.sum,
                    bucketCounts: s.bucketCounts, explicitBounds: config.buckets, exemplars: s.exemplars,
                    min: s.calls > 0 ? s.min : nil, max: s.calls > 0 ? s.max : nil)
            }
            data.resourceMetrics.append(
                ResourceMetrics(
                    resource: resource,
                    scopeMetrics: [
                        ScopeMetrics(
                            scope: InstrumentationScope(name: "spanmetricsconnector"),
                            metrics: [
                                Metric(name: "\(config.namespace).calls", data: .sum(calls, temporality: temporality, isMonotonic: true)),
                                Metric(name: "\(config.namespace).duration", unit: unit, data: .histogram(durations, temporality: temporality)),
                            ])
                    ]))
        }
        do {
            try await output.consume(.metrics(data))
        } catch {
            logger.warning("span metrics dropped: metrics pipeline refused them", metadata: ["error": "\(error)"])
        }
    }

    /// A stable identity for an attribute list (order-sensitive, as the dimensions' order is fixed).
    static func key(_ attrs: [KeyValue]) -> String {
        attrs.map { "\($0.key)=\($0.value.asString)" }.joined(separator: "\u{1f}")
    }
}
