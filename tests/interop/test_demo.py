"""`sextant demo` end to end: one request through the Bookinfo mesh's ingress gateway, seen everywhere.

The demo runs as the README tells a newcomer to run it (`sextant demo` on `pipelines/default.yaml` and the
mesh in `pipelines/mesh/`), with two changes so it can run beside anything else on this machine: every port
of the collector is moved to a free one by an overlay config, and the mesh's ports start at a free base
port. No traffic generator (`--rate 0`): the test sends its own requests.

A request for `/productpage` as user jason (routed to reviews v2, which calls ratings) crosses four service
hops: gateway → productpage → details, productpage → reviews-v2 → ratings, every hop over mutual TLS with the
demo's mesh CA. The test checks that it yields:
- one trace in the collector's Jaeger query API with eight spans (a client and a server span per hop) whose
  parent/child structure follows the calls, under Istio's service names;
- `istio_requests_total` +1 for each hop at both reporters (`source` at the caller's proxy, `destination` at
  the callee's), with source and destination workloads and `response_code="200"`, the callee's series naming both
  SPIFFE principals and `connection_security_policy="mutual_tls"`; and the same series in the
  collector's Prometheus endpoint, which scrapes the proxies;
- one access-log line per proxy-side of each hop (eight) in the proxies' JSON access-log files and, sent over
  OTLP by the proxies and parsed by the collector, eight ECS documents in the file the default pipeline
  writes, all with the test's `x-request-id` and the trace's ID.
The Bookinfo apps forward only the headers Istio asks applications to propagate (checked in
`Tests/SextantDemoTests`), so the trace holds together only because the proxies stitch it.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo_support import Demo, get, wait_for

# (source workload, destination workload, destination service name) of each hop of jason's request.
HOPS = [
    ("istio-ingressgateway", "productpage-v1", "productpage"),
    ("productpage-v1", "details-v1", "details"),
    ("productpage-v1", "reviews-v2", "reviews"),
    ("reviews-v2", "ratings-v1", "ratings"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo"))
    try:
        yield d.start()
    finally:
        d.stop()


def requests_total(text: str) -> dict[tuple, float]:
    """`istio_requests_total` samples keyed by (reporter, source_workload, destination_workload,
    destination_service_name, response_code)."""
    out: dict[tuple, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "istio_requests":
            continue
        for s in family.samples:
            if s.name != "istio_requests_total":
                continue
            k = (s.labels["reporter"], s.labels["source_workload"], s.labels["destination_workload"],
                 s.labels["destination_service_name"], s.labels["response_code"])
            out[k] = out.get(k, 0) + s.value
    return out


def proxy_counts(demo: Demo) -> dict[str, dict[tuple, float]]:
    return {w: requests_total(get(f"http://{addr}/stats/prometheus")[1].decode()) for w, addr in demo.admins.items()}


def dotted(doc: dict, path: str):
    """A field of an ECS document, flat (`a.b`) or nested (`{"a": {"b": ...}}`)."""
    if path in doc:
        return doc[path]
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def test_one_request_through_the_gateway_is_traced_counted_and_logged(demo):
    before = proxy_counts(demo)
    rid = f"e2e-{uuid.uuid4()}"
    status, body = get(f"{demo.gateway}/productpage", {"Host": "bookinfo.example.com", "end-user": "jason", "x-request-id": rid})
    assert status == 200
    assert b"reviews-v2" in body and b'"color":"black"' in body, body[:400]

    # Trace: eight spans, one client and one server span per hop, in the call structure.
    query = urllib.parse.urlencode({"service": "istio-ingressgateway.istio-system", "tags": json.dumps({"guid:x-request-id": rid})})

    def trace():
        data = json.loads(get(f"http://127.0.0.1:{demo.ports['jaeger']}/api/traces?{query}")[1])["data"]
        assert len(data) == 1, f"{len(data)} traces"
        assert len(data[0]["spans"]) >= 8, f"{len(data[0]['spans'])} spans so far"
        return data[0]

    t = wait_for("the trace of the request in the Jaeger query API", trace)
    assert len(t["spans"]) == 8, [s["operationName"] for s in t["spans"]]
    procs = {pid: p["serviceName"] for pid, p in t["processes"].items()}
    spans = {s["spanID"]: s for s in t["spans"]}
    trace_ids = {s["traceID"] for s in t["spans"]}
    assert len(trace_ids) == 1
    trace_id = trace_ids.pop()

    def tags(s):
        return {tag["key"]: tag["value"] for tag in s["tags"]}

    def parent(s):
        refs = [r for r in s.get("references", []) if r["refType"] == "CHILD_OF"]
        return spans[refs[0]["spanID"]] if refs else None

    def one(service, kind, host):
        found = [s for s in spans.values() if procs[s["processID"]] == service and tags(s).get("span.kind") == kind
                 and s["operationName"] == f"{host}.default.svc.cluster.local:9080/*"]
        assert len(found) == 1, (service, kind, host, [(procs[s["processID"]], s["operationName"], tags(s).get("span.kind")) for s in spans.values()])
        return found[0]

    gw = one("istio-ingressgateway.istio-system", "client", "productpage")
    pp_server = one("productpage.default", "server", "productpage")
    pp_details = one("productpage.default", "client", "details")
    pp_reviews = one("productpage.default", "client", "reviews")
    details = one("details.default", "server", "details")
    reviews = one("reviews.default", "server", "reviews")
    rv_ratings = one("reviews.default", "client", "ratings")
    ratings = one("ratings.default", "server", "ratings")
    assert parent(gw) is None
    assert parent(pp_server) is gw
    assert parent(pp_details) is pp_server and parent(pp_reviews) is pp_server
    assert parent(details) is pp_details and parent(reviews) is pp_reviews
    assert parent(rv_ratings) is reviews and parent(ratings) is rv_ratings
    for s in spans.values():
        tg = tags(s)
        assert tg["guid:x-request-id"] == rid and tg["http.status_code"] == "200" and tg["component"] == "proxy", tg
    assert tags(reviews)["istio.canonical_service"] == "reviews"

    # Metrics: +1 for every hop at both reporters, exactly, and nothing else changed.
    after = proxy_counts(demo)
    for src, dst, svc in HOPS:
        for reporter, proxy in (("source", src), ("destination", dst)):
            key = (reporter, src, dst, svc, "200")
            delta = after[proxy].get(key, 0) - before[proxy].get(key, 0)
            assert delta == 1, (proxy, key, delta, after[proxy])
    total_delta = sum(sum(after[p].values()) - sum(before[p].values()) for p in after)
    assert total_delta == 2 * len(HOPS), total_delta

    # Mutual TLS between every pair of proxies (mesh CA, PeerAuthentication STRICT, auto mTLS): the
    # destination reporters see the caller's SPIFFE identity and `mutual_tls`.
    sa = {"istio-ingressgateway": "istio-system/sa/istio-ingressgateway-service-account"} | {
        w: f"default/sa/bookinfo-{w.rsplit('-', 1)[0]}" for w in ["productpage-v1", "details-v1", "reviews-v2", "ratings-v1"]}
    for src, dst, _ in HOPS:
        text = get(f"http://{demo.admins[dst]}/stats/prometheus")[1].decode()
        series = [s.labels for f in text_string_to_metric_families(text) if f.name == "istio_requests" for s in f.samples
                  if s.name == "istio_requests_total" and s.labels["reporter"] == "destination" and s.labels["source_workload"] == src]
        assert series, (src, dst)
        for labels in series:
            assert labels["connection_security_policy"] == "mutual_tls", labels
            assert labels["source_principal"] == f"spiffe://cluster.local/ns/{sa[src]}", labels
            assert labels["destination_principal"] == f"spiffe://cluster.local/ns/{sa[dst]}", labels

    # The same series reach the collector's Prometheus endpoint, scraped from the proxies.
    def scraped():
        series = requests_total(get(f"http://127.0.0.1:{demo.ports['prom']}/metrics")[1].decode())
        seen = {(r, s, d) for (r, s, d, _, code) in series if code == "200"}
        want = {(r, s, d) for s, d, _ in HOPS for r in ("source", "destination")}
        assert want <= seen, want - seen
        return True

    wait_for("istio_requests_total of every hop in the collector's /metrics", scraped)

    # Access logs: one JSON line per proxy side of each hop, in the proxies' own files...
    def file_lines():
        lines = []
        for f in (demo.out / "demo" / "logs").glob("*.log"):
            for line in f.read_text().splitlines():
                entry = json.loads(line)
                if entry["request_id"] == rid:
                    lines.append((f.stem, entry))
        assert len(lines) >= 8, len(lines)
        return lines

    lines = wait_for("eight access-log lines in the proxies' files", file_lines)
    assert len(lines) == 8, [(w, e["authority"]) for w, e in lines]
    assert sorted(w for w, _ in lines) == sorted(
        ["istio-ingressgateway", "productpage-v1", "productpage-v1", "productpage-v1", "details-v1", "reviews-v2", "reviews-v2", "ratings-v1"])
    assert all(e["response_code"] == 200 and e["response_flags"] == "-" for _, e in lines)

    # ...and as ECS documents: sent by the proxies over OTLP (envoyOtelAls), parsed by the collector's
    # envoyaccesslog processor, written by the default pipeline's `file/logs` (format: ecs).
    def ecs_docs():
        path = demo.out / "logs.ecs.ndjson"
        docs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
        mine = [d for d in docs if dotted(d, "http.request.id") == rid]
        assert len(mine) >= 8, len(mine)
        return mine

    docs = wait_for("eight ECS access-log documents from the collector", ecs_docs)
    assert len(docs) == 8
    assert {dotted(d, "trace.id") for d in docs} == {trace_id}
    assert {dotted(d, "http.response.status_code") for d in docs} == {200}
    # The log records carry the span of their hop: each ECS document's span.id is one of the trace's spans.
    assert {dotted(d, "span.id") for d in docs} == set(spans), "access-log span IDs differ from the trace's spans"


def test_sidecars_refuse_plain_text(demo):
    """PeerAuthentication STRICT: a client without the mesh's certificate cannot reach an app behind its
    sidecar's inbound listener, though the gateway (which holds one) can."""
    import http.client  # noqa: PLC0415

    ip, port = demo.pod_network + ".11", demo.base + 100 + 1  # productpage-v1's inbound listener
    conn = http.client.HTTPConnection(ip, port, timeout=5)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
        conn.request("GET", "/productpage", headers={"Host": "productpage:9080"})
        conn.getresponse().read()
    conn.close()
    assert get(f"{demo.gateway}/productpage", {"Host": "bookinfo.example.com"})[0] == 200


def test_demo_stops_cleanly_on_sigint(demo):
    """Ctrl-C stops the collector, the proxies, the apps and the traffic generator; exit status 0.
    (Last in this module: it stops the module's demo.)"""
    code = demo.stop()
    assert code == 0, demo.log_path.read_text(errors="replace")[-3000:]
    text = demo.log_path.read_text(errors="replace")
    assert "sextant demo stopped" in text, text[-3000:]
