import SextantModel
import SextantPrometheus
import SextantSnappy
import Testing

@Suite struct RemoteWriteCodecTests {
    /// `up{} 1 @1000` assembled by hand from prompb's field numbers.
    @Test func encodesTheWireFormat() {
        let req = RemoteWrite.WriteRequest(timeseries: [
            RemoteWrite.TimeSeries(labels: [.init("__name__", "up")], samples: [.init(value: 1, timestamp: 1000)])
        ])
        let want: [UInt8] =
            [0x0A, 30, 0x0A, 14, 0x0A, 8] + Array("__name__".utf8) + [0x12, 2] + Array("up".utf8)
            + [0x12, 12, 0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x10, 0xE8, 0x07]
        #expect(req.encode() == want)
        #expect(req.timeseries[0].encodedSize == want.count)
    }

    @Test func roundTripsEveryField() throws {
        let req = RemoteWrite.WriteRequest(
            timeseries: [
                RemoteWrite.TimeSeries(
                    labels: [.init("__name__", "x_bucket"), .init("le", "+Inf"), .init("ü", "ñ")],
                    samples: [.init(value: -0.0, timestamp: -5), .init(value: RemoteWrite.staleNaN, timestamp: 7), .init(value: 0, timestamp: 0)],
                    exemplars: [.init(labels: [.init("trace_id", "ab")], value: 2.5, timestamp: 9)]),
                RemoteWrite.TimeSeries(labels: [.init("__name__", "y")]),
            ],
            metadata: [.init(type: .histogram, familyName: "x", help: "h", unit: "seconds"), .init(type: .unknown, familyName: "z")])
        let bytes = req.encode()
        let back = try RemoteWrite.WriteRequest.decode(bytes)
        #expect(back == req)
        #expect(RemoteWrite.isStaleMarker(back.timeseries[0].samples[1].value))
        #expect(req.timeseries.map(\.encodedSize).reduce(0, +) == RemoteWrite.WriteRequest(timeseries: req.timeseries).encode().count)
    }

    @Test func decodeErrorsNameTheProblem() {
        func message(_ b: [UInt8]) -> String? {
            do {
                _ = try RemoteWrite.WriteRequest.decode(b)
                return nil
            } catch { return error.message }
        }
        #expect(message([0x0A, 5, 0x0A]) == "truncated length-delimited field 1: length 5 exceeds the 1 bytes left at offset 2")
        #expect(message([0x0A, 4, 0x0A, 4, 0x0A, 0]) == "truncated length-delimited field 1: length 4 exceeds the 2 bytes left at offset 4")
        #expect(message([0x0A, 4, 0x0A, 2, 0x12, 0xFF]) == "truncated varint at offset 5")
        #expect(message([0x0A, 5, 0x0A, 3, 0x0A, 1, 0xFF])?.hasPrefix("invalid UTF-8 in string field 1 of Label") == true)
        #expect(message([0x07]) == "invalid field tag 7 at offset 0")
    }

    @Test func splitsBySize() {
        let series = (0..<100).map { i in
            RemoteWrite.TimeSeries(labels: [.init("__name__", "m\(i)")], samples: [.init(value: Double(i), timestamp: 1)])
        }
        let req = RemoteWrite.WriteRequest(timeseries: series, metadata: [.init(type: .gauge, familyName: "m")])
        let parts = RemoteWrite.split(req, maxBytes: 300)
        #expect(parts.count > 1)
        #expect(parts.allSatisfy { $0.encode().count <= 300 })
        #expect(parts.flatMap(\.timeseries) == series)
        #expect(parts.flatMap(\.metadata) == req.metadata)
        // A series larger than the limit travels alone.
        #expect(RemoteWrite.split(req, maxBytes: 1).count == 101)
    }

    @Test func snappyFramedRoundTrip() throws {
        let req = RemoteWrite.convert([Fixtures.data()]).request
        let wire = Snappy.compress(req.encode())
        let back = try RemoteWrite.WriteRequest.decode(try Snappy.decompress(wire, maxLength: 1 << 20))
        #expect(back == req)
    }
}

