import SextantModel
import SextantOTLP

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
        /// Send `target_info` series (the OTel exporter's `target_info.enabled`).
        public var targetInfo = true
        public init() {}
    }

    /// The result of converting OTLP: the series (held flat, in one label pool, until encoded), what had
    /// no remote-write form, and the number of data points.
    public struct Conversion: Sendable {
        /// Every series' labels, one run per series, sorted by name within the run.
        fileprivate var labels: [Label] = []
        fileprivate var samples: [Sample] = []
        fileprivate var exemplars: [Exemplar] = []
        fileprivate var series: [FlatSeries] = []
        fileprivate var metadata: [MetricMetadata] = []
        public var skipped = PrometheusSamples.Skipped()
        /// Data points converted (the unit the collector counts metrics in).
        public var points = 0

        /// The series as a `WriteRequest`.
        public var request: WriteRequest {
            WriteRequest(
                timeseries: series.map {
                    TimeSeries(labels: Array(labels[$0.labels]), samples: Array(samples[$0.samples]), exemplars: Array(exemplars[$0.exemplars]))
                }, metadata: metadata)
        }

        /// The protobuf encodings (before Snappy) of the requests that carry every series and then the
        /// metadata, each within `maxBytes` (a series larger than that on its own goes alone), in order —
        /// the OTel exporter's `max_batch_size_bytes`. Byte for byte what `split(request, maxBytes:)` then
        /// `encode()` give, without building the request.
        public func encodedRequests(maxBytes: Int) -> [[UInt8]] {
            // One pass encodes every element; their sizes split the bytes when they exceed the limit (the
            // elements of a request are consecutive in the whole encoding).
            let count = series.count + metadata.count
            var w = ProtoWriter(capacity: 64 + labels.count * 40 + samples.count * 24)
            var sizes = [Int](repeating: 0, count: count)
            for i in (0..<count).reversed() {
                let mark = w.count
                if i < series.count {
                    let s = series[i]
                    RemoteWrite.write(labels: labels[s.labels], samples: samples[s.samples], exemplars: exemplars[s.exemplars], into: &w)
                    w.lengthPrefix(1, since: mark)
                } else {
                    metadata[i - series.count].write(&w)
                    w.lengthPrefix(3, since: mark)
                }
                sizes[i] = w.count - mark
            }
            if count == 0 { return [] }
            let all = w.bytes()
            if all.count <= maxBytes { return [all] }
            var offset = 0
            return RemoteWrite.chunks(sizes, maxBytes: maxBytes).map { chunk in
                let n = sizes[chunk].reduce(0, +)
                defer { offset += n }
                return Array(all[offset..<offset + n])
            }
        }
    }

    /// Where one series lives in a `Conversion`'s pools.
    fileprivate struct FlatSeries: Sendable {
        var labels: Range<Int>
        var samples: Range<Int>
        var exemplars: Range<Int>
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
        var builder = LineBuilder(external: external, targetInfo: options.targetInfo)
        // Sized up front: growing the pools as lines arrive copied them and touched fresh pages each time.
        let (lines, labels) = estimate(batches, extra: external.count + 4)
        builder.lines.reserveCapacity(lines)
        builder.pool.reserveCapacity(labels)
        let skipped = PrometheusSamples.walk(batches, options: options.samples, into: &builder)
        var out = builder.finish()
        out.skipped = skipped
        if options.sendMetadata {
            out.metadata = builder.families.keys.sorted().map { name in
                let f = builder.families[name]!
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
        return out
    }

    /// About how many lines and labels converting `batches` gives (`extra`: labels a line has besides the
    /// point's attributes — `__name__`, `le`, job, instance, external labels).
    private static func estimate(_ batches: [MetricsData], extra: Int) -> (lines: Int, labels: Int) {
        var lines = 0
        var labels = 0
        func add(_ pointLines: Int, _ attributes: Int) {
            lines += pointLines
            labels += pointLines * (attributes + extra)
        }
        for batch in batches {
            for rm in batch.resourceMetrics {
                for sm in rm.scopeMetrics {
                    for m in sm.metrics {
                        switch m.data {
                        case .gauge(let ps), .sum(let ps, _, _): for p in ps { add(1, p.attributes.count) }
                        case .histogram(let ps, _): for p in ps { add(p.explicitBounds.count + 3, p.attributes.count) }
                        case .summary(let ps): for p in ps { add(p.quantileValues.count + 2, p.attributes.count) }
                        case .exponentialHistogram, .empty: continue
                        }
                    }
                }
                add(1, rm.resource.attributes.count)  // target_info
            }
        }
        return (lines, labels)
    }

    /// One line of a point on its way to a series: its labels are `pool[labels]`.
    private struct Line {
        var labels: Range<Int>
        var sample: Sample
        /// Index into the builder's exemplars, or -1.
        var exemplar: Int
        /// Input position, so that lines of one series keep their order.
        var order: Int
        /// Which distinct `__name__` value the line has (`LineBuilder.names`).
        var name: Int32
    }

    /// The remote-write visitor of `PrometheusSamples.walk`: each line's labels go into one pool, so a
    /// conversion allocates per batch, not per line.
    private struct LineBuilder: PrometheusSamples.Visitor {
        let external: [Label]
        let targetInfo: Bool
        var pool: [Label] = []
        var lines: [Line] = []
        var exemplars: [Exemplar] = []
        var families: [String: PrometheusSamples.Family] = [:]
        var points = 0
        /// The current family's name and its suffixed forms, with their ids in `names` (made once per
        /// family, when first needed).
        private var name = ""
        private var suffixed: [(String, Int32)?] = [nil, nil, nil, nil]
        /// Every distinct `__name__` value, and its id.
        private var names: [String] = []
        private var nameIDs: [String: Int32] = [:]
        /// No point had a label sorting before `__name__` (such as `Host` or `__address__`), so `__name__`
        /// leads every line's labels and lines can be ordered by name id first.
        private var nameFirst = true
        private var skipFamily = false
        private var skipPoint = false
        private var isInfo = false
        /// The current point's labels merged with the external labels it lacks, sorted.
        private var pointLabels: [Label] = []
        private var ms: Int64 = 0
        private var stale = false

        init(external: [Label], targetInfo: Bool) {
            self.external = external
            self.targetInfo = targetInfo
        }

        mutating func family(_ f: PrometheusSamples.Family) {
            skipFamily = !targetInfo && f.name == "target_info"
            if skipFamily { return }
            isInfo = f.type == .info
            if f.name != name {
                name = f.name
                suffixed = [nil, nil, nil, nil]
                if families[f.name] == nil { families[f.name] = f }
            }
        }

        mutating func point(labels: [(String, String)], time: UInt64, start: UInt64, stale: Bool) {
            skipPoint = skipFamily || (isInfo && time == 0)  // `target_info` of a resource without points
            if skipPoint { return }
            if !isInfo { points += 1 }
            ms = Int64(clamping: time / 1_000_000)
            self.stale = stale
            pointLabels.removeAll(keepingCapacity: true)
            var e = 0
            for (name, value) in labels {
                while e < external.count, external[e].name < name {
                    pointLabels.append(external[e])
                    e += 1
                }
                if e < external.count, external[e].name == name { e += 1 }
                pointLabels.append(Label(name, value))
            }
            while e < external.count {
                pointLabels.append(external[e])
                e += 1
            }
            if let first = pointLabels.first, first.name < "__name__" { nameFirst = false }
        }

        mutating func line(_ suffix: PrometheusSamples.LineSuffix, extra: (String, String)?, value: Double, exemplar: SextantModel.Exemplar?) {
            if skipPoint { return }
            let start = pool.count
            // The point's labels with `__name__` and `le`/`quantile` at their places; each replaces a label
            // of the same name.
            let (seriesName, nameID) = seriesName(suffix)
            var next: Label? = Label("__name__", seriesName)
            var after = extra.map { Label($0.0, $0.1) }
            if let a = after, a.name < next!.name { (next, after) = (a, next) }
            for l in pointLabels {
                var replaced = false
                while let n = next, n.name <= l.name {
                    replaced = replaced || n.name == l.name
                    pool.append(n)
                    (next, after) = (after, nil)
                }
                if !replaced { pool.append(l) }
            }
            if let n = next { pool.append(n) }
            if let a = after { pool.append(a) }
            var ex = -1
            if !stale, let exemplar {
                ex = exemplars.count
                exemplars.append(RemoteWrite.exemplar(exemplar))
            }
            lines.append(
                Line(labels: start..<pool.count, sample: Sample(value: stale ? staleNaN : value, timestamp: ms), exemplar: ex, order: lines.count, name: nameID))
        }

        func endPoint() {}

        private mutating func seriesName(_ suffix: PrometheusSamples.LineSuffix) -> (String, Int32) {
            let i: Int
            switch suffix {
            case .none: i = 0
            case .bucket: i = 1
            case .sum: i = 2
            case .count: i = 3
            }
            if let known = suffixed[i] { return known }
            let s = name + suffix.text
            let id: Int32
            if let known = nameIDs[s] {
                id = known
            } else {
                id = Int32(names.count)
                names.append(s)
                nameIDs[s] = id
            }
            suffixed[i] = (s, id)
            return (s, id)
        }

        /// Sorting the lines by labels (then input order) puts the lines of a series side by side, so they
        /// merge without hashing every label set.
        mutating func finish() -> Conversion {
            var out = Conversion()
            out.points = points
            // With `__name__` leading every line, lines compare by the rank of their name, then by the
            // labels after it: most comparisons are of two integers.
            var rank: [Int32] = []
            if nameFirst {
                rank = Array(repeating: 0, count: names.count)
                for (r, id) in names.indices.sorted(by: { names[$0] < names[$1] }).enumerated() { rank[id] = Int32(r) }
            }
            pool.withUnsafeBufferPointer { pool in
                func order(_ a: Line, _ b: Line) -> Bool {
                    let c: Int
                    if nameFirst {
                        if a.name != b.name { return rank[Int(a.name)] < rank[Int(b.name)] }
                        c = RemoteWrite.compareLabels(pool[a.labels.dropFirst()], pool[b.labels.dropFirst()])
                    } else {
                        c = RemoteWrite.compareLabels(pool[a.labels], pool[b.labels])
                    }
                    return c != 0 ? c < 0 : a.order < b.order
                }
                if !zip(lines, lines.dropFirst()).allSatisfy({ !order($1, $0) }) { lines.sort(by: order) }
                out.series.reserveCapacity(lines.count)
                out.samples.reserveCapacity(lines.count)
                var previousName: Int32 = -1
                for line in lines {
                    // Lines of different `__name__` values are different series.
                    defer { previousName = line.name }
                    if let last = out.series.last, line.name == previousName, RemoteWrite.compareLabels(pool[last.labels], pool[line.labels]) == 0 {
                        out.series[out.series.count - 1].samples = last.samples.lowerBound..<last.samples.upperBound + 1
                    } else {
                        out.series.append(
                            FlatSeries(labels: line.labels, samples: out.samples.count..<out.samples.count + 1, exemplars: out.exemplars.count..<out.exemplars.count))
                    }
                    out.samples.append(line.sample)
                    if line.exemplar >= 0 {
                        out.exemplars.append(exemplars[line.exemplar])
                        out.series[out.series.count - 1].exemplars = out.series[out.series.count - 1].exemplars.lowerBound..<out.exemplars.count
                    }
                }
            }
            out.labels = pool
            for s in out.series where s.samples.count > 1 {
                // Stable: points of the same millisecond keep their input order.
                let run = out.samples[s.samples]
                if !zip(run, run.dropFirst()).allSatisfy({ $0.timestamp <= $1.timestamp }) {
                    out.samples.replaceSubrange(
                        s.samples, with: run.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }.map(\.element))
                }
            }
            return out
        }
    }

    /// Orders series as their label text (`name\0value\0...`) would sort, without building the text (a
    /// string that is a prefix of another sorts first, as the `\0` separator made it): -1, 0 or 1.
    static func compareLabels<C: Collection<Label>>(_ a: C, _ b: C) -> Int {
        for (x, y) in zip(a, b) {
            if x.name != y.name { return x.name < y.name ? -1 : 1 }
            if x.value != y.value { return x.value < y.value ? -1 : 1 }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
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
