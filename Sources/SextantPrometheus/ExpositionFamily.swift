/// The two text formats a Prometheus target can answer a scrape with.
public enum ExpositionFormat: Sendable, Equatable, CustomStringConvertible {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): timestamps in milliseconds.
    case prometheusText
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`): timestamps in seconds,
    /// exemplars, `# UNIT`, and a mandatory `# EOF`.
    case openMetrics

    /// The format named by a `Content-Type` header: OpenMetrics for `application/openmetrics-text`,
    /// otherwise the Prometheus text format (as Prometheus falls back for unknown or missing types).
    public init(contentType: String?) {
        let media = contentType?.split(separator: ";").first.map { $0.filter { $0 != " " && $0 != "\t" }.lowercased() }
        self = media == "application/openmetrics-text" ? .openMetrics : .prometheusText
    }

    public var description: String { self == .openMetrics ? "OpenMetrics 1.0" : "Prometheus text 0.0.4" }
}

/// A metric family type as `# TYPE` declares it (OpenMetrics 1.0 §MetricTypes; `untyped` in the text format
/// is reported as `.unknown`).
public enum ExpositionMetricType: String, Sendable, Equatable {
    case counter, gauge, histogram, gaugehistogram, summary, stateset, info, unknown
}

/// One label pair of a sample, unescaped.
public struct ExpositionLabel: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// An OpenMetrics exemplar: `# {labels} value [timestamp]` after a sample.
public struct ExpositionExemplar: Sendable, Equatable {
    public var labels: [ExpositionLabel]
    public var value: Double
    /// Unix time in nanoseconds, when the exemplar carries one.
    public var timestampNanos: Int64?
    public init(labels: [ExpositionLabel], value: Double, timestampNanos: Int64? = nil) {
        self.labels = labels
        self.value = value
        self.timestampNanos = timestampNanos
    }
}

/// One exposition line holding a value: `name{labels} value [timestamp] [# exemplar]`.
///
/// The name, labels and exemplar live in an `ExpositionStore` shared by all samples of one parse; a sample
/// holds indices into it, so building, copying and freeing samples costs no per-label reference counting
/// and no per-sample allocation. Setting `name`, `labels` or `exemplar` gives the sample a store of its own.
public struct ExpositionSample: Sendable, Equatable {
    var store: ExpositionStore
    var nameID: UInt32
    var labelStart: UInt32
    var labelCount: UInt32
    /// Index into `store.exemplars`, or -1.
    var exemplarIndex: Int32
    public var value: Double
    /// Unix time in nanoseconds when the line carries a timestamp (ms in the text format, seconds in OpenMetrics).
    public var timestampNanos: Int64?
    /// 1-based line number in the exposition.
    public var line: Int

    public init(
        name: String, labels: [ExpositionLabel] = [], value: Double, timestampNanos: Int64? = nil,
        exemplar: ExpositionExemplar? = nil, line: Int = 0
    ) {
        store = ExpositionStore(name: name, labels: labels, exemplar: exemplar)
        nameID = 0
        labelStart = 0
        labelCount = UInt32(labels.count)
        exemplarIndex = exemplar == nil ? -1 : 0
        self.value = value
        self.timestampNanos = timestampNanos
        self.line = line
    }

    /// A sample of a parse whose strings, labels and exemplars are in `store`.
    init(
        store: ExpositionStore, nameID: UInt32, labelStart: UInt32, labelCount: UInt32, exemplarIndex: Int32, value: Double,
        timestampNanos: Int64?, line: Int
    ) {
        self.store = store
        self.nameID = nameID
        self.labelStart = labelStart
        self.labelCount = labelCount
        self.exemplarIndex = exemplarIndex
        self.value = value
        self.timestampNanos = timestampNanos
        self.line = line
    }

    /// The full series name, suffix included (`http_requests_total`, `latency_bucket`).
    public var name: String {
        get { store.strings[Int(nameID)] }
        set { own(name: newValue, labels: labels, exemplar: exemplar) }
    }

