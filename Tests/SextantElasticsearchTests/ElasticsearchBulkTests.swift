import SextantElasticsearch
import Testing

@Suite struct ElasticsearchBulkTests {
    @Test func bodyPairsActionAndSourceLines() {
        let items = [
            ElasticsearchBulk.Item(index: "logs-a", source: Array(#"{"message":"x"}"#.utf8)),
            ElasticsearchBulk.Item(index: "logs-\"b\"", source: Array(#"{"message":"y\nz"}"#.utf8)),
        ]
        let body = String(decoding: ElasticsearchBulk.body(items, action: .create), as: UTF8.self)
        #expect(
            body
                == "{\"create\":{\"_index\":\"logs-a\"}}\n{\"message\":\"x\"}\n{\"create\":{\"_index\":\"logs-\\\"b\\\"\"}}\n{\"message\":\"y\\nz\"}\n")
        let index = String(decoding: ElasticsearchBulk.body(items.prefix(1), action: .index), as: UTF8.self)
        #expect(index == "{\"index\":{\"_index\":\"logs-a\"}}\n{\"message\":\"x\"}\n")
        #expect(ElasticsearchBulk.body([ElasticsearchBulk.Item](), action: .create).isEmpty)
    }

    @Test func responseMatrix() throws {
        // The shape Elasticsearch answers (reference "Bulk API" response body), one item per status class.
        let body = #"""
            {"took":30,"errors":true,"items":[
             {"create":{"_index":"logs-a","_id":"1","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
             {"create":{"_index":"logs-a","_id":"2","status":400,"error":{"type":"document_parsing_exception","reason":"[1:42] failed to parse field [http.response.status_code] of type [long]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"abc\""}}}},
             {"create":{"_index":"logs-a","_id":"3","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}},
             {"index":{"_index":"logs-a","_id":"4","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}},
             {"create":{"_index":"logs-a","_id":"5","status":409,"error":{"type":"version_conflict_engine_exception","reason":"document already exists"}}},
             {"index":{"_index":"logs-a","_id":"6","status":200,"result":"updated"}}
            ]}
            """#
        let r = try ElasticsearchBulk.parseResponse(Array(body.utf8))
        #expect(r.map(\.status) == [201, 400, 429, 503, 409, 200])
        #expect(r.map(\.succeeded) == [true, false, false, false, false, true])
        #expect(r[1].errorType == "document_parsing_exception")
        #expect(r[1].errorReason == "[1:42] failed to parse field [http.response.status_code] of type [long]")
        #expect(r[2].errorType == "es_rejected_execution_exception")
        #expect(r[0].errorReason == nil)
    }

    @Test(arguments: [
        "",
        "[]",
        #"{"took":1,"errors":false}"#,
        #"{"items":[{"create":{"_index":"a"}}]}"#,
        #"{"items":[{}]}"#,
        #"{"items":[{"create":{"status":201},"index":{"status":201}}]}"#,
        #"{"items":[{"create":{"status":99999}}]}"#,
        #"{"items":[{"create":{"status":201}}]"#,
        #"{"items":[{"create":{"status":201}}]} x"#,
    ])
    func malformedResponses(_ body: String) {
        #expect(throws: ElasticsearchBulk.ResponseError.self) { try ElasticsearchBulk.parseResponse(Array(body.utf8)) }
    }

    @Test func stringErrorsAndEmptyItems() throws {
        #expect(try ElasticsearchBulk.parseResponse(Array(#"{"errors":false,"items":[]}"#.utf8)).isEmpty)
        let r = try ElasticsearchBulk.parseResponse(Array(#"{"items":[{"delete":{"status":404,"error":"not found"}}]}"#.utf8))
        #expect(r == [ElasticsearchBulk.ItemResult(status: 404, errorReason: "not found")])
    }

    @Test func indexTemplates() throws {
        let t = try IndexNameTemplate.parse("logs-%{+yyyy.MM.dd}").get()
        #expect(t.hasDate)
        #expect(t.render(unixNano: 1_606_339_578_409_000_000) == "logs-2020.11.25")
        let h = try IndexNameTemplate.parse("envoy-%{+yy-MM}-x-%{+dd_HH}").get()
        #expect(h.render(unixNano: 1_606_339_578_409_000_000) == "envoy-20-11-x-25_21")
        let plain = try IndexNameTemplate.parse("logs-generic-default").get()
        #expect(!plain.hasDate && plain.render(unixNano: 0) == "logs-generic-default")
        for bad in ["Logs", "logs-%{+yyyy.MM.dd", "logs-%{host}", "logs-%{+yyyy/MM}", "_logs", "a b", "a:b", "", ".."] {
            guard case .failure = IndexNameTemplate.parse(bad) else {
                Issue.record("'\(bad)' accepted")
                continue
            }
        }
    }
}
