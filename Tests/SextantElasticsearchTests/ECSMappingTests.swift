import Foundation
import SextantElasticsearch
import SextantEnvoyAccessLog
import SextantModel
import Testing

@Suite struct ECSMappingTests {
    static let resource = Resource(attributes: [
        KeyValue("service.name", .string("httpbin")),
        KeyValue("service.version", .string("1.2.3")),
        KeyValue("k8s.pod.name", .string("httpbin-7d9c")),
        KeyValue("host.name", .string("node-1")),
    ])

    func accessLogRecord() throws -> LogRecord {
        let entry = try #require(EnvoyAccessLogParser.parse(AccessLogLines.istioText))
        var attrs = entry.attributes
        attrs.append(KeyValue("retries", .int(2)))
        attrs.append(KeyValue("mesh.id", .string("cluster.local")))
        return LogRecord(
            timeUnixNano: entry.startTimeUnixNano!, severityText: "INFO", body: .string(AccessLogLines.istioText), attributes: attrs,
            traceID: TraceID(hex: "4bf92f3577b34da6a3ce929d0e0e4736"), spanID: SpanID(hex: "00f067aa0ba902b7"))
    }

    /// The whole document, byte for byte: keys sorted at every level.
    @Test func accessLogGolden() throws {
        let doc = ECSMapping.document(log: try accessLogRecord(), resource: Self.resource, scope: InstrumentationScope(), fallbackTimeUnixNano: 1)
        let json = String(decoding: doc.json(), as: UTF8.self)
        let expected =
            #"{"@timestamp":"2020-11-25T21:26:18.409000000Z","attributes":{"retries":2},"destination":{"address":"10.44.1.27","ip":"10.44.1.27","port":80},"# +
            #""envoy":{"downstream_local_address":"10.0.45.184:8000","response_code_details":"via_upstream","route_name":"default","upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local","upstream_host":"10.44.1.27:80","upstream_local_address":"10.44.1.23:37652","upstream_service_time_ms":4},"# +
            #""event":{"duration":4000000},"host":{"name":"node-1"},"# +
            #""http":{"request":{"body":{"bytes":0},"id":"84961386-6d84-929d-98bd-c5aee93b5c88","method":"GET"},"response":{"body":{"bytes":135},"status_code":418},"version":"1.1"},"# +
            #""labels":{"k8s_pod_name":"httpbin-7d9c","mesh_id":"cluster.local"},"log":{"level":"INFO"},"# +
            #""message":"\#(AccessLogLines.istioText.replacingOccurrences(of: "\"", with: "\\\""))","# +
            #""network":{"protocol":"http"},"service":{"name":"httpbin","version":"1.2.3"},"# +
            #""source":{"address":"10.44.1.23","ip":"10.44.1.23","port":46520},"span":{"id":"00f067aa0ba902b7"},"# +
            #""trace":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"},"url":{"domain":"httpbin","path":"/status/418","port":8000},"# +
            #""user_agent":{"original":"curl/7.73.0-DEV"}}"#
        #expect(json == expected)
    }

    @Test func responseFlagsAreAKeywordList() throws {
        let entry = try #require(EnvoyAccessLogParser.parse(AccessLogLines.istioTCP))
        let doc = ECSMapping.document(
            log: LogRecord(attributes: entry.attributes), resource: Resource(), scope: InstrumentationScope(), fallbackTimeUnixNano: 0)
        #expect(doc.value(at: "envoy.response_flags") == .array([.string("UH"), .string("UF")]))
        #expect(doc.value(at: "http.response.status_code") == .int(0))
        #expect(doc.value(at: "source.port") == .int(46520))
        #expect(doc.value(at: "@timestamp") == .string("1970-01-01T00:00:00.000000000Z"))
    }

    @Test func timestampFallsBackToObservedThenNow() {
        let observed = ECSMapping.document(
            log: LogRecord(observedTimeUnixNano: 1_700_000_000_000_000_001), resource: Resource(), scope: InstrumentationScope(),
            fallbackTimeUnixNano: 5)
        #expect(observed.value(at: "@timestamp") == .string("2023-11-14T22:13:20.000000001Z"))
        let none = ECSMapping.document(log: LogRecord(), resource: Resource(), scope: InstrumentationScope(), fallbackTimeUnixNano: 86_400_000_000_000)
        #expect(none.value(at: "@timestamp") == .string("1970-01-02T00:00:00.000000000Z"))
    }

    @Test func nonStringBodiesAndSeverityNumbers() {
        let doc = ECSMapping.document(
            log: LogRecord(severityNumber: .warn, body: .kvlist([KeyValue("a", .int(1))])), resource: Resource(),
            scope: InstrumentationScope(name: "app"), fallbackTimeUnixNano: 0)
        #expect(doc.value(at: "message") == .string("{a:1}"))
        #expect(doc.value(at: "log.level") == .string("WARN"))
        #expect(doc.value(at: "log.logger") == .string("app"))
    }

    @Test func mismatchedTypesFallBackToLabels() {
        // A non-numeric status code is not forced into a long field.
        let doc = ECSMapping.document(
            log: LogRecord(attributes: [
                KeyValue("http.response.status_code", .string("abc")), KeyValue("client.address", .string("not-an-ip")),
                KeyValue("bytes", .bytes([1, 2, 3])), KeyValue("nan", .double(.nan)), KeyValue("", .string("no key")),
            ]), resource: Resource(), scope: InstrumentationScope(), fallbackTimeUnixNano: 0)
        #expect(doc.value(at: "http") == nil)
        #expect(doc.value(at: "labels.http_response_status_code") == .string("abc"))
        #expect(doc.value(at: "source.address") == .string("not-an-ip"))
        #expect(doc.value(at: "source.ip") == nil)
        #expect(String(decoding: doc.json(), as: UTF8.self).contains(#""attributes":{"bytes":"AQID","nan":null}"#))
        guard case .object(let labels)? = doc.value(at: "labels") else {
            Issue.record("no labels")
            return
        }
        #expect(labels.keys == ["http_response_status_code"])
    }

