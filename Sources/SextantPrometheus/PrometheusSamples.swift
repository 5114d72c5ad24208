import SextantModel

/// The Prometheus view of OTLP metrics, shared by the text 0.0.4 and OpenMetrics renderers and the
/// remote-write conversion, so that all three name and label a point the same way.
///
/// Mapping (OpenTelemetry "Prometheus and OpenMetrics Compatibility", § OTLP Metric points to
/// Prometheus): gauge → gauge; monotonic cumulative sum → counter (`_total`); non-monotonic cumulative sum →
/// gauge; explicit histogram → histogram (`_bucket{le}` cumulative up to `+Inf`, `_sum`, `_count`);
/// summary → summary (`{quantile}`, `_sum`, `_count`). Delta temporality and exponential histograms
/// have no Prometheus form here and are skipped (and counted). Resource attributes give `job`
/// (`service.namespace/service.name`), `instance` (`service.instance.id`), and one `target_info`
/// point per resource carrying the other attributes (§ Resource Attributes).
public enum PrometheusSamples {
    /// How OTLP becomes Prometheus series (the exporters' shared settings).
    public struct Options: Sendable {
        /// Prefix for every metric name (`namespace` in the OTel exporters).
        public var namespace = ""
        /// Labels added to every series (`const_labels` / `external_labels`); names are sanitised.
        public var constLabels: [(String, String)] = []
        /// Also copy every resource attribute onto every series (`resource_to_telemetry_conversion`).
        public var resourceToTelemetry = false
        public init() {}
    }

    /// The Prometheus metric type of a family.
    public enum MetricType: String, Sendable {
        case gauge, counter, histogram, summary, info
    }

    /// A metric family's metadata. `name` is the full Prometheus name (`_total` included for counters).
    public struct Family: Sendable, Equatable {
        public var name: String
        public var type: MetricType
        public var help: String
        /// The unit word used as the name's suffix (`seconds`, `bytes`), or empty.
        public var unit: String
    }

    /// One line of a point: `family.name + suffix`, the point's labels plus `extra` (`le`/`quantile`).
    public struct Line: Sendable {
        public var suffix: String
        public var extra: (String, String)?
        public var value: Double
        /// The exemplar shown on this line (OpenMetrics `_total` and `_bucket` lines only).
        public var exemplar: Exemplar?
    }

    /// One OTLP data point in Prometheus form.
    public struct Point: Sendable {
        public var family: Family
        /// Sorted by name; `job`/`instance`, constant labels and attributes (attributes win).
        public var labels: [(String, String)]
        public var lines: [Line]
        public var timeUnixNano: UInt64
        public var startTimeUnixNano: UInt64
        /// `NO_RECORDED_VALUE` was set: the series went stale.
        public var stale: Bool

        /// The series identity: family name plus sorted labels, as label text.
        public var seriesKey: String { family.name + PrometheusText.labelText(labels) }
    }

    /// Points of kinds Prometheus cannot show (delta, exponential histogram) are counted here.
    public struct Skipped: Sendable, Equatable {
        public var points = 0
        public var reasons: Set<String> = []
    }

    /// Walks every point of `batches`, then one `target_info` point per resource with attributes
    /// besides `service.*` (its time the newest point's of that resource; `job`/`instance` and the
    /// resource attributes only, no constant labels). Returns what was skipped.
    @discardableResult
    public static func forEachPoint(_ batches: [MetricsData], options: Options, _ body: (Point) -> Void) -> Skipped {
        withoutActuallyEscaping(body) { body in
            var builder = PointBuilder(body: body)
            return walk(batches, options: options, into: &builder)
        }
    }

    /// The suffix a line adds to its family's name.
    enum LineSuffix {
        case none, bucket, sum, count

        var text: String {
            switch self {
            case .none: ""
            case .bucket: "_bucket"
            case .sum: "_sum"
            case .count: "_count"
            }
        }
    }

