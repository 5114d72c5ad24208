#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SextantModel
import SextantOTLP
import Synchronization

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

    /// The result of converting OTLP: the series (held flat, their labels already encoded, until
    /// encoded into requests), what had no remote-write form, and the number of data points.
    public struct Conversion: Sendable {
        /// Every series' labels, one run per series, sorted by name within the run; each is a range of
        /// `labelBytes`.
        fileprivate var labels: [EncodedLabel] = []
        fileprivate var labelBytes: [UInt8] = []
        fileprivate var samples: [Sample] = []
        fileprivate var exemplars: [Exemplar] = []
        fileprivate var series: [FlatSeries] = []
        fileprivate var metadata: [MetricMetadata] = []
        public var skipped = PrometheusSamples.Skipped()
        /// Data points converted (the unit the collector counts metrics in).
        public var points = 0

        /// The series as a `WriteRequest`.
        public var request: WriteRequest {
            labelBytes.withUnsafeBytes { bytes in
                WriteRequest(
                    timeseries: series.map {
                        TimeSeries(
                            labels: labels[$0.labels].map { $0.decoded(bytes) }, samples: Array(samples[$0.samples]),
                            exemplars: Array(exemplars[$0.exemplars]))
                    }, metadata: metadata)
            }
        }

        /// The protobuf encodings (before Snappy) of the requests that carry every series and then the
        /// metadata, each within `maxBytes` (a series larger than that on its own goes alone), in order —
        /// the OTel exporter's `max_batch_size_bytes`. Byte for byte what `split(request, maxBytes:)` then
        /// `encode()` give, without building the request.
        public func encodedRequests(maxBytes: Int) -> [[UInt8]] {
            // The elements' sizes first (a series' labels are already encoded, its samples have a fixed
            // form), then each request written front to back into an array of exactly its size.
            let count = series.count + metadata.count
            if count == 0 { return [] }
            var sizes = [Int](repeating: 0, count: count)
            var bodies = [Int](repeating: 0, count: series.count)
            for (i, s) in series.enumerated() {
                var body = 0
                for l in labels[s.labels] { body += l.end - l.start }
                for sample in samples[s.samples] { body += RemoteWrite.fieldSize(RemoteWrite.sampleBody(sample)) }
                for e in exemplars[s.exemplars] { body += RemoteWrite.fieldSize(RemoteWrite.exemplarBody(e)) }
                bodies[i] = body
                sizes[i] = RemoteWrite.fieldSize(body)
            }
            for (i, m) in metadata.enumerated() { sizes[series.count + i] = m.encodedSize }
            let chunks = sizes.reduce(0, +) <= maxBytes ? [0..<count] : RemoteWrite.chunks(sizes, maxBytes: maxBytes)
            return labelBytes.withUnsafeBytes { bytes in
                chunks.map { chunk in
                    let total = sizes[chunk].reduce(0, +)
                    return [UInt8](unsafeUninitializedCapacity: total) { out, initialized in
                        var at = 0
                        for i in chunk {
                            if i < series.count {
                                write(series: series[i], body: bodies[i], bytes, into: out, at: &at)
                            } else {
                                var w = ProtoWriter(capacity: sizes[i])
                                let m = metadata[i - series.count]
                                m.write(&w)
                                w.lengthPrefix(3, since: 0)
                                w.withBytes { put($0, into: out, at: &at) }
                            }
                        }
                        precondition(at == total, "a remote-write request's size was miscounted")
                        initialized = total
                    }
                }
            }
        }

        /// Writes one `WriteRequest.timeseries` element (field 1) whose message is `body` bytes: its
        /// encoded labels (field 1), samples (field 2), exemplars (field 3).
        private func write(series s: FlatSeries, body: Int, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>, at: inout Int) {
            let base = out.baseAddress!
            func byte(_ b: UInt8) {
                base[at] = b
                at += 1
            }
            func varint(_ v: UInt64) {
                var x = v
                while x >= 0x80 {
                    byte(UInt8(truncatingIfNeeded: x) | 0x80)
                    x >>= 7
                }
                byte(UInt8(x))
            }
            byte(1 << 3 | 2)
            varint(UInt64(body))
            let end = at + body
            for l in labels[s.labels] {
                let n = l.end - l.start
                UnsafeMutableRawPointer(base + at).copyMemory(from: bytes.baseAddress! + l.start, byteCount: n)
                at += n
            }
            for sample in samples[s.samples] {
                byte(2 << 3 | 2)
                varint(UInt64(RemoteWrite.sampleBody(sample)))
                if sample.value.bitPattern != 0 {
                    byte(1 << 3 | 1)
                    UnsafeMutableRawPointer(base + at).storeBytes(of: sample.value.bitPattern.littleEndian, toByteOffset: 0, as: UInt64.self)
                    at += 8
                }
                if sample.timestamp != 0 {
                    byte(2 << 3 | 0)
                    varint(UInt64(bitPattern: sample.timestamp))
                }
            }
            if !s.exemplars.isEmpty {
                var w = ProtoWriter(capacity: end - at)
                RemoteWrite.write(labels: EmptyCollection(), samples: EmptyCollection(), exemplars: exemplars[s.exemplars], into: &w)
                w.withBytes { put($0, into: out, at: &at) }
            }
            precondition(at == end, "a remote-write series' size was miscounted")
        }

        private func put(_ b: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>, at: inout Int) {
            if b.count > 0 { UnsafeMutableRawPointer(out.baseAddress! + at).copyMemory(from: b.baseAddress!, byteCount: b.count) }
            at += b.count
        }
    }

    /// One label of a conversion, already in its wire form: a `TimeSeries.labels` element (tag, length
    /// and the `Label` message, its empty fields left out as proto3 does) at `start..<end` of the
    /// conversion's label bytes, with `LabelHash.bytes` of it. Equal labels have equal bytes.
    fileprivate struct EncodedLabel: Sendable {
        var start: Int
        var end: Int
        var hash: UInt64

        /// The label these bytes encode (for `Conversion.request`).
        func decoded(_ bytes: UnsafeRawBufferPointer) -> Label {
            var r = ProtoReader(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
            // Our own encoding of one tagged `Label`: it cannot fail.
            guard (try? r.readTag()) == 1 << 3 | 2, var inner = try? r.readMessage(), let label = try? RemoteWrite.decodeLabel(&inner) else {
                preconditionFailure("a conversion's label bytes do not decode")
            }
            return label
        }
    }

    /// Where a label goes among a point's sorted labels: before `index`, or in place of the label there
    /// when that has the same name.
    fileprivate struct LabelPlace: Sendable {
        var index: Int
        var replaces: Bool
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
    /// with attributes adds `target_info` at its newest point's time. Series are in the order they
    /// first appear in `batches` (the order Prometheus's agent sends its WAL in); lines with equal
    /// label sets are merged into one series, found by a hash of the labels.
    ///
    /// With a `cache` (one per exporter), a point whose attribute list and resource are the very arrays
    /// of a point converted recently takes that point's encoded labels instead of building them (see
    /// `LabelCache`); the result is the same either way.
    public static func convert(_ batches: [MetricsData], options: ConversionOptions = .init(), cache: LabelCache? = nil) -> Conversion {
        // External labels sorted by name, so each series' labels are built by merging sorted runs.
        let external = options.externalLabels.map { Label(PrometheusNaming.sanitizeLabelName($0.0), $0.1) }.sorted { $0.name < $1.name }
        var builder = LineBuilder(external: external, targetInfo: options.targetInfo, keepFamilies: options.sendMetadata)
        if var state = cache?.take() {
            let settings = LabelCacheState.Settings(
                external: external, constLabels: options.samples.constLabels.map { Label($0.0, $0.1) },
                resourceToTelemetry: options.samples.resourceToTelemetry)
            // Entries made under other settings would give other labels.
            if state.settings != settings { state = LabelCacheState(settings: settings) }
            state.generation += 1
            builder.cache = consume state
            builder.caching = true
        }
        // Sized up front: growing the pools as lines arrive copied them and touched fresh pages each time.
        let (lines, labels) = estimate(batches, extra: external.count + 4)
        builder.lines.reserveCapacity(lines)
        builder.pool.reserveCapacity(labels)
        let skipped = PrometheusSamples.walk(batches, options: options.samples, into: &builder)
        if let cache, var state = builder.takeCache() {
            state.sweep(now: .now, maxIdle: cache.maxIdle)
            cache.give(state)
        }
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
        /// The wrapping sum of the labels' hashes (`EncodedLabel.hash`), so that equal label sets are
        /// found without comparing them. A line's labels are unique by name and sorted, so the set alone
        /// decides their order and a sum need not weigh positions; a line's is its point's sum plus its
        /// own labels, less those they replace.
        var hash: UInt64
    }

    /// The remote-write visitor of `PrometheusSamples.walk`: each label of a point is encoded once, into
    /// one byte buffer, and each line's labels are references to those encodings in one pool, so a
    /// conversion allocates per batch, not per line, and encoding a series copies bytes.
    private struct LineBuilder: PrometheusSamples.Visitor {
        let external: [Label]
        let targetInfo: Bool
        /// Whether `families` is kept (for `sendMetadata`).
        let keepFamilies: Bool
        var bytes: [UInt8] = []
        var pool: [EncodedLabel] = []
        var lines: [Line] = []
        var exemplars: [Exemplar] = []
        var families: [String: PrometheusSamples.Family] = [:]
        var points = 0
        /// The current family's name and the `__name__` labels of its suffixed forms (encoded once per
        /// family, when first needed).
        private var name = ""
        private var suffixed: [EncodedLabel?] = [nil, nil, nil, nil]
        private var skipFamily = false
        private var skipPoint = false
        private var isInfo = false
        /// The current point's labels merged with the external labels it lacks, sorted, and the encoding
        /// of each.
        private var pointLabels: [Label] = []
        /// The point's labels were taken from the cache: `pointLabels` is not theirs, their names are
        /// read from their encodings.
        private var labelsInBytes = false
        private var pointEncoded: [EncodedLabel] = []
        /// Encodings of the labels last seen at each place of a point: the resource's, the external ones
        /// and often most attributes repeat there from point to point, and an attribute's few values
        /// (methods, status codes) alternate there.
        private var encoded = PositionalCache<Label, EncodedLabel>(ways: 8)
        /// Encodings of the previous point's `le`/`quantile` labels, by line (a histogram's points share
        /// their bounds), and the current line's position.
        private var extras = PositionalCache<Label, EncodedLabel>()
        private var lineIndex = 0
        /// Labels of points converted before (see `LabelCache`), used while `caching`, and the key of
        /// the point being built when it missed there. The state is held as a value beside a flag, not as
        /// an optional: an optional of it was tested and unwrapped generically on every access.
        var cache = LabelCacheState(settings: nil)
        var caching = false
        private var pending: (key: LabelCacheState.Key, attributes: [KeyValue], resource: [KeyValue])?
        /// The point's label set hash (see `Line.hash`), where its lines put `__name__`, and where they put
        /// the extra label, by name (known from the point's first line that has one).
        private var pointHash: UInt64 = 0
        private var namePlace = LabelPlace(index: 0, replaces: false)
        private var extraName = ""
        private var extraPlace = LabelPlace(index: 0, replaces: false)
        private var extraPlaceKnown = false
        /// `__name__` sorts before the extra label.
        private var nameFirst = true
        private var ms: Int64 = 0
        private var stale = false

        init(external: [Label], targetInfo: Bool, keepFamilies: Bool) {
            self.external = external
            self.targetInfo = targetInfo
            self.keepFamilies = keepFamilies
        }

        mutating func family(_ f: PrometheusSamples.Family) {
            skipFamily = !targetInfo && f.name == "target_info"
            if skipFamily { return }
            isInfo = f.type == .info
            if f.name != name {
                name = f.name
                suffixed = [nil, nil, nil, nil]
                if keepFamilies, families[f.name] == nil { families[f.name] = f }
            }
        }

        mutating func takeCache() -> LabelCacheState? {
            guard caching else { return nil }
            caching = false
            var out = LabelCacheState(settings: nil)
            swap(&out, &cache)
            return out
        }

        mutating func knownPoint(attributes: [KeyValue], resource: [KeyValue], time: UInt64, start: UInt64, stale: Bool) -> Bool {
            pending = nil
            guard !skipFamily, !isInfo, caching else { return false }
            let key = LabelCacheState.Key(attributes, resource)
            // A target's points come in the same order scrape after scrape, and entries are kept in the
            // order they were made: the entry after the last one used is nearly always this point's,
            // found without hashing (or missing the table in the caches).
            var i = cache.cursor + 1
            if i >= cache.entries.count || cache.entries[i].key != key {
                guard let known = cache.index[key] else {
                    pending = (key, attributes, resource)
                    return false
                }
                i = known
            }
            cache.cursor = i
            beginPoint(time: time, stale: stale, labelsInBytes: true)
            let generation = cache.generation
            let offset = bytes.count
            // The entry is read in place (copying it out would retain and release its arrays); each
            // label's end is read from its length prefix.
            let (start, end, hashes) = cache.entries.withUnsafeMutableBufferPointer { entries in
                entries[i].used = generation
                pointHash = entries[i].hash
                namePlace = LabelPlace(index: Int(entries[i].nameIndex), replaces: entries[i].nameReplaces)
                return (entries[i].start, entries[i].end, Int(entries[i].hashStart)..<Int(entries[i].hashStart) + Int(entries[i].labelCount))
            }
            cache.bytes.withUnsafeBufferPointer { arena in
                let own = UnsafeBufferPointer(rebasing: arena[start..<end])
                bytes.append(contentsOf: own)
                cache.hashes.withUnsafeBufferPointer { all in
                    var at = 0
                    for h in all[hashes] {
                        var p = at + 1  // the `TimeSeries.labels` tag
                        let body = Self.varint(own, &p)
                        pointEncoded.append(EncodedLabel(start: offset + at, end: offset + p + body, hash: h))
                        at = p + body
                    }
                }
            }
            return true
        }

        /// What every point that is not skipped starts with, whether its labels are built or known
        /// (`target_info` is not a point the collector counts).
        @inline(__always)
        private mutating func beginPoint(time: UInt64, stale: Bool, labelsInBytes: Bool) {
            skipPoint = false
            if !isInfo { points += 1 }
            ms = Int64(clamping: time / 1_000_000)
            self.stale = stale
            self.labelsInBytes = labelsInBytes
            lineIndex = 0
            extraPlaceKnown = false
            pointEncoded.removeAll(keepingCapacity: true)
        }

        /// The varint at `p` in `b` (our own encoding: well formed), moving `p` past it.
        @inline(__always)
        private static func varint(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int) -> Int {
            var v = 0
            var shift = 0
            while true {
                let byte = b[p]
                p += 1
                v |= Int(byte & 0x7F) << shift
                if byte < 0x80 { return v }
                shift += 7
            }
        }

        mutating func point(labels: [(String, String)], time: UInt64, start: UInt64, stale: Bool) {
            skipPoint = skipFamily || (isInfo && time == 0)  // `target_info` of a resource without points
            if skipPoint { return }
            beginPoint(time: time, stale: stale, labelsInBytes: false)
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
            pointHash = 0
            for (i, l) in pointLabels.enumerated() {
                let e: EncodedLabel
                if let known = encoded.lookup(i, l) {
                    e = known
                } else {
                    e = encode(l.name, l.value)
                    encoded.store(i, l, e)
                }
                pointEncoded.append(e)
                pointHash &+= e.hash
            }
            namePlace = place(of: "__name__")
            if let p = pending {
                pending = nil
                remember(p.key, p.attributes, p.resource)
            }
        }

        /// Keeps the point's labels in the cache: their encodings and hashes in its arenas.
        private mutating func remember(_ key: LabelCacheState.Key, _ attributes: [KeyValue], _ resource: [KeyValue]) {
            guard cache.entries.count < LabelCacheState.maxEntries, cache.hashes.count + pointEncoded.count <= Int(Int32.max) else { return }
            cache.index[key] = cache.entries.count
            let start = cache.bytes.count
            let hashStart = cache.hashes.count
            bytes.withUnsafeBufferPointer { all in
                for e in pointEncoded {
                    cache.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: all[e.start..<e.end]))
                    cache.hashes.append(e.hash)
                }
            }
            cache.cursor = cache.entries.count
            cache.entries.append(
                LabelCacheState.Entry(
                    key: key, attributes: attributes, resource: resource, start: start, end: cache.bytes.count, hashStart: Int32(hashStart),
                    labelCount: Int32(pointEncoded.count), hash: pointHash, nameIndex: Int32(namePlace.index), nameReplaces: namePlace.replaces,
                    used: cache.generation))
        }

        /// Appends the label's wire form (see `EncodedLabel`) to `bytes`.
        private mutating func encode(_ name: String, _ value: String) -> EncodedLabel {
            let start = bytes.count
            let n = name.utf8.count
            let v = value.utf8.count
            let body = (n > 0 ? RemoteWrite.fieldSize(n) : 0) + (v > 0 ? RemoteWrite.fieldSize(v) : 0)
            bytes.append(1 << 3 | 2)  // TimeSeries.labels
            appendVarint(body)
            if n > 0 {
                bytes.append(1 << 3 | 2)  // Label.name
                appendVarint(n)
                appendUTF8(name)
            }
            if v > 0 {
                bytes.append(2 << 3 | 2)  // Label.value
                appendVarint(v)
                appendUTF8(value)
            }
            let end = bytes.count
            let hash = bytes.withUnsafeBytes { LabelHash.bytes(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
            return EncodedLabel(start: start, end: end, hash: hash)
        }

        private mutating func appendUTF8(_ s: String) {
            // Native and small strings lend their bytes (one copy); bridged ones go through the view.
            if s.utf8.withContiguousStorageIfAvailable({ bytes.append(contentsOf: $0) }) == nil { bytes.append(contentsOf: s.utf8) }
        }

        private mutating func appendVarint(_ v: Int) {
            var x = UInt64(v)
            while x >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: x) | 0x80)
                x >>= 7
            }
            bytes.append(UInt8(x))
        }

        mutating func line(_ suffix: PrometheusSamples.LineSuffix, extra: (String, String)?, value: Double, exemplar: SextantModel.Exemplar?) {
            if skipPoint { return }
            let start = pool.count
            // The point's labels with `__name__` and `le`/`quantile` put at their places (each replaces a
            // label of the same name), which `point` and the point's first such line found.
            let name = seriesName(suffix)
            var hash = pointHash &+ name.hash
            if namePlace.replaces { hash &-= pointEncoded[namePlace.index].hash }
            if let (extraName, extraValue) = extra {
                let key = Label(extraName, extraValue)
                let label: EncodedLabel
                if let known = extras.lookup(lineIndex, key) {
                    label = known
                } else {
                    label = encode(extraName, extraValue)
                    extras.store(lineIndex, key, label)
                }
                if !extraPlaceKnown || extraName != self.extraName {
                    self.extraName = extraName
                    extraPlace = place(of: extraName)
                    extraPlaceKnown = true
                    nameFirst = namePlace.index < extraPlace.index || (namePlace.index == extraPlace.index && "__name__" < extraName)
                }
                hash &+= label.hash
                if extraPlace.replaces { hash &-= pointEncoded[extraPlace.index].hash }
                if nameFirst {
                    putLabels(name, at: namePlace, label, at: extraPlace)
                } else {
                    putLabels(label, at: extraPlace, name, at: namePlace)
                }
            } else {
                appendPointLabels(0..<namePlace.index)
                pool.append(name)
                appendPointLabels((namePlace.index + (namePlace.replaces ? 1 : 0))..<pointEncoded.count)
            }
            lineIndex += 1
            var ex = -1
            if !stale, let exemplar {
                ex = exemplars.count
                exemplars.append(RemoteWrite.exemplar(exemplar))
            }
            lines.append(
                Line(labels: start..<pool.count, sample: Sample(value: stale ? staleNaN : value, timestamp: ms), exemplar: ex, hash: hash))
        }

        /// Appends the point's labels to `pool` with `a` and then `b` put at their places (`a`'s is
        /// before `b`'s).
        @inline(__always)
        private mutating func putLabels(_ a: EncodedLabel, at pa: LabelPlace, _ b: EncodedLabel, at pb: LabelPlace) {
            appendPointLabels(0..<pa.index)
            pool.append(a)
            appendPointLabels((pa.index + (pa.replaces ? 1 : 0))..<pb.index)
            pool.append(b)
            appendPointLabels((pb.index + (pb.replaces ? 1 : 0))..<pointEncoded.count)
        }

        /// Appends a run of the point's encoded labels to `pool` (as one copy; an array slice's append is
        /// not specialised into one here).
        @inline(__always)
        private mutating func appendPointLabels(_ run: Range<Int>) {
            if run.isEmpty { return }
            pointEncoded.withUnsafeBufferPointer { pool.append(contentsOf: UnsafeBufferPointer(rebasing: $0[run])) }
        }

        /// Where a label named `name` goes among the point's sorted labels.
        private func place(of name: String) -> LabelPlace {
            if labelsInBytes { return placeInBytes(of: name) }
            var i = 0
            while i < pointLabels.count, pointLabels[i].name < name { i += 1 }
            return LabelPlace(index: i, replaces: i < pointLabels.count && pointLabels[i].name == name)
        }

        /// `place(of:)` for a point whose labels are known only as encodings: names compare as their
        /// UTF-8 bytes (Unicode scalar order, the order of `String` for these normalised names).
        private func placeInBytes(of name: String) -> LabelPlace {
            var name = name
            return name.withUTF8 { want in
                bytes.withUnsafeBufferPointer { all in
                    for (i, e) in pointEncoded.enumerated() {
                        var p = e.start + 1
                        _ = Self.varint(all, &p)
                        var have = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
                        if p < e.end, all[p] == 1 << 3 | 2 {  // `Label.name` (absent when empty)
                            p += 1
                            let n = Self.varint(all, &p)
                            have = UnsafeBufferPointer(rebasing: all[p..<p + n])
                        }
                        let common = min(have.count, want.count)
                        let c = common == 0 ? 0 : memcmp(have.baseAddress!, want.baseAddress!, common)
                        if c > 0 || (c == 0 && have.count >= want.count) {
                            return LabelPlace(index: i, replaces: c == 0 && have.count == want.count)
                        }
                    }
                    return LabelPlace(index: pointEncoded.count, replaces: false)
                }
            }
        }

        func endPoint() {}

        private mutating func seriesName(_ suffix: PrometheusSamples.LineSuffix) -> EncodedLabel {
            let i: Int
            switch suffix {
            case .none: i = 0
            case .bucket: i = 1
            case .sum: i = 2
            case .count: i = 3
            }
            if let known = suffixed[i] { return known }
            let label = encode("__name__", name + suffix.text)
            suffixed[i] = label
            return label
        }

        /// Lines with equal labels are one series: a table keyed by the lines' label hashes finds each
        /// line's series (comparing the labels only when the hashes match), and the series keep the order
        /// of their first line.
        mutating func finish() -> Conversion {
            var out = Conversion()
            out.points = points
            let n = lines.count
            var seriesOf = [Int32](repeating: 0, count: n)
            var first: [Int32] = []  // each series' first line
            first.reserveCapacity(n)
            var slots = 16
            while slots < 2 * n { slots <<= 1 }
            let mask = slots - 1
            var table = [Int32](repeating: -1, count: slots)
            pool.withUnsafeBufferPointer { pool in
                bytes.withUnsafeBytes { bytes in
                    lines.withUnsafeBufferPointer { lines in
                        for i in 0..<n {
                            let line = lines[i]
                            var slot = Int(truncatingIfNeeded: line.hash) & mask
                            while true {
                                let s = table[slot]
                                if s < 0 {
                                    table[slot] = Int32(first.count)
                                    seriesOf[i] = Int32(first.count)
                                    first.append(Int32(i))
                                    break
                                }
                                let f = lines[Int(first[Int(s)])]
                                if f.hash == line.hash, Self.same(pool[f.labels], pool[line.labels], bytes) {
                                    seriesOf[i] = s
                                    break
                                }
                                slot = (slot + 1) & mask
                            }
                        }
                    }
                }
            }
            // The lines grouped by series (a counting sort, stable), unless every line is a series.
            var order = Array(0..<n)
            if first.count < n {
                var next = [Int](repeating: 0, count: first.count + 1)
                for s in seriesOf { next[Int(s) + 1] += 1 }
                for s in 0..<first.count { next[s + 1] += next[s] }
                for i in 0..<n {
                    order[next[Int(seriesOf[i])]] = i
                    next[Int(seriesOf[i])] += 1
                }
            }
            out.series.reserveCapacity(first.count)
            out.samples.reserveCapacity(n)
            var previous: Int32 = -1
            for i in order {
                let line = lines[i]
                if seriesOf[i] == previous {
                    let last = out.series[out.series.count - 1]
                    out.series[out.series.count - 1].samples = last.samples.lowerBound..<last.samples.upperBound + 1
                } else {
                    out.series.append(
                        FlatSeries(labels: line.labels, samples: out.samples.count..<out.samples.count + 1, exemplars: out.exemplars.count..<out.exemplars.count))
                    previous = seriesOf[i]
                }
                out.samples.append(line.sample)
                if line.exemplar >= 0 {
                    out.exemplars.append(exemplars[line.exemplar])
                    out.series[out.series.count - 1].exemplars = out.series[out.series.count - 1].exemplars.lowerBound..<out.exemplars.count
                }
            }
            out.labels = pool
            out.labelBytes = bytes
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

        /// Whether two runs of labels are equal: the same number of labels with the same bytes.
        private static func same(_ a: Slice<UnsafeBufferPointer<EncodedLabel>>, _ b: Slice<UnsafeBufferPointer<EncodedLabel>>, _ bytes: UnsafeRawBufferPointer) -> Bool {
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where x.start != y.start {
                let n = x.end - x.start
                guard n == y.end - y.start, memcmp(bytes.baseAddress! + x.start, bytes.baseAddress! + y.start, n) == 0 else { return false }
            }
            return true
        }
    }

    /// A 64-bit hash of a series' labels for grouping lines into series: each label's wire form is
    /// hashed once per point (`bytes`), and a line's hash is the sum of its labels' (`Line.hash`). Equal
    /// hashes are confirmed by comparing the labels, so a collision costs a comparison, never a wrong
    /// merge; the seed is random per process, so that label values cannot be chosen to collide.
    enum LabelHash {
        static let seed: UInt64 = .random(in: 1...UInt64.max)
        private static let k0: UInt64 = 0x9E37_79B9_7F4A_7C15
        private static let k1: UInt64 = 0xBF58_476D_1CE4_E5B9

        @inline(__always)
        static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let r = a.multipliedFullWidth(by: b)
            return r.high ^ r.low
        }

        static func bytes(_ p: UnsafeRawBufferPointer) -> UInt64 { bytes(p, seed) }

        private static func bytes(_ p: UnsafeRawBufferPointer, _ seed: UInt64) -> UInt64 {
            var h = seed ^ (UInt64(p.count) &* k0)
            var i = 0
            while i + 8 <= p.count {
                h = mix(h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self), k0)
                i += 8
            }
            if i < p.count {
                var tail: UInt64 = 0
                var shift: UInt64 = 0
                while i < p.count {
                    tail |= UInt64(p[i]) << shift
                    shift += 8
                    i += 1
                }
                h = mix(h ^ tail, k1)
            }
            return h
        }
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

