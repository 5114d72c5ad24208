import SextantModel
@testable import SextantOTLP
import Testing

@Suite("OTLP JSON")
struct JSONTests {
    static func json(_ s: String) -> [UInt8] { Array(s.utf8) }

    static func spans(_ spansJSON: String) -> [UInt8] {
        json(#"{"resourceSpans":[{"scopeSpans":[{"spans":["# + spansJSON + "]}]}]}")
    }

    static let ids = #""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174""#

    // MARK: Round trips

    @Test func roundTripsFullyPopulatedData() throws {
        #expect(try OTLPJSON.decodeTraces(OTLPJSON.encode(Fixtures.traces)).data == Fixtures.traces)
        #expect(try OTLPJSON.decodeMetrics(OTLPJSON.encode(Fixtures.metrics)).data == Fixtures.metrics)
        #expect(try OTLPJSON.decodeLogs(OTLPJSON.encode(Fixtures.logs)).data == Fixtures.logs)
        let big = Fixtures.benchmarkTraces(count: 300)
        #expect(try OTLPJSON.decodeTraces(OTLPJSON.encode(big)).data == big)
        for t in [Telemetry.traces(Fixtures.traces), .metrics(Fixtures.metrics), .logs(Fixtures.logs)] {
            #expect(try OTLPJSON.decode(t.signal, OTLPJSON.encode(t)).data == t)
        }
    }

    @Test func roundTripsEdgeValues() throws {
        let values: [AnyValue] = [
            .int(.min), .int(.max), .double(-0.0), .double(.infinity), .double(-.infinity), .double(.leastNonzeroMagnitude), .double(1.7976931348623157e308),
            .double(0.1), .double(1e16), .double(123456.789), .string("\u{0}\u{1f}\u{7f}\u{2028}\\\"/"), .bytes([]), .bytes([0xFB, 0xFF]),
            .array([]), .kvlist([]), .empty,
        ]
        let record = LogRecord(attributes: values.enumerated().map { KeyValue("k\($0.offset)", $0.element) })
        let data = LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: [record])])])
        #expect(try OTLPJSON.decodeLogs(OTLPJSON.encode(data)).data == data)
    }

    @Test func encodesCompactlyInFieldOrder() {
        #expect(OTLPJSON.encode(TracesData()) == Self.json("{}"))
        let span = Span(traceID: Fixtures.traceID, spanID: Fixtures.spanID, name: "n", attributes: [KeyValue("d", .double(.nan))])
        let text = String(decoding: OTLPJSON.encode(TracesData(resourceSpans: [ResourceSpans(scopeSpans: [ScopeSpans(spans: [span])])])), as: UTF8.self)
        #expect(text == #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"#
            + #""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"n","#
            + #""attributes":[{"key":"d","value":{"doubleValue":"NaN"}}]}]}]}]}"#)
        #expect(OTLPJSON.encodeStatus(code: 3, message: "bad \"x\"") == Self.json(#"{"code":3,"message":"bad \"x\""}"#))
        #expect(OTLPJSON.encodeExportResponse(.metrics, partialSuccess: nil) == Self.json("{}"))
        #expect(
            OTLPJSON.encodeExportResponse(.metrics, partialSuccess: PartialSuccess(rejected: 2, errorMessage: "x"))
                == Self.json(#"{"partialSuccess":{"rejectedDataPoints":"2","errorMessage":"x"}}"#))
        #expect(
            OTLPJSON.encodeExportResponse(.logs, partialSuccess: PartialSuccess(rejected: 5, errorMessage: ""))
                == Self.json(#"{"partialSuccess":{"rejectedLogRecords":"5"}}"#))
    }

    /// A string attribute's encoding, `"…"` included.
    static func encodedString(_ s: String) -> String {
        let record = LogRecord(attributes: [KeyValue("k", .string(s))])
        let text = String(decoding: OTLPJSON.encode(LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: [record])])])), as: UTF8.self)
        let prefix = #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k","value":{"stringValue":"#
        let suffix = #"}}]}]}]}]}"#
        guard text.hasPrefix(prefix), text.hasSuffix(suffix) else { return "unexpected: \(text)" }
        return String(text.dropFirst(prefix.count).dropLast(suffix.count))
    }

    @Test func escapesStrings() {
        #expect(Self.encodedString("") == #""""#)
        #expect(Self.encodedString("plain text, long enough for the 8-byte scan") == #""plain text, long enough for the 8-byte scan""#)
        #expect(Self.encodedString("q\"b\\n\nr\rt\tb\u{8}f\u{c}") == #""q\"b\\n\nr\rt\tb\bf\f""#)
        #expect(Self.encodedString("\u{0}\u{1}\u{1f} \u{7f}/") == "\"\\u0000\\u0001\\u001f \u{7f}/\"")
        // Specials at every position of an 8-byte word, and after it.
        for i in 0..<12 {
            let pad = String(repeating: "x", count: i)
            #expect(Self.encodedString(pad + "\"" + pad) == "\"" + pad + "\\\"" + pad + "\"")
        }
        // Non-ASCII passes through, including other characters whose UTF-8 starts with 0xE2.
        #expect(Self.encodedString("é中🙂…€\u{2027}\u{202A}") == "\"é中🙂…€\u{2027}\u{202A}\"")
    }

    /// U+2028/U+2029 are valid in JSON strings but line breaks to line-oriented readers (Python's
    /// `str.splitlines`), which would split a JSON-lines record; they are written as escapes.
    @Test func escapesLineAndParagraphSeparators() throws {
        #expect(Self.encodedString("a\u{2028}b\u{2029}c") == #""a\u2028b\u2029c""#)
        #expect(Self.encodedString("\u{2028}\u{2029}\u{2028}xxxxxxxxxx\u{2029}") == #""\u2028\u2029\u2028xxxxxxxxxx\u2029""#)
        let span = Span(traceID: Fixtures.traceID, spanID: Fixtures.spanID, name: "line\u{2028}para\u{2029}")
        let data = TracesData(resourceSpans: [ResourceSpans(scopeSpans: [ScopeSpans(spans: [span])])])
        let bytes = OTLPJSON.encode(data)
        #expect(String(decoding: bytes, as: UTF8.self).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).count == 1)
        #expect(try OTLPJSON.decodeTraces(bytes).data == data)
    }

    /// Output larger than the size estimate (escaping is not estimated) moves to a growing buffer.
    @Test func encodesBeyondTheSizeEstimate() throws {
        let nasty = String(repeating: "\"\u{1}\u{2028}", count: 20_000)
        let span = Span(traceID: Fixtures.traceID, spanID: Fixtures.spanID, name: nasty, attributes: [KeyValue(nasty, .string(nasty))])
        let data = TracesData(resourceSpans: [ResourceSpans(scopeSpans: [ScopeSpans(spans: Array(repeating: span, count: 3))])])
        let bytes = OTLPJSON.encode(data)
        #expect(bytes.count > OTLPJSON.estimatedSize(data))
        #expect(try OTLPJSON.decodeTraces(bytes).data == data)
        let escaped = String(repeating: #"\"\u0001\u2028"#, count: 20_000)
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""name":""# + escaped + #"","attributes":[{"key":""# + escaped))
    }

    @Test func decodesResponsesAndStatus() throws {
        #expect(try OTLPJSON.decodeExportResponse(Self.json("{}")) == nil)
        #expect(
            try OTLPJSON.decodeExportResponse(Self.json(#"{"partial_success":{"rejected_log_records":7,"error_message":"m","x":[1]}}"#))
                == PartialSuccess(rejected: 7, errorMessage: "m"))
        let status = try OTLPJSON.decodeStatus(Self.json(#" {"code":14,"message":"unavailable","details":[{"@type":"t"}]} "#))
        #expect(status.code == 14 && status.message == "unavailable")
    }

    // MARK: Decoding leniency the mapping requires

    @Test func acceptsSnakeCaseEnumNamesAndNumberForms() throws {
        let text = #"""
            {"resource_spans":[{"resource":{"attributes":[{"key":"a","value":{"int_value":42}}],"dropped_attributes_count":"1"},
             "scope_spans":[{"scope":{"name":"s"},"schema_url":"u","spans":[{
               "trace_id":"5B8EFFF798038103D269B633813FC60C","span_id":"EEE19B7EC3C1B174","parent_span_id":"",
               "kind":"SPAN_KIND_CONSUMER","start_time_unix_nano":1700000000000000000,"end_time_unix_nano":"18446744073709551615",
               "attributes":[{"key":"e","value":{"double_value":"-Infinity"}},{"key":"f","value":{"doubleValue":"1.5"}},
                             {"key":"g","value":{"intValue":"-9223372036854775808"}},{"key":"h","value":{"intValue":1e3}},
                             {"key":"i","value":{"bytes_value":"-_8="}}],
               "status":{"code":"STATUS_CODE_ERROR","message":null},"flags":"257"}]}]}]}
            """#
        let result = try OTLPJSON.decodeTraces(Self.json(text))
        #expect(result.rejected == 0)
        let rs = result.data.resourceSpans[0]
        #expect(rs.resource == Resource(attributes: [KeyValue("a", .int(42))], droppedAttributesCount: 1))
        #expect(rs.scopeSpans[0].schemaURL == "u")
        let span = rs.scopeSpans[0].spans[0]
        #expect(span.traceID == Fixtures.traceID && span.spanID == Fixtures.spanID && span.parentSpanID == nil)
        #expect(span.kind == .consumer && span.status.code == .error && span.flags == 257)
        #expect(span.startTimeUnixNano == 1_700_000_000_000_000_000 && span.endTimeUnixNano == .max)
        #expect(span.attributes == [
            KeyValue("e", .double(-.infinity)), KeyValue("f", .double(1.5)), KeyValue("g", .int(.min)), KeyValue("h", .int(1000)),
            KeyValue("i", .bytes([0xFB, 0xFF])),
        ])

        let logs = try OTLPJSON.decodeLogs(Self.json(#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_WARN2","body":{}}]}]}]}"#))
        let record = logs.data.resourceLogs[0].scopeLogs[0].logRecords[0]
        #expect(record.severityNumber.rawValue == 14 && record.body == .empty)

        let metrics = try OTLPJSON.decodeMetrics(Self.json(#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"s","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA","dataPoints":[{"as_int":"12"}]}}]}]}]}"#))
        #expect(metrics.data.resourceMetrics[0].scopeMetrics[0].metrics[0].data == .sum([NumberDataPoint(value: .int(12))], temporality: .delta, isMonotonic: false))
    }

    @Test func skipsUnknownKeysAndNulls() throws {
        let unknown = #""zz":{"a":[1,-2.5e-3,true,false,null,"\u00e9\ud83d\ude00",{"b":[]}]},"#
        let text = #"{"# + unknown + #""resourceSpans":[{"# + unknown + #""scopeSpans":[{"spans":[{"# + unknown + Self.ids
            + #","name":"n","attributes":null,"events":[{"# + unknown + #""name":"e"}]}]}]}]}"#
        let span = try OTLPJSON.decodeTraces(Self.json(text)).data.resourceSpans[0].scopeSpans[0].spans[0]
        #expect(span.name == "n" && span.events == [SpanEvent(name: "e")] && span.attributes.isEmpty)
    }

    @Test func decodesStringEscapes() throws {
        let text = Self.spans("{" + Self.ids + #","name":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u4e16\ud83d\ude00""# + "}")
        let span = try OTLPJSON.decodeTraces(text).data.resourceSpans[0].scopeSpans[0].spans[0]
        #expect(span.name == "a\"b\\c/d\u{8}\u{c}\n\r\tAé世😀")
        let escapedKey = Self.spans("{" + Self.ids + #","n\u0061me":"k""# + "}")
        #expect(try OTLPJSON.decodeTraces(escapedKey).data.resourceSpans[0].scopeSpans[0].spans[0].name == "k")
    }

    // MARK: Partial success

    @Test func rejectsInvalidIDs() throws {
        let text = Self.spans(
            #"{"traceId":"5b8efff7","spanId":"eee19b7ec3c1b174"},{"# + Self.ids + #","name":"ok"},"#
                + #"{"traceId":"00000000000000000000000000000000","spanId":"eee19b7ec3c1b174"},"#
                + #"{"# + Self.ids + #","links":[{"spanId":"00"}]}"#)
        let result = try OTLPJSON.decodeTraces(text)
        #expect(result.rejected == 3)
        #expect(result.rejectionReason == "span 0: trace_id must be 16 bytes, got 4 (3 rejected in total)")
        #expect(result.data.resourceSpans[0].scopeSpans[0].spans.map(\.name) == ["ok"])

        let logs = try OTLPJSON.decodeLogs(Self.json(#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"abcd"},{"traceId":""}]}]}]}"#))
        #expect(logs.rejected == 1 && logs.rejectionReason == "log record 0: span_id must be empty or 8 bytes, got 2")

        let metrics = try OTLPJSON.decodeMetrics(Self.json(#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{},{}]}},{"name":"x","histogram":{"dataPoints":[{"exemplars":[{"traceId":"ab"}]},{}]}}]}]}]}"#))
        #expect(metrics.rejected == 3)
        #expect(metrics.rejectionReason == "metric 0: name must not be empty (3 rejected in total)")
        #expect(metrics.data.dataPointCount == 1)
    }

    // MARK: Errors

    static let errorCases: [(name: String, text: [UInt8], message: String)] = [
        ("empty input", [], "invalid JSON at offset 0: expected an object, found end of input"),
        ("not an object", json("[]"), "expected an object, found '['"),
        ("trailing comma", json(#"{"resourceSpans":[],}"#), "offset 20: expected a string key, found '}'"),
        ("missing colon", json(#"{"resourceSpans" []}"#), "offset 17: expected ':' after object key, found '['"),
        ("missing comma", json(#"{"a":1 "b":2}"#), "expected ',' or '}' in object"),
        ("unterminated string", json(#"{"a":"abc"#), "offset 5: unterminated string"),
        ("unterminated object", json(#"{"a":1"#), "expected ',' or '}' in object, found end of input"),
        ("bad literal", json(#"{"a":tru}"#), "offset 5: invalid literal"),
        ("bad number", json(#"{"a":01}"#), "expected ',' or '}' in object, found '1'"),
        ("lone minus", json(#"{"a":-}"#), "expected a number"),
        ("trailing garbage", json(#"{} x"#), "offset 3: unexpected 'x' after the top-level value"),
        ("invalid UTF-8", json(#"{"a":""#) + [0xFF] + json(#""}"#), "offset 6: invalid UTF-8 in string"),
        ("invalid UTF-8 in key", json(#"{""#) + [0xC3] + json(#"":1}"#), "invalid UTF-8 in string"),
        ("invalid UTF-8 in value", spans("{" + ids + #","name":""#) + [0xE2, 0x28, 0xA1] + json(#""}"#), "invalid UTF-8 in string"),
        ("control character", json("{\"a\":\"\u{1}\"}"), "unescaped control character in string"),
        ("bad escape", json(#"{"a":"\x"}"#), "offset 6: invalid escape sequence"),
        ("lone high surrogate", json(#"{"a":"\ud800x"}"#), "unpaired surrogate"),
        ("lone low surrogate", json(#"{"a":"\udc00"}"#), "unpaired surrogate"),
        ("bad hex id", spans(#"{"traceId":"zz8efff798038103d269b633813fc60c"}"#), "invalid hex digit in ID"),
        ("odd hex id", spans(#"{"spanId":"abc"}"#), "hex ID has an odd number of digits (3)"),
        ("number id", spans(#"{"spanId":12}"#), "expected a hex string"),
        ("int64 overflow", spans(#"{"startTimeUnixNano":"18446744073709551616"}"#), "expected an integer in string"),
        ("negative uint64", spans(#"{"startTimeUnixNano":-1}"#), "expected an unsigned integer"),
        ("fractional int", spans(#"{"droppedAttributesCount":1.5}"#), "expected an integer"),
        ("uint32 overflow", spans(#"{"droppedAttributesCount":4294967296}"#), "integer out of range for uint32"),
        ("unknown enum", spans(#"{"kind":"SPAN_KIND_BOGUS"}"#), "unknown enum value \"SPAN_KIND_BOGUS\""),
        ("bad base64", spans("{" + ids + #","attributes":[{"key":"b","value":{"bytesValue":"!!"}}]}"#), "invalid base64"),
        ("bad double", spans("{" + ids + #","attributes":[{"key":"b","value":{"doubleValue":"1.2.3"}}]}"#), "expected a number in string"),
        ("wrong type", json(#"{"resourceSpans":{}}"#), "expected an array, found '{'"),
        ("deep nesting", json(#"{"x":"# + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}"), "nesting deeper than 256"),
    ]

    @Test(arguments: errorCases)
    func rejectsMalformedInput(_ c: (name: String, text: [UInt8], message: String)) {
        do {
            _ = try OTLPJSON.decodeTraces(c.text)
            Issue.record("\(c.name): decoded without error")
        } catch let error as OTLPDecodingError {
            #expect(error.message.contains(c.message), "\(c.name): \(error.message)")
        } catch {
            Issue.record("\(c.name): unexpected error \(error)")
        }
    }

    /// The string scanner looks at eight bytes at a time: a byte that ends or interrupts a plain
    /// run (quote, escape, control character, non-ASCII) must be found at every offset in and
    /// around a word, in keys and in values.
    @Test(arguments: ["plain", "é", "escape", "control", "invalid"])
    func scansStringsAtEveryOffset(_ kind: String) {
        for n in 1..<20 {
            for at in 0..<n {
                var body = Array(repeating: UInt8(ascii: "a"), count: n)
                var expected = body
                switch kind {
                case "é":
                    body.replaceSubrange(at..<(at + 1), with: [0xC3, 0xA9])
                    expected = body
                case "escape":
                    body.replaceSubrange(at..<(at + 1), with: Array(#"\n"#.utf8))
                    expected[at] = 0x0A
                case "control": body[at] = 0x01
                case "invalid": body[at] = 0xFF
                default: break
                }
                let text = [UInt8(ascii: "{"), UInt8(ascii: "\"")] + body + Array(#"":""#.utf8) + body + Array(#""}"#.utf8)
                text.withUnsafeBytes { raw in
                    var reader = JSONReader(raw)
                    do {
                        var object = try reader.beginObject()
                        let key = try #require(try reader.nextKey(&object))
                        let keyText = key.unescaped.map { Array($0.utf8) } ?? Array(UnsafeBufferPointer(start: key.start, count: key.count))
                        let value = try reader.readString()
                        #expect(try reader.nextKey(&object) == nil)
                        #expect(kind != "control" && kind != "invalid", "\(kind) at \(at) of \(n) was accepted")
                        #expect(keyText == expected && Array(value.utf8) == expected, "\(kind) at \(at) of \(n)")
                    } catch let error as OTLPDecodingError {
                        switch kind {
                        case "control": #expect(error.message == "invalid JSON at offset \(2 + at): unescaped control character in string")
                        case "invalid": #expect(error.message == "invalid JSON at offset 2: invalid UTF-8 in string")
                        default: Issue.record("\(kind) at \(at) of \(n): \(error.message)")
                        }
                    } catch {
                        Issue.record("\(error)")
                    }
                }
            }
        }
    }

    @Test func rejectsDeepAnyValueNesting() throws {
        func nested(_ depth: Int) -> [UInt8] {
            var value = #"{"intValue":"1"}"#
            for _ in 0..<depth { value = #"{"arrayValue":{"values":["# + value + "]}}" }
            return Self.json(#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"# + value + "}]}]}]}")
        }
        _ = try OTLPJSON.decodeLogs(nested(OTLPProtobuf.maxAnyValueDepth))
        #expect(throws: OTLPDecodingError.self) { try OTLPJSON.decodeLogs(nested(OTLPProtobuf.maxAnyValueDepth + 1)) }
    }

    @Test func truncatingAValidRequestAnywhereFails() throws {
        let full = OTLPJSON.encode(Fixtures.traces)
        for n in 0..<full.count {
            #expect(throws: OTLPDecodingError.self) { try OTLPJSON.decodeTraces(Array(full[..<n])) }
        }
    }
}