    /// Receives the Prometheus form of OTLP points as `walk` produces it, in this order: `family`, then
    /// per point of it `point`, its `line`s and `endPoint`. Nothing is built per point unless the visitor
    /// builds it (the remote-write conversion writes lines straight into its own storage).
    protocol Visitor {
        mutating func family(_ f: Family)
        /// `labels` are sorted by name and valid only until the next call.
        mutating func point(labels: [(String, String)], time: UInt64, start: UInt64, stale: Bool)
        mutating func line(_ suffix: LineSuffix, extra: (String, String)?, value: Double, exemplar: Exemplar?)
        mutating func endPoint()
        /// Offered before `point` for each OTLP data point: `attributes` are the point's and `resource` its
        /// resource's. A visitor that knows this point's labels from an earlier walk (the same arrays, so
        /// the same labels) takes them and returns `true`; `point` is then not called, its `line`s are.
        mutating func knownPoint(attributes: [KeyValue], resource: [KeyValue], time: UInt64, start: UInt64, stale: Bool) -> Bool
    }

    /// The one OTLP → Prometheus mapping every output shares (see the type's comment), as visitor calls.
    @discardableResult
    static func walk<V: Visitor>(_ batches: [MetricsData], options: Options, into visitor: inout V) -> Skipped {
        var skipped = Skipped()
        let constLabels = options.constLabels.map { (PrometheusNaming.sanitizeLabelName($0.0), $0.1) }
        var scratch: [(String, String)] = []
        var shared = WalkCaches()
        for batch in batches {
            for rm in batch.resourceMetrics {
                let (jobInstance, infoLabels) = resourceLabels(rm.resource)
                var base = jobInstance + constLabels
                if options.resourceToTelemetry { base = merge(base, infoLabels) }
                base.sort { $0.0 < $1.0 }  // so that `visit` inserts attributes into it in order
                var newest: UInt64 = 0
                for sm in rm.scopeMetrics {
                    for m in sm.metrics {
                        visit(
                            m, base: base, resource: rm.resource.attributes, options: options, skipped: &skipped, scratch: &scratch,
                            caches: &shared, newest: &newest, &visitor)
                    }
                }
                if !infoLabels.isEmpty {
                    visitor.family(Family(name: "target_info", type: .info, help: "Target metadata", unit: ""))
                    visitor.point(labels: merge(jobInstance, infoLabels).sorted { $0.0 < $1.0 }, time: newest, start: 0, stale: false)
                    visitor.line(.none, extra: nil, value: 1, exemplar: nil)
                    visitor.endPoint()
                }
            }
        }
        return skipped
    }

    /// What one walk makes once and uses for every metric: the metrics of a batch nearly always repeat
    /// their attribute keys in the same order (a metric's points do, and so do the metrics of one
    /// instrumented component), and their histograms' bounds.
    private struct WalkCaches {
        /// Sanitised label names by attribute position, the last few keys of each.
        var names = PositionalCache<String, String>(ways: 4)
        /// The last histogram bounds seen and their `le` values.
        var bounds: [Double] = []
        var les: [String] = []
    }

