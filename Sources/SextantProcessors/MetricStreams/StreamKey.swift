import SextantModel

/// The identity of one metric stream (a "series"): resource, scope, metric name and kind, and the data
/// point's attributes — the OTel data model's stream identity (metrics data model, "Single-Writer"
/// and "Overlap" sections) minus the description, which does not identify a stream.
///
/// The key is a canonical byte encoding: attributes are sorted by key and every value is typed and
/// length-prefixed, so equal attribute sets give equal keys whatever their wire order, and no two
/// different identities share an encoding.
struct StreamKey: Hashable, Sendable {
    private(set) var bytes: [UInt8]

    /// The part shared by every point under one resource and scope; compute once per scope.
    static func prefix(resource: Resource, scope: InstrumentationScope) -> StreamKey {
        var k = StreamKey(bytes: [])
        k.bytes.reserveCapacity(128)
        k.append(attributes: resource.attributes)
        k.append(string: scope.name)
        k.append(string: scope.version)
        k.append(attributes: scope.attributes)
        return k
    }

    /// `prefix` extended with the metric's name and kind, shared by every point of the metric.
    func metric(_ metric: Metric) -> StreamKey {
        var k = self
        k.append(string: metric.name)
        k.bytes.append(metric.data.kindTag)
        return k
    }

    /// `metric(...)` extended with a data point's attributes: the stream of that point.
    func point(_ attributes: [KeyValue]) -> StreamKey {
        var k = self
        k.append(attributes: attributes)
        return k
    }

    private mutating func append(length n: Int) {
        var v = UInt64(n)
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func append(string s: String) {
        append(length: s.utf8.count)
        bytes.append(contentsOf: s.utf8)
    }

    private mutating func append(fixed v: UInt64) {
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    private mutating func append(attributes: [KeyValue]) {
        append(length: attributes.count)
        // Attribute order on the wire carries no meaning; sort (stable, so duplicate keys keep their order).
        let sorted = attributes.count < 2 ? attributes : attributes.enumerated().sorted { a, b in
            a.element.key != b.element.key ? a.element.key < b.element.key : a.offset < b.offset
        }.map(\.element)
        for kv in sorted {
            append(string: kv.key)
            append(value: kv.value)
        }
    }

    private mutating func append(value: AnyValue) {
        switch value {
        case .string(let s):
            bytes.append(1)
            append(string: s)
        case .bool(let b):
            bytes.append(b ? 3 : 2)
        case .int(let i):
            bytes.append(4)
            append(fixed: UInt64(bitPattern: i))
        case .double(let d):
            bytes.append(5)
            append(fixed: d.bitPattern)
        case .bytes(let b):
            bytes.append(6)
            append(length: b.count)
            bytes.append(contentsOf: b)
        case .array(let a):
            bytes.append(7)
            append(length: a.count)
            for v in a { append(value: v) }
        case .kvlist(let kv):
            bytes.append(8)
            append(attributes: kv)
        case .empty:
            bytes.append(9)
        }
    }
}

extension MetricData {
    /// One byte per point kind, so a sum and a histogram of the same name are different streams.
    var kindTag: UInt8 {
        switch self {
        case .gauge: return 1
        case .sum: return 2
        case .histogram: return 3
        case .exponentialHistogram: return 4
        case .summary: return 5
        case .empty: return 0
        }
    }

    static let sumTag: UInt8 = 2
    static let histogramTag: UInt8 = 3
}
