"""Envoy/Istio access logs → OTLP/HTTP → `envoyaccesslog` → `elasticsearch` exporter → a `_bulk` endpoint.

No Elasticsearch server can run here, so the peer is a strict test double of the `_bulk` API written
from Elastic's documentation ("Bulk API"): it refuses anything a real cluster would refuse (wrong
Content-Type, an action line that is not exactly one `create`/`index` object, a missing or unparsable
source line, a body not ending in a newline, invalid index names, `index` into a data stream, missing
auth), inflates gzip bodies, answers `errors`/`items` per document with the documented shape, and adds
the `X-Elastic-Product` header the official client requires (es_double.py). Its answers are scripted: the
first bulk request gets a whole-request 429; documents for `/busy` get 429 and `/unavailable` 503 the first
time they are seen, `/bad` always gets a 400 `document_parsing_exception`; everything else 201.

The official `elasticsearch` Python client is the independent view of the result: `helpers.expand_action`
must produce, for every stored document, the same action line Sextant sent, and `helpers.bulk` replays
the stored documents through the double and must see them all accepted.
"""

from __future__ import annotations

import json
import urllib.request

import requests
from elasticsearch import Elasticsearch, helpers

from conftest import wait_until
from es_double import AUTH, BulkDouble

WAIT = 20.0  # seconds, bound of every wait


START = "2026-11-25T01:02:03.456Z"
START_ISO = "2026-11-25T01:02:03.456000000Z"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def istio_text(path: str, rid: str, code: int = 200, flags: str = "-") -> str:
    return (
        f'[{START}] "GET {path} HTTP/1.1" {code} {flags} via_upstream - "-" 12 345 7 3 "-" "curl/8.5.0" "{rid}" '
        f'"reviews:9080" "10.1.2.3:9080" outbound|9080||reviews.default.svc.cluster.local 10.1.0.5:44312 '
        f"10.96.0.10:9080 10.1.0.5:51234 - default"
    )


def envoy_default(path: str, rid: str) -> str:
    return f'[{START}] "POST {path} HTTP/2" 201 - 154 0 226 100 "10.0.35.28" "grpc-go/1.60" "{rid}" "ratings:9080" "10.1.2.4:9080"'


def istio_json(path: str, rid: str) -> str:
    return json.dumps({
        "start_time": START, "method": "GET", "path": path, "protocol": "HTTP/1.1", "response_code": 503,
        "response_flags": "UO,URX", "bytes_received": 0, "bytes_sent": 91, "duration": 12, "upstream_service_time": None,
        "x_forwarded_for": None, "user_agent": "python-requests/2.32", "request_id": rid, "authority": "details:9080",
        "upstream_host": None, "upstream_cluster": "outbound|9080||details.default.svc.cluster.local",
        "downstream_remote_address": "[fd00::5]:40000", "route_name": None, "traceparent": TRACEPARENT,
    })


def otlp_logs(service: str, lines: list[str]) -> dict:
    return {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"scope": {"name": "envoy"}, "logRecords": [{"body": {"stringValue": line}} for line in lines]}],
    }]}


CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$http_port
processors:
  envoyaccesslog: {}
  batch:
    timeout: 100ms
exporters:
  elasticsearch:
    endpoints: [ES_URL]
    logs_index: "logs-envoy-%{+yyyy.MM.dd}"
    traces_index: sextant-traces
    user: elastic
    password: changeme
    compression: gzip
    flush: {bytes: 1MiB, interval: 200ms}
    num_workers: 2
    retry: {initial_interval: 50ms, max_interval: 200ms, max_retries: 3}
    dead_letter_file: $out/dead-letter.ndjson