@Suite struct RemoteWriteConversionTests {
    func labels(_ ts: RemoteWrite.TimeSeries) -> String { ts.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",") }

    /// The exporter encodes straight from the conversion: the same bytes as splitting the request and
    /// encoding each part, at every size limit (one request, several, one series per request).
    @Test func encodedRequestsMatchSplitThenEncode() {
        var options = RemoteWrite.ConversionOptions()
        options.externalLabels = [("cluster", "eu")]
        let c = RemoteWrite.convert([Fixtures.data(), Fixtures.data()], options: options)
        #expect(c.request.timeseries.allSatisfy { $0.samples.count == 2 })
        for maxBytes in [1, 100, 300, 1000, 1 << 20] {
            let want = RemoteWrite.split(c.request, maxBytes: maxBytes).map { $0.encode() }
            #expect(c.encodedRequests(maxBytes: maxBytes) == want, "maxBytes \(maxBytes)")
        }
        #expect(RemoteWrite.convert([]).encodedRequests(maxBytes: 100).isEmpty)
    }

    /// Series keep the order they first appear in; labels within a series are sorted, so a label that
    /// sorts before `__name__` (`Zone`) comes first.
    @Test func seriesInOrderOfFirstAppearanceWithSortedLabels() {
        let data = MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
            Metric(name: "b", data: .gauge([NumberDataPoint(attributes: [KeyValue("Zone", .string("1"))], timeUnixNano: 1_000_000, value: .int(1))])),
            Metric(name: "a", data: .gauge([NumberDataPoint(attributes: [KeyValue("Zone", .string("2"))], timeUnixNano: 1_000_000, value: .int(2))])),
            Metric(name: "a", data: .gauge([NumberDataPoint(timeUnixNano: 2_000_000, value: .int(3))])),
        ])])])
        let got = RemoteWrite.convert([data]).request.timeseries.map { labels($0) }
        #expect(got == ["Zone=1,__name__=b", "Zone=2,__name__=a", "__name__=a"])
    }

    /// `target_info.enabled: false` leaves out the series and its metadata, nothing else.
    @Test func targetInfoCanBeLeftOut() {
        var options = RemoteWrite.ConversionOptions()
        let with = RemoteWrite.convert([Fixtures.data()], options: options)
        options.targetInfo = false
        let without = RemoteWrite.convert([Fixtures.data()], options: options)
        #expect(with.request.timeseries.filter { $0.metricName != "target_info" } == without.request.timeseries)
        #expect(with.request.metadata.filter { $0.familyName != "target_info" } == without.request.metadata)
        #expect(with.points == without.points)
    }

    @Test func convertsEveryType() {
        var options = RemoteWrite.ConversionOptions()
        options.externalLabels = [("cluster", "eu"), ("job", "ignored")]
        let c = RemoteWrite.convert([Fixtures.data()], options: options)
        let ms: Int64 = 1_700_000_010_500
        let got = c.request.timeseries.map { "\(labels($0)) \($0.samples.map { "\($0.value)@\($0.timestamp)" }) ex=\($0.exemplars.count)" }
        // In the order of the fixture's metrics and of each point's lines.
        let want = [
            "__name__=http_server_requests_total,cluster=eu,code=200,instance=pod-1,job=checkout [\"40.0@\(ms)\"] ex=1",
            "__name__=queue_size_bytes,cluster=eu,instance=pod-1,job=checkout [\"3.5@\(ms)\"] ex=0",
            "__name__=http_server_duration_seconds_bucket,cluster=eu,instance=pod-1,job=checkout,le=0.1 [\"1.0@\(ms)\"] ex=0",
            "__name__=http_server_duration_seconds_bucket,cluster=eu,instance=pod-1,job=checkout,le=1 [\"4.0@\(ms)\"] ex=1",
            "__name__=http_server_duration_seconds_bucket,cluster=eu,instance=pod-1,job=checkout,le=+Inf [\"5.0@\(ms)\"] ex=0",
            "__name__=http_server_duration_seconds_sum,cluster=eu,instance=pod-1,job=checkout [\"1.25@\(ms)\"] ex=0",
            "__name__=http_server_duration_seconds_count,cluster=eu,instance=pod-1,job=checkout [\"5.0@\(ms)\"] ex=0",
            "__name__=rpc_latency_seconds,cluster=eu,instance=pod-1,job=checkout,quantile=0.5 [\"0.25@\(ms)\"] ex=0",
            "__name__=rpc_latency_seconds_sum,cluster=eu,instance=pod-1,job=checkout [\"2.0@\(ms)\"] ex=0",
            "__name__=rpc_latency_seconds_count,cluster=eu,instance=pod-1,job=checkout [\"4.0@\(ms)\"] ex=0",
            "__name__=target_info,cluster=eu,instance=pod-1,job=checkout,k8s_pod_name=checkout-abc [\"1.0@\(ms)\"] ex=0",
        ]
        #expect(got == want)
        #expect(c.points == 4)
        let ex = c.request.timeseries[3].exemplars[0]
        #expect(ex == .init(labels: [.init("trace_id", Fixtures.trace.hex), .init("span_id", "0000000000000def")], value: 0.5, timestamp: ms))
        #expect(c.request.metadata.map(\.familyName) == [
            "http_server_duration_seconds", "http_server_requests_total", "queue_size_bytes", "rpc_latency_seconds", "target_info",
        ])
        #expect(c.request.metadata[0] == .init(type: .histogram, familyName: "http_server_duration_seconds", help: "http.server.duration", unit: "seconds"))
    }

    @Test func samplesInTimeOrderWithStalenessAndSkips() {
        let points = [
            NumberDataPoint(timeUnixNano: 3_000_000, value: .int(3)), NumberDataPoint(timeUnixNano: 1_000_000, value: .int(1)),
            NumberDataPoint(timeUnixNano: 2_000_000, value: .int(0), flags: DataPointFlags.noRecordedValue),
        ]
        let data = MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
            Metric(name: "g", data: .gauge(points)),
            Metric(name: "d", data: .sum([NumberDataPoint(value: .int(1))], temporality: .delta, isMonotonic: true)),
            Metric(name: "e", data: .exponentialHistogram([ExponentialHistogramDataPoint(count: 1)], temporality: .cumulative)),
        ])])])
        let c = RemoteWrite.convert([data])
        #expect(c.request.timeseries.count == 1)
        let s = c.request.timeseries[0].samples
        #expect(s.map(\.timestamp) == [1, 2, 3])
        #expect(s[0].value == 1 && RemoteWrite.isStaleMarker(s[1].value) && s[2].value == 3)
        #expect(c.skipped.points == 2)
    }

    /// The same series in two batches becomes one series with both samples in time order; an attribute
    /// wins over an external label of the same name, and `le` over an attribute called `le`.
    @Test func seriesMergeAcrossBatchesAndLabelPrecedence() {
        func batch(_ t: UInt64, _ v: Int64) -> MetricsData {
            MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
                Metric(name: "g", data: .gauge([NumberDataPoint(attributes: [KeyValue("region", .string("eu"))], timeUnixNano: t, value: .int(v))])),
                Metric(name: "h", data: .histogram([HistogramDataPoint(
                    attributes: [KeyValue("le", .string("attr"))], timeUnixNano: t, count: 1, bucketCounts: [1, 0], explicitBounds: [2])],
                    temporality: .cumulative)),
            ])])])
        }
        var options = RemoteWrite.ConversionOptions()
        options.externalLabels = [("region", "us"), ("a", "first")]
        let batches = [batch(5_000_000, 2), batch(3_000_000, 1)]
        let c = RemoteWrite.convert(batches, options: options)
        let got = c.request.timeseries.map { "\(labels($0)) \($0.samples.map { "\($0.value)@\($0.timestamp)" })" }
        // The same with the labels of known points taken from a cache (the second pass knows them all,
        // and places `le` among the labels' encodings).
        let cache = RemoteWrite.LabelCache()
        for _ in 0..<2 { #expect(RemoteWrite.convert(batches, options: options, cache: cache).request == c.request) }
        #expect(got == [
            "__name__=g,a=first,region=eu [\"1.0@3\", \"2.0@5\"]",
            "__name__=h_bucket,a=first,le=2,region=us [\"1.0@3\", \"1.0@5\"]",
            "__name__=h_bucket,a=first,le=+Inf,region=us [\"1.0@3\", \"1.0@5\"]",
            "__name__=h_count,a=first,le=attr,region=us [\"1.0@3\", \"1.0@5\"]",
        ])
    }

    /// Lines are one series when their final labels are equal, however they got them: a bucket of a
    /// point with an attribute `le` (which the bucket's `le` replaces) and the same bucket of a point
    /// without it merge, while their `_count` lines (which keep the attribute) stay apart. Interleaved
    /// series keep the order of their first line, and a metric's points of one series merge too.
    @Test func seriesAreEqualLabelSetsWhateverTheirOrigin() {
        func histogram(_ attributes: [KeyValue], _ t: UInt64) -> Metric {
            Metric(name: "h", data: .histogram([HistogramDataPoint(
                attributes: attributes, timeUnixNano: t, count: 1, bucketCounts: [1, 0], explicitBounds: [2])], temporality: .cumulative))
        }
        let data = MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
            histogram([KeyValue("le", .string("attr"))], 3_000_000),
            Metric(name: "g", data: .gauge([
                NumberDataPoint(attributes: [KeyValue("k", .string("1"))], timeUnixNano: 2_000_000, value: .int(1)),
                NumberDataPoint(attributes: [KeyValue("k", .string("2"))], timeUnixNano: 2_000_000, value: .int(2)),
                NumberDataPoint(attributes: [KeyValue("k", .string("1"))], timeUnixNano: 1_000_000, value: .int(3)),
            ])),
            histogram([], 5_000_000),
        ])])])
        let got = RemoteWrite.convert([data]).request.timeseries.map { "\(labels($0)) \($0.samples.map { "\($0.value)@\($0.timestamp)" })" }
        let cache = RemoteWrite.LabelCache()
        for _ in 0..<2 { #expect(RemoteWrite.convert([data], cache: cache).request == RemoteWrite.convert([data]).request) }
        #expect(got == [
            "__name__=h_bucket,le=2 [\"1.0@3\", \"1.0@5\"]",
            "__name__=h_bucket,le=+Inf [\"1.0@3\", \"1.0@5\"]",
            "__name__=h_count,le=attr [\"1.0@3\"]",
            "__name__=g,k=1 [\"3.0@1\", \"1.0@2\"]",
            "__name__=g,k=2 [\"2.0@2\"]",
            "__name__=h_count [\"1.0@5\"]",
        ])
    }

    /// What the conversion keeps from one point to the next (attribute names by position, label
    /// encodings, `le` labels by line) is only reused when it is the same: points whose keys, values or
    /// bounds change get their own labels.
    @Test func pointsWithChangingKeysAndBounds() {
        let data = MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
            Metric(name: "g", data: .gauge([
                NumberDataPoint(attributes: [KeyValue("a", .string("1")), KeyValue("b.c", .string("2"))], timeUnixNano: 1_000_000, value: .int(1)),
                NumberDataPoint(attributes: [KeyValue("x-y", .string("1")), KeyValue("b.c", .string("3"))], timeUnixNano: 1_000_000, value: .int(2)),
                NumberDataPoint(attributes: [KeyValue("a", .string("1"))], timeUnixNano: 1_000_000, value: .int(3)),
            ])),
            Metric(name: "h", data: .histogram([
                HistogramDataPoint(timeUnixNano: 1_000_000, count: 2, bucketCounts: [1, 1], explicitBounds: [1]),
                HistogramDataPoint(
                    attributes: [KeyValue("k", .string("v"))], timeUnixNano: 1_000_000, count: 3, bucketCounts: [1, 1, 1], explicitBounds: [0.5, 2]),
            ], temporality: .cumulative)),
        ])])])
        let got = RemoteWrite.convert([data]).request.timeseries.map { "\(labels($0)) \($0.samples.map(\.value))" }
        #expect(got == [
            "__name__=g,a=1,b_c=2 [1.0]",
            "__name__=g,b_c=3,x_y=1 [2.0]",
            "__name__=g,a=1 [3.0]",
            "__name__=h_bucket,le=1 [1.0]",
            "__name__=h_bucket,le=+Inf [2.0]",
            "__name__=h_count [2.0]",
            "__name__=h_bucket,k=v,le=0.5 [1.0]",
            "__name__=h_bucket,k=v,le=2 [2.0]",
            "__name__=h_bucket,k=v,le=+Inf [3.0]",
            "__name__=h_count,k=v [3.0]",
        ])
    }

    @Test func receiverSideMapping() {
        let req = RemoteWrite.WriteRequest(
            timeseries: [
                .init(labels: [.init("__name__", "up"), .init("instance", "h:9090"), .init("job", "shop/prom")], samples: [.init(value: 1, timestamp: 5)]),
                .init(
                    labels: [.init("__name__", "reqs_total"), .init("code", "200"), .init("instance", "h:9090"), .init("job", "shop/prom")],
                    samples: [.init(value: 7, timestamp: 5), .init(value: RemoteWrite.staleNaN, timestamp: 6)]),
                .init(labels: [.init("code", "500")], samples: [.init(value: 1, timestamp: 5)]),
            ],
            metadata: [.init(type: .gauge, familyName: "up", help: "Up.")])
        let (data, points, rejected) = req.toMetrics()
        #expect(points == 3 && rejected == 1)
        let rm = data.resourceMetrics[0]
        #expect(rm.resource.attributes[key: "service.name"] == .string("prom"))
        #expect(rm.resource.attributes[key: "service.namespace"] == .string("shop"))
        #expect(rm.resource.attributes[key: "service.instance.id"] == .string("h:9090"))
        let ms = rm.scopeMetrics[0].metrics
        #expect(ms.map(\.name) == ["up", "reqs_total"])
        #expect(ms[0].description == "Up.")
        guard case .gauge(let up) = ms[0].data, case .sum(let reqs, .cumulative, true) = ms[1].data else {
            Issue.record("unexpected types \(ms.map(\.data.typeName))")
            return
        }
        #expect(up[0].timeUnixNano == 5_000_000 && up[0].value == .double(1))
        #expect(reqs[0].attributes[key: "code"] == .string("200"))
        #expect(reqs[1].flags == DataPointFlags.noRecordedValue)
    }
}