    /// `base` is sorted by name (the labels `resource` gives); `scratch` holds each point's labels in turn.
    private static func visit<V: Visitor>(
        _ m: Metric, base: [(String, String)], resource: [KeyValue], options: Options, skipped: inout Skipped,
        scratch: inout [(String, String)],
        caches: inout WalkCaches, newest: inout UInt64, _ v: inout V
    ) {
        func family(_ type: MetricType, counter: Bool = false, gauge: Bool = false) -> Family {
            let name = PrometheusNaming.metricName(m.name, unit: m.unit, namespace: options.namespace, isCounter: counter, isGauge: gauge)
            return Family(
                name: name, type: type, help: m.description.isEmpty ? m.name : m.description,
                unit: PrometheusNaming.unitSuffix(m.unit, isGauge: gauge) ?? "")
        }
        func point(_ attrs: [KeyValue], _ time: UInt64, _ start: UInt64, _ flags: UInt32) {
            newest = max(newest, time)
            let stale = flags & DataPointFlags.noRecordedValue != 0
            if v.knownPoint(attributes: attrs, resource: resource, time: time, start: start, stale: stale) { return }
            // Each attribute goes to its place in the sorted base labels (replacing a base label of the
            // same name), so the result is sorted without sorting it.
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: base)
            for (k, kv) in attrs.enumerated() {
                let name: String
                if let known = caches.names.lookup(k, kv.key) {
                    name = known
                } else {
                    name = PrometheusNaming.sanitizeLabelName(kv.key)
                    caches.names.store(k, kv.key, name)
                }
                let value = kv.value.asString
                var i = scratch.count
                while i > 0, scratch[i - 1].0 > name { i -= 1 }
                if i > 0, scratch[i - 1].0 == name {
                    scratch[i - 1].1 = value
                } else {
                    // Appended and moved into place (`insert` is not specialised for this element type).
                    scratch.append((name, value))
                    var j = scratch.count - 1
                    while j > i {
                        scratch.swapAt(j, j - 1)
                        j -= 1
                    }
                }
            }
            v.point(labels: scratch, time: time, start: start, stale: stale)
        }
        func skip(_ n: Int, _ reason: String) {
            skipped.points += n
            skipped.reasons.insert(reason)
        }
        switch m.data {
        case .gauge(let ps):
            v.family(family(.gauge, gauge: true))
            for p in ps {
                point(p.attributes, p.timeUnixNano, p.startTimeUnixNano, p.flags)
                v.line(.none, extra: nil, value: p.value.asDouble, exemplar: nil)
                v.endPoint()
            }
        case .sum(let ps, let temporality, let monotonic):
            guard temporality == .cumulative else { return skip(ps.count, "delta or unspecified-temporality sum") }
            v.family(monotonic ? family(.counter, counter: true) : family(.gauge, gauge: true))
            for p in ps {
                point(p.attributes, p.timeUnixNano, p.startTimeUnixNano, p.flags)
                v.line(.none, extra: nil, value: p.value.asDouble, exemplar: monotonic ? p.exemplars.last : nil)
                v.endPoint()
            }
        case .histogram(let ps, let temporality):
            guard temporality == .cumulative else { return skip(ps.count, "delta or unspecified-temporality histogram") }
            v.family(family(.histogram))
            for p in ps {
                // The points of a histogram, and often all histograms, share bounds: the `le` values are
                // formatted when the bounds change.
                if p.explicitBounds != caches.bounds {
                    caches.bounds = p.explicitBounds
                    caches.les = caches.bounds.map(PrometheusText.number)
                }
                let les = caches.les
                point(p.attributes, p.timeUnixNano, p.startTimeUnixNano, p.flags)
                var cumulative: UInt64 = 0
                for (i, bound) in p.explicitBounds.enumerated() where i < p.bucketCounts.count {
                    cumulative += p.bucketCounts[i]
                    let lower = i == 0 ? -Double.infinity : p.explicitBounds[i - 1]
                    let ex = p.exemplars.isEmpty ? nil : p.exemplars.last { $0.value.asDouble <= bound && $0.value.asDouble > lower }
                    v.line(.bucket, extra: ("le", les[i]), value: Double(cumulative), exemplar: ex)
                }
                let top = p.explicitBounds.last ?? -Double.infinity
                v.line(.bucket, extra: ("le", "+Inf"), value: Double(p.count), exemplar: p.exemplars.last { $0.value.asDouble > top })
                if let sum = p.sum { v.line(.sum, extra: nil, value: sum, exemplar: nil) }
                v.line(.count, extra: nil, value: Double(p.count), exemplar: nil)
                v.endPoint()
            }
        case .summary(let ps):
            v.family(family(.summary))
            for p in ps {
                point(p.attributes, p.timeUnixNano, p.startTimeUnixNano, p.flags)
                for q in p.quantileValues {
                    v.line(.none, extra: ("quantile", PrometheusText.number(q.quantile)), value: q.value, exemplar: nil)
                }
                v.line(.sum, extra: nil, value: p.sum, exemplar: nil)
                v.line(.count, extra: nil, value: Double(p.count), exemplar: nil)
                v.endPoint()
            }
        case .exponentialHistogram(let ps, _):
            skip(ps.count, "exponential histogram")
        case .empty:
            return
        }
    }

    /// The visitor behind `forEachPoint`: one `Point` per point.
    private struct PointBuilder: Visitor {
        let body: (Point) -> Void
        var current = Point(
            family: Family(name: "", type: .gauge, help: "", unit: ""), labels: [], lines: [], timeUnixNano: 0, startTimeUnixNano: 0,
            stale: false)

        init(body: @escaping (Point) -> Void) { self.body = body }

        mutating func family(_ f: Family) { current.family = f }

        mutating func point(labels: [(String, String)], time: UInt64, start: UInt64, stale: Bool) {
            current.labels = labels
            current.lines = []
            current.timeUnixNano = time
            current.startTimeUnixNano = start
            current.stale = stale
        }

        mutating func line(_ suffix: LineSuffix, extra: (String, String)?, value: Double, exemplar: Exemplar?) {
            current.lines.append(Line(suffix: suffix.text, extra: extra, value: value, exemplar: exemplar))
        }

        func endPoint() { body(current) }
    }

    /// `job` and `instance` from the resource, and the other attributes for `target_info`.
    static func resourceLabels(_ r: Resource) -> ([(String, String)], [(String, String)]) {
        var job = r.serviceName ?? ""
        if case .string(let ns)? = r.attributes[key: "service.namespace"], !ns.isEmpty, !job.isEmpty { job = ns + "/" + job }
        var base: [(String, String)] = []
        if !job.isEmpty { base.append(("job", job)) }
        if case .string(let inst)? = r.attributes[key: "service.instance.id"], !inst.isEmpty { base.append(("instance", inst)) }
        let skip: Set<String> = ["service.name", "service.namespace", "service.instance.id"]
        let info = r.attributes.filter { !skip.contains($0.key) }.map { (PrometheusNaming.sanitizeLabelName($0.key), $0.value.asString) }
        return (base, info)
    }

    /// `base` with `more` laid over it: a label already present takes the later value.
    static func merge(_ base: [(String, String)], _ more: [(String, String)]) -> [(String, String)] {
        var l = base
        for (name, value) in more {
            if let i = l.firstIndex(where: { $0.0 == name }) { l[i].1 = value } else { l.append((name, value)) }
        }
        return l
    }
}