    /// Labels in exposition order.
    public var labels: [ExpositionLabel] {
        get {
            var out: [ExpositionLabel] = []
            out.reserveCapacity(Int(labelCount))
            for k in 0..<Int(labelCount) { out.append(ExpositionLabel(labelName(at: k), labelValue(at: k))) }
            return out
        }
        set { own(name: name, labels: newValue, exemplar: exemplar) }
    }

    public var exemplar: ExpositionExemplar? {
        get { exemplarIndex < 0 ? nil : store.exemplars[Int(exemplarIndex)] }
        set { own(name: name, labels: labels, exemplar: newValue) }
    }

    /// Equal for two samples whose names are the same string of the same store (then the names are equal).
    var nameIdentity: (store: ObjectIdentifier, id: UInt32) { (ObjectIdentifier(store), nameID) }

    /// The number of labels (`labels.count` without building the array).
    var labelsCount: Int { Int(labelCount) }

    /// The name of label `k` (exposition order).
    @inline(__always)
    func labelName(at k: Int) -> String { store.strings[Int(store.labels[Int(labelStart) + k].name)] }

    /// The value of label `k` (exposition order).
    @inline(__always)
    func labelValue(at k: Int) -> String { store.strings[Int(store.labels[Int(labelStart) + k].value)] }

    /// The value of label `name`.
    public func label(_ name: String) -> String? {
        for k in 0..<Int(labelCount) where labelName(at: k) == name { return labelValue(at: k) }
        return nil
    }

    /// Moves the name, labels and exemplar into a store of this sample's own.
    private mutating func own(name: String, labels: [ExpositionLabel], exemplar: ExpositionExemplar?) {
        store = ExpositionStore(name: name, labels: labels, exemplar: exemplar)
        nameID = 0
        labelStart = 0
        labelCount = UInt32(labels.count)
        exemplarIndex = exemplar == nil ? -1 : 0
    }

    public static func == (a: ExpositionSample, b: ExpositionSample) -> Bool {
        guard a.value == b.value, a.timestampNanos == b.timestampNanos, a.line == b.line, a.labelCount == b.labelCount else { return false }
        guard a.name == b.name, a.exemplar == b.exemplar else { return false }
        if a.store === b.store && a.labelStart == b.labelStart { return true }
        for k in 0..<Int(a.labelCount) where a.labelName(at: k) != b.labelName(at: k) || a.labelValue(at: k) != b.labelValue(at: k) {
            return false
        }
        return true
    }
}

/// A label as two indices into `ExpositionStore.strings`.
struct ExpositionLabelRef: Sendable, Equatable {
    var name: UInt32
    var value: UInt32

    /// Whether the labels `refs[a]` and `refs[b]` are equal in order, labels whose name is string
    /// `skipping` aside (`le` or `quantile` when grouping a histogram's or summary's lines).
    static func equal(_ refs: [ExpositionLabelRef], _ a: Range<Int>, _ b: Range<Int>, skipping: UInt32) -> Bool {
        var i = a.lowerBound
        var j = b.lowerBound
        while true {
            while i < a.upperBound, refs[i].name == skipping { i += 1 }
            while j < b.upperBound, refs[j].name == skipping { j += 1 }
            if i == a.upperBound || j == b.upperBound { return i == a.upperBound && j == b.upperBound }
            if refs[i] != refs[j] { return false }
            i += 1
            j += 1
        }
    }
}

/// The strings (sample names, label names and values, each distinct one once), the labels of all samples
/// back to back, and the exemplars of one parse; immutable once built, shared by the parse's samples.
final class ExpositionStore: Sendable {
    let strings: [String]
    let labels: [ExpositionLabelRef]
    let exemplars: [ExpositionExemplar]

    init(strings: [String], labels: [ExpositionLabelRef], exemplars: [ExpositionExemplar]) {
        self.strings = strings
        self.labels = labels
        self.exemplars = exemplars
    }

