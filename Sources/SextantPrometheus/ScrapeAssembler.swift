import SextantModel

/// Turns the metric families of successive scrapes of one target into OTLP metrics, following the
/// OpenTelemetry specification's "Prometheus and OpenMetrics Compatibility" § "Prometheus Metric points to
/// OTLP":
///
/// - counter → monotonic cumulative Sum; gauge and unknown/untyped → Gauge; info and stateset →
///   non-monotonic cumulative Sum; histogram → cumulative explicit-bucket Histogram (bounds from `le`,
///   dropped without `_count`); summary → Summary (dropped without `_count`, sum 0 without `_sum`);
///   gaugehistogram → dropped, as the specification requires.
/// - The name is the Prometheus metric name (OpenMetrics counters keep `_total`, infos `_info`), HELP is
///   the description, UNIT the unit (Prometheus words → UCUM), TYPE goes to `metadata["prometheus.type"]`.
/// - Start time: from `_created` when present; otherwise the time the series was first seen, renewed when
///   a cumulative value decreases (a reset), per the data model's "handling unknown start time".
/// - Staleness: a series present in the previous scrape and absent now, or every series of a target whose
///   scrape failed, gets one point flagged `NO_RECORDED_VALUE`, as the OTel Collector's receiver does.
/// - `target_info` labels become resource attributes; `otel_scope_name`/`otel_scope_version` labels select
///   the instrumentation scope and `otel_scope_info` supplies its attributes; `job` and `instance` never
///   become point attributes (they are the resource's `service.name`/`service.instance.id`).
public struct ScrapeAssembler: Sendable {
    /// The resource attributes of the target (see `targetResource`), before `target_info` is merged in.
    public let resource: [KeyValue]
    /// The scope for metrics without `otel_scope_name`.
    public let defaultScope: InstrumentationScope

    /// Every known series' state, by slot; a slot of a forgotten series is `nil` until reused.
    private var states: [SeriesState?] = []
    private var slots: [SeriesKey: Int] = [:]
    private var freeSlots: [Int] = []
    /// The slots in the order the previous scrape met them, and this scrape's so far. Targets expose their
    /// series in the same order scrape after scrape, so the series a sample belongs to is nearly always the
    /// next one of the previous scrape: checking that one by comparing labels in place costs no label array
    /// and no hashing. `cursor` is that next position.
    private var previousOrder: [Int] = []
    private var currentOrder: [Int] = []
    private var cursor = 0
    /// Counts `assemble` calls; a series whose state holds an older value was not in the latest scrape.
    private var generation: UInt64 = 0
    /// Series added by the last `assemble` call (Prometheus' `scrape_series_added`).
    public private(set) var seriesAdded = 0
    /// Series the current `assemble` call has seen; fewer than `slots.count` means some are gone.
    private var seenThisScrape = 0

    public init(resource: [KeyValue], defaultScope: InstrumentationScope) {
        self.resource = resource
        self.defaultScope = defaultScope
    }