extension PrometheusSamples.Visitor {
    /// Most visitors build every point's labels.
    mutating func knownPoint(attributes: [KeyValue], resource: [KeyValue], time: UInt64, start: UInt64, stale: Bool) -> Bool { false }
}

extension PrometheusSamples.Line {
    init(suffix: String, value: Double) { self.init(suffix: suffix, extra: nil, value: value, exemplar: nil) }
    init(suffix: String, extra: (String, String)?, value: Double) { self.init(suffix: suffix, extra: extra, value: value, exemplar: nil) }
}

extension PrometheusSamples {
    /// The latest point of every series (the newest `timeUnixNano` wins; a later one in input order on
    /// ties). A stale point removes its series. Families sorted by name, series by label text: the
    /// deterministic order both exposition renderers print.
    public static func latest(_ batches: [MetricsData], options: Options) -> [(Family, [Point])] {
        var bySeries: [String: Point] = [:]
        var families: [String: Family] = [:]
        forEachPoint(batches, options: options) { p in
            let key = p.seriesKey
            if let old = bySeries[key], old.timeUnixNano > p.timeUnixNano { return }
            if p.stale {
                bySeries[key] = nil
                return
            }
            if families[p.family.name] == nil { families[p.family.name] = p.family }
            bySeries[key] = p
        }
        var grouped: [String: [(String, Point)]] = [:]
        for (key, p) in bySeries { grouped[p.family.name, default: []].append((key, p)) }
        return families.keys.sorted().compactMap { name in
            guard let points = grouped[name] else { return nil }
            return (families[name]!, points.sorted { $0.0 < $1.0 }.map(\.1))
        }
    }
}