/// A deterministic mutation smoke test (the libFuzzer harness in `fuzz/` covers the other decoders):
/// corrupted Snappy blocks and WriteRequests either decode or throw, never trap or over-allocate,
/// and whatever decodes re-encodes to bytes that decode to the same request.
@Suite struct RemoteWriteMutationTests {
    @Test func mutatedInputsFailCleanly() throws {
        let request = RemoteWrite.convert([Fixtures.data()]).request
        let encoded = request.encode()
        let block = Snappy.compress(encoded + encoded)
        var x: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ n: Int) -> Int {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return Int(x % UInt64(n))
        }
        var decodedBlocks = 0
        var decodedRequests = 0
        for _ in 0..<3000 {
            var b = block
            var e = encoded
            for _ in 0...next(4) {
                b[next(b.count)] = UInt8(truncatingIfNeeded: next(256))
                e[next(e.count)] = UInt8(truncatingIfNeeded: next(256))
            }
            if next(4) == 0 { b.removeLast(next(b.count)) }
            if next(4) == 0 { e.removeLast(next(e.count)) }
            if let out = try? Snappy.decompress(b, maxLength: 1 << 20) {
                decodedBlocks += 1
                #expect(out.count == (try b.withUnsafeBytes { try Snappy.decompressedLength($0) }))
            }
            if let r = try? RemoteWrite.WriteRequest.decode(e) {
                decodedRequests += 1
                #expect(try RemoteWrite.WriteRequest.decode(r.encode()) == r)
            }
        }
        // Both outcomes occur: the mutations are neither all fatal nor all harmless.
        #expect(decodedBlocks > 0 && decodedBlocks < 3000)
        #expect(decodedRequests > 0 && decodedRequests < 3000)
    }
}

