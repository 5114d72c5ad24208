#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses a scrape body in the Prometheus text format 0.0.4 or OpenMetrics 1.0 into metric families.
///
/// Grammars followed: the Prometheus "Exposition formats" text-based format (lines, `# HELP`/`# TYPE`,
/// escapes `\\`, `\"`, `\n`, blanks between tokens, timestamps in integer milliseconds) and the OpenMetrics
/// 1.0 text format ABNF (single spaces, `# UNIT`, exemplars, timestamps in seconds, `# EOF` last).
/// It works on bytes: each line is scanned once in place; each distinct name, label name and label value
/// becomes one `String`, interned by its bytes, and samples refer to them by index (`ExpositionStore`).
/// Every error carries the 1-based line number and the reason; nothing is returned on error.
///
/// Checks beyond the grammar: a family's lines form one group, metadata appears once and before samples,
/// sample names fit the family's `# TYPE` (`_bucket` needs `le`, summary quantiles need `quantile`, OpenMetrics
/// counters are `_total`/`_created`, ...), no series appears twice, histogram buckets have increasing `le` and
/// non-decreasing counts (and end with `+Inf` in OpenMetrics), label values and help are valid UTF-8.
public struct ExpositionParser {
    public static func parse(_ bytes: [UInt8], format: ExpositionFormat) throws(ExpositionError) -> [ExpositionFamily] {
        try bytes.withUnsafeBytes { raw in Result { () throws(ExpositionError) in try parse(raw, format: format) } }.get()
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, format: ExpositionFormat) throws(ExpositionError) -> [ExpositionFamily] {
        try parse(bytes, format: format, previous: ExpositionStrings(), remember: false).families
    }

