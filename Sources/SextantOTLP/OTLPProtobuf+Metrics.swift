import SextantModel

// metrics.proto: MetricsData (= ExportMetricsServiceRequest) down to the five point kinds and Exemplar.
extension OTLPProtobuf {
    // MARK: Decoding

    static func decodeMetricsData(_ r: inout ProtoReader, _ rejections: inout Rejections) throws(OTLPDecodingError) -> MetricsData {
        var data = MetricsData()
        var metricIndex = 0
        while r.hasMore {
            let tag = try r.readTag()
            if tag == 1 << 3 | 2 {
                var m = try r.readMessage()
                data.resourceMetrics.append(try decodeResourceMetrics(&m, &metricIndex, &rejections))
            } else {
                try r.skip(tag: tag, in: "ExportMetricsServiceRequest")
            }
        }
        return data
    }

    static func decodeResourceMetrics(
        _ r: inout ProtoReader, _ metricIndex: inout Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> ResourceMetrics {
        var rm = ResourceMetrics()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var m = try r.readMessage()
                rm.resource = try decodeResource(&m)
            case 2 << 3 | 2:
                var m = try r.readMessage()
                rm.scopeMetrics.append(try decodeScopeMetrics(&m, &metricIndex, &rejections))
            case 3 << 3 | 2: rm.schemaURL = try r.readString(in: "ResourceMetrics")
            default: try r.skip(tag: tag, in: "ResourceMetrics")
            }
        }
        return rm
    }

    static func decodeScopeMetrics(
        _ r: inout ProtoReader, _ metricIndex: inout Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> ScopeMetrics {
        var sm = ScopeMetrics()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var m = try r.readMessage()
                sm.scope = try decodeScope(&m)
            case 2 << 3 | 2:
                var m = try r.readMessage()
                if let metric = try decodeMetric(&m, index: metricIndex, &rejections) {
                    sm.metrics.append(metric)
                }
                metricIndex += 1
            case 3 << 3 | 2: sm.schemaURL = try r.readString(in: "ScopeMetrics")
            default: try r.skip(tag: tag, in: "ScopeMetrics")
            }
        }
        return sm
    }

    /// Decodes a metric; `nil` when it has no name (its points are counted as rejected). Points
    /// with malformed exemplar IDs are dropped and counted.
    static func decodeMetric(
        _ r: inout ProtoReader, index: Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> Metric? {
        var metric = Metric(name: "", data: .empty)
        var rejected = PointRejections()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: metric.name = try r.readString(in: "Metric")
            case 2 << 3 | 2: metric.description = try r.readString(in: "Metric")
            case 3 << 3 | 2: metric.unit = try r.readString(in: "Metric")
            case 5 << 3 | 2:
                var m = try r.readMessage()
                metric.data = .gauge(try decodePoints(&m, "Gauge", &rejected, decodeNumberDataPoint).points)
            case 7 << 3 | 2:
                var m = try r.readMessage()
                let body = try decodePoints(&m, "Sum", &rejected, decodeNumberDataPoint)
                metric.data = .sum(body.points, temporality: body.temporality, isMonotonic: body.isMonotonic)
            case 9 << 3 | 2:
                var m = try r.readMessage()
                let body = try decodePoints(&m, "Histogram", &rejected, decodeHistogramDataPoint)
                metric.data = .histogram(body.points, temporality: body.temporality)
            case 10 << 3 | 2:
                var m = try r.readMessage()
                let body = try decodePoints(&m, "ExponentialHistogram", &rejected, decodeExponentialHistogramDataPoint)
                metric.data = .exponentialHistogram(body.points, temporality: body.temporality)
            case 11 << 3 | 2:
                var m = try r.readMessage()
                metric.data = .summary(try decodePoints(&m, "Summary", &rejected, decodeSummaryDataPoint).points)
            case 12 << 3 | 2: try appendKeyValue(&r, to: &metric.metadata)
            default: try r.skip(tag: tag, in: "Metric")
            }
        }
        return rejected.finish(metric, index: index, &rejections)
    }

    /// Decodes a Gauge, Sum, Histogram, ExponentialHistogram or Summary message: `data_points` (1)
    /// and, where the message has them, `aggregation_temporality` (2) and `is_monotonic` (3).
    static func decodePoints<Point>(
        _ r: inout ProtoReader, _ message: StaticString, _ rejected: inout PointRejections,
        _ decodePoint: (inout ProtoReader, inout String?) throws(OTLPDecodingError) -> Point
    ) throws(OTLPDecodingError) -> PointsMessage<Point> {
        var body = PointsMessage<Point>()
        var index = 0
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var p = try r.readMessage()
                var problem: String?
                let point = try decodePoint(&p, &problem)
                if let problem {
                    rejected.note(problem, index: index)
                } else {
                    body.points.append(point)
                }
                index += 1
            case 2 << 3 | 0: body.temporality = AggregationTemporality(rawValue: try r.readInt32())
            case 3 << 3 | 0: body.isMonotonic = try r.readVarint() != 0
            default: try r.skip(tag: tag, in: message)
            }
        }
        return body
    }

    static func decodeNumberDataPoint(_ r: inout ProtoReader, _ problem: inout String?) throws(OTLPDecodingError) -> NumberDataPoint {
        var point = NumberDataPoint()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 2 << 3 | 1: point.startTimeUnixNano = try r.readFixed64()
            case 3 << 3 | 1: point.timeUnixNano = try r.readFixed64()
            case 4 << 3 | 1: point.value = .double(try r.readDouble())
            case 5 << 3 | 2: try appendExemplar(&r, to: &point.exemplars, &problem)
            case 6 << 3 | 1: point.value = .int(Int64(bitPattern: try r.readFixed64()))
            case 7 << 3 | 2: try appendKeyValue(&r, to: &point.attributes)
            case 8 << 3 | 0: point.flags = try r.readUInt32()
            default: try r.skip(tag: tag, in: "NumberDataPoint")
            }
        }
        return point
    }

    static func decodeHistogramDataPoint(_ r: inout ProtoReader, _ problem: inout String?) throws(OTLPDecodingError) -> HistogramDataPoint {
        var point = HistogramDataPoint()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 2 << 3 | 1: point.startTimeUnixNano = try r.readFixed64()
            case 3 << 3 | 1: point.timeUnixNano = try r.readFixed64()
            case 4 << 3 | 1: point.count = try r.readFixed64()
            case 5 << 3 | 1: point.sum = try r.readDouble()
            case 6 << 3 | 2, 6 << 3 | 1: try r.readRepeatedFixed64(wireType: tag & 7, into: &point.bucketCounts)
            case 7 << 3 | 2, 7 << 3 | 1: try r.readRepeatedDouble(wireType: tag & 7, into: &point.explicitBounds)
            case 8 << 3 | 2: try appendExemplar(&r, to: &point.exemplars, &problem)
            case 9 << 3 | 2: try appendKeyValue(&r, to: &point.attributes)
            case 10 << 3 | 0: point.flags = try r.readUInt32()
            case 11 << 3 | 1: point.min = try r.readDouble()
            case 12 << 3 | 1: point.max = try r.readDouble()
            default: try r.skip(tag: tag, in: "HistogramDataPoint")
            }
        }
        return point
    }

    static func decodeExponentialHistogramDataPoint(
        _ r: inout ProtoReader, _ problem: inout String?
    ) throws(OTLPDecodingError) -> ExponentialHistogramDataPoint {
        var point = ExponentialHistogramDataPoint()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2: try appendKeyValue(&r, to: &point.attributes)
            case 2 << 3 | 1: point.startTimeUnixNano = try r.readFixed64()
            case 3 << 3 | 1: point.timeUnixNano = try r.readFixed64()
            case 4 << 3 | 1: point.count = try r.readFixed64()
            case 5 << 3 | 1: point.sum = try r.readDouble()
            case 6 << 3 | 0: point.scale = try r.readSInt32()
            case 7 << 3 | 1: point.zeroCount = try r.readFixed64()
            case 8 << 3 | 2:
                var m = try r.readMessage()
                point.positive = try decodeBuckets(&m)
            case 9 << 3 | 2:
                var m = try r.readMessage()
                point.negative = try decodeBuckets(&m)
            case 10 << 3 | 0: point.flags = try r.readUInt32()
            case 11 << 3 | 2: try appendExemplar(&r, to: &point.exemplars, &problem)
            case 12 << 3 | 1: point.min = try r.readDouble()
            case 13 << 3 | 1: point.max = try r.readDouble()
            case 14 << 3 | 1: point.zeroThreshold = try r.readDouble()
            default: try r.skip(tag: tag, in: "ExponentialHistogramDataPoint")
            }
        }
        return point
    }

    static func decodeBuckets(_ r: inout ProtoReader) throws(OTLPDecodingError) -> ExponentialHistogramDataPoint.Buckets {
        var buckets = ExponentialHistogramDataPoint.Buckets()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 0: buckets.offset = try r.readSInt32()
            case 2 << 3 | 2, 2 << 3 | 0: try r.readRepeatedVarint(wireType: tag & 7, into: &buckets.bucketCounts)
            default: try r.skip(tag: tag, in: "ExponentialHistogramDataPoint.Buckets")
            }
        }
        return buckets
    }

    /// Summary points carry no exemplars, so `problem` is never set.
    static func decodeSummaryDataPoint(_ r: inout ProtoReader, _ problem: inout String?) throws(OTLPDecodingError) -> SummaryDataPoint {
        var point = SummaryDataPoint()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 2 << 3 | 1: point.startTimeUnixNano = try r.readFixed64()
            case 3 << 3 | 1: point.timeUnixNano = try r.readFixed64()
            case 4 << 3 | 1: point.count = try r.readFixed64()
            case 5 << 3 | 1: point.sum = try r.readDouble()
            case 6 << 3 | 2:
                var m = try r.readMessage()
                var q = SummaryDataPoint.ValueAtQuantile(quantile: 0, value: 0)
                while m.hasMore {
                    let t = try m.readTag()
                    switch t {
                    case 1 << 3 | 1: q.quantile = try m.readDouble()
                    case 2 << 3 | 1: q.value = try m.readDouble()
                    default: try m.skip(tag: t, in: "SummaryDataPoint.ValueAtQuantile")
                    }
                }
                point.quantileValues.append(q)
            case 7 << 3 | 2: try appendKeyValue(&r, to: &point.attributes)
            case 8 << 3 | 0: point.flags = try r.readUInt32()
            default: try r.skip(tag: tag, in: "SummaryDataPoint")
            }
        }
        return point
    }

    /// Appends an exemplar; malformed IDs set `problem` (the enclosing point is then dropped).
    static func appendExemplar(
        _ r: inout ProtoReader, to exemplars: inout [Exemplar], _ problem: inout String?
    ) throws(OTLPDecodingError) {
        var m = try r.readMessage()
        var exemplar = Exemplar()
        var traceID = WireID()
        var spanID = WireID()
        while m.hasMore {
            let tag = try m.readTag()
            switch tag {
            case 2 << 3 | 1: exemplar.timeUnixNano = try m.readFixed64()
            case 3 << 3 | 1: exemplar.value = .double(try m.readDouble())
            case 4 << 3 | 2: spanID = try m.readID()
            case 5 << 3 | 2: traceID = try m.readID()
            case 6 << 3 | 1: exemplar.value = .int(Int64(bitPattern: try m.readFixed64()))
            case 7 << 3 | 2: try appendKeyValue(&m, to: &exemplar.filteredAttributes)
            default: try m.skip(tag: tag, in: "Exemplar")
            }
        }
        if let idProblem = IDRules.apply(traceID, spanID, to: &exemplar), problem == nil {
            problem = "exemplar \(exemplars.count): \(idProblem)"
        }
        exemplars.append(exemplar)
    }

    // MARK: Encoding (fields in descending order; see ProtoWriter)

    static func encodeMetricsData(_ data: MetricsData, _ w: inout ProtoWriter) {
        for rm in data.resourceMetrics.reversed() {
            let mark = w.count
            w.stringField(3, rm.schemaURL)
            for sm in rm.scopeMetrics.reversed() {
                let smMark = w.count
                w.stringField(3, sm.schemaURL)
                for metric in sm.metrics.reversed() {
                    let metricMark = w.count
                    encodeMetric(metric, &w)
                    w.lengthPrefix(2, since: metricMark)
                }
                encodeScope(1, sm.scope, &w)
                w.lengthPrefix(2, since: smMark)
            }
            encodeResource(1, rm.resource, &w)
            w.lengthPrefix(1, since: mark)
        }
    }

    static func encodeMetric(_ metric: Metric, _ w: inout ProtoWriter) {
        encodeKeyValues(12, metric.metadata, &w)
        let mark = w.count
        switch metric.data {
        case .gauge(let points):
            for p in points.reversed() { encodeNumberDataPoint(p, &w) }
            w.lengthPrefix(5, since: mark)
        case .sum(let points, let temporality, let monotonic):
            w.boolField(3, monotonic)
            w.int32Field(2, temporality.rawValue)
            for p in points.reversed() { encodeNumberDataPoint(p, &w) }
            w.lengthPrefix(7, since: mark)
        case .histogram(let points, let temporality):
            w.int32Field(2, temporality.rawValue)
            for p in points.reversed() { encodeHistogramDataPoint(p, &w) }
            w.lengthPrefix(9, since: mark)
        case .exponentialHistogram(let points, let temporality):
            w.int32Field(2, temporality.rawValue)
            for p in points.reversed() { encodeExponentialHistogramDataPoint(p, &w) }
            w.lengthPrefix(10, since: mark)
        case .summary(let points):
            for p in points.reversed() { encodeSummaryDataPoint(p, &w) }
            w.lengthPrefix(11, since: mark)
        case .empty:
            break
        }
        w.stringField(3, metric.unit)
        w.stringField(2, metric.description)
        w.stringField(1, metric.name)
    }

    /// A `NumberDataPoint` as element 1 (`data_points`) of its Gauge or Sum.
    static func encodeNumberDataPoint(_ p: NumberDataPoint, _ w: inout ProtoWriter) {
        let mark = w.count
        w.uint32Field(8, p.flags)
        encodeKeyValues(7, p.attributes, &w)
        if case .int(let i) = p.value {
            w.fixed64(UInt64(bitPattern: i))
            w.tag(6, 1)
        }
        encodeExemplars(5, p.exemplars, &w)
        if case .double(let d) = p.value {
            w.fixed64(d.bitPattern)
            w.tag(4, 1)
        }
        w.fixed64Field(3, p.timeUnixNano)
        w.fixed64Field(2, p.startTimeUnixNano)
        w.lengthPrefix(1, since: mark)
    }

    static func encodeHistogramDataPoint(_ p: HistogramDataPoint, _ w: inout ProtoWriter) {
        let mark = w.count
        w.presentDoubleField(12, p.max)
        w.presentDoubleField(11, p.min)
        w.uint32Field(10, p.flags)
        encodeKeyValues(9, p.attributes, &w)
        encodeExemplars(8, p.exemplars, &w)
        w.packedDoubleField(7, p.explicitBounds)
        w.packedFixed64Field(6, p.bucketCounts)
        w.presentDoubleField(5, p.sum)
        w.fixed64Field(4, p.count)
        w.fixed64Field(3, p.timeUnixNano)
        w.fixed64Field(2, p.startTimeUnixNano)
        w.lengthPrefix(1, since: mark)
    }

    static func encodeExponentialHistogramDataPoint(_ p: ExponentialHistogramDataPoint, _ w: inout ProtoWriter) {
        let mark = w.count
        w.doubleField(14, p.zeroThreshold)
        w.presentDoubleField(13, p.max)
        w.presentDoubleField(12, p.min)
        encodeExemplars(11, p.exemplars, &w)
        w.uint32Field(10, p.flags)
        encodeBuckets(9, p.negative, &w)
        encodeBuckets(8, p.positive, &w)
        w.fixed64Field(7, p.zeroCount)
        w.sint32Field(6, p.scale)
        w.presentDoubleField(5, p.sum)
        w.fixed64Field(4, p.count)
        w.fixed64Field(3, p.timeUnixNano)
        w.fixed64Field(2, p.startTimeUnixNano)
        encodeKeyValues(1, p.attributes, &w)
        w.lengthPrefix(1, since: mark)
    }

    /// A `Buckets` message field; omitted when empty (the model cannot tell unset from empty).
    static func encodeBuckets(_ field: UInt64, _ b: ExponentialHistogramDataPoint.Buckets, _ w: inout ProtoWriter) {
        guard b.offset != 0 || !b.bucketCounts.isEmpty else { return }
        let mark = w.count
        w.packedVarintField(2, b.bucketCounts)
        w.sint32Field(1, b.offset)
        w.lengthPrefix(field, since: mark)
    }

    static func encodeSummaryDataPoint(_ p: SummaryDataPoint, _ w: inout ProtoWriter) {
        let mark = w.count
        w.uint32Field(8, p.flags)
        encodeKeyValues(7, p.attributes, &w)
        for q in p.quantileValues.reversed() {
            let qMark = w.count
            w.doubleField(2, q.value)
            w.doubleField(1, q.quantile)
            w.lengthPrefix(6, since: qMark)
        }
        w.doubleField(5, p.sum)
        w.fixed64Field(4, p.count)
        w.fixed64Field(3, p.timeUnixNano)
        w.fixed64Field(2, p.startTimeUnixNano)
        w.lengthPrefix(1, since: mark)
    }

    static func encodeExemplars(_ field: UInt64, _ exemplars: [Exemplar], _ w: inout ProtoWriter) {
        for e in exemplars.reversed() {
            let mark = w.count
            encodeKeyValues(7, e.filteredAttributes, &w)
            if case .int(let i) = e.value {
                w.fixed64(UInt64(bitPattern: i))
                w.tag(6, 1)
            }
            if let traceID = e.traceID { w.traceIDField(5, traceID) }
            if let spanID = e.spanID { w.spanIDField(4, spanID) }
            if case .double(let d) = e.value {
                w.fixed64(d.bitPattern)
                w.tag(3, 1)
            }
            w.fixed64Field(2, e.timeUnixNano)
            w.lengthPrefix(field, since: mark)
        }
    }
}