/// The conversion against a plain model of it, on random batches: every line of every point
/// (`PrometheusSamples.forEachPoint`) gets its labels the obvious way (the point's labels, external
/// labels it lacks, `__name__` and `le`/`quantile` over any label of that name), lines are grouped by
/// their label text in order of first appearance, and a series' samples are stably sorted by time.
/// The random attributes come from a few keys and values, so series repeat within a batch, across
/// batches and across resources, and keys such as `le`, `__name__`, `Zone` and `a.b` take part.
@Suite struct RemoteWriteConversionModelTests {
    struct Rng {
        var x: UInt64
        mutating func next(_ n: Int) -> Int {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return Int(x % UInt64(n))
        }
    }

    static func batch(_ r: inout Rng) -> MetricsData {
        let keys = ["a", "b.c", "le", "__name__", "Zone", "quantile", "z"]
        let values = ["1", "2", "x", ""]
        func attributes(_ r: inout Rng) -> [KeyValue] {
            var out: [KeyValue] = []
            for _ in 0..<r.next(4) {
                let k = keys[r.next(keys.count)]
                if !out.contains(where: { $0.key == k }) { out.append(KeyValue(k, .string(values[r.next(values.count)]))) }
            }
            return out
        }
        func time(_ r: inout Rng) -> UInt64 { UInt64(1 + r.next(4)) * 1_000_000 }
        var resources: [ResourceMetrics] = []
        for _ in 0..<(1 + r.next(3)) {
            var resource: [KeyValue] = [KeyValue("service.name", .string(["shop", "cart"][r.next(2)]))]
            if r.next(2) == 0 { resource.append(KeyValue("host.name", .string(["h1", "h2"][r.next(2)]))) }
            var metrics: [Metric] = []
            for _ in 0..<(1 + r.next(4)) {
                let name = ["g", "s", "h", "q"][r.next(4)]
                let n = 1 + r.next(4)
                switch name {
                case "g":
                    metrics.append(Metric(name: "g", data: .gauge((0..<n).map { _ in
                        NumberDataPoint(attributes: attributes(&r), timeUnixNano: time(&r), value: .int(Int64(r.next(100))),
                            flags: r.next(8) == 0 ? DataPointFlags.noRecordedValue : 0)
                    })))
                case "s":
                    metrics.append(Metric(name: "s", data: .sum((0..<n).map { _ in
                        NumberDataPoint(attributes: attributes(&r), timeUnixNano: time(&r), value: .double(Double(r.next(100))))
                    }, temporality: .cumulative, isMonotonic: true)))
                case "h":
                    metrics.append(Metric(name: "h", data: .histogram((0..<n).map { _ in
                        let bounds: [Double] = [[1], [1, 5], [0.5, 1]][r.next(3)]
                        return HistogramDataPoint(
                            attributes: attributes(&r), timeUnixNano: time(&r), count: 3, sum: r.next(2) == 0 ? nil : 1.5,
                            bucketCounts: Array(repeating: 1, count: bounds.count + 1), explicitBounds: bounds)
                    }, temporality: .cumulative)))
                default:
                    metrics.append(Metric(name: "q", data: .summary((0..<n).map { _ in
                        SummaryDataPoint(
                            attributes: attributes(&r), timeUnixNano: time(&r), count: 2, sum: 1,
                            quantileValues: [.init(quantile: 0.5, value: 1), .init(quantile: [0.9, 0.99][r.next(2)], value: 2)])
                    })))
                }
            }
            resources.append(ResourceMetrics(resource: Resource(attributes: resource), scopeMetrics: [ScopeMetrics(metrics: metrics)]))
        }
        return MetricsData(resourceMetrics: resources)
    }

