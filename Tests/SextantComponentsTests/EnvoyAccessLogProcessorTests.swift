import Logging
import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

@Suite struct EnvoyAccessLogProcessorTests {
    static let istio =
        #"[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 UF,URX via_upstream - "-" 0 135 4 4 "-" "curl/8" "req-1" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default"#
    static let envoy =
        #"[2016-04-15T20:17:00.310Z] "POST /api HTTP/2" 204 - 154 0 226 100 "-" "nsq2http" "req-2" "locations" "tcp://10.0.2.1:80""#
    static let json =
        #"{"start_time":"2020-11-25T21:26:18.409Z","method":"GET","path":"/x","response_code":200,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#

    func run(_ yaml: String, _ records: [LogRecord]) async throws -> (LogsData, SelfTelemetry) {
        let d = Diagnostics()
        let node = try #require(YAMLLoader.parse(yaml, file: "t.yaml", diagnostics: d, environment: [:]))
        var r = ConfigReader(node, path: "processors::envoyaccesslog", diagnostics: d)
        let config = EnvoyAccessLogProcessorFactory().parseConfig(&r)
        r.finish()
        #expect(d.errors.isEmpty, "\(d.errors)")
        let telemetry = SelfTelemetry()
        let sink = RecordingConsumer()
        let settings = ComponentSettings(
            id: ComponentID(type: "envoyaccesslog"), kind: .processor, logger: Logger(label: "t"), telemetry: telemetry)
        let p = try EnvoyAccessLogProcessorFactory().makeProcessor(settings, config: config, pipeline: PipelineID(.logs), next: sink)
        try await p.consume(.logs(LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: records)])])))
        guard case .logs(let out)? = sink.batches.first else { throw ProcessorTestError() }
        return (out, telemetry)
    }

    struct ProcessorTestError: Error {}

    func count(_ t: SelfTelemetry, _ name: String) -> Int64 {
        t.value(name, labels: [("processor", "envoyaccesslog"), ("pipeline", "logs")]) ?? -1
    }

    @Test func parsesBodiesKeepsOthersAndCounts() async throws {
        let (out, t) = try await run(
            "{}",
            [
                LogRecord(body: .string(Self.istio)),
                LogRecord(timeUnixNano: 7, body: .string(Self.envoy + "\n")),
                LogRecord(body: .string("plain application log"), attributes: [KeyValue("k", .string("v"))]),
                LogRecord(body: .int(3)),
            ])
        let r = out.resourceLogs[0].scopeLogs[0].logRecords
        #expect(r.count == 4)
        #expect(r[0].attributes[key: "envoy.response_flags"] == .array([.string("UF"), .string("URX")]))
        #expect(r[0].attributes[key: "http.response.status_code"] == .int(418))
        #expect(r[0].timeUnixNano == 1_606_339_578_409_000_000)
        #expect(r[0].body == .string(Self.istio))
        #expect(r[1].attributes[key: "http.request.header.x-request-id"] == .string("req-2"))
        #expect(r[1].timeUnixNano == 7)
        #expect(r[2] == LogRecord(body: .string("plain application log"), attributes: [KeyValue("k", .string("v"))]))
        #expect(r[3] == LogRecord(body: .int(3)))
        #expect(count(t, "sextant_envoyaccesslog_parsed_records_total") == 2)
        #expect(count(t, "sextant_envoyaccesslog_unparsed_records_total") == 2)
    }

    @Test func traceCorrelation() async throws {
        let preset = TraceID(high: 9, low: 9)
        let (out, t) = try await run(
            "{}",
            [
                LogRecord(body: .string(Self.json)),
                LogRecord(
                    body: .string(Self.istio),
                    attributes: [
                        KeyValue("http.request.header.x-b3-traceid", .string("463ac35c9f6413ad48485a3953bb6124")),
                        KeyValue("X-B3-SpanId", .string("a2fb4a1d1a96d312")),
                    ]),
                LogRecord(body: .string(Self.envoy), attributes: [KeyValue("b3", .string("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"))]),
                LogRecord(
                    body: .string(Self.envoy), attributes: [KeyValue("traceparent", .string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))],
                    traceID: preset, spanID: SpanID(1)),
                LogRecord(body: .string(Self.envoy), attributes: [KeyValue("traceparent", .string("garbage"))]),
            ])
        let r = out.resourceLogs[0].scopeLogs[0].logRecords
        #expect(r[0].traceID?.hex == "4bf92f3577b34da6a3ce929d0e0e4736" && r[0].spanID?.hex == "00f067aa0ba902b7")
        #expect(r[1].traceID?.hex == "463ac35c9f6413ad48485a3953bb6124" && r[1].spanID?.hex == "a2fb4a1d1a96d312")
        #expect(r[2].traceID?.hex == "80f198ee56343ba864fe8b2a57d3eff7" && r[2].spanID?.hex == "e457b5a2e4d86bd1")
        #expect(r[3].traceID == preset && r[3].spanID == SpanID(1))
        #expect(r[4].traceID == nil)
        #expect(count(t, "sextant_envoyaccesslog_trace_correlated_records_total") == 3)
    }

    @Test func sourceAttributeAndFormats() async throws {
        let (out, t) = try await run(
            "{source_attribute: log.line, formats: [istio_text], trace_correlation: false}",
            [
                LogRecord(body: .string("ignored"), attributes: [KeyValue("log.line", .string(Self.istio))]),
                LogRecord(attributes: [KeyValue("log.line", .string(Self.envoy))]),
                LogRecord(body: .string(Self.json)),
            ])
        let r = out.resourceLogs[0].scopeLogs[0].logRecords
        #expect(r[0].attributes[key: "envoy.upstream_cluster"] == .string("outbound|8000||httpbin"))
        #expect(r[0].body == .string("ignored"))
        #expect(r[1].attributes.count == 1)
        #expect(r[2].traceID == nil)
        #expect(count(t, "sextant_envoyaccesslog_parsed_records_total") == 1)
        #expect(count(t, "sextant_envoyaccesslog_unparsed_records_total") == 2)
    }

    @Test func configErrors() throws {
        for (yaml, message) in [
            ("{formats: [nginx]}", "'nginx' is not one of envoy_default, istio_text, istio_json"),
            ("{formats: []}", "must name at least one"),
            ("{bogus: 1}", "unknown key 'bogus'"),
        ] {
            let d = Diagnostics()
            let node = try #require(YAMLLoader.parse(yaml, file: "t.yaml", diagnostics: d, environment: [:]))
            var r = ConfigReader(node, path: "processors::envoyaccesslog", diagnostics: d)
            _ = EnvoyAccessLogProcessorFactory().parseConfig(&r)
            r.finish()
            #expect(d.errors.contains { $0.message.contains(message) }, "\(yaml): \(d.errors)")
        }
    }
}