extension RemoteWrite {
    /// The encoded labels of the data points an exporter converted recently, for its next conversions.
    ///
    /// A scrape receiver hands on each series' attribute list as the same array from scrape to scrape
    /// (and the target's resource likewise), so a point's labels — the resource's `job`/`instance`,
    /// constant and external labels, the sanitised attributes, sorted and encoded — are known when both
    /// arrays are the ones seen before. Entries are keyed by the arrays' buffer addresses and counts
    /// and hold the arrays, so that no other list can take an address while its entry lives.
    ///
    /// A sweep every 256 conversions or `maxIdle`, whichever comes first, drops the entries no
    /// conversion used since the sweep before: a series gone from its target is forgotten within two
    /// sweeps, and a target scraped less often than `maxIdle` merely finds its entries made again. A
    /// conversion running while another has the cache converts without it.
    public final class LabelCache: Sendable {
        private let state = Mutex<LabelCacheState?>(LabelCacheState(settings: nil))
        let maxIdle: Duration

        public init(maxIdle: Duration = .seconds(300)) { self.maxIdle = maxIdle }

        /// The number of points whose labels are kept.
        public var count: Int { state.withLock { $0?.entries.count ?? 0 } }

        fileprivate func take() -> LabelCacheState? {
            state.withLock { s in
                var out: LabelCacheState? = nil
                swap(&out, &s)
                return out
            }
        }