    /// The resource attributes of a scrape target (OTel compatibility spec § Resource Attributes).
    public static func targetResource(job: String, instance: String, scheme: String) -> [KeyValue] {
        var attrs = [KeyValue("service.name", .string(job)), KeyValue("service.instance.id", .string(instance))]
        var host = instance
        var port: Int64?
        if let colon = instance.lastIndex(of: ":"), let p = Int64(instance[instance.index(after: colon)...]) {
            host = String(instance[..<colon])
            port = p
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        attrs.append(KeyValue("server.address", .string(host)))
        if let port { attrs.append(KeyValue("server.port", .int(port))) }
        attrs.append(KeyValue("url.scheme", .string(scheme)))
        return attrs
    }

    // MARK: - Series state

    /// A series: the metric and its sorted labels (the scope is a function of the labels: `split`).
    fileprivate struct SeriesKey: Hashable, Sendable {
        var metric: String
        var labels: [ExpositionLabel]
    }


    // MARK: - Assembly

    /// Converts one successful scrape. Series missing since the previous scrape get staleness markers.
    public mutating func assemble(_ families: [ExpositionFamily], at time: UInt64) -> MetricsData {
        seriesAdded = 0
        seenThisScrape = 0
        generation &+= 1
        cursor = 0
        currentOrder.removeAll(keepingCapacity: true)
        var resourceAttributes = resource
        var scopeAttributes: [AssembledScopeID: [KeyValue]] = [:]
        var builder = ScopeBuilder()

        for f in families {
            if f.name == "target_info" || (f.name == "target" && f.type == .info) {
                for s in f.samples {
                    for l in s.labels where l.name != "job" && l.name != "instance" { resourceAttributes.set(l.name, .string(l.value)) }
                }
                continue
            }
            if f.name == "otel_scope_info" || (f.name == "otel_scope" && f.type == .info) {
                for s in f.samples {
                    let id = AssembledScopeID(name: s.label("otel_scope_name") ?? "", version: s.label("otel_scope_version") ?? "")
                    scopeAttributes[id, default: []] += s.labels
                        .filter { !["otel_scope_name", "otel_scope_version", "job", "instance"].contains($0.name) }
                        .map { KeyValue($0.name, .string($0.value)) }
                }
                continue
            }
            convert(f, at: time, into: &builder)
        }
        // Staleness markers for series that disappeared (counted, so that a scrape with none gone does
        // not walk the states).
        if seenThisScrape < slots.count {
            for slot in states.indices {
                guard let state = states[slot], state.generation != generation else { continue }
                builder.add(state.meta, scope: state.scope, point: stalePoint(state, at: time))
                slots[state.key] = nil
                states[slot] = nil
                freeSlots.append(slot)
            }
        }
        swap(&previousOrder, &currentOrder)
        let scopes = builder.build(defaultScope: defaultScope, scopeAttributes: scopeAttributes)
        return MetricsData(resourceMetrics: [ResourceMetrics(resource: Resource(attributes: resourceAttributes), scopeMetrics: scopes)])
    }

    /// A failed scrape: every series of the previous scrape gets a staleness marker and is forgotten.
    public mutating func markStale(at time: UInt64) -> MetricsData {
        seriesAdded = 0
        var builder = ScopeBuilder()
        for case let state? in states { builder.add(state.meta, scope: state.scope, point: stalePoint(state, at: time)) }
        states = []
        slots = [:]
        freeSlots = []
        previousOrder = []
        let scopes = builder.build(defaultScope: defaultScope, scopeAttributes: [:])
        return MetricsData(resourceMetrics: [ResourceMetrics(resource: Resource(attributes: resource), scopeMetrics: scopes)])
    }

    /// Adds metrics the scraper itself produces (`up`, `scrape_duration_seconds`, ...) to the default scope.
    public func appendSynthetic(_ metrics: [Metric], to data: inout MetricsData) {
        guard !metrics.isEmpty, !data.resourceMetrics.isEmpty else { return }
        if let i = data.resourceMetrics[0].scopeMetrics.firstIndex(where: { $0.scope == defaultScope }) {
            data.resourceMetrics[0].scopeMetrics[i].metrics += metrics
        } else {
            data.resourceMetrics[0].scopeMetrics.insert(ScopeMetrics(scope: defaultScope, metrics: metrics), at: 0)
        }
    }

    private func stalePoint(_ s: SeriesState, at time: UInt64) -> AssembledPoint {
        let flags = DataPointFlags.noRecordedValue
        switch s.meta.kind {
        case .gauge, .monotonicSum, .nonMonotonicSum:
            return .number(
                NumberDataPoint(
                    attributes: s.attributes, startTimeUnixNano: s.meta.kind == .gauge ? 0 : s.start, timeUnixNano: time,
                    value: .double(.nan), flags: flags))
        case .histogram:
            return .histogram(HistogramDataPoint(attributes: s.attributes, startTimeUnixNano: s.start, timeUnixNano: time, flags: flags))
        case .summary:
            return .summary(SummaryDataPoint(attributes: s.attributes, startTimeUnixNano: s.start, timeUnixNano: time, flags: flags))
        }
    }

    private mutating func convert(_ f: ExpositionFamily, at scrapeTime: UInt64, into builder: inout ScopeBuilder) {
        let kind: SeriesKind
        var name = f.name
        switch f.type {
        case .counter:
            kind = .monotonicSum
            var total = NameMatcher(f.name + "_total")
            if f.samples.contains(where: { total.matches($0) }) { name = total.name }
        case .gauge, .unknown: kind = .gauge
        case .info:
            kind = .nonMonotonicSum
            var info = NameMatcher(f.name + "_info")
            if f.samples.contains(where: { info.matches($0) }) { name = info.name }
        case .stateset: kind = .nonMonotonicSum
        case .histogram: kind = .histogram
        case .summary: kind = .summary
        case .gaugehistogram: return
        }
        let meta = MetricMeta(
            name: name, description: f.help ?? "", unit: Self.otelUnit(f.unit ?? ""),
            metadata: [KeyValue("prometheus.type", .string(f.type.rawValue))], kind: kind)

        switch kind {
        case .gauge, .monotonicSum, .nonMonotonicSum:
            var created: [[ExpositionLabel]: Double] = [:]
            if kind == .monotonicSum {
                var createdName = NameMatcher(f.name + "_created")
                for s in f.samples where createdName.matches(s) { created[Self.sorted(s.labels)] = s.value }
            }
            var pointName = NameMatcher(name)
            for s in f.samples where pointName.matches(s) {
                let time = s.timestampNanos.map { UInt64(clamping: $0) } ?? scrapeTime
                let (start, scope, attrs): (UInt64, InstrumentationScope, [KeyValue])
                if created.isEmpty {
                    (start, scope, attrs) = track(meta, sample: s, time: time, value: s.value)
                } else {
                    let labels = Self.sorted(s.labels)
                    (start, scope, attrs) = track(meta, labels: labels, time: time, value: s.value, created: created[labels].map(Self.secondsToNanos))
                }
                let point = NumberDataPoint(
                    attributes: attrs, startTimeUnixNano: kind == .gauge ? 0 : start, timeUnixNano: time, value: .double(s.value),
                    exemplars: s.exemplar.map { [Self.exemplar($0, scrapeTime: scrapeTime)] } ?? [])
                builder.add(meta, scope: scope, number: point)
            }
        case .histogram:
            convertHistogram(f, meta: meta, at: scrapeTime, into: &builder)
        case .summary:
            convertSummary(f, meta: meta, at: scrapeTime, into: &builder)
        }
    }

    /// Whether samples are named `name`, comparing the text once per distinct name string of a store (the
    /// samples of a family nearly always share one store, and their few names).
    private struct NameMatcher {
        let name: String
        private var yes: (store: ObjectIdentifier, id: UInt32)?
        private var no: (store: ObjectIdentifier, id: UInt32)?

        init(_ name: String) { self.name = name }

        mutating func matches(_ s: ExpositionSample) -> Bool {
            let id = s.nameIdentity
            if let yes, yes == id { return true }
            if let no, no == id { return false }
            let match = s.name == name
            if match { yes = id } else { no = id }
            return match
        }
    }

    /// Buckets, `_count`, `_sum` and `_created` of one label set (without `le`/`quantile`).
    private struct Group {
        var labels: [ExpositionLabel]
        /// The labels in exposition order (client libraries write them in declaration order, not sorted),
        /// for comparing the next line in place.
        var raw: [ExpositionLabel]
        var buckets: [(bound: Double, count: Double, exemplar: ExpositionExemplar?)] = []
        var quantiles: [SummaryDataPoint.ValueAtQuantile] = []
        var count: Double?
        var sum: Double?
        var created: Double?
        var time: Int64?
    }

    private static func groups(_ f: ExpositionFamily, without special: String) -> [Group] {
        var groups: [Group] = []
        var index: [[ExpositionLabel]: Int] = [:]
        // The suffix of the previous sample's name, reused while the name repeats (same string of the same store).
        var lastName: (store: ObjectIdentifier, id: UInt32)?
        var suffix: Substring = ""
        // The previous sample's labels and group: a sample whose label references equal the previous
        // sample's (`special` aside) is in the same group, which compares integers instead of strings.
        var previous: (store: ObjectIdentifier, start: Int, count: Int, group: Int)?
        // The index of the label name `special` in a store, once a sample of that store has had the label.
        var specialID: (store: ObjectIdentifier, id: UInt32)?
        // A bucket's or quantile's bound by its place in the group: the groups of a family repeat them.
        var bounds = PositionalCache<BoundKey, Double?>()
        for s in f.samples {
            let store = s.store
            let sid = ObjectIdentifier(store)
            let refs = store.labels
            let start = Int(s.labelStart)
            let end = start + s.labelsCount
            // Where the label `special` is: by its name's index when known (parses intern strings), else by
            // comparing names (a store made by relabeling need not intern them).
            var specialAt: Int?
            if let known = specialID, known.store == sid { specialAt = (start..<end).first { refs[$0].name == known.id } }
            if specialAt == nil, let k = (start..<end).first(where: { store.strings[Int(refs[$0].name)] == special }) {
                specialAt = k
                specialID = (sid, refs[k].name)
            }
            let skip = specialID?.store == sid ? specialID!.id : UInt32.max
            let gi: Int
            if let p = previous, p.store == sid, ExpositionLabelRef.equal(refs, start..<end, p.start..<(p.start + p.count), skipping: skip) {
                gi = p.group
            } else {
                gi = Self.group(of: s, without: special, in: &groups, index: &index)
            }
            previous = (sid, start, s.labelsCount, gi)
            if lastName == nil || lastName! != s.nameIdentity {
                suffix = Substring(s.name.utf8.dropFirst(f.name.utf8.count))
                lastName = s.nameIdentity
            }
            func bound(at position: Int) -> Double? {
                guard let k = specialAt else { return nil }
                let key = BoundKey(store: sid, value: refs[k].value)
                if let known = bounds.lookup(position, key) { return known }
                let value = ExpositionNumber.parseDouble(store.strings[Int(refs[k].value)])
                bounds.store(position, key, value)
                return value
            }
            switch suffix {
            case "_bucket":
                groups[gi].buckets.append((bound(at: groups[gi].buckets.count) ?? .nan, s.value, s.exemplar))
            case "_count": groups[gi].count = s.value
            case "_sum": groups[gi].sum = s.value
            case "_created": groups[gi].created = s.value
            case "":
                if let q = bound(at: groups[gi].quantiles.count) { groups[gi].quantiles.append(.init(quantile: q, value: s.value)) }
            default: continue
            }
            if let t = s.timestampNanos { groups[gi].time = t }
        }
        return groups
    }

    /// A bound's text in a store, as a key of the bounds cache of `groups`.
    private struct BoundKey: Equatable {
        var store: ObjectIdentifier
        var value: UInt32
    }

    /// `items` without those whose key (a bucket's bound, a quantile) an earlier item has: one number spelled two
    /// ways (`0.5`, `00.5`) names one series once normalized, and a point cannot hold it twice.
    private static func firstOfEach<T>(_ items: [T], by key: (T) -> Double) -> [T] {
        var seen: Set<Double> = []
        guard items.count > 1 else { return items }
        return items.filter { seen.insert(key($0)).inserted }
    }

    /// The group of a sample that is not in the previous sample's group by its label references: the last
    /// group if the label strings say so, else a known or a new group. A family's few groups are searched
    /// in order; an index is built once there are more.
    private static func group(of s: ExpositionSample, without special: String, in groups: inout [Group], index: inout [[ExpositionLabel]: Int]) -> Int {
        if let last = groups.indices.last, Self.sameGroup(s, groups[last].raw, without: special) { return last }
        let raw = s.labels.filter { $0.name != special }
        let labels = sorted(raw)
        if groups.count <= 8 {
            if let i = groups.firstIndex(where: { $0.labels == labels }) { return i }
        } else {
            if index.isEmpty { for (i, g) in groups.enumerated() { index[g.labels] = i } }
            if let i = index[labels] { return i }
            index[labels] = groups.count
        }
        var group = Group(labels: labels, raw: raw)
        group.buckets.reserveCapacity(16)
        groups.append(group)
        return groups.count - 1
    }

    /// Whether the sample's labels without `special` are exactly `group` in that order.
    /// Reads them in place: `labels` would build an array.
    private static func sameGroup(_ s: ExpositionSample, _ group: [ExpositionLabel], without special: String) -> Bool {
        var g = 0
        for k in 0..<s.labelsCount {
            let name = s.labelName(at: k)
            if name == special { continue }
            guard g < group.count, group[g].name == name, group[g].value == s.labelValue(at: k) else { return false }
            g += 1
        }
        return g == group.count
    }

    private mutating func convertHistogram(_ f: ExpositionFamily, meta: MetricMeta, at scrapeTime: UInt64, into builder: inout ScopeBuilder) {
        for g in Self.groups(f, without: "le") {
            guard let count = g.count else { continue }  // spec: without _count the metric is dropped
            // Targets write buckets in increasing order, without NaN bounds: checking is cheaper than sorting.
            var buckets = g.buckets
            if buckets.contains(where: { $0.bound.isNaN }) { buckets.removeAll { $0.bound.isNaN } }
            if !zip(buckets, buckets.dropFirst()).allSatisfy({ $0.bound < $1.bound }) {
                // Out of order, or one bound spelled twice (`le="0.5"` and `le="00.5"`, which Prometheus 3
                // normalizes to one series): sorted, and the first sample of each bound kept.
                buckets = Self.firstOfEach(buckets, by: \.bound)
                buckets.sort { $0.bound < $1.bound }
            }
            var bounds: [Double] = []
            var counts: [UInt64] = []
            var previous = 0.0
            var exemplars: [Exemplar] = []
            for b in buckets {
                if b.bound != .infinity { bounds.append(b.bound) }
                counts.append(Self.count(b.count - previous))
                previous = max(previous, b.count)
                if let e = b.exemplar { exemplars.append(Self.exemplar(e, scrapeTime: scrapeTime)) }
            }
            if !buckets.isEmpty, buckets.last!.bound != .infinity { counts.append(Self.count(count - previous)) }
            // OTLP: `count` equals the sum of `bucket_counts`. A scrape whose `_count` disagrees with its
            // buckets (below the last one, or unlike its +Inf bucket) gets the buckets' total, so the point
            // stays valid and its cumulative rendering never decreases.
            let total = counts.isEmpty ? Self.count(count) : counts.reduce(0) { $0 > UInt64.max - $1 ? UInt64.max : $0 + $1 }
            let time = g.time.map { UInt64(clamping: $0) } ?? scrapeTime
            let (start, scope, attrs) = track(meta, labels: g.labels, time: time, value: count, created: g.created.map(Self.secondsToNanos))
            let point = HistogramDataPoint(
                attributes: attrs, startTimeUnixNano: start, timeUnixNano: time, count: total, sum: g.sum, bucketCounts: counts,
                explicitBounds: bounds, exemplars: exemplars)
            builder.add(meta, scope: scope, histogram: point)
        }
    }

    private mutating func convertSummary(_ f: ExpositionFamily, meta: MetricMeta, at scrapeTime: UInt64, into builder: inout ScopeBuilder) {
        for g in Self.groups(f, without: "quantile") {
            guard let count = g.count else { continue }  // spec: without _count the metric is dropped
            let time = g.time.map { UInt64(clamping: $0) } ?? scrapeTime
            let (start, scope, attrs) = track(meta, labels: g.labels, time: time, value: count, created: g.created.map(Self.secondsToNanos))
            let point = SummaryDataPoint(
                attributes: attrs, startTimeUnixNano: start, timeUnixNano: time, count: Self.count(count), sum: g.sum ?? 0,
                quantileValues: Self.firstOfEach(g.quantiles, by: \.quantile).sorted { $0.quantile < $1.quantile })
            builder.add(meta, scope: scope, summary: point)
        }
    }

    /// Records the series of a sample as seen (its labels read in place) and returns its start time (first
    /// sight or the reset time), scope and point attributes.
    private mutating func track(
        _ meta: MetricMeta, sample s: ExpositionSample, time: UInt64, value: Double
    ) -> (start: UInt64, scope: InstrumentationScope, attributes: [KeyValue]) {
        if let slot = expectedSlot(meta), Self.sameLabels(s, states[slot]!.key.labels, order: states[slot]!.exposedOrder),
            let known = seen(slot, kind: meta.kind, time: time, value: value, created: nil)
        {
            return known
        }
        let raw = s.labels
        let labels = Self.sorted(raw)
        let (slot, known) = trackSlot(meta, labels: labels, time: time, value: value, created: nil)
        states[slot]!.exposedOrder = Self.exposedOrder(raw, sorted: labels)
        return known
    }

    /// Where each label of `raw` (exposition order) is in `sorted`; empty when they are in the same order
    /// or there are too many labels to say in a byte.
    private static func exposedOrder(_ raw: [ExpositionLabel], sorted: [ExpositionLabel]) -> [UInt8] {
        guard raw.count <= Int(UInt8.max), raw != sorted else { return [] }
        return raw.map { label in UInt8(sorted.firstIndex { $0.name == label.name } ?? 0) }
    }

    /// Records the series as seen and returns its start time (`_created`, first sight, or the reset time),
    /// scope and point attributes (`split(labels)`, kept from the series' first sight).
    private mutating func track(
        _ meta: MetricMeta, labels: [ExpositionLabel], time: UInt64, value: Double, created: UInt64?
    ) -> (start: UInt64, scope: InstrumentationScope, attributes: [KeyValue]) {
        trackSlot(meta, labels: labels, time: time, value: value, created: created).known
    }

    /// `track`, also saying which slot holds the series.
    private mutating func trackSlot(
        _ meta: MetricMeta, labels: [ExpositionLabel], time: UInt64, value: Double, created: UInt64?
    ) -> (slot: Int, known: (start: UInt64, scope: InstrumentationScope, attributes: [KeyValue])) {
        if let slot = expectedSlot(meta), states[slot]!.key.labels == labels,
            let known = seen(slot, kind: meta.kind, time: time, value: value, created: created)
        {
            return (slot, known)
        }
        let key = SeriesKey(metric: meta.name, labels: labels)
        if let slot = slots[key] {
            // Out of the previous order: carry on from this series' place in it.
            if let position = states[slot]!.position, position < previousOrder.count, previousOrder[position] == slot { cursor = position }
            if let known = seen(slot, kind: meta.kind, time: time, value: value, created: created) { return (slot, known) }
            // It changed kind: replaced below, and counted as seen again.
            slots[key] = nil
            states[slot] = nil
            freeSlots.append(slot)
        }
        seriesAdded += 1
        seenThisScrape += 1
        let (scope, attributes) = split(labels)
        let state = SeriesState(
            key: key, meta: meta, scope: scope, attributes: attributes, start: created ?? time, last: value, generation: generation,
            position: currentOrder.count)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            states[slot] = state
        } else {
            slot = states.count
            states.append(state)
        }
        slots[key] = slot
        currentOrder.append(slot)
        return (slot, (created ?? time, scope, attributes))
    }

