import SextantModel
import Testing

@testable import SextantTraceStore

@Suite struct JaegerQueryAPITests {
    static let twoServiceTraceJSON = minify(
        """
        {
          "data": [
            {
              "traceID": "00000000000000a10000000000000007",
              "spans": [
                {
                  "traceID": "00000000000000a10000000000000007",
                  "spanID": "00000000000000a1",
                  "flags": 1,
                  "operationName": "GET /",
                  "references": [],
                  "startTime": 1700000000000000,
                  "duration": 1000,
                  "tags": [
                    {"key": "otel.scope.name", "type": "string", "value": "io.opentelemetry.http"},
                    {"key": "otel.scope.version", "type": "string", "value": "1.0"},
                    {"key": "http.status_code", "type": "int64", "value": 200},
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "otel.status_code", "type": "string", "value": "OK"}
                  ],
                  "logs": [],
                  "processID": "p1",
                  "warnings": null
                },
                {
                  "traceID": "00000000000000a10000000000000007",
                  "spanID": "00000000000000c1",
                  "flags": 1,
                  "operationName": "GET /api",
                  "references": [
                    {"refType": "CHILD_OF", "traceID": "00000000000000a10000000000000007", "spanID": "00000000000000a1"}
                  ],
                  "startTime": 1700000000000100,
                  "duration": 800,
                  "tags": [
                    {"key": "otel.scope.name", "type": "string", "value": "io.opentelemetry.http"},
                    {"key": "otel.scope.version", "type": "string", "value": "1.0"},
                    {"key": "span.kind", "type": "string", "value": "client"}
                  ],
                  "logs": [],
                  "processID": "p1",
                  "warnings": null
                },
                {
                  "traceID": "00000000000000a10000000000000007",
                  "spanID": "00000000000000b1",
                  "flags": 0,
                  "operationName": "handle",
                  "references": [
                    {"refType": "CHILD_OF", "traceID": "00000000000000a10000000000000007", "spanID": "00000000000000c1"},
                    {"refType": "FOLLOWS_FROM", "traceID": "0000000000000042", "spanID": "0000000000000043"}
                  ],
                  "startTime": 1700000000000150,
                  "duration": 600,
                  "tags": [
                    {"key": "big", "type": "int64", "value": "1152921504606846976"},
                    {"key": "ratio", "type": "float64", "value": 0.25},
                    {"key": "raw", "type": "binary", "value": "/w=="},
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                    {"key": "error", "type": "bool", "value": true},
                    {"key": "otel.status_description", "type": "string", "value": "db down"}
                  ],
                  "logs": [
                    {
                      "timestamp": 1700000000000200,
                      "fields": [
                        {"key": "event", "type": "string", "value": "cache miss"},
                        {"key": "key", "type": "string", "value": "u:1"}
                      ]
                    }
                  ],
                  "processID": "p2",
                  "warnings": null
                }
              ],
              "processes": {
                "p1": {
                  "serviceName": "frontend",
                  "tags": [
                    {"key": "host.name", "type": "string", "value": "web-1"}
                  ]
                },
                "p2": {
                  "serviceName": "backend",
                  "tags": []
                }
              },
              "warnings": null
            }
          ],
          "total": 0,
          "limit": 0,
          "offset": 0,
          "errors": null
        }
        """)