    /// Parses one scrape of a target whose previous scrape left `strings`; on success `strings` holds
    /// this scrape's (see `ExpositionStrings`).
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, format: ExpositionFormat, strings: inout ExpositionStrings
    ) throws(ExpositionError) -> [ExpositionFamily] {
        let parsed = try parse(bytes, format: format, previous: strings, remember: true)
        if let kept = parsed.strings { strings = kept }
        return parsed.families
    }

    /// The families, and this parse's strings when `remember` asks for them (copying their bytes out is
    /// work a one-off parse need not do).
    private static func parse(
        _ bytes: UnsafeRawBufferPointer, format: ExpositionFormat, previous: ExpositionStrings, remember: Bool
    ) throws(ExpositionError) -> (families: [ExpositionFamily], strings: ExpositionStrings?) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            if format == .openMetrics { throw ExpositionError(.eof, line: 1, "missing # EOF: the exposition is empty") }
            return ([], nil)
        }
        var parser = ExpositionParser(base: base, count: bytes.count, openMetrics: format == .openMetrics, previous: previous)
        try parser.run()
        let strings = remember ? parser.remembered() : nil
        return (parser.finish(), strings)
    }

    // MARK: - State

    private let p: UnsafePointer<UInt8>
    private let count: Int
    private let om: Bool
    private var line = 0
    /// Families with their metadata; their samples are `records`, filled in by `finish`.
    private var families: [ExpositionFamily] = []
    /// The index in `records` of each family's first sample (a family's samples are consecutive).
    private var familyStarts: [Int] = []
    /// Every sample so far, in exposition order.
    private var records: [Record] = []
    /// The line each family started on, by the string index of its name, 0 for names that started none
    /// (a family may not reappear).
    private var familyLines: [Int] = []
    /// Series hash → record of the first sample with that hash (open addressing; `record` is index + 1, 0 when
    /// the slot is free), for duplicate detection.
    private var seriesSlots: [SeriesSlot] = []
    private var seriesCount = 0
    /// Further samples whose hash collided with a different series (rare).
    private var hashCollisions: [UInt64: [Int32]] = [:]
    /// The distinct strings of the parse (the future `ExpositionStore.strings`) and the table finding them by
    /// their exposition bytes (open addressing; `id` is index + 1, 0 when the slot is free).
    private var strings: [String] = []
    private var internSlots: [InternSlot] = []
    /// The previous scrape's strings, looked up before a new string is made.
    private let previous: ExpositionStrings
    /// The labels of all samples back to back (the future `ExpositionStore.labels`).
    private var labelRefs: [ExpositionLabelRef] = []
    private var exemplars: [ExpositionExemplar] = []
    /// The string index of the label name `le`, once a bucket has had one.
    private var leID: UInt32?
    /// `number(_:)`'s parses, by string index.
    private var numbers: [ParsedNumber] = []

    private enum ParsedNumber {
        case unparsed, invalid
        case parsed(Double)
    }
    /// The hash of the current sample's label set (a sum of label hashes: labels compare as a set).
    private var seriesLabelHash: UInt64 = 0
    /// Where the current (last) family's name is in the exposition (its first metadata line or sample).
    private var lastFamilyName: (start: Int, count: Int) = (0, 0)
    /// The previous sample's name: consecutive samples mostly repeat it, and its bytes compare faster than
    /// they hash and look up.
    private var previousName: (start: Int, count: Int, id: UInt32, hash: UInt64) = (0, 0, 0, 0)
    /// The previous and current sample's labels, as byte ranges with their string indices and hash;
    /// a label equal to the previous sample's label in the same position reuses them.
    private var previousLabels: [LabelScan] = []
    private var currentLabels: [LabelScan] = []

    private struct LabelScan {
        var name: Int
        var nameCount: Int
        var value: Int
        var valueCount: Int
        var ref: ExpositionLabelRef
        var hash: UInt64
    }

    /// A parsed sample; plain values only, so that appending and checking them costs no reference counting.
    private struct Record {
        var nameID: UInt32
        var labelStart: UInt32
        var labelCount: UInt32
        /// Index into `exemplars`, or -1.
        var exemplar: Int32
        var suffix: Suffix
        var value: Double
        var timestamp: Int64?
        var line: Int
    }

    fileprivate struct InternSlot {
        var hash: UInt64 = 0
        var start: Int = 0
        var count: Int = 0
        var id: UInt32 = 0

        /// The slot a hash is looked for first in a table of `mask + 1` slots; probing goes on linearly.
        @inline(__always)
        static func home(_ h: UInt64, _ mask: Int) -> Int { Int(truncatingIfNeeded: h ^ (h >> 32)) & mask }

        /// The `id` of the entry of `slots` (open addressing, a power of two of them) for `n` bytes of hash
        /// `h` whose bytes `same(start)` confirms, or nil: the parser's own table and the previous scrape's
        /// (`ExpositionStrings`) are searched alike, the bytes compared where each keeps them.
        @inline(__always)
        static func find(in slots: [InternSlot], _ h: UInt64, _ n: Int, same: (Int) -> Bool) -> UInt32? {
            let mask = slots.count - 1
            var slot = home(h, mask)
            while true {
                let entry = slots[slot]
                if entry.id == 0 { return nil }
                if entry.hash == h, entry.count == n, same(entry.start) { return entry.id }
                slot = (slot + 1) & mask
            }
        }
    }

    private struct SeriesSlot {
        var hash: UInt64 = 0
        var record: Int32 = 0
    }

    private init(base: UnsafePointer<UInt8>, count: Int, openMetrics: Bool, previous: ExpositionStrings) {
        self.previous = previous
        p = base
        self.count = count
        om = openMetrics
        var slots = 64
        while slots < count / 32 { slots <<= 1 }
        seriesSlots = Array(repeating: SeriesSlot(), count: slots)
        internSlots = Array(repeating: InternSlot(), count: 256)
        records.reserveCapacity(count / 64)
        labelRefs.reserveCapacity(count / 24)
    }

    /// This parse's strings, for the next parse of the same target: the intern table with each string's
    /// exposition bytes copied out.
    private func remembered() -> ExpositionStrings {
        var out = ExpositionStrings()
        out.strings = strings
        out.slots = internSlots
        var size = 0
        for slot in internSlots where slot.id != 0 { size += slot.count }
        out.bytes.reserveCapacity(size)
        for k in out.slots.indices where out.slots[k].id != 0 {
            let start = out.slots[k].start
            out.slots[k].start = out.bytes.count
            out.bytes.append(contentsOf: UnsafeBufferPointer(start: p + start, count: out.slots[k].count))
        }
        return out
    }

    /// The families with their samples, all sharing one store.
    private mutating func finish() -> [ExpositionFamily] {
        let store = ExpositionStore(strings: strings, labels: labelRefs, exemplars: exemplars)
        for k in families.indices {
            let end = k + 1 < families.count ? familyStarts[k + 1] : records.count
            var samples: [ExpositionSample] = []
            samples.reserveCapacity(end - familyStarts[k])
            for r in records[familyStarts[k]..<end] {
                samples.append(
                    ExpositionSample(
                        store: store, nameID: r.nameID, labelStart: r.labelStart, labelCount: r.labelCount, exemplarIndex: r.exemplar,
                        value: r.value, timestampNanos: r.timestamp, line: r.line))
            }
            families[k].samples = samples
        }
        return families
    }

    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    private static let newline = UInt8(ascii: "\n")
    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    @inline(__always)
    private func fail(_ code: ExpositionError.Code, _ reason: String) -> ExpositionError {
        ExpositionError(code, line: line, reason)
    }

    // MARK: - Lines

    /// The index of the next `\n` at or after `i`, or `count`. Scans 8 bytes per step (SWAR zero-byte test).
    @inline(__always)
    private func lineEnd(from start: Int) -> Int {
        var i = start
        let raw = UnsafeRawPointer(p)
        while i + 8 <= count {
            let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ 0x0A0A_0A0A_0A0A_0A0A
            let zero = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
            if zero != 0 { return i + (zero.littleEndian.trailingZeroBitCount >> 3) }
            i += 8
        }
        while i < count, p[i] != Self.newline { i += 1 }
        return i
    }

    private mutating func run() throws(ExpositionError) {
        var start = 0
        var sawEOF = false
        while start < count {
            line += 1
            let end = lineEnd(from: start)
            if sawEOF { throw fail(.eof, "content after # EOF") }
            if try parseLine(start, end) { sawEOF = true }
            start = end + 1
        }
        if om && !sawEOF {
            throw ExpositionError(.eof, line: max(line, 1), "missing # EOF: an OpenMetrics exposition must end with it")
        }
        try closeFamily()
    }

    /// Parses one line `[s, e)`; returns true for OpenMetrics `# EOF`.
    private mutating func parseLine(_ s: Int, _ e: Int) throws(ExpositionError) -> Bool {
        if s == e {
            if om { throw fail(.syntax, "empty line (OpenMetrics allows none)") }
            return false
        }
        if p[s] == UInt8(ascii: "#") { return try parseComment(s, e) }
        if !om {
            var i = s
            while i < e, p[i] == Self.space || p[i] == Self.tab { i += 1 }
            if i == e { return false }
            if p[i] == UInt8(ascii: "#") { return try parseComment(i, e) }
            try parseSample(i, e)
        } else {
            try parseSample(s, e)
        }
        return false
    }

    // MARK: - Metadata

    private func equals(_ s: Int, _ e: Int, _ word: StaticString) -> Bool {
        guard e - s == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for k in 0..<(e - s) where p[s + k] != w[k] { return false }
        return true
    }

    private mutating func parseComment(_ s: Int, _ e: Int) throws(ExpositionError) -> Bool {
        var i = s + 1
        if om {
            if equals(s, e, "# EOF") { return true }
            guard i < e, p[i] == Self.space else { throw fail(.syntax, "expected '# HELP', '# TYPE', '# UNIT' or '# EOF'") }
            i += 1
            let kw = i
            while i < e, p[i] != Self.space { i += 1 }
            let keyword: Keyword
            if equals(kw, i, "HELP") { keyword = .help } else if equals(kw, i, "TYPE") { keyword = .type } else if equals(kw, i, "UNIT") {
                keyword = .unit
            } else {
                throw fail(.syntax, "unknown comment '\(text(s, e, limit: 40))'; OpenMetrics allows only HELP, TYPE, UNIT and EOF")
            }
            guard i < e else { throw fail(.syntax, "# \(keyword) needs a metric name") }
            i += 1
            let nameStart = i
            i = scanMetricName(i, e)
            guard i > nameStart else { throw fail(.syntax, "# \(keyword): invalid metric name") }
            let nameEnd = i
            var valueStart = e
            if i < e {
                guard p[i] == Self.space else {
                    throw fail(.syntax, "# \(keyword) \(ascii(nameStart, nameEnd)): expected a space after the name")
                }
                valueStart = i + 1
            } else if keyword != .help {
                throw fail(.syntax, "# \(keyword) \(ascii(nameStart, nameEnd)): missing value")
            }
            try metadata(keyword, nameStart, nameEnd, valueStart, e)
            return false
        }
        // Text format: "#" [blanks] token; only HELP and TYPE are special, anything else is a comment.
        while i < e, p[i] == Self.space || p[i] == Self.tab { i += 1 }
        let kw = i
        while i < e, p[i] != Self.space, p[i] != Self.tab { i += 1 }
        let isHelp = equals(kw, i, "HELP")
        guard isHelp || equals(kw, i, "TYPE") else { return false }
        while i < e, p[i] == Self.space || p[i] == Self.tab { i += 1 }
        let nameStart = i
        i = scanMetricName(i, e)
        guard i > nameStart, i == e || p[i] == Self.space || p[i] == Self.tab else {
            throw fail(.syntax, "# \(isHelp ? "HELP" : "TYPE"): invalid metric name")
        }
        let nameEnd = i
        while i < e, p[i] == Self.space || p[i] == Self.tab { i += 1 }
        if isHelp {
            try metadata(.help, nameStart, nameEnd, i, e)
        } else {
            var t = e
            while t > i, p[t - 1] == Self.space || p[t - 1] == Self.tab { t -= 1 }
            try metadata(.type, nameStart, nameEnd, i, t)
        }
        return false
    }

    /// A metadata line's keyword.
    private enum Keyword: CustomStringConvertible {
        case help, type, unit

        var description: String {
            switch self {
            case .help: "HELP"
            case .type: "TYPE"
            case .unit: "UNIT"
            }
        }
    }

    /// The metric type spelled `p[s..<e]` in a `# TYPE` line, if it is one of the format's.
    private func metricType(_ s: Int, _ e: Int) -> ExpositionMetricType? {
        if equals(s, e, "counter") { return .counter }
        if equals(s, e, "gauge") { return .gauge }
        if equals(s, e, "histogram") { return .histogram }
        if equals(s, e, "summary") { return .summary }
        if om {
            if equals(s, e, "unknown") { return .unknown }
            if equals(s, e, "gaugehistogram") { return .gaugehistogram }
            if equals(s, e, "stateset") { return .stateset }
            if equals(s, e, "info") { return .info }
            return nil
        }
        return equals(s, e, "untyped") ? .unknown : nil
    }

    /// A metadata line for the family named `p[ns..<ne]` with the value `p[vs..<ve]` (HELP text still
    /// escaped); the family's fields are updated in place.
    private mutating func metadata(_ keyword: Keyword, _ ns: Int, _ ne: Int, _ vs: Int, _ ve: Int) throws(ExpositionError) {
        if families.isEmpty || ne - ns != lastFamilyName.count || !bytesEqual(ns, lastFamilyName.start, ne - ns) {
            try startFamily(intern(ns, ne - ns, hashBytes(0xCBF2_9CE4_8422_2325, ns, ne), .name), ns, ne)
        }
        let index = families.count - 1
        let hasSamples = records.count > familyStarts[index]
        switch keyword {
        case .type:
            if families[index].typeDeclared { throw fail(.metadata, "second # TYPE line for \(families[index].name)") }
            if hasSamples { throw fail(.metadata, "# TYPE line for \(families[index].name) after its samples") }
            guard let type = metricType(vs, ve) else {
                throw fail(
                    .syntax,
                    "unknown metric type '\(ascii(vs, ve))' for \(families[index].name); expected "
                        + (om ? "counter, gauge, histogram, gaugehistogram, stateset, info, summary or unknown" : "counter, gauge, histogram, summary or untyped"))
            }
            families[index].type = type
            families[index].typeDeclared = true
        case .help:
            if families[index].help != nil { throw fail(.metadata, "second # HELP line for \(families[index].name)") }
            if om && hasSamples { throw fail(.metadata, "# HELP line for \(families[index].name) after its samples") }
            families[index].help = try unescape(vs, ve, allowQuote: om, what: "HELP text")
        case .unit:
            let name = families[index].name
            let value = ascii(vs, ve)
            if families[index].unit != nil { throw fail(.metadata, "second # UNIT line for \(name)") }
            if hasSamples { throw fail(.metadata, "# UNIT line for \(name) after its samples") }
            if !value.isEmpty && !name.hasSuffix("_" + value) {
                throw fail(.metadata, "# UNIT \(value): the metric name \(name) must end with _\(value)")
            }
            families[index].unit = value
        }
    }

    /// Starts the family whose name is string `nameID`, spelled at `p[s..<e]`.
    private mutating func startFamily(_ nameID: UInt32, _ s: Int, _ e: Int) throws(ExpositionError) {
        let id = Int(nameID)
        if id < familyLines.count, familyLines[id] != 0 {
            throw fail(.metadata, "metric family \(str(nameID)) appears again (first at line \(familyLines[id])); all its lines must be one group")
        }
        try closeFamily()
        if id >= familyLines.count { familyLines.append(contentsOf: repeatElement(0, count: max(id + 1 - familyLines.count, strings.count - familyLines.count))) }
        familyLines[id] = line
        families.append(ExpositionFamily(name: str(nameID), line: line))
        familyStarts.append(records.count)
        lastFamilyName = (s, e - s)
    }

    // MARK: - Samples

    /// The part of a sample name after its family's name.
    private enum Suffix {
        case none, total, created, bucket, count, sum, gcount, gsum, info, other
    }

    private func classifySuffix(_ s: Int, _ e: Int) -> Suffix {
        switch e - s {
        case 0: return .none
        case 4: return equals(s, e, "_sum") ? .sum : .other
        case 5: return equals(s, e, "_gsum") ? .gsum : equals(s, e, "_info") ? .info : .other
        case 6: return equals(s, e, "_total") ? .total : equals(s, e, "_count") ? .count : .other
        case 7: return equals(s, e, "_bucket") ? .bucket : equals(s, e, "_gcount") ? .gcount : .other
        case 8: return equals(s, e, "_created") ? .created : .other
        default: return .other
        }
    }

    /// Whether a sample with this suffix belongs to a family of `type` (OpenMetrics 1.0 §"Metric types";
    /// the text format has no `_created`, and its counters and untyped metrics have no suffix).
    private func allowed(_ suffix: Suffix, _ type: ExpositionMetricType) -> Bool {
        switch type {
        case .counter: return om ? suffix == .total || suffix == .created : suffix == .none
        case .histogram: return suffix == .bucket || suffix == .count || suffix == .sum || (om && suffix == .created)
        case .gaugehistogram: return suffix == .bucket || suffix == .gcount || suffix == .gsum
        case .summary: return suffix == .none || suffix == .count || suffix == .sum || (om && suffix == .created)
        case .info: return om ? suffix == .info : suffix == .none
        case .gauge, .stateset, .unknown: return suffix == .none
        }
    }

    /// The family of the sample named `p[s..<e]`: the current one when the name is the family's name plus a
    /// suffix its type allows, else a new untyped family. A typed suffix its type does not allow is an error.
    private mutating func familyIndex(_ s: Int, _ e: Int, nameID: UInt32) throws(ExpositionError) -> (Int, Suffix) {
        if let last = families.indices.last {
            let n = lastFamilyName.count
            if e - s >= n, bytesEqual(s, lastFamilyName.start, n) {
                let sfx = classifySuffix(s + n, e)
                // Fields read one by one: a copy of the family would retain and release all of them.
                let type = families[last].type
                if allowed(sfx, type) { return (last, sfx) }
                if families[last].typeDeclared, sfx != .other, om || type == .histogram || type == .summary {
                    throw fail(
                        .typeMismatch,
                        "sample \(str(nameID)) does not fit # TYPE \(families[last].name) \(type.rawValue) (line \(families[last].line))"
                            + (sfx == .none ? "; a \(type.rawValue) has no sample without suffix" : ""))
                }
            }
        }
        try startFamily(nameID, s, e)
        return (families.count - 1, .none)
    }

    @inline(__always)
    private func str(_ id: UInt32) -> String { strings[Int(id)] }

    private mutating func parseSample(_ s: Int, _ e: Int) throws(ExpositionError) {
        var i = scanMetricName(s, e)
        let nameEnd = i
        guard i > s else { throw fail(.syntax, "expected a metric name, found '\(text(s, e, limit: 40))'") }
        let nameID: UInt32
        let nameHash: UInt64
        if i - s == previousName.count, bytesEqual(s, previousName.start, i - s) {
            nameID = previousName.id
            nameHash = previousName.hash
        } else {
            nameHash = hashBytes(0xCBF2_9CE4_8422_2325, s, i)
            nameID = try intern(s, i - s, nameHash, .name)
        }
        previousName = (s, i - s, nameID, nameHash)
        swap(&previousLabels, &currentLabels)
        currentLabels.removeAll(keepingCapacity: true)
        seriesLabelHash = 0
        let labelStart = labelRefs.count
        if !om { i = skipBlanks(i, e) }
        if i < e, p[i] == UInt8(ascii: "{") {
            var unused: [ExpositionLabel] = []
            i = try parseLabels(i + 1, e, into: &unused, series: true)
        }
        // Value.
        if om {
            guard i < e, p[i] == Self.space else { throw fail(.syntax, "\(str(nameID)): expected a space before the value") }
            i += 1
        } else {
            i = skipBlanks(i, e)
        }
        let valueStart = i
        while i < e, p[i] != Self.space, p[i] != Self.tab { i += 1 }
        guard i > valueStart else { throw fail(.syntax, "\(str(nameID)): missing value") }
        guard let value = ExpositionNumber.parseDouble(p + valueStart, i - valueStart) else {
            throw fail(.syntax, "\(str(nameID)): invalid value '\(text(valueStart, i, limit: 40))'")
        }
        // Timestamp and exemplar.
        var timestamp: Int64?
        var exemplar: ExpositionExemplar?
        if om {
            if i < e {
                guard p[i] == Self.space, i + 1 < e else { throw fail(.syntax, "\(str(nameID)): unexpected character after the value") }
                i += 1
                if p[i] != UInt8(ascii: "#") {
                    let ts = i
                    while i < e, p[i] != Self.space { i += 1 }
                    guard let t = ExpositionNumber.parseSecondsAsNanos(p + ts, i - ts) else {
                        throw fail(.syntax, "\(str(nameID)): invalid timestamp '\(text(ts, i, limit: 40))' (OpenMetrics timestamps are seconds)")
                    }
                    timestamp = t
                    if i < e {
                        guard i + 1 < e, p[i + 1] == UInt8(ascii: "#") else {
                            throw fail(.syntax, "\(str(nameID)): unexpected text after the timestamp")
                        }
                        i += 1
                    }
                }
                if i < e { exemplar = try parseExemplar(i, e, sample: str(nameID)) }
            }
        } else {
            i = skipBlanks(i, e)
            if i < e {
                let ts = i
                while i < e, p[i] != Self.space, p[i] != Self.tab { i += 1 }
                guard let ms = ExpositionNumber.parseInt64(p + ts, i - ts) else {
                    throw fail(.syntax, "\(str(nameID)): invalid timestamp '\(text(ts, i, limit: 40))' (expected integer milliseconds)")
                }
                let (ns, overflow) = ms.multipliedReportingOverflow(by: 1_000_000)
                guard !overflow else { throw fail(.syntax, "\(str(nameID)): timestamp \(ms) out of range") }
                timestamp = ns
                i = skipBlanks(i, e)
                guard i == e else { throw fail(.syntax, "\(str(nameID)): unexpected text after the timestamp: '\(text(i, e, limit: 40))'") }
            }
        }
        let (fi, sfx) = try familyIndex(s, nameEnd, nameID: nameID)
        try checkSample(family: fi, suffix: sfx, nameID: nameID, value: value, exemplar: exemplar != nil)
        try recordSeries(nameID: nameID, nameHash: nameHash)
        var exemplarIndex: Int32 = -1
        if let exemplar {
            exemplarIndex = Int32(exemplars.count)
            exemplars.append(exemplar)
        }
        records.append(
            Record(
                nameID: nameID, labelStart: UInt32(labelStart), labelCount: UInt32(labelRefs.count - labelStart), exemplar: exemplarIndex,
                suffix: sfx, value: value, timestamp: timestamp, line: line))
    }

    /// The current sample's label `name` (its name and value indices).
    private func currentLabel(_ name: StaticString) -> ExpositionLabelRef? {
        let n = name.utf8CodeUnitCount
        for l in currentLabels where l.nameCount == n && equals(l.name, l.name + n, name) { return l.ref }
        return nil
    }

    /// The number string `id` spells (an `le` or `quantile` value), parsed once per parse.
    private mutating func number(_ id: UInt32) -> Double? {
        let i = Int(id)
        if i >= numbers.count { numbers.append(contentsOf: repeatElement(.unparsed, count: strings.count - numbers.count)) }
        switch numbers[i] {
        case .parsed(let v): return v
        case .invalid: return nil
        case .unparsed:
            let v = ExpositionNumber.parseDouble(strings[i])
            numbers[i] = v.map { .parsed($0) } ?? .invalid
            return v
        }
    }

    /// Type-specific rules for one sample (OpenMetrics 1.0 §"Metric types"; the text format's histogram
    /// and summary conventions).
    private mutating func checkSample(
        family fi: Int, suffix: Suffix, nameID: UInt32, value: Double, exemplar: Bool
    ) throws(ExpositionError) {
        let type = families[fi].type
        switch type {
        case .histogram, .gaugehistogram:
            if suffix == .bucket {
                guard let le = currentLabel("le") else {
                    throw fail(.typeMismatch, "\(str(nameID)): histogram bucket without an le label")
                }
                leID = le.name
                guard number(le.value) != nil else { throw fail(.invalidValue, "\(str(nameID)): le=\"\(str(le.value))\" is not a number") }
                if om && (value < 0 || value.isNaN) {
                    throw fail(.invalidValue, "\(str(nameID)): bucket count \(value) must be a non-negative number")
                }
            }
            if om, suffix == .count || suffix == .gcount, value < 0 || value.isNaN {
                throw fail(.invalidValue, "\(str(nameID)): count \(value) must be a non-negative number")
            }
        case .summary:
            if suffix == .none {
                guard let q = currentLabel("quantile") else {
                    throw fail(.typeMismatch, "\(str(nameID)): summary sample without a quantile label")
                }
                guard let qv = number(q.value), qv >= 0, qv <= 1 else {
                    throw fail(.invalidValue, "\(str(nameID)): quantile=\"\(str(q.value))\" is not a number between 0 and 1")
                }
            }
        case .counter:
            if om, suffix == .total, value < 0 || value.isNaN {
                throw fail(.invalidValue, "\(str(nameID)): counter value \(value) must be non-negative")
            }
        case .stateset:
            let family = families[fi].name
            guard currentLabels.contains(where: { str($0.ref.name) == family }) else {
                throw fail(.typeMismatch, "\(str(nameID)): a stateset sample needs the label \(family)")
            }
            guard value == 0 || value == 1 else { throw fail(.invalidValue, "\(str(nameID)): stateset value must be 0 or 1, found \(value)") }
        case .info:
            if om && value != 1 { throw fail(.invalidValue, "\(str(nameID)): info value must be 1, found \(value)") }
        case .gauge, .unknown:
            break
        }
        if exemplar {
            let permitted = (type == .counter && suffix == .total) || ((type == .histogram || type == .gaugehistogram) && suffix == .bucket)
            guard permitted else {
                throw fail(.syntax, "\(str(nameID)): exemplars are only allowed on counter _total and histogram _bucket samples")
            }
        }
    }

    /// Rejects a second sample with the same name and label set (labels compared as a set); the labels
    /// are the current sample's, in `currentLabels`, and the sample is about to become `records.last`.
    private mutating func recordSeries(nameID: UInt32, nameHash: UInt64) throws(ExpositionError) {
        var h = nameHash &* 0x9E37_79B9_7F4A_7C15
        h ^= seriesLabelHash
        let ref = Int32(records.count)
        let mask = seriesSlots.count - 1
        var slot = Int(truncatingIfNeeded: h ^ (h >> 32)) & mask
        while seriesSlots[slot].record != 0 {
            if seriesSlots[slot].hash == h { break }
            slot = (slot + 1) & mask
        }
        if seriesSlots[slot].record == 0 {
            seriesSlots[slot] = SeriesSlot(hash: h, record: ref + 1)
            seriesCount += 1
            if seriesCount * 2 > seriesSlots.count { growSeries() }
            return
        }
        let existing = seriesSlots[slot].record - 1
        func same(_ r: Int32) -> Bool {
            let other = records[Int(r)]
            guard other.nameID == nameID, Int(other.labelCount) == currentLabels.count else { return false }
            let o = Int(other.labelStart)
            for l in currentLabels where !labelRefs[o..<(o + Int(other.labelCount))].contains(l.ref) { return false }
            return true
        }
        for r in [existing] + (hashCollisions[h] ?? []) where same(r) {
            let labels = currentLabels.map { ExpositionLabel(str($0.ref.name), str($0.ref.value)) }
            throw fail(.duplicateSeries, "duplicate series \(str(nameID))\(Self.render(labels)) (first at line \(records[Int(r)].line))")
        }
        hashCollisions[h, default: []].append(ref)
    }

    private mutating func growSeries() {
        let old = seriesSlots
        seriesSlots = Array(repeating: SeriesSlot(), count: old.count * 2)
        let mask = seriesSlots.count - 1
        for s in old where s.record != 0 {
            var slot = Int(truncatingIfNeeded: s.hash ^ (s.hash >> 32)) & mask
            while seriesSlots[slot].record != 0 { slot = (slot + 1) & mask }
            seriesSlots[slot] = s
        }
    }

    static func render(_ labels: [ExpositionLabel]) -> String {
        labels.isEmpty ? "" : "{" + labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }

    // MARK: - Strings

    /// The index of the string interned for the bytes `p[s..<s+n]` (hash `h`), if any.
    @inline(__always)
    private func lookup(_ s: Int, _ n: Int, _ h: UInt64) -> UInt32? {
        InternSlot.find(in: internSlots, h, n) { bytesEqual($0, s, n) }.map { $0 - 1 }
    }

    /// What interned bytes spell: a name (ASCII, checked by the scanner) or a label value (UTF-8, with
    /// escapes when `escaped`).
    private enum Spelling {
        case name
        case labelValue(escaped: Bool)
    }

    /// The index of the string for the bytes `p[s..<s+n]` (hash `h`): already interned, else the previous
    /// scrape's string for the same bytes, else a new string made from them.
    @inline(__always)
    private mutating func intern(_ s: Int, _ n: Int, _ h: UInt64, _ spelling: Spelling) throws(ExpositionError) -> UInt32 {
        if let id = lookup(s, n, h) { return id }
        return try internNew(s, n, h, spelling)
    }

    /// `intern` for bytes this parse has not met yet (kept out of line: most lookups hit).
    @inline(never)
    private mutating func internNew(_ s: Int, _ n: Int, _ h: UInt64, _ spelling: Spelling) throws(ExpositionError) -> UInt32 {
        if let known = previous.find(h, p + s, n) { return insert(s, n, h, known) }
        switch spelling {
        case .name: return insert(s, n, h, ascii(s, s + n))
        case .labelValue(let escaped):
            let value = escaped ? try unescape(s, s + n, allowQuote: true, what: "label value") : try utf8(s, s + n, what: "label value")
            return insert(s, n, h, value)
        }
    }

    /// Interns `string` as the value of the bytes `p[s..<s+n]` (hash `h`), which `lookup` did not find.
    private mutating func insert(_ s: Int, _ n: Int, _ h: UInt64, _ string: String) -> UInt32 {
        let id = UInt32(strings.count)
        strings.append(string)
        if strings.count * 2 > internSlots.count {
            let old = internSlots
            internSlots = Array(repeating: InternSlot(), count: old.count * 2)
            for entry in old where entry.id != 0 { place(entry) }
        }
        place(InternSlot(hash: h, start: s, count: n, id: id + 1))
        return id
    }

    private mutating func place(_ entry: InternSlot) {
        let mask = internSlots.count - 1
        var slot = InternSlot.home(entry.hash, mask)
        while internSlots[slot].id != 0 { slot = (slot + 1) & mask }
        internSlots[slot] = entry
    }

    // MARK: - Labels and exemplars

    /// Parses `name="value",...}` starting after `{`; returns the index after `}`. A series' labels go to
    /// `labelRefs` and `currentLabels` (with the label set's hash in `seriesLabelHash`); an exemplar's to `labels`.
    private mutating func parseLabels(_ start: Int, _ e: Int, into labels: inout [ExpositionLabel], series: Bool) throws(ExpositionError)
        -> Int
    {
        var i = start
        var first = true
        var names: Set<String> = []
        var nameIDs: Set<UInt32> = []
        while true {
            if !om { i = skipBlanks(i, e) }
            guard i < e else { throw fail(.syntax, "unterminated label set: missing '}'") }
            if p[i] == UInt8(ascii: "}") {
                guard first || !om else { throw fail(.syntax, "trailing ',' in label set") }
                return i + 1
            }
            let ns = i
            i = scanLabelName(i, e)
            guard i > ns else { throw fail(.syntax, "expected a label name, found '\(text(ns, min(e, ns + 20), limit: 20))'") }
            let nameEnd = i
            if !om { i = skipBlanks(i, e) }
            guard i < e, p[i] == UInt8(ascii: "=") else { throw fail(.syntax, "expected '=' after label name \(ascii(ns, nameEnd))") }
            i += 1
            if !om { i = skipBlanks(i, e) }
            guard i < e, p[i] == Self.quote else { throw fail(.syntax, "expected '\"' to open the value of label \(ascii(ns, nameEnd))") }
            i += 1
            let vs = i
            var escaped = false
            while true {
                i = quoteOrBackslash(from: i, e)
                guard i < e, p[i] == Self.backslash else { break }
                escaped = true
                i += 2
            }
            guard i < e else { throw fail(.syntax, "unterminated value of label \(ascii(ns, nameEnd))") }
            let ve = i
            i += 1
            if series {
                let k = currentLabels.count
                var scan: LabelScan
                if k < previousLabels.count, previousLabels[k].nameCount == nameEnd - ns, previousLabels[k].valueCount == ve - vs,
                    bytesEqual(ns, previousLabels[k].name, nameEnd - ns), bytesEqual(vs, previousLabels[k].value, ve - vs)
                {
                    scan = previousLabels[k]
                    scan.name = ns
                    scan.value = vs
                } else {
                    let hn = hashBytes(0xCBF2_9CE4_8422_2325, ns, nameEnd)
                    let hv = hashBytes(0xCBF2_9CE4_8422_2325, vs, ve)
                    let nameID = try intern(ns, nameEnd - ns, hn, .name)
                    let valueID = try intern(vs, ve - vs, hv, .labelValue(escaped: escaped))
                    var h = (hn ^ 0xFF) &* 0x9E37_79B9_7F4A_7C15 ^ hv
                    h = (h ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
                    scan = LabelScan(
                        name: ns, nameCount: nameEnd - ns, value: vs, valueCount: ve - vs, ref: ExpositionLabelRef(name: nameID, value: valueID),
                        hash: h ^ (h >> 29))
                }
                // Duplicate names: a linear scan for the usual few labels, a set beyond that (so a hostile
                // line with thousands of labels costs linear, not quadratic, time).
                if k < 16 {
                    if currentLabels.contains(where: { $0.ref.name == scan.ref.name }) {
                        throw fail(.syntax, "duplicate label name \(str(scan.ref.name))")
                    }
                } else {
                    if nameIDs.isEmpty { nameIDs = Set(currentLabels.map(\.ref.name)) }
                    guard nameIDs.insert(scan.ref.name).inserted else { throw fail(.syntax, "duplicate label name \(str(scan.ref.name))") }
                }
                currentLabels.append(scan)
                labelRefs.append(scan.ref)
                seriesLabelHash &+= scan.hash
            } else {
                let name = ascii(ns, nameEnd)
                let value = escaped ? try unescape(vs, ve, allowQuote: true, what: "label value") : try utf8(vs, ve, what: "label value")
                if labels.count < 16 {
                    if labels.contains(where: { $0.name == name }) { throw fail(.syntax, "duplicate label name \(name)") }
                } else {
                    if names.isEmpty { names = Set(labels.map(\.name)) }
                    guard names.insert(name).inserted else { throw fail(.syntax, "duplicate label name \(name)") }
                }
                labels.append(ExpositionLabel(name, value))
            }
            first = false
            if !om { i = skipBlanks(i, e) }
            guard i < e else { throw fail(.syntax, "unterminated label set: missing '}'") }
            if p[i] == UInt8(ascii: ",") {
                i += 1
                if om && (i >= e || p[i] == UInt8(ascii: "}")) { throw fail(.syntax, "trailing ',' in label set") }
                continue
            }
            guard p[i] == UInt8(ascii: "}") else { throw fail(.syntax, "expected ',' or '}' after the value of label \(ascii(ns, nameEnd))") }
            return i + 1
        }
    }

    /// `# {labels} value [timestamp]` starting at `#` (OpenMetrics 1.0 §Exemplars).
    private mutating func parseExemplar(_ s: Int, _ e: Int, sample: String) throws(ExpositionError) -> ExpositionExemplar {
        var i = s
        guard e - i >= 3, p[i] == UInt8(ascii: "#"), p[i + 1] == Self.space, p[i + 2] == UInt8(ascii: "{") else {
            throw fail(.syntax, "\(sample): expected an exemplar '# {labels} value'")
        }
        var labels: [ExpositionLabel] = []
        i = try parseLabels(i + 3, e, into: &labels, series: false)
        let runes = labels.reduce(0) { $0 + $1.name.unicodeScalars.count + $1.value.unicodeScalars.count }
        guard runes <= 128 else { throw fail(.syntax, "\(sample): exemplar labels are \(runes) characters long; the limit is 128") }
        guard i < e, p[i] == Self.space else { throw fail(.syntax, "\(sample): expected a space before the exemplar value") }
        i += 1
        let vs = i
        while i < e, p[i] != Self.space { i += 1 }
        guard let value = ExpositionNumber.parseDouble(p + vs, i - vs) else {
            throw fail(.syntax, "\(sample): invalid exemplar value '\(text(vs, i, limit: 40))'")
        }
        var ts: Int64?
        if i < e {
            i += 1
            guard let t = ExpositionNumber.parseSecondsAsNanos(p + i, e - i) else {
                throw fail(.syntax, "\(sample): invalid exemplar timestamp '\(text(i, e, limit: 40))'")
            }
            ts = t
        }
        return ExpositionExemplar(labels: labels, value: value, timestampNanos: ts)
    }

    // MARK: - Family checks

    /// Histogram checks once a family is complete: per label set, `le` strictly increasing, counts
    /// non-decreasing, and (OpenMetrics) a `+Inf` bucket last.
    private mutating func closeFamily() throws(ExpositionError) {
        guard let last = families.indices.last else { return }
        let type = families[last].type
        guard type == .histogram || type == .gaugehistogram else { return }
        let bucketName = families[last].name + "_bucket"
        var previous = -1  // the group's latest bucket
        var lastLE = -Double.infinity
        var lastCount = 0.0
        func finishGroup() throws(ExpositionError) {
            if om, previous >= 0, lastLE != .infinity {
                throw ExpositionError(.invalidValue, line: records[previous].line, "\(bucketName): histogram has no le=\"+Inf\" bucket")
            }
        }
        for k in familyStarts[last]..<records.count where records[k].suffix == .bucket {
            if previous < 0 || !sameLabels(exceptLE: records[previous], records[k]) {
                try finishGroup()
                lastLE = -.infinity
                lastCount = -.infinity
            }
            var leValue: UInt32?
            let start = Int(records[k].labelStart)
            for l in labelRefs[start..<(start + Int(records[k].labelCount))] where l.name == leID {
                leValue = l.value
                break
            }
            let le = leValue.flatMap { number($0) } ?? .nan
            if !(le > lastLE) {
                let leText = leValue.map(str) ?? ""
                throw ExpositionError(.invalidValue, line: records[k].line, "\(bucketName): le=\"\(leText)\" is not greater than the previous bucket's")
            }
            let value = records[k].value
            if value < lastCount {
                throw ExpositionError(.invalidValue, line: records[k].line, "\(bucketName): bucket counts decrease (\(value) after \(lastCount))")
            }
            lastLE = le
            lastCount = value
            previous = k
        }
        try finishGroup()
    }

    /// Whether two samples' labels are equal, in order, once their `le` labels are skipped (interned
    /// strings: equal indices are equal strings).
    private func sameLabels(exceptLE a: Record, _ b: Record) -> Bool {
        let aStart = Int(a.labelStart)
        let bStart = Int(b.labelStart)
        return ExpositionLabelRef.equal(
            labelRefs, aStart..<(aStart + Int(a.labelCount)), bStart..<(bStart + Int(b.labelCount)), skipping: leID ?? .max)
    }

    // MARK: - Tokens

    /// Whether `count` bytes at `a` and `b` are equal. Compares eight bytes at a time; the last, partial
    /// word as an overlapping word, or masked when the exposition has eight bytes to read at both places.
    @inline(__always)
    private func bytesEqual(_ a: Int, _ b: Int, _ count: Int) -> Bool {
        let raw = UnsafeRawPointer(p)
        @inline(__always) func word(_ i: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) }
        if count >= 8 {
            var k = 0
            while k + 8 <= count {
                if word(a + k) != word(b + k) { return false }
                k += 8
            }
            return k == count || word(a + count - 8) == word(b + count - 8)
        }
        if count == 0 { return true }
        if a + 8 <= self.count, b + 8 <= self.count {
            return (word(a) ^ word(b)) & (UInt64.max >> UInt64(64 - 8 * count)) == 0
        }
        for k in 0..<count where p[a + k] != p[b + k] { return false }
        return true
    }

    /// The index of the first `"` or `\\` in `p[start..<e]`, or `e` (i.e. `e` or past it, after an escape at
    /// the end). Eight bytes per step (SWAR zero-byte test) while eight remain.
    @inline(__always)
    private func quoteOrBackslash(from start: Int, _ e: Int) -> Int {
        var i = start
        let raw = UnsafeRawPointer(p)
        while i + 8 <= e {
            let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let q = w ^ 0x2222_2222_2222_2222
            let b = w ^ 0x5C5C_5C5C_5C5C_5C5C
            let hit = ((q &- 0x0101_0101_0101_0101) & ~q | (b &- 0x0101_0101_0101_0101) & ~b) & 0x8080_8080_8080_8080
            if hit != 0 { return i + (hit.trailingZeroBitCount >> 3) }
            i += 8
        }
        while i < e, p[i] != Self.quote, p[i] != Self.backslash { i += 1 }
        return i
    }

    @inline(__always)
    private func skipBlanks(_ start: Int, _ e: Int) -> Int {
        var i = start
        while i < e, p[i] == Self.space || p[i] == Self.tab { i += 1 }
        return i
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    @inline(__always)
    private func scanMetricName(_ start: Int, _ e: Int) -> Int {
        scanName(start, e, first: NameClass.metricStart, rest: NameClass.metric)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    @inline(__always)
    private func scanLabelName(_ start: Int, _ e: Int) -> Int {
        scanName(start, e, first: NameClass.labelStart, rest: NameClass.label)
    }

    /// The end of the name at `start`: a first byte with class bit `first`, then bytes with bit `rest`.
    @inline(__always)
    private func scanName(_ start: Int, _ e: Int, first: UInt8, rest: UInt8) -> Int {
        NameClass.table.withUnsafeBufferPointer { table in
            guard start < e, table[Int(p[start])] & first != 0 else { return start }
            var i = start + 1
            while i < e, table[Int(p[i])] & rest != 0 { i += 1 }
            return i
        }
    }

    /// Bytes already checked to be ASCII.
    @inline(__always)
    private func ascii(_ s: Int, _ e: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self)
    }

    private func utf8(_ s: Int, _ e: Int, what: String) throws(ExpositionError) -> String {
        let buffer = UnsafeBufferPointer(start: p + s, count: e - s)
        var allASCII = true
        for b in buffer where b >= 0x80 {
            allASCII = false
            break
        }
        if allASCII { return String(decoding: buffer, as: UTF8.self) }
        guard let v = String(validating: buffer, as: UTF8.self) else { throw fail(.invalidUTF8, "\(what) is not valid UTF-8") }
        return v
    }

    /// Resolves `\\`, `\n` and (in label values and OpenMetrics help) `\"`; any other escape is an error.
    private func unescape(_ s: Int, _ e: Int, allowQuote: Bool, what: String) throws(ExpositionError) -> String {
        if UnsafeBufferPointer(start: p + s, count: e - s).firstIndex(of: Self.backslash) == nil { return try utf8(s, e, what: what) }
        var out: [UInt8] = []
        out.reserveCapacity(e - s)
        var i = s
        while i < e {
            let b = p[i]
            if b == Self.backslash {
                guard i + 1 < e else { throw fail(.syntax, "\(what) ends with a lone backslash") }
                switch p[i + 1] {
                case Self.backslash: out.append(Self.backslash)
                case UInt8(ascii: "n"): out.append(Self.newline)
                case Self.quote where allowQuote: out.append(Self.quote)
                default: throw fail(.syntax, "invalid escape sequence '\\\(Character(Unicode.Scalar(p[i + 1])))' in \(what)")
                }
                i += 2
            } else {
                out.append(b)
                i += 1
            }
        }
        guard let v = String(validating: out, as: UTF8.self) else { throw fail(.invalidUTF8, "\(what) is not valid UTF-8") }
        return v
    }

    /// A short, printable excerpt for error messages.
    private func text(_ s: Int, _ e: Int, limit: Int) -> String {
        let end = min(e, s + limit)
        let t = String(decoding: UnsafeBufferPointer(start: p + s, count: end - s), as: UTF8.self)
        return end < e ? t + "…" : t
    }

    /// Mixes `p[s..<e]` into `seed` eight bytes at a time (a multiply-xorshift hash; the exact series
    /// comparison on a hash match makes collisions harmless).
    @inline(__always)
    private func hashBytes(_ seed: UInt64, _ s: Int, _ e: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        var h = seed ^ UInt64(truncatingIfNeeded: e - s)
        var i = s
        while i + 8 <= e {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < e {
            tail |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 31)
    }
}

/// Byte classes of metric and label names (Prometheus data model: metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`,
/// label names `[a-zA-Z_][a-zA-Z0-9_]*`), one bit per class, looked up per byte.
private enum NameClass {
    static let metricStart: UInt8 = 1
    static let metric: UInt8 = 2
    static let labelStart: UInt8 = 4
    static let label: UInt8 = 8

    static let table: [UInt8] = (0..<256).map { b in
        let letter = (UInt8(b) | 0x20) &- UInt8(ascii: "a") < 26 || b == Int(UInt8(ascii: "_"))
        let digit = UInt8(truncatingIfNeeded: b) &- UInt8(ascii: "0") < 10 && b < 128
        let colon = b == Int(UInt8(ascii: ":"))
        var c: UInt8 = 0
        if letter || colon { c |= metricStart | metric }
        if digit { c |= metric | label }
        if letter { c |= labelStart | label }
        return c
    }
}

/// The strings of a target's previous scrape, for its next parse: a name or label value whose exposition
/// bytes are unchanged gets the previous scrape's `String` instead of a new one. Scrapes of one target
/// repeat nearly all their strings, so a parse allocates few, and what compares this scrape's labels with
/// the previous one's (the assembler's series, the remote-write label encodings) finds them identical at
/// once. Holds one scrape's strings at a time.
public struct ExpositionStrings: Sendable {
    /// The strings' exposition bytes (escapes included) back to back.
    fileprivate var bytes: [UInt8] = []
    /// The parser's intern table, `start` counting into `bytes`.
    fileprivate var slots: [ExpositionParser.InternSlot] = []
    fileprivate var strings: [String] = []

    public init() {}

    /// How many strings are kept.
    public var count: Int { strings.count }

    /// The string whose exposition bytes are `p[0..<n]` (hash `h`, as the parser hashes), if kept.
    @inline(__always)
    fileprivate func find(_ h: UInt64, _ p: UnsafePointer<UInt8>, _ n: Int) -> String? {
        guard !slots.isEmpty else { return nil }
        let id = ExpositionParser.InternSlot.find(in: slots, h, n) { start in
            bytes.withUnsafeBufferPointer { memcmp($0.baseAddress! + start, p, n) == 0 }
        }
        return id.map { strings[Int($0) - 1] }
    }
}
