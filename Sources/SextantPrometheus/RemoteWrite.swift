import SextantOTLP

/// Prometheus remote write 1.0 messages (Prometheus "Remote-Write 1.0" specification; field numbers
/// from `prompb/remote.proto` and `prompb/types.proto`), protobuf-encoded. On the wire the message is
/// Snappy block-compressed (`SextantSnappy`).
///
/// Native histograms (`TimeSeries.histograms`, field 4) are not modelled: the decoder skips them and
/// counts them in `TimeSeries.skippedHistograms`.
public enum RemoteWrite {
    /// `WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }`.
    public struct WriteRequest: Sendable, Equatable {
        public var timeseries: [TimeSeries]
        public var metadata: [MetricMetadata]

        public init(timeseries: [TimeSeries] = [], metadata: [MetricMetadata] = []) {
            self.timeseries = timeseries
            self.metadata = metadata
        }
    }

    /// `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; repeated Exemplar exemplars = 3; }`.
    public struct TimeSeries: Sendable, Equatable {
        public var labels: [Label]
        public var samples: [Sample]
        public var exemplars: [Exemplar]
        /// Native histograms (field 4) met while decoding and skipped.
        public var skippedHistograms: Int

        public init(labels: [Label] = [], samples: [Sample] = [], exemplars: [Exemplar] = [], skippedHistograms: Int = 0) {
            self.labels = labels
            self.samples = samples
            self.exemplars = exemplars
            self.skippedHistograms = skippedHistograms
        }

        /// The value of the `__name__` label.
        public var metricName: String? { labels.first { $0.name == "__name__" }?.value }
    }

    /// `Label { string name = 1; string value = 2; }`.
    public struct Label: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// `Sample { double value = 1; int64 timestamp = 2; }` (milliseconds since the epoch).
    public struct Sample: Sendable, Equatable {
        public var value: Double
        public var timestamp: Int64
        public init(value: Double, timestamp: Int64) {
            self.value = value
            self.timestamp = timestamp
        }

        /// Compares values by bit pattern, so NaNs (staleness markers) compare equal to themselves.
        public static func == (a: Sample, b: Sample) -> Bool { a.value.bitPattern == b.value.bitPattern && a.timestamp == b.timestamp }
    }

    /// `Exemplar { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }`.
    public struct Exemplar: Sendable, Equatable {
        public var labels: [Label]
        public var value: Double
        public var timestamp: Int64
        public init(labels: [Label], value: Double, timestamp: Int64) {
            self.labels = labels
            self.value = value
            self.timestamp = timestamp
        }
    }

    /// `MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4; string unit = 5; }`.
    public struct MetricMetadata: Sendable, Equatable {
        /// `MetricMetadata.MetricType`.
        public enum MetricType: Int32, Sendable {
            case unknown = 0, counter = 1, gauge = 2, histogram = 3, gaugeHistogram = 4, summary = 5, info = 6, stateSet = 7
        }

        public var type: MetricType
        public var familyName: String
        public var help: String
        public var unit: String

        public init(type: MetricType, familyName: String, help: String = "", unit: String = "") {
            self.type = type
            self.familyName = familyName
            self.help = help
            self.unit = unit
        }
    }

    /// The staleness marker Prometheus writes when a series disappears (`value.StaleNaN`): a NaN with
    /// this exact bit pattern, distinct from an ordinary NaN sample.
    public static let staleNaN = Double(bitPattern: 0x7FF0_0000_0000_0002)

    /// `true` for the staleness marker's bit pattern.
    public static func isStaleMarker(_ v: Double) -> Bool { v.bitPattern == staleNaN.bitPattern }
}

// MARK: Encoding

extension RemoteWrite.WriteRequest {
    /// The protobuf encoding (before Snappy).
    public func encode() -> [UInt8] {
        var w = ProtoWriter(capacity: 256 + timeseries.count * 128)
        for m in metadata.reversed() {
            let mark = w.count
            m.write(&w)
            w.lengthPrefix(3, since: mark)
        }
        for ts in timeseries.reversed() {
            let mark = w.count
            ts.write(&w)
            w.lengthPrefix(1, since: mark)
        }
        return w.bytes()
    }
}

extension RemoteWrite.TimeSeries {
    func write(_ w: inout ProtoWriter) { RemoteWrite.write(labels: labels, samples: samples, exemplars: exemplars, into: &w) }

    /// The exact encoded size of this series as a `WriteRequest.timeseries` element (tag and length
    /// included), for splitting requests by size without encoding twice.
    public var encodedSize: Int { RemoteWrite.encodedSize(labels: labels, samples: samples, exemplars: exemplars) }
}

