import Foundation
import SextantModel

/// The golden messages of `Fixtures/generate.py`, built with the model. Keep the two in step.
enum Fixtures {
    static let traceID = TraceID(hex: "5b8efff798038103d269b633813fc60c")!
    static let spanID = SpanID(hex: "eee19b7ec3c1b174")!
    static let t0: UInt64 = 1_700_000_000_000_000_000

    static func file(_ name: String) throws -> [UInt8] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        return [UInt8](try Data(contentsOf: dir.appendingPathComponent(name)))
    }

    static var traces: TracesData {
        let span = Span(
            traceID: traceID, spanID: spanID, traceState: "rojo=00f067aa0ba902b7",
            parentSpanID: SpanID(hex: "eee19b7ec3c1b173")!, flags: 0x301, name: "GET /api/checkout", kind: .server,
            startTimeUnixNano: t0, endTimeUnixNano: t0 + 250_000_000,
            attributes: [
                KeyValue("http.method", .string("GET")),
                KeyValue("http.status_code", .int(200)),
                KeyValue("ratio", .double(0.25)),
                KeyValue("cached", .bool(false)),
                KeyValue("blob", .bytes([0x00, 0x01, 0xFE, 0xFF])),
                KeyValue("list", .array([.string("a"), .int(1), .double(2.5), .bool(true)])),
                KeyValue("map", .kvlist([KeyValue("inner", .string("x")), KeyValue("nested", .kvlist([KeyValue("deep", .int(-5))]))])),
                KeyValue("nothing", .empty),
                KeyValue("greeting", .string("h\u{e9}llo \u{4e16}\u{754c} \u{1F680}\n\"quoted\"\t\u{1}")),
                KeyValue("negative", .int(-42)),
            ],
            droppedAttributesCount: 3,
            events: [
                SpanEvent(timeUnixNano: t0 + 1000, name: "exception", attributes: [KeyValue("exception.message", .string("boom"))], droppedAttributesCount: 1),
                SpanEvent(timeUnixNano: t0 + 2000, name: "retry"),
            ],
            droppedEventsCount: 4,
            links: [
                SpanLink(
                    traceID: TraceID(hex: "0af7651916cd43dd8448eb211c80319c")!, spanID: SpanID(hex: "b7ad6b7169203331")!,
                    traceState: "a=b", attributes: [KeyValue("link.kind", .string("follows"))], droppedAttributesCount: 5, flags: 0x101)
            ],
            droppedLinksCount: 6,
            status: SpanStatus(code: .error, message: "upstream failed")
        )
        let child = Span(
            traceID: traceID, spanID: SpanID(0xFF), name: "child", kind: .client, startTimeUnixNano: t0 + 10,
            endTimeUnixNano: t0 + 20, status: SpanStatus(code: .ok))
        return TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [KeyValue("service.name", .string("checkout")), KeyValue("host.cores", .int(8))], droppedAttributesCount: 1),
                scopeSpans: [
                    ScopeSpans(
                        scope: InstrumentationScope(name: "io.sextant.test", version: "1.2.3", attributes: [KeyValue("scope.attr", .bool(true))], droppedAttributesCount: 2),
                        spans: [span, child], schemaURL: "https://opentelemetry.io/schemas/1.25.0")
                ],
                schemaURL: "https://opentelemetry.io/schemas/1.26.0")
        ])
    }

    static var metrics: MetricsData {
        let exemplar = Exemplar(
            filteredAttributes: [KeyValue("user", .string("u1"))], timeUnixNano: t0 + 5, value: .double(72.0), spanID: spanID, traceID: traceID)
        let gauge = Metric(
            name: "cpu.temp", description: "CPU temperature", unit: "Cel",
            data: .gauge([
                NumberDataPoint(attributes: [KeyValue("core", .int(0))], startTimeUnixNano: t0, timeUnixNano: t0 + 1, value: .double(71.5), exemplars: [exemplar]),
                NumberDataPoint(timeUnixNano: t0 + 2, value: .int(-3), flags: 1),
            ]),
            metadata: [KeyValue("source", .string("sensor"))])
        let total = Metric(
            name: "requests", unit: "1",
            data: .sum(
                [NumberDataPoint(startTimeUnixNano: t0, timeUnixNano: t0 + 3, value: .int(1_234_567_890_123), exemplars: [Exemplar(timeUnixNano: t0 + 4, value: .int(7))])],
                temporality: .cumulative, isMonotonic: true))
        let histogram = Metric(
            name: "latency", unit: "ms",
            data: .histogram(
                [
                    HistogramDataPoint(
                        attributes: [KeyValue("route", .string("/a"))], startTimeUnixNano: t0, timeUnixNano: t0 + 6, count: 10, sum: 123.5,
                        bucketCounts: [1, 2, 3, 4], explicitBounds: [1, 10, 100],
                        exemplars: [Exemplar(timeUnixNano: t0 + 7, value: .double(99.5), traceID: traceID)], min: 0.5, max: 250),
                    HistogramDataPoint(timeUnixNano: t0 + 8, count: 2, sum: 0),
                ], temporality: .delta))
        let exponential = Metric(
            name: "eh",
            data: .exponentialHistogram(
                [
                    ExponentialHistogramDataPoint(
                        attributes: [KeyValue("k", .string("v"))], startTimeUnixNano: t0, timeUnixNano: t0 + 9, count: 20, sum: 42, scale: -2,
                        zeroCount: 3, positive: .init(offset: -1, bucketCounts: [1, 0, 300]), negative: .init(offset: 2, bucketCounts: [5]),
                        exemplars: [Exemplar(timeUnixNano: t0 + 10, value: .int(5))], min: -7.5, max: 99, zeroThreshold: 1e-9)
                ], temporality: .cumulative))
        let summary = Metric(
            name: "rpc.duration", unit: "ms",
            data: .summary([
                SummaryDataPoint(
                    attributes: [KeyValue("rpc", .string("Get"))], startTimeUnixNano: t0, timeUnixNano: t0 + 11, count: 100, sum: 5000.5,
                    quantileValues: [.init(quantile: 0, value: 1.5), .init(quantile: 0.5, value: 40), .init(quantile: 0.99, value: 120.25), .init(quantile: 1, value: 300)],
                    flags: 1)
            ]))
        let noData = Metric(name: "no.data", description: "a metric with no data set", data: .empty)
        return MetricsData(resourceMetrics: [
            ResourceMetrics(
                resource: Resource(attributes: [KeyValue("service.name", .string("meter-svc"))]),
                scopeMetrics: [ScopeMetrics(scope: InstrumentationScope(name: "meter"), metrics: [gauge, total, histogram, exponential, summary, noData])])
        ])
    }

    static var logs: LogsData {
        LogsData(resourceLogs: [
            ResourceLogs(
                resource: Resource(attributes: [KeyValue("service.name", .string("logger"))]),
                scopeLogs: [
                    ScopeLogs(
                        scope: InstrumentationScope(name: "app.log", version: "0.1"),
                        logRecords: [
                            LogRecord(
                                timeUnixNano: t0, observedTimeUnixNano: t0 + 100, severityNumber: .error, severityText: "ERROR",
                                body: .string("something bad"), attributes: [KeyValue("thread", .int(7))], droppedAttributesCount: 2, flags: 1,
                                traceID: traceID, spanID: spanID, eventName: "app.crash"),
                            LogRecord(
                                observedTimeUnixNano: t0 + 200, severityNumber: .info,
                                body: .kvlist([KeyValue("msg", .string("structured")), KeyValue("count", .int(3))])),
                            LogRecord(body: .bytes([0xDE, 0xAD])),
                        ])
                ],
                schemaURL: "https://opentelemetry.io/schemas/1.26.0")
        ])
    }

    /// A request of `count` spans with five attributes each, like a typical instrumented service's.
    static func benchmarkTraces(count: Int) -> TracesData {
        var spans: [Span] = []
        spans.reserveCapacity(count)
        for i in 0..<count {
            spans.append(
                Span(
                    traceID: TraceID(high: 0x5b8e_fff7_9803_8103, low: UInt64(i) + 1), spanID: SpanID(UInt64(i) + 1),
                    parentSpanID: i % 4 == 0 ? nil : SpanID(UInt64(i)), flags: 1, name: "GET /api/items/{id}", kind: .server,
                    startTimeUnixNano: t0 + UInt64(i) * 1000, endTimeUnixNano: t0 + UInt64(i) * 1000 + 52_000,
                    attributes: [
                        KeyValue("http.request.method", .string("GET")),
                        KeyValue("http.route", .string("/api/items/{id}")),
                        KeyValue("http.response.status_code", .int(200)),
                        KeyValue("server.address", .string("items.default.svc.cluster.local")),
                        KeyValue("network.protocol.version", .string("1.1")),
                    ],
                    status: SpanStatus(code: .ok)))
        }
        return TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [KeyValue("service.name", .string("items")), KeyValue("k8s.pod.name", .string("items-7d9f-abcde"))]),
                scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "io.opentelemetry.http", version: "1.0"), spans: spans)])
        ])
    }
}