        fileprivate func give(_ s: consuming LabelCacheState) {
            let s = Optional(s)
            state.withLock { $0 = s }
        }
    }
}

/// The inside of a `RemoteWrite.LabelCache`.
struct LabelCacheState: Sendable {
    /// Conversions between sweeps.
    static let sweepEvery: UInt64 = 256
    /// Points kept at most (about 280 bytes each with five labels).
    static let maxEntries = 1 << 20

    /// What the entries were made under: other settings give other labels.
    struct Settings: Sendable, Equatable {
        var external: [RemoteWrite.Label]
        var constLabels: [RemoteWrite.Label]
        var resourceToTelemetry: Bool
    }

    struct Key: Hashable, Sendable {
        var attributes: UInt
        var resource: UInt
        var counts: Int

        init(_ attributes: [KeyValue], _ resource: [KeyValue]) {
            self.attributes = attributes.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            self.resource = resource.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            counts = attributes.count << 32 | resource.count
        }
    }

    /// One point's labels: their encodings at `start..<end` of `bytes`, one after another, and their
    /// hashes at `hashStart...` of `hashes`.
    struct Entry: Sendable {
        var key: Key
        /// Held so that their buffers keep their addresses for this entry alone (they are its key).
        var attributes: [KeyValue]
        var resource: [KeyValue]
        var start: Int
        var end: Int
        var hashStart: Int32
        var labelCount: Int32
        /// The label set's hash, and where `__name__` goes.
        var hash: UInt64
        var nameIndex: Int32
        var nameReplaces: Bool
        /// The generation that last used it.
        var used: UInt64
    }