extension RemoteWrite {
    /// A `TimeSeries` message's fields (written back to front, as `ProtoWriter` requires).
    static func write(
        labels: some BidirectionalCollection<Label>, samples: some BidirectionalCollection<Sample>,
        exemplars: some BidirectionalCollection<Exemplar>, into w: inout ProtoWriter
    ) {
        for e in exemplars.reversed() {
            let mark = w.count
            w.uint64Field(3, UInt64(bitPattern: e.timestamp))
            w.fixed64Field(2, e.value.bitPattern)
            RemoteWrite.writeLabels(e.labels, 1, &w)
            w.lengthPrefix(3, since: mark)
        }
        for s in samples.reversed() {
            let mark = w.count
            w.uint64Field(2, UInt64(bitPattern: s.timestamp))
            w.fixed64Field(1, s.value.bitPattern)
            w.lengthPrefix(2, since: mark)
        }
        RemoteWrite.writeLabels(labels, 1, &w)
    }

    /// The encoded size of a `TimeSeries` as a `WriteRequest.timeseries` element, tag and length included.
    static func encodedSize(
        labels: some Collection<Label>, samples: some Collection<Sample>, exemplars: some Collection<Exemplar>
    ) -> Int {
        var n = 0
        for l in labels { n += RemoteWrite.fieldSize(RemoteWrite.labelSize(l)) }
        for s in samples { n += RemoteWrite.fieldSize(sampleBody(s)) }
        for e in exemplars { n += RemoteWrite.fieldSize(exemplarBody(e)) }
        return RemoteWrite.fieldSize(n)
    }

    /// The size of a `Sample` message: its non-zero fields (proto3).
    @inline(__always)
    static func sampleBody(_ s: Sample) -> Int {
        (s.value.bitPattern != 0 ? 9 : 0) + (s.timestamp != 0 ? 1 + RemoteWrite.varintSize(UInt64(bitPattern: s.timestamp)) : 0)
    }

    /// The size of an `Exemplar` message.
    static func exemplarBody(_ e: Exemplar) -> Int {
        var body = (e.value.bitPattern != 0 ? 9 : 0) + (e.timestamp != 0 ? 1 + RemoteWrite.varintSize(UInt64(bitPattern: e.timestamp)) : 0)
        for l in e.labels { body += RemoteWrite.fieldSize(RemoteWrite.labelSize(l)) }
        return body
    }
}

extension RemoteWrite.MetricMetadata {
    func write(_ w: inout ProtoWriter) {
        w.stringField(5, unit)
        w.stringField(4, help)
        w.stringField(2, familyName)
        w.int32Field(1, type.rawValue)
    }

    var encodedSize: Int {
        func str(_ s: String) -> Int { s.isEmpty ? 0 : RemoteWrite.fieldSize(s.utf8.count) }
        let body = (type.rawValue != 0 ? 2 : 0) + str(familyName) + str(help) + str(unit)
        return RemoteWrite.fieldSize(body)
    }
}

extension RemoteWrite {
    static func writeLabels(_ labels: some BidirectionalCollection<Label>, _ field: UInt64, _ w: inout ProtoWriter) {
        var i = labels.endIndex
        while i != labels.startIndex {
            labels.formIndex(before: &i)
            w.stringPairField(field, labels[i].name, labels[i].value)
        }
    }

    static func varintSize(_ v: UInt64) -> Int { (64 - (v | 1).leadingZeroBitCount + 6) / 7 }
    /// A length-delimited field with a one-byte tag and `body` bytes of payload.
    static func fieldSize(_ body: Int) -> Int { 1 + varintSize(UInt64(body)) + body }
    static func labelSize(_ l: Label) -> Int {
        (l.name.isEmpty ? 0 : fieldSize(l.name.utf8.count)) + (l.value.isEmpty ? 0 : fieldSize(l.value.utf8.count))
    }

    /// Splits series and metadata into requests whose encoding stays within `maxBytes` (a series larger
    /// than that on its own goes alone), keeping their order — the OTel exporter's
    /// `max_batch_size_bytes`.
    public static func split(_ request: WriteRequest, maxBytes: Int) -> [WriteRequest] {
        let sizes = request.timeseries.map(\.encodedSize) + request.metadata.map(\.encodedSize)
        let chunks = chunks(sizes, maxBytes: maxBytes)
        // The usual case, one request, without copying every series into a new one.
        if chunks.count == 1 { return [request] }
        let n = request.timeseries.count
        return chunks.map { chunk in
            WriteRequest(
                timeseries: Array(request.timeseries[chunk.clamped(to: 0..<n)]),
                metadata: Array(request.metadata[(chunk.lowerBound - n..<chunk.upperBound - n).clamped(to: 0..<request.metadata.count)]))
        }
    }