    /// The slot the previous scrape met next, if it is a live series of this metric and kind.
    private func expectedSlot(_ meta: MetricMeta) -> Int? {
        guard cursor < previousOrder.count else { return nil }
        let slot = previousOrder[cursor]
        guard let state = states[slot], state.meta.kind == meta.kind, state.key.metric == meta.name else { return nil }
        return slot
    }

    /// A known series met in this scrape: its state updated in place (see `update`), its place in this
    /// scrape's order recorded; nil when it changed kind.
    private mutating func seen(
        _ slot: Int, kind: SeriesKind, time: UInt64, value: Double, created: UInt64?
    ) -> (start: UInt64, scope: InstrumentationScope, attributes: [KeyValue])? {
        let fresh = states[slot]!.generation != generation
        guard let known = Self.update(&states[slot]!, kind: kind, time: time, value: value, created: created, generation: generation, seen: &seenThisScrape)
        else { return nil }
        if fresh {
            states[slot]!.position = currentOrder.count
            currentOrder.append(slot)
        }
        cursor += 1
        return known
    }

    /// Whether the sample's labels are exactly `labels` (sorted by name), read in place: label `k` of the
    /// sample is `labels[order[k]]` (`labels[k]` for an empty `order`).
    private static func sameLabels(_ s: ExpositionSample, _ labels: [ExpositionLabel], order: [UInt8]) -> Bool {
        guard s.labelsCount == labels.count, order.isEmpty || order.count == labels.count else { return false }
        for k in 0..<labels.count {
            let l = labels[order.isEmpty ? k : Int(order[k])]
            if l.name != s.labelName(at: k) || l.value != s.labelValue(at: k) { return false }
        }
        return true
    }

