import SextantModel

// metrics.proto in the OTLP JSON encoding.
extension OTLPJSON {
    // MARK: Decoding

    static func decodeMetricsData(_ r: inout JSONReader, _ rejections: inout Rejections) throws(OTLPDecodingError) -> MetricsData {
        var data = MetricsData()
        var metricIndex = 0
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            guard key.is("resourceMetrics", or: "resource_metrics") else {
                try r.skipValue()
                continue
            }
            var array = try r.beginArray()
            while try r.nextElement(&array) {
                var rm = ResourceMetrics()
                var rmObject = try r.beginObject()
                while let k = try r.nextKey(&rmObject) {
                    if try r.consumeNull() { continue }
                    if k.is("resource") {
                        rm.resource = try decodeResource(&r)
                    } else if k.is("scopeMetrics", or: "scope_metrics") {
                        var smArray = try r.beginArray()
                        while try r.nextElement(&smArray) {
                            var sm = ScopeMetrics()
                            var smObject = try r.beginObject()
                            while let sk = try r.nextKey(&smObject) {
                                if try r.consumeNull() { continue }
                                if sk.is("scope") {
                                    sm.scope = try decodeScope(&r)
                                } else if sk.is("metrics") {
                                    var metrics = try r.beginArray()
                                    while try r.nextElement(&metrics) {
                                        if let metric = try decodeMetric(&r, index: metricIndex, &rejections) {
                                            sm.metrics.append(metric)
                                        }
                                        metricIndex += 1
                                    }
                                } else if sk.is("schemaUrl", or: "schema_url") {
                                    sm.schemaURL = try r.readString()
                                } else {
                                    try r.skipValue()
                                }
                            }
                            rm.scopeMetrics.append(sm)
                        }
                    } else if k.is("schemaUrl", or: "schema_url") {
                        rm.schemaURL = try r.readString()
                    } else {
                        try r.skipValue()
                    }
                }
                data.resourceMetrics.append(rm)
            }
        }
        return data
    }

    static func decodePoints<Point>(
        _ r: inout JSONReader, _ rejected: inout PointRejections,
        _ decodePoint: (inout JSONReader, inout String?) throws(OTLPDecodingError) -> Point
    ) throws(OTLPDecodingError) -> PointsMessage<Point> {
        var body = PointsMessage<Point>()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("dataPoints", or: "data_points") {
                var array = try r.beginArray()
                var index = 0
                while try r.nextElement(&array) {
                    var problem: String?
                    let point = try decodePoint(&r, &problem)
                    if let problem {
                        rejected.note(problem, index: index)
                    } else {
                        body.points.append(point)
                    }
                    index += 1
                }
            } else if key.is("aggregationTemporality", or: "aggregation_temporality") {
                body.temporality = AggregationTemporality(rawValue: try r.readEnum(aggregationTemporality))
            } else if key.is("isMonotonic", or: "is_monotonic") {
                body.isMonotonic = try r.readBool()
            } else {
                try r.skipValue()
            }
        }
        return body
    }

    static func decodeMetric(
        _ r: inout JSONReader, index: Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> Metric? {
        var metric = Metric(name: "", data: .empty)
        var rejected = PointRejections()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("name") {
                metric.name = try r.readString()
            } else if key.is("description") {
                metric.description = try r.readString()
            } else if key.is("unit") {
                metric.unit = try r.readString()
            } else if key.is("gauge") {
                metric.data = .gauge(try decodePoints(&r, &rejected, decodeNumberDataPoint).points)
            } else if key.is("sum") {
                let body = try decodePoints(&r, &rejected, decodeNumberDataPoint)
                metric.data = .sum(body.points, temporality: body.temporality, isMonotonic: body.isMonotonic)
            } else if key.is("histogram") {
                let body = try decodePoints(&r, &rejected, decodeHistogramDataPoint)
                metric.data = .histogram(body.points, temporality: body.temporality)
            } else if key.is("exponentialHistogram", or: "exponential_histogram") {
                let body = try decodePoints(&r, &rejected, decodeExponentialHistogramDataPoint)
                metric.data = .exponentialHistogram(body.points, temporality: body.temporality)
            } else if key.is("summary") {
                metric.data = .summary(try decodePoints(&r, &rejected, decodeSummaryDataPoint).points)
            } else if key.is("metadata") {
                metric.metadata = try decodeKeyValues(&r)
            } else {
                try r.skipValue()
            }
        }
        return rejected.finish(metric, index: index, &rejections)
    }

    static func decodeNumberDataPoint(_ r: inout JSONReader, _ problem: inout String?) throws(OTLPDecodingError) -> NumberDataPoint {
        var point = NumberDataPoint()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("attributes") {
                point.attributes = try decodeKeyValues(&r)
            } else if key.is("startTimeUnixNano", or: "start_time_unix_nano") {
                point.startTimeUnixNano = try r.readUInt64()
            } else if key.is("timeUnixNano", or: "time_unix_nano") {
                point.timeUnixNano = try r.readUInt64()
            } else if key.is("asDouble", or: "as_double") {
                point.value = .double(try r.readDouble())
            } else if key.is("asInt", or: "as_int") {
                point.value = .int(try r.readInt64())
            } else if key.is("exemplars") {
                point.exemplars = try decodeExemplars(&r, &problem)
            } else if key.is("flags") {
                point.flags = try r.readUInt32()
            } else {
                try r.skipValue()
            }
        }
        return point
    }

    static func decodeHistogramDataPoint(_ r: inout JSONReader, _ problem: inout String?) throws(OTLPDecodingError) -> HistogramDataPoint {
        var point = HistogramDataPoint()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("attributes") {
                point.attributes = try decodeKeyValues(&r)
            } else if key.is("startTimeUnixNano", or: "start_time_unix_nano") {
                point.startTimeUnixNano = try r.readUInt64()
            } else if key.is("timeUnixNano", or: "time_unix_nano") {
                point.timeUnixNano = try r.readUInt64()
            } else if key.is("count") {
                point.count = try r.readUInt64()
            } else if key.is("sum") {
                point.sum = try r.readDouble()
            } else if key.is("bucketCounts", or: "bucket_counts") {
                point.bucketCounts = try decodeUInt64Array(&r)
            } else if key.is("explicitBounds", or: "explicit_bounds") {
                var array = try r.beginArray()
                while try r.nextElement(&array) { point.explicitBounds.append(try r.readDouble()) }
            } else if key.is("exemplars") {
                point.exemplars = try decodeExemplars(&r, &problem)
            } else if key.is("flags") {
                point.flags = try r.readUInt32()
            } else if key.is("min") {
                point.min = try r.readDouble()
            } else if key.is("max") {
                point.max = try r.readDouble()
            } else {
                try r.skipValue()
            }
        }
        return point
    }

    static func decodeExponentialHistogramDataPoint(
        _ r: inout JSONReader, _ problem: inout String?
    ) throws(OTLPDecodingError) -> ExponentialHistogramDataPoint {
        var point = ExponentialHistogramDataPoint()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("attributes") {
                point.attributes = try decodeKeyValues(&r)
            } else if key.is("startTimeUnixNano", or: "start_time_unix_nano") {
                point.startTimeUnixNano = try r.readUInt64()
            } else if key.is("timeUnixNano", or: "time_unix_nano") {
                point.timeUnixNano = try r.readUInt64()
            } else if key.is("count") {
                point.count = try r.readUInt64()
            } else if key.is("sum") {
                point.sum = try r.readDouble()
            } else if key.is("scale") {
                point.scale = try r.readInt32()
            } else if key.is("zeroCount", or: "zero_count") {
                point.zeroCount = try r.readUInt64()
            } else if key.is("positive") {
                point.positive = try decodeBuckets(&r)
            } else if key.is("negative") {
                point.negative = try decodeBuckets(&r)
            } else if key.is("flags") {
                point.flags = try r.readUInt32()
            } else if key.is("exemplars") {
                point.exemplars = try decodeExemplars(&r, &problem)
            } else if key.is("min") {
                point.min = try r.readDouble()
            } else if key.is("max") {
                point.max = try r.readDouble()
            } else if key.is("zeroThreshold", or: "zero_threshold") {
                point.zeroThreshold = try r.readDouble()
            } else {
                try r.skipValue()
            }
        }
        return point
    }

    static func decodeBuckets(_ r: inout JSONReader) throws(OTLPDecodingError) -> ExponentialHistogramDataPoint.Buckets {
        var buckets = ExponentialHistogramDataPoint.Buckets()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("offset") {
                buckets.offset = try r.readInt32()
            } else if key.is("bucketCounts", or: "bucket_counts") {
                buckets.bucketCounts = try decodeUInt64Array(&r)
            } else {
                try r.skipValue()
            }
        }
        return buckets
    }

    static func decodeSummaryDataPoint(_ r: inout JSONReader, _ problem: inout String?) throws(OTLPDecodingError) -> SummaryDataPoint {
        var point = SummaryDataPoint()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("attributes") {
                point.attributes = try decodeKeyValues(&r)
            } else if key.is("startTimeUnixNano", or: "start_time_unix_nano") {
                point.startTimeUnixNano = try r.readUInt64()
            } else if key.is("timeUnixNano", or: "time_unix_nano") {
                point.timeUnixNano = try r.readUInt64()
            } else if key.is("count") {
                point.count = try r.readUInt64()
            } else if key.is("sum") {
                point.sum = try r.readDouble()
            } else if key.is("quantileValues", or: "quantile_values") {
                var array = try r.beginArray()
                while try r.nextElement(&array) {
                    var q = SummaryDataPoint.ValueAtQuantile(quantile: 0, value: 0)
                    var qObject = try r.beginObject()
                    while let k = try r.nextKey(&qObject) {
                        if try r.consumeNull() { continue }
                        if k.is("quantile") {
                            q.quantile = try r.readDouble()
                        } else if k.is("value") {
                            q.value = try r.readDouble()
                        } else {
                            try r.skipValue()
                        }
                    }
                    point.quantileValues.append(q)
                }
            } else if key.is("flags") {
                point.flags = try r.readUInt32()
            } else {
                try r.skipValue()
            }
        }
        return point
    }

    static func decodeExemplars(_ r: inout JSONReader, _ problem: inout String?) throws(OTLPDecodingError) -> [Exemplar] {
        var exemplars: [Exemplar] = []
        var array = try r.beginArray()
        while try r.nextElement(&array) {
            var exemplar = Exemplar()
            var traceID = WireID()
            var spanID = WireID()
            var object = try r.beginObject()
            while let key = try r.nextKey(&object) {
                if try r.consumeNull() { continue }
                if key.is("filteredAttributes", or: "filtered_attributes") {
                    exemplar.filteredAttributes = try decodeKeyValues(&r)
                } else if key.is("timeUnixNano", or: "time_unix_nano") {
                    exemplar.timeUnixNano = try r.readUInt64()
                } else if key.is("asDouble", or: "as_double") {
                    exemplar.value = .double(try r.readDouble())
                } else if key.is("asInt", or: "as_int") {
                    exemplar.value = .int(try r.readInt64())
                } else if key.is("spanId", or: "span_id") {
                    spanID = try r.readID()
                } else if key.is("traceId", or: "trace_id") {
                    traceID = try r.readID()
                } else {
                    try r.skipValue()
                }
            }
            if let idProblem = IDRules.apply(traceID, spanID, to: &exemplar), problem == nil {
                problem = "exemplar \(exemplars.count): \(idProblem)"
            }
            exemplars.append(exemplar)
        }
        return exemplars
    }

    static func decodeUInt64Array(_ r: inout JSONReader) throws(OTLPDecodingError) -> [UInt64] {
        var values: [UInt64] = []
        var array = try r.beginArray()
        while try r.nextElement(&array) { values.append(try r.readUInt64()) }
        return values
    }

    static func aggregationTemporality(_ name: String) -> Int32? {
        switch name {
        case "AGGREGATION_TEMPORALITY_UNSPECIFIED": return 0
        case "AGGREGATION_TEMPORALITY_DELTA": return 1
        case "AGGREGATION_TEMPORALITY_CUMULATIVE": return 2
        default: return nil
        }
    }

    // MARK: Encoding (members in field-number order)

    static func encodeMetricsData(_ data: MetricsData, _ w: inout JSONWriter) {
        w.beginObject()
        if !data.resourceMetrics.isEmpty {
            w.key("resourceMetrics")
            w.beginArray()
            for rm in data.resourceMetrics {
                w.element()
                w.beginObject()
                encodeResourceField(rm.resource, &w)
                if !rm.scopeMetrics.isEmpty {
                    w.key("scopeMetrics")
                    w.beginArray()
                    for sm in rm.scopeMetrics {
                        w.element()
                        w.beginObject()
                        encodeScopeField(sm.scope, &w)
                        if !sm.metrics.isEmpty {
                            w.key("metrics")
                            w.beginArray()
                            for metric in sm.metrics {
                                w.element()
                                encodeMetric(metric, &w)
                            }
                            w.endArray()
                        }
                        w.stringField("schemaUrl", sm.schemaURL)
                        w.endObject()
                    }
                    w.endArray()
                }
                w.stringField("schemaUrl", rm.schemaURL)
                w.endObject()
            }
            w.endArray()
        }
        w.endObject()
    }

    static func encodeMetric(_ metric: Metric, _ w: inout JSONWriter) {
        w.beginObject()
        w.stringField("name", metric.name)
        w.stringField("description", metric.description)
        w.stringField("unit", metric.unit)
        switch metric.data {
        case .gauge(let points):
            w.key("gauge")
            w.beginObject()
            encodePoints(points, &w, encodeNumberDataPoint)
            w.endObject()
        case .sum(let points, let temporality, let monotonic):
            w.key("sum")
            w.beginObject()
            encodePoints(points, &w, encodeNumberDataPoint)
            w.int32Field("aggregationTemporality", temporality.rawValue)
            w.boolField("isMonotonic", monotonic)
            w.endObject()
        case .histogram(let points, let temporality):
            w.key("histogram")
            w.beginObject()
            encodePoints(points, &w, encodeHistogramDataPoint)
            w.int32Field("aggregationTemporality", temporality.rawValue)
            w.endObject()
        case .exponentialHistogram(let points, let temporality):
            w.key("exponentialHistogram")
            w.beginObject()
            encodePoints(points, &w, encodeExponentialHistogramDataPoint)
            w.int32Field("aggregationTemporality", temporality.rawValue)
            w.endObject()
        case .summary(let points):
            w.key("summary")
            w.beginObject()
            encodePoints(points, &w, encodeSummaryDataPoint)
            w.endObject()
        case .empty:
            break
        }
        encodeKeyValuesField("metadata", metric.metadata, &w)
        w.endObject()
    }

    static func encodePoints<Point>(_ points: [Point], _ w: inout JSONWriter, _ encode: (Point, inout JSONWriter) -> Void) {
        guard !points.isEmpty else { return }
        w.key("dataPoints")
        w.beginArray()
        for p in points {
            w.element()
            encode(p, &w)
        }
        w.endArray()
    }

    static func encodeNumberDataPoint(_ p: NumberDataPoint, _ w: inout JSONWriter) {
        w.beginObject()
        w.uint64Field("startTimeUnixNano", p.startTimeUnixNano)
        w.uint64Field("timeUnixNano", p.timeUnixNano)
        if case .double(let d) = p.value {
            w.key("asDouble")
            w.double(d)
        }
        encodeExemplars(p.exemplars, &w)
        if case .int(let i) = p.value {
            w.key("asInt")
            w.quoted(i)
        }
        encodeKeyValuesField("attributes", p.attributes, &w)
        w.int32Field("flags", p.flags)
        w.endObject()
    }

    static func encodeHistogramDataPoint(_ p: HistogramDataPoint, _ w: inout JSONWriter) {
        w.beginObject()
        w.uint64Field("startTimeUnixNano", p.startTimeUnixNano)
        w.uint64Field("timeUnixNano", p.timeUnixNano)
        w.uint64Field("count", p.count)
        w.presentDoubleField("sum", p.sum)
        encodeUInt64Array("bucketCounts", p.bucketCounts, &w)
        if !p.explicitBounds.isEmpty {
            w.key("explicitBounds")
            w.beginArray()
            for b in p.explicitBounds {
                w.element()
                w.double(b)
            }
            w.endArray()
        }
        encodeExemplars(p.exemplars, &w)
        encodeKeyValuesField("attributes", p.attributes, &w)
        w.int32Field("flags", p.flags)
        w.presentDoubleField("min", p.min)
        w.presentDoubleField("max", p.max)
        w.endObject()
    }

    static func encodeExponentialHistogramDataPoint(_ p: ExponentialHistogramDataPoint, _ w: inout JSONWriter) {
        w.beginObject()
        encodeKeyValuesField("attributes", p.attributes, &w)
        w.uint64Field("startTimeUnixNano", p.startTimeUnixNano)
        w.uint64Field("timeUnixNano", p.timeUnixNano)
        w.uint64Field("count", p.count)
        w.presentDoubleField("sum", p.sum)
        w.int32Field("scale", p.scale)
        w.uint64Field("zeroCount", p.zeroCount)
        encodeBuckets("positive", p.positive, &w)
        encodeBuckets("negative", p.negative, &w)
        w.int32Field("flags", p.flags)
        encodeExemplars(p.exemplars, &w)
        w.presentDoubleField("min", p.min)
        w.presentDoubleField("max", p.max)
        w.doubleField("zeroThreshold", p.zeroThreshold)
        w.endObject()
    }

    static func encodeBuckets(_ name: StaticString, _ b: ExponentialHistogramDataPoint.Buckets, _ w: inout JSONWriter) {
        guard b.offset != 0 || !b.bucketCounts.isEmpty else { return }
        w.key(name)
        w.beginObject()
        w.int32Field("offset", b.offset)
        encodeUInt64Array("bucketCounts", b.bucketCounts, &w)
        w.endObject()
    }

    static func encodeSummaryDataPoint(_ p: SummaryDataPoint, _ w: inout JSONWriter) {
        w.beginObject()
        w.uint64Field("startTimeUnixNano", p.startTimeUnixNano)
        w.uint64Field("timeUnixNano", p.timeUnixNano)
        w.uint64Field("count", p.count)
        w.doubleField("sum", p.sum)
        if !p.quantileValues.isEmpty {
            w.key("quantileValues")
            w.beginArray()
            for q in p.quantileValues {
                w.element()
                w.beginObject()
                w.doubleField("quantile", q.quantile)
                w.doubleField("value", q.value)
                w.endObject()
            }
            w.endArray()
        }
        encodeKeyValuesField("attributes", p.attributes, &w)
        w.int32Field("flags", p.flags)
        w.endObject()
    }

    static func encodeExemplars(_ exemplars: [Exemplar], _ w: inout JSONWriter) {
        guard !exemplars.isEmpty else { return }
        w.key("exemplars")
        w.beginArray()
        for e in exemplars {
            w.element()
            w.beginObject()
            w.uint64Field("timeUnixNano", e.timeUnixNano)
            if case .double(let d) = e.value {
                w.key("asDouble")
                w.double(d)
            }
            if let spanID = e.spanID {
                w.key("spanId")
                w.spanID(spanID)
            }
            if let traceID = e.traceID {
                w.key("traceId")
                w.traceID(traceID)
            }
            if case .int(let i) = e.value {
                w.key("asInt")
                w.quoted(i)
            }
            encodeKeyValuesField("filteredAttributes", e.filteredAttributes, &w)
            w.endObject()
        }
        w.endArray()
    }

    static func encodeUInt64Array(_ name: StaticString, _ values: [UInt64], _ w: inout JSONWriter) {
        guard !values.isEmpty else { return }
        w.key(name)
        w.beginArray()
        for v in values {
            w.element()
            w.quoted(v)
        }
        w.endArray()
    }
}