    /// Consecutive runs of items whose sizes add up to at most `maxBytes` (an item larger than that on its
    /// own forms a run alone); none for no items.
    static func chunks(_ sizes: [Int], maxBytes: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        var size = 0
        for (i, n) in sizes.enumerated() {
            if size + n > maxBytes && i > start {
                out.append(start..<i)
                start = i
                size = 0
            }
            size += n
        }
        if start < sizes.count { out.append(start..<sizes.count) }
        return out
    }
}

// MARK: Decoding

extension RemoteWrite.WriteRequest {
    /// Decodes a `WriteRequest` (after Snappy). Unknown fields are skipped (proto3); malformed
    /// protobuf and invalid UTF-8 in labels are errors with the offset.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(OTLPDecodingError) -> RemoteWrite.WriteRequest {
        var r = ProtoReader(bytes)
        var req = RemoteWrite.WriteRequest()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var m = try r.readMessage()
                req.timeseries.append(try RemoteWrite.TimeSeries.decode(&m))
            case 3 << 3 | 2:
                var m = try r.readMessage()
                req.metadata.append(try RemoteWrite.MetricMetadata.decode(&m))
            default: try r.skip(tag: tag, in: "WriteRequest")
            }
        }
        return req
    }

    public static func decode(_ bytes: [UInt8]) throws(OTLPDecodingError) -> RemoteWrite.WriteRequest {
        var result: Result<RemoteWrite.WriteRequest, OTLPDecodingError> = .success(.init())
        bytes.withUnsafeBytes { raw in
            do throws(OTLPDecodingError) { result = .success(try decode(raw)) } catch { result = .failure(error) }
        }
        return try result.get()
    }
}

extension RemoteWrite.TimeSeries {
    static func decode(_ r: inout ProtoReader) throws(OTLPDecodingError) -> RemoteWrite.TimeSeries {
        var ts = RemoteWrite.TimeSeries()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var m = try r.readMessage()
                ts.labels.append(try RemoteWrite.decodeLabel(&m))
            case 2 << 3 | 2:
                var m = try r.readMessage()
                var s = RemoteWrite.Sample(value: 0, timestamp: 0)
                while m.hasMore {
                    let t = try m.readTag()
                    switch t {
                    case 1 << 3 | 1: s.value = Double(bitPattern: try m.readFixed64())
                    case 2 << 3 | 0: s.timestamp = Int64(bitPattern: try m.readVarint())
                    default: try m.skip(tag: t, in: "Sample")
                    }
                }
                ts.samples.append(s)
            case 3 << 3 | 2:
                var m = try r.readMessage()
                var e = RemoteWrite.Exemplar(labels: [], value: 0, timestamp: 0)
                while m.hasMore {
                    let t = try m.readTag()
                    switch t {
                    case 1 << 3 | 2:
                        var l = try m.readMessage()
                        e.labels.append(try RemoteWrite.decodeLabel(&l))
                    case 2 << 3 | 1: e.value = Double(bitPattern: try m.readFixed64())
                    case 3 << 3 | 0: e.timestamp = Int64(bitPattern: try m.readVarint())
                    default: try m.skip(tag: t, in: "Exemplar")
                    }
                }
                ts.exemplars.append(e)
            case 4 << 3 | 2:
                _ = try r.readBytes()
                ts.skippedHistograms += 1
            default: try r.skip(tag: tag, in: "TimeSeries")
            }
        }
        return ts
    }
}

extension RemoteWrite.MetricMetadata {
    static func decode(_ r: inout ProtoReader) throws(OTLPDecodingError) -> RemoteWrite.MetricMetadata {
        var m = RemoteWrite.MetricMetadata(type: .unknown, familyName: "")
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 0: m.type = MetricType(rawValue: try r.readInt32()) ?? .unknown
            case 2 << 3 | 2: m.familyName = try r.readString(in: "MetricMetadata")
            case 4 << 3 | 2: m.help = try r.readString(in: "MetricMetadata")
            case 5 << 3 | 2: m.unit = try r.readString(in: "MetricMetadata")
            default: try r.skip(tag: tag, in: "MetricMetadata")
            }
        }
        return m
    }
}

extension RemoteWrite {
    static func decodeLabel(_ r: inout ProtoReader) throws(OTLPDecodingError) -> Label {
        var l = Label("", "")
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: l.name = try r.readString(in: "Label")
            case 2 << 3 | 2: l.value = try r.readString(in: "Label")
            default: try r.skip(tag: tag, in: "Label")
            }
        }
        return l
    }
}