    /// A known series seen again: its start (`_created`, or the time of a reset), last value and
    /// generation updated; nil when it changed kind (the caller replaces it, and counts it as seen again).
    private static func update(
        _ state: inout SeriesState, kind: SeriesKind, time: UInt64, value: Double, created: UInt64?, generation: UInt64, seen: inout Int
    ) -> (start: UInt64, scope: InstrumentationScope, attributes: [KeyValue])? {
        let fresh = state.generation != generation
        guard state.meta.kind == kind else {
            if !fresh { seen -= 1 }
            return nil
        }
        if fresh { seen += 1 }
        if let created {
            state.start = created
        } else if kind != .gauge && kind != .nonMonotonicSum && value < state.last {
            state.start = time  // reset: the cumulative value went down
        }
        state.last = value
        state.generation = generation
        return (state.start, state.scope, state.attributes)
    }

    // MARK: - Helpers

    /// Splits `otel_scope_name`/`otel_scope_version` off into a scope and drops `job`/`instance`.
    private func split(_ labels: [ExpositionLabel]) -> (InstrumentationScope, [KeyValue]) {
        var scope = defaultScope
        var named = false
        var attrs: [KeyValue] = []
        attrs.reserveCapacity(labels.count)
        for l in labels {
            switch l.name {
            case "job", "instance": continue
            case "otel_scope_name":
                if !named { scope = InstrumentationScope(name: l.value, version: "") }
                named = true
                scope.name = l.value
            case "otel_scope_version":
                if !named { scope = InstrumentationScope(name: "", version: l.value) }
                named = true
                scope.version = l.value
            default: attrs.append(KeyValue(l.name, .string(l.value)))
            }
        }
        return (scope, attrs)
    }

