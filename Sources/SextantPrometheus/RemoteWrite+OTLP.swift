import SextantModel

extension RemoteWrite {
    /// How OTLP metrics become remote-write series.
    public struct ConversionOptions: Sendable {
        /// Naming, constant labels and `resource_to_telemetry_conversion`, as for the exposition formats.
        public var samples = PrometheusSamples.Options()
        /// Added to every series unless the series already has the label (Prometheus's
        /// `external_labels` semantics, as the OTel exporter applies them).
        public var externalLabels: [(String, String)] = []
        /// Also send one `MetricMetadata` per family.
        public var sendMetadata = true
        public init() {}
    }

    /// The result of converting OTLP: the request and what had no remote-write form.
    public struct Conversion: Sendable {
        public var request: WriteRequest
        public var skipped: PrometheusSamples.Skipped
        /// Data points converted (the unit the collector counts metrics in).
        public var points: Int
    }

    /// OTLP metrics → remote-write series (OTel "Prometheus and OpenMetrics Compatibility"; the
    /// naming and labels of `PrometheusSamples`): each line of a point (`_bucket{le}`, `_sum`, `_count`,
    /// quantiles, or the value) is a series named by `__name__`, labels sorted by name; timestamps
    /// are milliseconds; points of one series are sent in time order. A point flagged
    /// `NO_RECORDED_VALUE` becomes Prometheus's staleness marker on each of its series. Each resource
    /// with attributes adds `target_info` at its newest point's time. Series are sorted by labels.
    public static func convert(_ batches: [MetricsData], options: ConversionOptions = .init()) -> Conversion {
        // External labels sorted by name, so each series' labels are built by merging sorted runs.
        let external = options.externalLabels.map { Label(PrometheusNaming.sanitizeLabelName($0.0), $0.1) }.sorted { $0.name < $1.name }
        var lines: [Line] = []
        var families: [String: PrometheusSamples.Family] = [:]
        var lastFamily = ""
        var points = 0
        var base: [Label] = []
        let skipped = PrometheusSamples.forEachPoint(batches, options: options.samples) { p in
            if p.family.type == .info && p.timeUnixNano == 0 { return }  // a resource without points
            if p.family.type != .info { points += 1 }
            if p.family.name != lastFamily {
                families[p.family.name] = p.family
                lastFamily = p.family.name
            }
            let ms = Int64(clamping: p.timeUnixNano / 1_000_000)
            // The point's labels (sorted by name) with the external labels it lacks, still sorted.
            base.removeAll(keepingCapacity: true)
            var e = 0
            for (name, value) in p.labels {
                while e < external.count, external[e].name < name {
                    base.append(external[e])
                    e += 1
                }
                if e < external.count, external[e].name == name { e += 1 }
                base.append(Label(name, value))
            }
            while e < external.count {
                base.append(external[e])
                e += 1
            }
            for line in p.lines {
                var labels: [Label] = []
                labels.reserveCapacity(base.count + 2)
                labels.append(contentsOf: base)
                Self.insertSorted(Label("__name__", line.suffix.isEmpty ? p.family.name : p.family.name + line.suffix), into: &labels)
                // `le`/`quantile` wins over a label of the same name.
                if let (name, value) = line.extra { Self.insertSorted(Label(name, value), into: &labels) }
                lines.append(
                    Line(
                        labels: labels, sample: Sample(value: p.stale ? staleNaN : line.value, timestamp: ms),
                        exemplar: p.stale ? nil : line.exemplar.map(exemplar), order: lines.count))
            }
        }
        // One entry per line so far. Sorting by labels (then input order) puts the lines of a series side
        // by side, so they merge without hashing every label set.
        lines.sort { a, b in
            let c = Self.compareLabels(a.labels, b.labels)
            return c != 0 ? c < 0 : a.order < b.order
        }
        var series: [TimeSeries] = []
        series.reserveCapacity(lines.count)
        for line in lines {
            if let last = series.last, last.labels == line.labels {
                series[series.count - 1].samples.append(line.sample)
            } else {
                series.append(TimeSeries(labels: line.labels, samples: [line.sample]))
            }
            if let e = line.exemplar { series[series.count - 1].exemplars.append(e) }
        }
        lines = []
        for i in series.indices where series[i].samples.count > 1 {
            // Stable: points of the same millisecond keep their input order.
            let s = series[i].samples
            if !zip(s, s.dropFirst()).allSatisfy({ $0.timestamp <= $1.timestamp }) {
                series[i].samples = s.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }.map(\.element)
            }
        }
        var request = WriteRequest()
        request.timeseries = series
        if options.sendMetadata {
            request.metadata = families.keys.sorted().map { name in
                let f = families[name]!
                let type: MetricMetadata.MetricType
                switch f.type {
                case .gauge: type = .gauge
                case .counter: type = .counter
                case .histogram: type = .histogram
                case .summary: type = .summary
                case .info: type = .info
                }
                return MetricMetadata(type: type, familyName: f.name, help: f.help, unit: f.unit)
            }
        }
        return Conversion(request: request, skipped: skipped, points: points)
    }

    /// One line of a point on its way to a series.
    private struct Line {
        var labels: [Label]
        var sample: Sample
        var exemplar: Exemplar?
        /// Input position, so that lines of one series keep their order.
        var order: Int
    }

    /// Orders series as their label text (`name\0value\0...`) would sort, without building the text (a
    /// string that is a prefix of another sorts first, as the `\0` separator made it): -1, 0 or 1.
    static func compareLabels(_ a: [Label], _ b: [Label]) -> Int {
        for (x, y) in zip(a, b) {
            if x.name != y.name { return x.name < y.name ? -1 : 1 }
            if x.value != y.value { return x.value < y.value ? -1 : 1 }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// Puts `label` into `labels` (sorted by name) at its place, replacing a label of the same name.
    private static func insertSorted(_ label: Label, into labels: inout [Label]) {
        var i = 0
        while i < labels.count, labels[i].name < label.name { i += 1 }
        if i < labels.count, labels[i].name == label.name { labels[i] = label } else { labels.insert(label, at: i) }
    }

    private static func exemplar(_ e: SextantModel.Exemplar) -> Exemplar {
        var labels: [Label] = []
        if let t = e.traceID, t.isValid { labels.append(Label("trace_id", t.hex)) }
        if let s = e.spanID, s.isValid { labels.append(Label("span_id", s.hex)) }
        for kv in e.filteredAttributes {
            let name = PrometheusNaming.sanitizeLabelName(kv.key)
            if !labels.contains(where: { $0.name == name }) { labels.append(Label(name, kv.value.asString)) }
        }
        return Exemplar(labels: labels, value: e.value.asDouble, timestamp: Int64(clamping: e.timeUnixNano / 1_000_000))
    }
}

extension RemoteWrite.WriteRequest {
    /// Remote-write series → OTLP metrics, as the receiver hands them on. Series are grouped into
    /// resources by `job` (→ `service.name`, with a `namespace/` prefix → `service.namespace`) and
    /// `instance` (→ `service.instance.id`); every other label except `__name__` becomes a point
    /// attribute. Remote write carries no types with the samples, so a series is a gauge, except that
    /// a name ending in `_total` (or whose family the request's metadata calls a counter) becomes a
    /// monotonic cumulative sum. Histogram and summary series stay separate gauges/sums per
    /// `_bucket`/`_sum`/`_count` line, as Prometheus stores them. Staleness markers become points
    /// flagged `NO_RECORDED_VALUE`. Series without `__name__` are rejected (counted).
    public func toMetrics() -> (data: MetricsData, points: Int, rejected: Int) {
        var counters = Set<String>()
        var help: [String: (String, String)] = [:]
        for m in metadata {
            if m.type == .counter { counters.insert(m.familyName) }
            help[m.familyName] = (m.help, m.unit)
        }
        struct ResourceKey: Hashable {
            var job: String
            var instance: String
        }
        var order: [ResourceKey] = []
        var metrics: [ResourceKey: [String: (index: Int, points: [NumberDataPoint])]] = [:]
        var points = 0
        var rejected = 0
        for ts in timeseries {
            guard let name = ts.metricName, !name.isEmpty else {
                rejected += ts.samples.count
                continue
            }
            var key = ResourceKey(job: "", instance: "")
            var attributes: [KeyValue] = []
            for l in ts.labels {
                switch l.name {
                case "__name__": continue
                case "job": key.job = l.value
                case "instance": key.instance = l.value
                default: attributes.append(KeyValue(l.name, .string(l.value)))
                }
            }
            if metrics[key] == nil {
                order.append(key)
                metrics[key] = [:]
            }
            let ps = ts.samples.map { s in
                let stale = RemoteWrite.isStaleMarker(s.value)
                return NumberDataPoint(
                    attributes: attributes, timeUnixNano: UInt64(clamping: s.timestamp) &* 1_000_000, value: .double(s.value),
                    flags: stale ? DataPointFlags.noRecordedValue : 0)
            }
            points += ps.count
            let next = metrics[key]!.count
            metrics[key]![name, default: (next, [])].points.append(contentsOf: ps)
        }
        var data = MetricsData()
        for key in order {
            var resource: [KeyValue] = []
            if !key.job.isEmpty {
                if let slash = key.job.lastIndex(of: "/") {
                    resource.append(KeyValue("service.namespace", .string(String(key.job[..<slash]))))
                    resource.append(KeyValue("service.name", .string(String(key.job[key.job.index(after: slash)...]))))
                } else {
                    resource.append(KeyValue("service.name", .string(key.job)))
                }
            }
            if !key.instance.isEmpty { resource.append(KeyValue("service.instance.id", .string(key.instance))) }
            let ms = metrics[key]!.sorted { $0.value.index < $1.value.index }.map { name, entry in
                let isCounter = counters.contains(name) || name.hasSuffix("_total")
                let (description, unit) = help[name] ?? help[String(name.dropLast(isCounter && name.hasSuffix("_total") ? 6 : 0))] ?? ("", "")
                return Metric(
                    name: name, description: description, unit: unit,
                    data: isCounter ? .sum(entry.points, temporality: .cumulative, isMonotonic: true) : .gauge(entry.points))
            }
            data.resourceMetrics.append(
                ResourceMetrics(
                    resource: Resource(attributes: resource),
                    scopeMetrics: [ScopeMetrics(scope: InstrumentationScope(name: "sextant/prometheusremotewrite"), metrics: ms)]))
        }
        return (data, points, rejected)
    }
}