    @Test(arguments: [
        ("1.2.3.4", true), ("::1", true), ("fd00::5", true), ("2001:db8:0:0:0:0:2:1", true), ("::ffff:10.0.0.1", true),
        ("fe80::1%eth0", false), ("1.2.3", false), ("01.2.3.4", false), ("256.1.1.1", false), ("1:2:3", false), ("gggg::1", false),
        (":::", false), ("1::2::3", false), ("localhost", false), ("", false),
    ])
    func onlyIPLiteralsGoToIPFields(_ address: String, _ isIP: Bool) {
        let doc = ECSMapping.document(
            log: LogRecord(attributes: [KeyValue("client.address", .string(address))]), resource: Resource(), scope: InstrumentationScope(),
            fallbackTimeUnixNano: 0)
        #expect(doc.value(at: "source.address") == .string(address))
        #expect((doc.value(at: "source.ip") != nil) == isIP)
    }

    @Test func upstreamHostWithSchemeAndIPv6() {
        let doc = ECSMapping.document(
            log: LogRecord(attributes: [KeyValue("envoy.upstream_host", .string("tcp://10.0.2.1:80"))]), resource: Resource(),
            scope: InstrumentationScope(), fallbackTimeUnixNano: 0)
        #expect(doc.value(at: "destination.ip") == .string("10.0.2.1") && doc.value(at: "destination.port") == .int(80))
        #expect(doc.value(at: "envoy.upstream_host") == .string("tcp://10.0.2.1:80"))
        let v6 = ECSMapping.document(
            log: LogRecord(attributes: [KeyValue("envoy.upstream_host", .string("[2001:db8::7]:9080"))]), resource: Resource(),
            scope: InstrumentationScope(), fallbackTimeUnixNano: 0)
        #expect(v6.value(at: "destination.address") == .string("2001:db8::7") && v6.value(at: "destination.port") == .int(9080))
    }

    @Test func spanDocument() {
        var span = Span(
            traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), parentSpanID: SpanID(4), name: "GET /status", kind: SpanKind(rawValue: 2),
            startTimeUnixNano: 1_000_000_000, endTimeUnixNano: 1_250_000_000,
            attributes: [KeyValue("http.method", .string("GET")), KeyValue("http.status_code", .int(503)), KeyValue("upstream_cluster", .string("c"))])
        span.status = SpanStatus(code: SpanStatus.Code(rawValue: 2), message: "boom")
        let doc = ECSMapping.document(span: span, resource: Self.resource, scope: InstrumentationScope())
        let json = String(decoding: doc.json(), as: UTF8.self)
        #expect(
            json
                == #"{"@timestamp":"1970-01-01T00:00:01.000000000Z","error":{"message":"boom"},"event":{"duration":250000000,"outcome":"failure"},"#
                + #""host":{"name":"node-1"},"http":{"request":{"method":"GET"},"response":{"status_code":503}},"#
                + #""labels":{"k8s_pod_name":"httpbin-7d9c","upstream_cluster":"c"},"parent":{"id":"0000000000000004"},"#
                + #""service":{"name":"httpbin","version":"1.2.3"},"span":{"id":"0000000000000003","kind":"server","name":"GET /status"},"#
                + #""trace":{"id":"00000000000000010000000000000002"}}"#)
    }

    @Test func rawModeKeepsAttributeKeys() {
        let doc = ECSMapping.rawDocument(
            log: LogRecord(timeUnixNano: 1, severityNumber: .error, body: .string("x"), attributes: [KeyValue("a.b", .int(1))]),
            resource: Resource(attributes: [KeyValue("service.name", .string("s"))]), fallbackTimeUnixNano: 0,
            dataStream: ECSMapping.DataStream(type: "logs", dataset: "envoy", namespace: "prod"))
        #expect(
            String(decoding: doc.json(), as: UTF8.self)
                == #"{"@timestamp":"1970-01-01T00:00:00.000000001Z","a.b":1,"data_stream":{"dataset":"envoy","namespace":"prod","type":"logs"},"#
                + #""message":"x","service.name":"s","severity_number":17}"#)
    }

    @Test func ndjsonHasOneLinePerItem() {
        let logs = LogsData(resourceLogs: [
            ResourceLogs(scopeLogs: [ScopeLogs(logRecords: [LogRecord(timeUnixNano: 1, body: .string("a")), LogRecord(timeUnixNano: 2, body: .string("b"))])])
        ])
        let text = String(decoding: ECSMapping.ndjson(.logs(logs), fallbackTimeUnixNano: 0), as: UTF8.self)
        #expect(text.split(separator: "\n").count == 2)
        #expect(text.hasSuffix("}\n"))
        #expect(ECSMapping.ndjson(.metrics(MetricsData()), fallbackTimeUnixNano: 0).isEmpty)
    }

    @Test func utcTime() {
        #expect(UTCTime(unixNano: 0).rfc3339Nano == "1970-01-01T00:00:00.000000000Z")
        #expect(UTCTime(unixNano: 951_782_400_000_000_000).rfc3339Nano == "2000-02-29T00:00:00.000000000Z")
        #expect(UTCTime(unixNano: 4_102_444_799_999_999_999).rfc3339Nano == "2099-12-31T23:59:59.999999999Z")
    }
}