    private static func sorted(_ labels: [ExpositionLabel]) -> [ExpositionLabel] {
        // Exposition labels usually come sorted already; checking is cheaper than sorting a copy.
        if labels.count < 2 || zip(labels, labels.dropFirst()).allSatisfy({ $0.name < $1.name }) { return labels }
        return labels.sorted { $0.name < $1.name }
    }

    /// A scraped count as an OTLP count: rounded, 0 for negative or NaN, `UInt64.max` from 2^64 on (a
    /// value such as `1e30` or `+Inf` must not trap the receiver).
    private static func count(_ v: Double) -> UInt64 {
        guard v > 0 else { return 0 }
        let r = v.rounded()
        return r >= 18_446_744_073_709_551_616.0 ? UInt64.max : UInt64(r)
    }

    /// `_created` seconds as Unix nanoseconds, rounded to the microsecond: a double near 1.7e9 holds
    /// about 0.2 µs of precision, so finer digits would be noise (1520430000.123 → …123000000, not …122999808).
    private static func secondsToNanos(_ seconds: Double) -> UInt64 {
        guard seconds.isFinite, seconds > 0, seconds < 1.8e10 else { return 0 }
        let whole = seconds.rounded(.down)
        return UInt64(whole) * 1_000_000_000 + UInt64(((seconds - whole) * 1e6).rounded()) * 1000
    }