service:
  telemetry:
    metrics:
      address: 127.0.0.1:$telemetry_port
  pipelines:
    logs:
      receivers: [otlp]
      processors: [envoyaccesslog, batch]
      exporters: [elasticsearch]
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [elasticsearch]
"""


def metric(collector, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"{collector.telemetry_url}/metrics", timeout=5).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if got == want:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(condition, what: str, detail=lambda: "") -> None:
    wait_until(condition, what, WAIT, detail, interval=0.05)


def test_access_logs_to_bulk_double(start_collector, tmp_path):
    with BulkDouble(expect_gzip=True) as double:
        collector = start_collector(config_template=CONFIG.replace("ES_URL", double.url))
        product = [istio_text("/productpage", "rid-1"), istio_text("/busy", "rid-2", 200), envoy_default("/api/v1/ratings", "rid-3"),
                   istio_text("/bad", "rid-4", 500, "UF,URX"), istio_json("/details/0", "rid-5")]
        reviews = [envoy_default("/unavailable", "rid-6"), istio_text("/bad", "rid-7"), istio_json("/busy", "rid-8"),
                   "not an access log line"]
        body = {"resourceLogs": otlp_logs("productpage", product)["resourceLogs"] + otlp_logs("reviews", reviews)["resourceLogs"]}
        r = requests.post(f"{collector.base_url}/v1/logs", json=body, timeout=10)
        assert r.status_code == 200, r.text
        span = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "productpage"}}]},
                                   "scopeSpans": [{"spans": [{"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7",
                                                              "name": "GET /productpage", "kind": 2, "startTimeUnixNano": "1764032523456000000",
                                                              "endTimeUnixNano": "1764032523463000000",
                                                              "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}]}]}]}]}
        dead_letter = collector.workdir / "out" / "dead-letter.ndjson"
        wait_for(lambda: len(double.stored) == 7 and dead_letter.exists() and len(dead_letter.read_text().splitlines()) == 2,
                 "7 stored log documents and 2 dead letters",
                 lambda: f"stored {len(double.stored)}, statuses {double.statuses}, violations {double.violations}\n{collector.log_tail()}")
        # The span goes in after the logs are settled, so that it does not share their bulk requests.
        r = requests.post(f"{collector.base_url}/v1/traces", json=span, timeout=10)
        assert r.status_code == 200, r.text
        wait_for(lambda: len(double.stored) == 8, "the span document")
        sent = metric(collector, "sextant_exporter_sent_items_total", exporter="elasticsearch", signal="logs")
        failed = metric(collector, "sextant_exporter_send_failed_items_total", exporter="elasticsearch", signal="logs")
        retried = metric(collector, "sextant_elasticsearch_retried_documents_total", exporter="elasticsearch")
        collector.stop_cleanly()

    assert double.violations == []
    # Stored exactly once each: 9 lines, 1 not an access log (still indexed, unparsed), 2 rejected for good.
    logs = [(i, s) for i, s in double.stored if i.startswith("logs-")]
    traces = [(i, s) for i, s in double.stored if i.startswith("sextant-traces")]
    assert len(logs) == 7 and len(traces) == 1
    ids = [s.get("http", {}).get("request", {}).get("id") for _, s in logs]
    assert sorted(filter(None, ids)) == ["rid-1", "rid-2", "rid-3", "rid-5", "rid-6", "rid-8"]
    # Access-log documents are indexed by their START_TIME; the plain line (no time) by the time it was exported.
    assert {i for i, s in logs if "http" in s} == {"logs-envoy-2026.11.25"}
    assert all(i.startswith("logs-envoy-") for i, _ in logs)
    # 9 documents again after the whole-request 429, then the three 429/503 ones.
    assert (sent, failed, retried) == (7, 2, 12)

    # Request sequence: the whole-request 429, then everything again, then only the 429/503 items.
    log_requests = [(pairs, st) for pairs, st in zip(double.requests, double.statuses)
                    if any(next(iter(a.values()))["_index"].startswith("logs-") for a, _ in pairs)]
    assert log_requests[0][1] == 429
    first_items = [s for s in log_requests[1][1]]
    assert sorted(first_items) == sorted([201, 429, 201, 400, 201, 503, 400, 429, 201])
    retried_paths = sorted(s["url"]["path"] for s in (src for a, src in log_requests[2][0]))
    assert retried_paths == ["/busy", "/busy", "/unavailable"]
    assert all(st == 201 for st in log_requests[2][1])
    assert len(log_requests) == 3

    # Dead letters: the two /bad documents, with Elasticsearch's reason.
    dead = [json.loads(line) for line in dead_letter.read_text().splitlines()]
    assert [d["document"]["url"]["path"] for d in dead] == ["/bad", "/bad"]
    assert all(d["status"] == 400 and d["error"]["type"] == "document_parsing_exception" for d in dead)

    by_id = {s["http"]["request"]["id"]: s for _, s in logs if "http" in s and "id" in s["http"].get("request", {})}
    istio = by_id["rid-1"]
    assert istio["@timestamp"] == START_ISO
    assert istio["http"]["request"]["method"] == "GET"
    assert istio["http"]["response"]["status_code"] == 200
    assert istio["url"] == {"path": "/productpage", "domain": "reviews", "port": 9080}
    assert istio["event"]["duration"] == 7_000_000
    assert istio["source"] == {"address": "10.1.0.5", "ip": "10.1.0.5", "port": 51234}
    assert istio["destination"] == {"address": "10.1.2.3", "ip": "10.1.2.3", "port": 9080}
    assert istio["user_agent"]["original"] == "curl/8.5.0"
    assert istio["service"]["name"] == "productpage"
    assert istio["envoy"]["upstream_cluster"] == "outbound|9080||reviews.default.svc.cluster.local"
    assert istio["envoy"]["route_name"] == "default"
    assert istio["message"] == istio_text("/productpage", "rid-1")
    envoy = by_id["rid-3"]
    assert envoy["http"]["version"] == "2" and envoy["http"]["request"]["body"]["bytes"] == 154
    assert envoy["labels"]["http_request_header_x-forwarded-for"] == "10.0.35.28"
    js = by_id["rid-5"]
    assert js["envoy"]["response_flags"] == ["UO", "URX"]
    assert js["trace"]["id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and js["span"]["id"] == "00f067aa0ba902b7"
    assert js["source"] == {"address": "fd00::5", "ip": "fd00::5", "port": 40000}
    assert "upstream_service_time_ms" not in js["envoy"]
    plain = [s for _, s in logs if s["message"] == "not an access log line"]
    assert len(plain) == 1 and "http" not in plain[0]
    span_doc = traces[0][1]
    assert span_doc["trace"]["id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and span_doc["event"]["duration"] == 7_000_000

    # The official client's view: its action for each stored document equals Sextant's, and replaying
    # the documents through the client's bulk helper is accepted in full.
    sextant_actions = {json.dumps(s, sort_keys=True): a for pairs in double.requests for a, s in pairs}
    for index, source in double.stored:
        action, data = helpers.expand_action({"_op_type": "create", "_index": index, "_source": source})
        assert action == sextant_actions[json.dumps(source, sort_keys=True)]
        assert data == source
    stored = list(double.stored)
    with BulkDouble(expect_gzip=False) as replay:
        replay.whole_429_left = 0
        replay.scripted = False
        es = Elasticsearch(replay.url, headers={"Authorization": AUTH}, request_timeout=10)
        ok, errors = helpers.bulk(es, ({"_op_type": "create", "_index": i, "_source": s} for i, s in stored), raise_on_error=False)
        assert ok == len(stored) and errors == []
        assert replay.violations == []
        assert [s for _, s in replay.stored] == [s for _, s in stored]
