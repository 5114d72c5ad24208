import SextantModel
import SextantOTLP
import Testing

/// Golden vectors written by the reference implementation (`Fixtures/generate.py`): we must decode
/// them to the expected model and encode that model to the very same bytes.
@Suite("Golden vectors")
struct GoldenTests {
    @Test func tracesProtobuf() throws {
        let golden = try Fixtures.file("traces.binpb")
        let decoded = try OTLPProtobuf.decodeTraces(golden)
        #expect(decoded.rejected == 0)
        #expect(decoded.data == Fixtures.traces)
        #expect(OTLPProtobuf.encode(Fixtures.traces) == golden)
    }

    @Test func tracesJSON() throws {
        let golden = try Fixtures.file("traces.json")
        let decoded = try OTLPJSON.decodeTraces(golden)
        #expect(decoded.rejected == 0)
        #expect(decoded.data == Fixtures.traces)
        #expect(String(decoding: OTLPJSON.encode(Fixtures.traces), as: UTF8.self) == String(decoding: golden, as: UTF8.self))
    }

    @Test func metricsProtobuf() throws {
        let golden = try Fixtures.file("metrics.binpb")
        let decoded = try OTLPProtobuf.decodeMetrics(golden)
        #expect(decoded.rejected == 0)
        #expect(decoded.data == Fixtures.metrics)
        #expect(OTLPProtobuf.encode(Fixtures.metrics) == golden)
    }

    @Test func metricsJSON() throws {
        let golden = try Fixtures.file("metrics.json")
        let decoded = try OTLPJSON.decodeMetrics(golden)
        #expect(decoded.rejected == 0)
        #expect(decoded.data == Fixtures.metrics)
        #expect(String(decoding: OTLPJSON.encode(Fixtures.metrics), as: UTF8.self) == String(decoding: golden, as: UTF8.self))
    }

    @Test func logsProtobuf() throws {
        let golden = try Fixtures.file("logs.binpb")
        let decoded = try OTLPProtobuf.decodeLogs(golden)
        #expect(decoded.rejected == 0)
        #expect(decoded.data == Fixtures.logs)
        #expect(OTLPProtobuf.encode(Fixtures.logs) == golden)
    }

    @Test func logsJSON() throws {
        let golden = try Fixtures.file("logs.json")
        let decoded = try OTLPJSON.decodeLogs(golden)
        #expect(decoded.rejected == 0)
        #expect(decoded.data == Fixtures.logs)
        #expect(String(decoding: OTLPJSON.encode(Fixtures.logs), as: UTF8.self) == String(decoding: golden, as: UTF8.self))
    }

    @Test func spotChecks() throws {
        let traces = try OTLPProtobuf.decodeTraces(Fixtures.file("traces.binpb")).data
        let span = try #require(traces.resourceSpans.first?.scopeSpans.first?.spans.first)
        #expect(span.traceID.hex == "5b8efff798038103d269b633813fc60c")
        #expect(span.parentSpanID?.hex == "eee19b7ec3c1b173")
        #expect(span.flags == 0x301)
        #expect(span.attributes[key: "greeting"] == .string("héllo 世界 🚀\n\"quoted\"\t\u{1}"))
        #expect(span.links.first?.flags == 0x101)
        #expect(traces.resourceSpans[0].resource.serviceName == "checkout")

        let metrics = try OTLPJSON.decodeMetrics(Fixtures.file("metrics.json")).data
        let all = metrics.resourceMetrics[0].scopeMetrics[0].metrics
        #expect(all.map(\.data.typeName) == ["Gauge", "Sum", "Histogram", "ExponentialHistogram", "Summary", "Empty"])
        guard case .exponentialHistogram(let points, _) = all[3].data else { Issue.record("not an exponential histogram"); return }
        #expect(points[0].positive.bucketCounts == [1, 0, 300])
        #expect(points[0].zeroThreshold == 1e-9)

        let logs = try OTLPProtobuf.decodeLogs(Fixtures.file("logs.binpb")).data
        #expect(logs.resourceLogs[0].scopeLogs[0].logRecords[0].eventName == "app.crash")
        #expect(logs.resourceLogs[0].scopeLogs[0].logRecords[1].traceID == nil)
    }

    @Test func exportResponse() throws {
        let partial = PartialSuccess(rejected: 3, errorMessage: "span 3: trace_id must be 16 bytes, got 4")
        let binary = try Fixtures.file("export_trace_response.binpb")
        #expect(OTLPProtobuf.encodeExportResponse(.traces, partialSuccess: partial) == binary)
        #expect(try OTLPProtobuf.decodeExportResponse(binary) == partial)
        let json = try Fixtures.file("export_trace_response.json")
        #expect(OTLPJSON.encodeExportResponse(.traces, partialSuccess: partial) == json)
        #expect(try OTLPJSON.decodeExportResponse(json) == partial)
    }
}