    /// An OpenMetrics exemplar: `trace_id`/`span_id` labels become the IDs, the rest attributes.
    private static func exemplar(_ e: ExpositionExemplar, scrapeTime: UInt64) -> Exemplar {
        var out = Exemplar(timeUnixNano: e.timestampNanos.map { UInt64(clamping: $0) } ?? scrapeTime, value: .double(e.value))
        for l in e.labels {
            if l.name == "trace_id", let bytes = hexBytes(l.value, count: 16) {
                out.traceID = TraceID(bytes: bytes)
            } else if l.name == "span_id", let bytes = hexBytes(l.value, count: 8) {
                out.spanID = SpanID(bytes: bytes)
            } else {
                out.filteredAttributes.append(KeyValue(l.name, .string(l.value)))
            }
        }
        return out
    }

    private static func hexBytes(_ s: String, count: Int) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count == count * 2 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let h = Hex.value(of: u[i]), let l = Hex.value(of: u[i + 1]) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }

    /// Prometheus unit words → UCUM (`seconds` → `s`, `bytes` → `By`, `ratio` → `1`, `a_per_b` → `a/b`).
    public static func otelUnit(_ unit: String) -> String {
        if unit.isEmpty { return "" }
        if unit == "ratio" { return "1" }
        var parts = [unit]
        if let r = unit.firstRange(of: "_per_") { parts = [String(unit[..<r.lowerBound]), String(unit[r.upperBound...])] }
        func one(_ w: String) -> String {
            if let u = reverseUnits[w] { return u }
            if let u = reversePerUnits[w] { return u }
            return w
        }
        if parts.count == 2 { return one(parts[0]) + "/" + one(parts[1]) }
        return one(unit)
    }

    /// Unit words of Prometheus metric names (the compatibility spec's unit table, reversed).
    private static let reverseUnits: [String: String] = [
        "days": "d", "hours": "h", "minutes": "min", "seconds": "s", "milliseconds": "ms", "microseconds": "us",
        "nanoseconds": "ns", "bytes": "By", "kibibytes": "KiBy", "mebibytes": "MiBy", "gibibytes": "GiBy", "tebibytes": "TiBy",
        "kilobytes": "KBy", "megabytes": "MBy", "gigabytes": "GBy", "terabytes": "TBy", "meters": "m", "volts": "V",
        "amperes": "A", "joules": "J", "watts": "W", "grams": "g", "celsius": "Cel", "hertz": "Hz", "percent": "%",
    ]
    private static let reversePerUnits: [String: String] = [
        "second": "s", "minute": "m", "hour": "h", "day": "d", "week": "w", "month": "mo", "year": "y",
    ]
}