    var settings: Settings?
    /// The entries, each one's place by key, and the arenas holding their labels.
    var entries: [Entry] = []
    var index: [Key: Int] = [:]
    /// The entry the last point used (or made).
    var cursor = -1
    var bytes: [UInt8] = []
    var hashes: [UInt64] = []
    /// Conversions so far, and the one and the time of the last sweep.
    var generation: UInt64 = 0
    var sweptAt: UInt64 = 0
    var sweptAtTime = ContinuousClock.now

    /// Every `sweepEvery` conversions or `maxIdle`, drops the entries no conversion used since the
    /// previous sweep.
    mutating func sweep(now: ContinuousClock.Instant, maxIdle: Duration) {
        guard generation > sweptAt, generation >= sweptAt + Self.sweepEvery || now - sweptAtTime >= maxIdle else { return }
        let cutoff = sweptAt
        sweptAt = generation
        sweptAtTime = now
        guard entries.contains(where: { $0.used <= cutoff }) else { return }
        var kept: [Entry] = []
        var keptBytes: [UInt8] = []
        var keptHashes: [UInt64] = []
        index.removeAll(keepingCapacity: true)
        for var e in entries where e.used > cutoff {
            index[e.key] = kept.count
            let start = keptBytes.count
            keptBytes.append(contentsOf: bytes[e.start..<e.end])
            (e.start, e.end) = (start, keptBytes.count)
            let hashStart = keptHashes.count
            keptHashes.append(contentsOf: hashes[Int(e.hashStart)..<Int(e.hashStart) + Int(e.labelCount)])
            e.hashStart = Int32(hashStart)
            kept.append(e)
        }
        (entries, bytes, hashes) = (kept, keptBytes, keptHashes)
        cursor = -1
    }
}