    /// The plain model of `RemoteWrite.convert` for batches without exemplars.
    static func model(_ batches: [MetricsData], options: RemoteWrite.ConversionOptions) -> [String] {
        var order: [String] = []
        var samples: [String: [(Int64, Double)]] = [:]
        PrometheusSamples.forEachPoint(batches, options: options.samples) { p in
            if p.family.type == .info && p.timeUnixNano == 0 { return }
            if !options.targetInfo && p.family.name == "target_info" { return }
            for line in p.lines {
                var labels: [String: String] = [:]
                for (n, v) in p.labels { labels[n] = v }
                for (n, v) in options.externalLabels where labels[n] == nil { labels[n] = v }
                labels["__name__"] = p.family.name + line.suffix
                if let (n, v) = line.extra { labels[n] = v }
                let key = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                if samples[key] == nil { order.append(key) }
                samples[key, default: []].append((Int64(p.timeUnixNano / 1_000_000), p.stale ? RemoteWrite.staleNaN : line.value))
            }
        }
        return order.map { key in
            let run = samples[key]!.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }.map(\.element)
            return "\(key) \(run.map { "\($0.1.bitPattern)@\($0.0)" })"
        }
    }

    /// The conversion agrees with the model, with and without a label cache: the cache is shared by
    /// all rounds (whose settings change), each round converts its batches again (every point known)
    /// and twice over in one conversion (known from the same conversion).
    @Test func matchesThePlainModel() {
        var r = Rng(x: 0x9E37_79B9_7F4A_7C15)
        let cache = RemoteWrite.LabelCache()
        func text(_ c: RemoteWrite.Conversion) -> [String] {
            c.request.timeseries.map { ts in
                "\(ts.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",")) \(ts.samples.map { "\($0.value.bitPattern)@\($0.timestamp)" })"
            }
        }
        for round in 0..<300 {
            let batches = (0..<(1 + r.next(3))).map { _ in Self.batch(&r) }
            var options = RemoteWrite.ConversionOptions()
            if r.next(2) == 0 { options.externalLabels = [("z", "ext"), ("cluster", "eu")] }
            options.targetInfo = r.next(4) != 0
            let got = text(RemoteWrite.convert(batches, options: options))
            let want = Self.model(batches, options: options)
            #expect(got == want, "round \(round)")
            if got != want { return }
            for pass in 0..<2 {
                let cached = text(RemoteWrite.convert(batches, options: options, cache: cache))
                #expect(cached == want, "round \(round), cached pass \(pass)")
                if cached != want { return }
            }
            let twice = text(RemoteWrite.convert(batches + batches, options: options, cache: cache))
            #expect(twice == Self.model(batches + batches, options: options), "round \(round), batches twice")
        }
    }

    /// The label cache is useful because a scrape receiver hands on each series' attributes as the same
    /// arrays from scrape to scrape: converting a target's second scrape adds no entry, and gives the
    /// bytes an uncached conversion gives. Entries no conversion uses for long enough are dropped.
    @Test func labelCacheKnowsTheNextScrape() throws {
        var assembler = ScrapeAssembler(
            resource: ScrapeAssembler.targetResource(job: "api", instance: "127.0.0.1:9100", scheme: "http"),
            defaultScope: InstrumentationScope(name: "sextant/receiver/prometheus", version: "1"))
        func scrape(_ n: Int, at t: UInt64) throws -> MetricsData {
            let text = """
                # TYPE requests counter
                requests_total{code="200",method="GET"} \(n)
                requests_total{code="500",method="GET"} 1
                # TYPE latency histogram
                latency_bucket{le="0.1"} \(n)
                latency_bucket{le="+Inf"} \(n + 1)
                latency_sum 2.5
                latency_count \(n + 1)
                # TYPE q summary
                q{quantile="0.5"} 1
                q_sum 1
                q_count 1

                """
            return assembler.assemble(try ExpositionParser.parse(Array(text.utf8), format: .prometheusText), at: t)
        }
        let cache = RemoteWrite.LabelCache()
        var options = RemoteWrite.ConversionOptions()
        options.externalLabels = [("cluster", "eu")]
        let first = try scrape(1, at: 1_000_000_000)
        let second = try scrape(2, at: 2_000_000_000)
        #expect(RemoteWrite.convert([first], options: options, cache: cache).encodedRequests(maxBytes: 1 << 20)
            == RemoteWrite.convert([first], options: options).encodedRequests(maxBytes: 1 << 20))
        let entries = cache.count
        // One per point (the two counter series, the histogram, the summary), but points without
        // attributes may share the empty array's entry.
        #expect((3...4).contains(entries))
        #expect(RemoteWrite.convert([second], options: options, cache: cache).encodedRequests(maxBytes: 1 << 20)
            == RemoteWrite.convert([second], options: options).encodedRequests(maxBytes: 1 << 20))
        #expect(cache.count == entries)
        // Other settings: the entries are made again.
        options.externalLabels = [("cluster", "us")]
        #expect(RemoteWrite.convert([second], options: options, cache: cache).request == RemoteWrite.convert([second], options: options).request)
        #expect(cache.count == entries)
        // A batch of other series, converted long enough, leaves only its own entries.
        let other = MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
            Metric(name: "g", data: .gauge([NumberDataPoint(attributes: [KeyValue("k", .string("v"))], timeUnixNano: 1_000_000, value: .int(1))]))
        ])])])
        for _ in 0..<600 { _ = RemoteWrite.convert([other], options: options, cache: cache) }
        #expect(cache.count == 1)
        // Without waiting for 256 conversions: a cache whose idle time is up sweeps at every conversion,
        // so the series of a batch are gone after two conversions of another.
        let quick = RemoteWrite.LabelCache(maxIdle: .zero)
        _ = RemoteWrite.convert([second], options: options, cache: quick)
        #expect(quick.count == entries)
        _ = RemoteWrite.convert([other], options: options, cache: quick)
        #expect(quick.count == 1)
    }
}