    @Test func getTraceTwoServicesTwoProcesses() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        store.insert(twoServiceTrace())
        let response = get("/api/traces/a10000000000000007", [], store)
        #expect(response.status == 200)
        #expect(response.body == Self.twoServiceTraceJSON)
        // The same trace under its full 32-digit ID, and with upper-case digits.
        #expect(get("/api/traces/00000000000000a10000000000000007", [], store).body == Self.twoServiceTraceJSON)
        #expect(get("/api/traces/A10000000000000007", [], store).body == Self.twoServiceTraceJSON)
    }

    @Test func services() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        #expect(get("/api/services", [], store).body == #"{"data":[],"total":0,"limit":0,"offset":0,"errors":null}"#)
        store.insert(twoServiceTrace())
        let response = get("/api/services", [], store)
        #expect(response.status == 200)
        #expect(response.body == #"{"data":["backend","frontend"],"total":2,"limit":0,"offset":0,"errors":null}"#)
    }

    @Test func operations() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        store.insert(twoServiceTrace())
        store.insert(batch("frontend", [span(8, 1, name: "GET /", kind: .client), span(8, 2, name: "tick", kind: .unspecified)]))
        #expect(
            get("/api/operations", [("service", "frontend")], store).body
                == minify(
                    """
                    {"data":[{"name":"GET /","spanKind":"client"},{"name":"GET /","spanKind":"server"},
                    {"name":"GET /api","spanKind":"client"},{"name":"tick","spanKind":""}],
                    "total":4,"limit":0,"offset":0,"errors":null}
                    """))
        #expect(
            get("/api/operations", [("service", "frontend"), ("spanKind", "server")], store).body
                == #"{"data":[{"name":"GET /","spanKind":"server"}],"total":1,"limit":0,"offset":0,"errors":null}"#)
        #expect(
            get("/api/operations", [("service", "nope")], store).body == #"{"data":[],"total":0,"limit":0,"offset":0,"errors":null}"#)
        // The legacy route: unique names.
        #expect(
            get("/api/services/frontend/operations", [], store).body
                == #"{"data":["GET /","GET /api","tick"],"total":3,"limit":0,"offset":0,"errors":null}"#)
    }

    @Test func legacyOperationsDecodesTheServiceSegment() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        store.insert(batch("my svc/1", [span(1, 1, name: "x")]))
        #expect(
            get("/api/services/my%20svc%2F1/operations", [], store).body
                == #"{"data":["x"],"total":1,"limit":0,"offset":0,"errors":null}"#)
        #expect(get("/api/services/my+svc%2F1/operations", [], store).body.contains(#""data":["x"]"#))
    }

    @Test func operationsRequiresService() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        let response = get("/api/operations", [], store)
        #expect(response.status == 400)
        #expect(
            response.body
                == #"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"parameter 'service' is required"}]}"#)
    }

    @Test func traceNotFoundAndBadIDs() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        let missing = get("/api/traces/abc", [], store)
        #expect(missing.status == 404)
        #expect(missing.body == #"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#)
        let bad = get("/api/traces/xyz", [], store)
        #expect(bad.status == 400)
        #expect(
            bad.body
                == #"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"strconv.ParseUint: parsing \"xyz\": invalid syntax"}]}"#
        )
        let long = get("/api/traces/" + String(repeating: "1", count: 33), [], store)
        #expect(long.status == 400)
        #expect(long.body.contains("TraceID cannot be longer than 32 hex characters"))
    }

    @Test func unknownPaths() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        for path in ["/", "/api", "/api/traces/", "/api/traces/1/2", "/api/services/", "/api/services//operations", "/api/dependencies"] {
            let response = get(path, [], store)
            #expect(response.status == 404, "\(path)")
            #expect(
                response.body == #"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"404 page not found"}]}"#)
        }
    }

    // MARK: Search

    /// The trace IDs (low halves) of a search response, in order; nil unless it is a 200.
    func found(_ query: [(String, String)], _ store: TraceStore) -> [UInt64]? {
        let response = get("/api/traces", query, store)
        guard response.status == 200, let json = JSON.parse(response.body) else { return nil }
        #expect(json["errors"] == .null)
        return json["data"]?.array.compactMap { $0["traceID"]?.string.flatMap { UInt64($0.suffix(16), radix: 16) } }
    }

    /// Three traces of `svc` a second apart (trace n starts at t0 + n s, lasts n × 10 ms), one of `other`.
    func searchStore() -> TraceStore {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        for n in UInt64(1)...3 {
            store.insert(
                batch(
                    "svc",
                    [
                        span(
                            n, n, name: n == 2 ? "POST /buy" : "GET /", start: t0 + n * 1_000_000, micros: n * 10_000,
                            attributes: [KeyValue("http.status_code", .int(n == 3 ? 500 : 200)), KeyValue("user", .string("u \(n)"))],
                            status: SpanStatus(code: n == 3 ? .error : .unset))
                    ], attributes: [KeyValue("host.name", .string("h\(n % 2)"))]))
        }
        store.insert(batch("other", [span(4, 4, start: t0 + 4_000_000)]))
        return store
    }

    @Test func searchNewestFirstAndLimit() {
        let store = searchStore()
        #expect(found([("service", "svc")], store) == [3, 2, 1])
        #expect(found([("service", "svc"), ("limit", "2")], store) == [3, 2])
        #expect(found([("service", "svc"), ("limit", "")], store) == [3, 2, 1])
        #expect(found([("service", "other")], store) == [4])
        #expect(found([("service", "none")], store) == [])
        #expect(get("/api/traces", [("service", "none")], store).body == #"{"data":[],"total":0,"limit":0,"offset":0,"errors":null}"#)
    }

    @Test func searchByOperationAndTags() {
        let store = searchStore()
        #expect(found([("service", "svc"), ("operation", "POST /buy")], store) == [2])
        #expect(found([("service", "svc"), ("operation", "")], store) == [3, 2, 1])
        #expect(found([("service", "svc"), ("tags", #"{"http.status_code":"500"}"#)], store) == [3])
        #expect(found([("service", "svc"), ("tags", #"{"error":"true"}"#)], store) == [3])
        #expect(found([("service", "svc"), ("tags", #" {"host.name":"h1","user":"u 1"} "#)], store) == [1])
        #expect(found([("service", "svc"), ("tags", #"{}"#)], store) == [3, 2, 1])
        // Grafana's logfmt form, with a quoted value.
        #expect(found([("service", "svc"), ("tags", #"host.name=h1 user="u 3""#)], store) == [3])
        #expect(found([("service", "svc"), ("tags", "http.status_code=200")], store) == [2, 1])
        // The `tag=key:value` form; a value may hold colons.
        #expect(found([("service", "svc"), ("tag", "host.name:h0")], store) == [2])
        #expect(found([("service", "svc"), ("tag", "user:u:1")], store) == [])
        // A key given twice keeps its last value.
        #expect(found([("service", "svc"), ("tag", "host.name:h0"), ("tags", #"{"host.name":"h1"}"#)], store) == [3, 1])
    }

    @Test func searchByTimeAndDuration() {
        let store = searchStore()
        let s = String(t0 + 2_000_000)
        #expect(found([("service", "svc"), ("start", s)], store) == [3, 2])
        #expect(found([("service", "svc"), ("end", s)], store) == [2, 1])
        #expect(found([("service", "svc"), ("start", s), ("end", s)], store) == [2])
        #expect(found([("service", "svc"), ("minDuration", "20ms")], store) == [3, 2])
        #expect(found([("service", "svc"), ("maxDuration", "0.02s")], store) == [2, 1])
        #expect(found([("service", "svc"), ("minDuration", "15ms"), ("maxDuration", "25000us")], store) == [2])
        #expect(found([("service", "svc"), ("minDuration", "1m")], store) == [])
        // No start: the lookback before `now` (one hour after t0), else two days.
        #expect(found([("service", "svc"), ("lookback", "1h")], store) == [3, 2, 1])
        #expect(found([("service", "svc"), ("lookback", "59m58s")], store) == [3, 2])
        #expect(found([("service", "svc"), ("lookback", "2d")], store) == [3, 2, 1])
        #expect(found([("service", "svc"), ("lookback", "custom")], store) == [3, 2, 1])
        // No end: `now`, so spans from after now are not found.
        store.insert(batch("svc", [span(9, 9, start: now / 1000 + 1)]))
        #expect(found([("service", "svc")], store) == [3, 2, 1])
        #expect(found([("service", "svc"), ("end", String(now / 1000 + 1))], store) == [9, 3, 2, 1])
    }

    @Test func searchByTraceIDs() {
        let store = searchStore()
        let response = get("/api/traces", [("traceID", "a10000000000000002"), ("traceID", "ff"), ("traceID", "a10000000000000001")], store)
        #expect(response.status == 200)
        let json = JSON.parse(response.body)
        #expect(json?["data"]?.array.map { $0["traceID"]?.string } == ["00000000000000a10000000000000002", "00000000000000a10000000000000001"])
        #expect(json?["errors"] == JSON.parse(#"[{"msg":"trace not found","traceID":"00000000000000ff"}]"#))
    }

    @Test func searchParameterErrors() {
        let store = searchStore()
        func error(_ query: [(String, String)]) -> String? {
            let response = get("/api/traces", query, store)
            guard response.status == 400, let json = JSON.parse(response.body) else { return nil }
            #expect(json["data"] == .null)
            #expect(json["errors"]?[0]?["code"]?.number == 400)
            return json["errors"]?[0]?["msg"]?.string
        }
        #expect(error([]) == "parameter 'service' is required")
        #expect(error([("service", "")]) == "parameter 'service' is required")
        #expect(error([("service", "svc"), ("start", "soon")]) == #"unable to parse param 'start': strconv.ParseInt: parsing "soon": invalid syntax"#)
        #expect(
            error([("service", "svc"), ("end", "99999999999999999999")])
                == #"unable to parse param 'end': strconv.ParseInt: parsing "99999999999999999999": value out of range"#)
        #expect(error([("service", "svc"), ("limit", "ten")]) == #"strconv.ParseInt: parsing "ten": invalid syntax"#)
        #expect(error([("service", "svc"), ("minDuration", "5")]) == #"unable to parse param 'minDuration': time: missing unit in duration "5""#)
        #expect(error([("service", "svc"), ("maxDuration", "1d")]) == #"unable to parse param 'maxDuration': time: unknown unit "d" in duration "1d""#)
        #expect(error([("service", "svc"), ("minDuration", "fast")]) == #"unable to parse param 'minDuration': time: invalid duration "fast""#)
        #expect(error([("service", "svc"), ("minDuration", "2s"), ("maxDuration", "1s")]) == "'maxDuration' should be greater than 'minDuration'")
        #expect(error([("service", "svc"), ("lookback", "often")]) == #"unable to parse param 'lookback': time: invalid duration "often""#)
        #expect(error([("service", "svc"), ("tag", "novalue")]) == "malformed 'tag' parameter, expecting key:value, received: novalue")
        #expect(error([("service", "svc"), ("tags", #"{"a":1}"#)]) == #"malformed 'tags' parameter, cannot unmarshal JSON: value of "a" is not a string"#)
        #expect(error([("service", "svc"), ("tags", #"{"a":"b""#)])?.hasPrefix("malformed 'tags' parameter, cannot unmarshal JSON: ") == true)
        #expect(error([("service", "svc"), ("tags", "a")]) == "malformed 'tags' parameter, cannot parse logfmt: expecting key=value, received: a")
        #expect(error([("traceID", "zz")]) == #"cannot parse traceID param: strconv.ParseUint: parsing "zz": invalid syntax"#)
    }

    @Test func goDurations() throws {
        #expect(try GoDuration.parse("0") == 0)
        #expect(try GoDuration.parse("1.5s") == 1_500_000_000)
        #expect(try GoDuration.parse("1h2m3s") == 3_723_000_000_000)
        #expect(try GoDuration.parse(".5ms") == 500_000)
        #expect(try GoDuration.parse("-100us") == -100_000)
        #expect(try GoDuration.parse("7µs") == 7_000)
        #expect(try GoDuration.parse("2d", extraUnits: true) == 172_800_000_000_000)
        #expect(throws: GoDuration.Failure.self) { try GoDuration.parse("") }
        #expect(throws: GoDuration.Failure.self) { try GoDuration.parse(".s") }
        #expect(throws: GoDuration.Failure.self) { try GoDuration.parse("1w") }
    }

    @Test func tagValuesInJSON() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 20)
        let attributes = [
            KeyValue("small", .int(-(1 << 53) + 1)), KeyValue("large", .int(-(1 << 53))), KeyValue("f", .double(1e-7)),
            KeyValue("html", .string("<a href=\"x\">&</a>\n")),
        ]
        store.insert(batch("a", [span(1, 1, kind: .unspecified, attributes: attributes)]))
        let body = get("/api/traces/a10000000000000001", [], store).body
        #expect(
            body.contains(
                minify(
                    #"""
                    "tags":[{"key":"small","type":"int64","value":-9007199254740991},
                    {"key":"large","type":"int64","value":"-9007199254740992"},
                    {"key":"f","type":"float64","value":1e-7},
                    {"key":"html","type":"string","value":"\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e\n"}]
                    """#)))
    }
}