// MARK: - Output grouping

private enum SeriesKind: Sendable, Equatable {
    case gauge, monotonicSum, nonMonotonicSum, histogram, summary
}

/// What a metric carries besides its points.
private struct MetricMeta: Sendable {
    var name: String
    var description: String
    var unit: String
    var metadata: [KeyValue]
    var kind: SeriesKind
}

/// What the assembler remembers of a series between scrapes.
private struct SeriesState: Sendable {
    var key: ScrapeAssembler.SeriesKey
    var meta: MetricMeta
    var scope: InstrumentationScope
    /// Handed on as this same array in every scrape's points: the remote-write exporter's label cache
    /// (`RemoteWrite.LabelCache`) knows a series by it.
    var attributes: [KeyValue]
    var start: UInt64
    /// The last cumulative value (sum value, histogram/summary count) for reset detection.
    var last: Double
    /// The scrape (`ScrapeAssembler.generation`) that last saw the series.
    var generation: UInt64
    /// Where that scrape met it (in `ScrapeAssembler.currentOrder`, later `previousOrder`).
    var position: Int?
    /// The order the target writes the labels in, as positions in `key.labels` (empty: sorted).
    var exposedOrder: [UInt8] = []
}

private struct AssembledScopeID: Hashable {
    var name: String
    var version: String
}