    /// The store of one sample built by hand: its name is string 0, its labels start at 0.
    convenience init(name: String, labels: [ExpositionLabel], exemplar: ExpositionExemplar?) {
        var builder = Builder()
        _ = builder.add(name: name, labels: labels, exemplar: exemplar)
        self.init(strings: builder.strings, labels: builder.labels, exemplars: builder.exemplars)
    }

    /// Collects the names, labels and exemplars of samples made outside the parser (relabeling); a
    /// sample's name is interned when it repeats the previous one, its labels are appended as they are.
    struct Builder {
        /// Where a sample's parts are, for `ExpositionSample.init(store:…)`.
        struct Entry {
            var nameID: UInt32
            var labelStart: UInt32
            var labelCount: UInt32
            var exemplarIndex: Int32
        }

        var strings: [String] = []
        var labels: [ExpositionLabelRef] = []
        var exemplars: [ExpositionExemplar] = []
        private var lastName: (string: String, id: UInt32)?

        mutating func add(name: String, labels newLabels: [ExpositionLabel], exemplar: ExpositionExemplar?) -> Entry {
            let nameID: UInt32
            if let lastName, lastName.string == name {
                nameID = lastName.id
            } else {
                nameID = UInt32(strings.count)
                strings.append(name)
                lastName = (name, nameID)
            }
            let labelStart = UInt32(labels.count)
            for l in newLabels {
                labels.append(ExpositionLabelRef(name: UInt32(strings.count), value: UInt32(strings.count + 1)))
                strings.append(l.name)
                strings.append(l.value)
            }
            var exemplarIndex: Int32 = -1
            if let exemplar {
                exemplarIndex = Int32(exemplars.count)
                exemplars.append(exemplar)
            }
            return Entry(nameID: nameID, labelStart: labelStart, labelCount: UInt32(newLabels.count), exemplarIndex: exemplarIndex)
        }

        func build() -> ExpositionStore { ExpositionStore(strings: strings, labels: labels, exemplars: exemplars) }
    }
}

/// A metric family: its metadata and samples, in exposition order.
public struct ExpositionFamily: Sendable, Equatable {
    public var name: String
    public var type: ExpositionMetricType
    /// Whether the type came from a `# TYPE` line (families without one are `unknown`).
    public var typeDeclared: Bool
    public var help: String?
    public var unit: String?
    public var samples: [ExpositionSample]
    /// The line of the family's first metadata line or sample.
    public var line: Int

    public init(
        name: String, type: ExpositionMetricType = .unknown, typeDeclared: Bool = false, help: String? = nil,
        unit: String? = nil, samples: [ExpositionSample] = [], line: Int = 0
    ) {
        self.name = name
        self.type = type
        self.typeDeclared = typeDeclared
        self.help = help
        self.unit = unit
        self.samples = samples
        self.line = line
    }
}

/// Why an exposition was rejected: the 1-based line and a reason. Whole-scrape errors (a missing
/// `# EOF`) point at the last line.
public struct ExpositionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code for the kind of problem; new codes may be added.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// A line that does not follow the grammar.
        public static let syntax = Code(rawValue: "syntax")
        /// Bytes that are not UTF-8.
        public static let invalidUTF8 = Code(rawValue: "invalid_utf8")
        /// The same name and label set twice.
        public static let duplicateSeries = Code(rawValue: "duplicate_series")
        /// A sample whose name or labels do not fit its family's `# TYPE`.
        public static let typeMismatch = Code(rawValue: "type_mismatch")
        /// Metadata repeated, after samples, or a family split into two groups.
        public static let metadata = Code(rawValue: "metadata")
        /// OpenMetrics: no `# EOF`, or bytes after it.
        public static let eof = Code(rawValue: "eof")
        /// Histogram buckets out of order, decreasing, or without `+Inf`; invalid values for the type.
        public static let invalidValue = Code(rawValue: "invalid_value")
    }

    public var code: Code
    public var line: Int
    public var reason: String

    public init(_ code: Code, line: Int, _ reason: String) {
        self.code = code
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}