extension PrometheusSamples {
    /// Every name a family takes in an exposition: its metadata name and its sample names. They share one
    /// namespace (OpenMetrics 1.0 § "MetricFamily": no sample name of one family may equal another
    /// family's name or sample name; Prometheus client libraries refuse such registrations).
    static func exposedNames(_ f: Family, openMetrics: Bool) -> [String] {
        switch (f.type, openMetrics) {
        case (.counter, true):
            let family = f.name.hasSuffix("_total") ? String(f.name.dropLast(6)) : f.name
            return [family, family + "_total", family + "_created"]
        case (.info, true):
            let family = f.name.hasSuffix("_info") ? String(f.name.dropLast(5)) : f.name
            return [family, family + "_info"]
        case (.histogram, _):
            return [f.name, f.name + "_bucket", f.name + "_count", f.name + "_sum"] + (openMetrics ? [f.name + "_created"] : [])
        case (.summary, _):
            return [f.name, f.name + "_count", f.name + "_sum"] + (openMetrics ? [f.name + "_created"] : [])
        case (.counter, false), (.gauge, _), (.info, false):
            return [f.name]
        }
    }

    /// `families` without those whose names clash with a family earlier in the list (which is sorted by
    /// name, so the outcome is deterministic): a gauge `h_created` beside a histogram `h` in OpenMetrics, a
    /// gauge `s_count` beside a summary `s`, or two OTLP metrics that translate to one name with different
    /// types. Rendering both would give a scraper a duplicate series or conflicting metadata, and
    /// Prometheus fails the whole scrape on either. Returns the names of the families left out.
    public static func withoutNameCollisions(_ families: [(Family, [Point])], openMetrics: Bool) -> (
        kept: [(Family, [Point])], dropped: [String]
    ) {
        var claimed = Set<String>()
        var kept: [(Family, [Point])] = []
        kept.reserveCapacity(families.count)
        var dropped: [String] = []
        for entry in families {
            let names = exposedNames(entry.0, openMetrics: openMetrics)
            if names.contains(where: claimed.contains) {
                dropped.append(entry.0.name)
                continue
            }
            claimed.formUnion(names)
            kept.append(entry)
        }
        return (kept, dropped)
    }
}

/// What was made from each position of the previous items, for the next one: the points of a metric
/// nearly always repeat their attribute keys, and often values, in the same order. Each position keeps
/// its last `ways` entries (a label that cycles through a few values, such as a status code, finds each
/// of them). A lookup hits only when the key at that position is equal, so a change costs a miss, never a
/// wrong value.
struct PositionalCache<Key: Equatable, Value> {
    private let ways: Int
    /// `ways` slots per position, of which the first `filled[position]` are in use (a new position's
    /// slots start as copies of its first entry); with one way, one entry per position.
    private var entries: [(key: Key, value: Value)] = []
    private var filled: [Int] = []
    /// Per position, the slot the next `store` replaces once all are in use.
    private var next: [Int] = []

    init(ways: Int = 1) { self.ways = ways }

    @inline(__always)
    func lookup(_ position: Int, _ key: Key) -> Value? {
        if ways == 1 { return position < entries.count && entries[position].key == key ? entries[position].value : nil }
        guard position < filled.count else { return nil }
        let base = position * ways
        for j in base..<(base + filled[position]) where entries[j].key == key { return entries[j].value }
        return nil
    }

    /// Keeps `value` for `key` at `position`; positions are added in order (a store past the next new
    /// position is dropped).
    mutating func store(_ position: Int, _ key: Key, _ value: Value) {
        if ways == 1 {  // one slot per position: `filled` and `next` are not used
            if position < entries.count {
                entries[position] = (key, value)
            } else if position == entries.count {
                entries.append((key, value))
            }
            return
        }
        if position == filled.count {
            entries.append(contentsOf: repeatElement((key: key, value: value), count: ways))
            filled.append(1)
            next.append(0)
        } else if position < filled.count {
            let slot: Int
            if filled[position] < ways {
                slot = filled[position]
                filled[position] += 1
            } else {
                slot = next[position]
                next[position] = (slot + 1) % ways
            }
            entries[position * ways + slot] = (key, value)
        }
    }
}