private enum AssembledPoint {
    case number(NumberDataPoint)
    case histogram(HistogramDataPoint)
    case summary(SummaryDataPoint)
}

/// Collects points into metrics per scope, keeping first-seen order.
private struct ScopeBuilder {
    private struct Pending {
        var name: String
        var description: String
        var unit: String
        var metadata: [KeyValue]
        var kind: SeriesKind
        var numbers: [NumberDataPoint] = []
        var histograms: [HistogramDataPoint] = []
        var summaries: [SummaryDataPoint] = []
    }

    private var scopes: [InstrumentationScope] = []
    private var scopeIndex: [AssembledScopeID: Int] = [:]
    private var metrics: [[Pending]] = []
    private var metricIndex: [[String: Int]] = []

    /// The scope and metric of the previous `add`: consecutive points nearly always share them.
    private var last: (scope: AssembledScopeID, metric: String, si: Int, mi: Int)?

    mutating func add(_ meta: MetricMeta, scope: InstrumentationScope, point: AssembledPoint) {
        switch point {
        case .number(let p): add(meta, scope: scope, number: p)
        case .histogram(let p): add(meta, scope: scope, histogram: p)
        case .summary(let p): add(meta, scope: scope, summary: p)
        }
    }

    // One function per point type, taking the point by move: an `AssembledPoint` in between copied
    // every point (and retained what it holds) on its way into the metric's list.
    mutating func add(_ meta: MetricMeta, scope: InstrumentationScope, number p: consuming NumberDataPoint) {
        let (si, mi) = place(meta, scope)
        metrics[si][mi].numbers.append(p)
    }

    mutating func add(_ meta: MetricMeta, scope: InstrumentationScope, histogram p: consuming HistogramDataPoint) {
        let (si, mi) = place(meta, scope)
        metrics[si][mi].histograms.append(p)
    }

    mutating func add(_ meta: MetricMeta, scope: InstrumentationScope, summary p: consuming SummaryDataPoint) {
        let (si, mi) = place(meta, scope)
        metrics[si][mi].summaries.append(p)
    }

    /// The scope and metric a point of `meta` in `scope` goes to, created on first use.
    private mutating func place(_ meta: MetricMeta, _ scope: InstrumentationScope) -> (Int, Int) {
        if let last, last.metric == meta.name, last.scope.name == scope.name, last.scope.version == scope.version {
            return (last.si, last.mi)
        }
        let id = AssembledScopeID(name: scope.name, version: scope.version)
        let si: Int
        if let i = scopeIndex[id] {
            si = i
        } else {
            si = scopes.count
            scopeIndex[id] = si
            scopes.append(scope)
            metrics.append([])
            metricIndex.append([:])
        }
        let mi: Int
        if let i = metricIndex[si][meta.name] {
            mi = i
        } else {
            mi = metrics[si].count
            metricIndex[si][meta.name] = mi
            metrics[si].append(
                Pending(name: meta.name, description: meta.description, unit: meta.unit, metadata: meta.metadata, kind: meta.kind))
        }
        last = (id, meta.name, si, mi)
        return (si, mi)
    }

    func build(defaultScope: InstrumentationScope, scopeAttributes: [AssembledScopeID: [KeyValue]]) -> [ScopeMetrics] {
        scopes.indices.map { si in
            var scope = scopes[si]
            if scope != defaultScope, let attrs = scopeAttributes[AssembledScopeID(name: scope.name, version: scope.version)] {
                scope.attributes = attrs
            }
            let ms = metrics[si].map { p -> Metric in
                let data: MetricData
                switch p.kind {
                case .gauge: data = .gauge(p.numbers)
                case .monotonicSum: data = .sum(p.numbers, temporality: .cumulative, isMonotonic: true)
                case .nonMonotonicSum: data = .sum(p.numbers, temporality: .cumulative, isMonotonic: false)
                case .histogram: data = .histogram(p.histograms, temporality: .cumulative)
                case .summary: data = .summary(p.summaries)
                }
                return Metric(name: p.name, description: p.description, unit: p.unit, data: data, metadata: p.metadata)
            }
            return ScopeMetrics(scope: scope, metrics: ms)
        }
    }
}
