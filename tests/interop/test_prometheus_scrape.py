"""The `prometheus` receiver scraping real Prometheus peers; what arrives downstream (a `file` exporter
writing OTLP JSON) is checked type by type and value by value.

    Python app (prometheus_client: counter, gauge, histogram, summary, info, enum)
        /om   OpenMetrics 1.0 (prometheus_client.openmetrics.exposition)  ─┐
        /text text format 0.0.4 (prometheus_client.generate_latest)       ─┤
    Debian's `prometheus` server, its own /metrics (client_golang)         ─┼─▶ sextant `prometheus` ─▶ file (OTLP JSON)
    a malformed target (line 2 has no value)                               ─┘

(a) the app's families in both formats, (b) Prometheus' own metrics (types for every family; values of
the stable ones), (c) the malformed target is `up` 0 while the others are `up` 1.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port

PROMETHEUS = shutil.which("prometheus")
WAIT = 25.0


def make_registry() -> CollectorRegistry:
    """A fixed set of instruments; values never change after this, so every scrape sees the same numbers."""
    registry = CollectorRegistry()
    requests = Counter("requests", "Requests served.", ["method"], registry=registry)
    requests.labels("GET").inc(3)
    requests.labels("POST").inc(1.5)
    Gauge("temperature_celsius", "Room temperature.", registry=registry, unit="celsius").set(21.5)
    latency = Histogram("latency_seconds", "Latency.", buckets=[0.1, 0.5, 1.0], registry=registry)
    for v in (0.05, 0.3, 0.3, 2.0):
        latency.observe(v)
    payload = Summary("payload_bytes", "Payload sizes.", registry=registry)
    payload.observe(100)
    payload.observe(300)
    Info("build", "Build information.", registry=registry).info({"version": "1.2.3", "commit": "abc"})
    Enum("state", "Lifecycle state.", states=["starting", "running", "stopped"], registry=registry).state("running")
    return registry


class App(http.server.ThreadingHTTPServer):
    """Serves one registry as OpenMetrics on /om and as the text format on /text; /bad is malformed."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.accepts: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805
                self.accepts.append(handler.headers.get("Accept", ""))
                if handler.path == "/om":
                    body, ctype = openmetrics.generate_latest(self.registry), openmetrics.CONTENT_TYPE_LATEST
                elif handler.path == "/text":
                    body, ctype = generate_latest(self.registry), "text/plain; version=0.0.4; charset=utf-8"
                elif handler.path == "/bad":
                    body, ctype = b"# TYPE broken gauge\nbroken{code=\"200\"}\n", "text/plain; version=0.0.4"
                else:
                    handler.send_error(404)
                    return
                handler.send_response(200)
                handler.send_header("Content-Type", ctype)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def app():
    server = App(make_registry())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """Debian's Prometheus on a free loopback port with a temp TSDB; yields its host:port."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (scripts/system-deps.sh)")
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1m}\nscrape_configs: []\n")
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}")
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("prometheus not ready")
    yield f"127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    log.close()


CONFIG = """
receivers:
  prometheus:
    config:
      scrape_configs:
        - {job_name: app-om, scrape_interval: 1s, scrape_timeout: 900ms, metrics_path: /om, static_configs: [{targets: ["%(app)s"], labels: {team: core}}]}
        - {job_name: app-text, scrape_interval: 1s, metrics_path: /text, static_configs: [{targets: ["%(app)s"]}]}
        - {job_name: prom, scrape_interval: 1s, static_configs: [{targets: ["%(prom)s"]}]}
        - {job_name: bad, scrape_interval: 1s, metrics_path: /bad, static_configs: [{targets: ["%(app)s"]}]}
exporters:
  file:
    path: $out/metrics.jsonl
    format: json
service:
  telemetry:
    metrics: {address: "127.0.0.1:$telemetry_port"}
  pipelines:
    metrics: {receivers: [prometheus], exporters: [file]}
"""


def attrs(point_or_resource: dict) -> dict[str, object]:
    out = {}
    for kv in point_or_resource.get("attributes", []):
        v = kv["value"]
        out[kv["key"]] = next(iter(v.values())) if v else None
    return out


def collect(path: Path) -> dict[str, dict[str, list[tuple[str, dict]]]]:
    """job → metric name → [(kind, metric JSON)] over every record written so far."""
    jobs: dict[str, dict[str, list[tuple[str, dict]]]] = {}
    if not path.exists():
        return jobs
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]  # the exporter may be mid-line
    for record in (json.loads(line) for line in complete.split("\n") if line.strip()):
        for rm in record.get("resourceMetrics", []):
            job = attrs(rm.get("resource", {})).get("service.name")
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    kind = next(k for k in ("sum", "gauge", "histogram", "summary", "exponentialHistogram") if k in m)
                    jobs.setdefault(job, {}).setdefault(m["name"], []).append((kind, m))
    return jobs


def points(metric: dict) -> list[dict]:
    kind = next(k for k in ("sum", "gauge", "histogram", "summary") if k in metric)
    return metric[kind].get("dataPoints", [])


def value(point: dict) -> float:
    return float(point["asDouble"]) if "asDouble" in point else float(point.get("asInt", 0))


@pytest.fixture(scope="module")
def scraped(app, prometheus, tmp_path_factory):
    """Runs the collector until every job has been scraped at least twice; returns the collected output."""
    from conftest import Collector  # the same process management as the rest of the suite

    collector = Collector(tmp_path_factory.mktemp("sextant"), "json", config_template=CONFIG % {"app": app.address, "prom": prometheus})
    collector.start()
    try:
        path = collector.workdir / "out" / "metrics.jsonl"
        deadline = time.monotonic() + WAIT
        jobs: dict = {}
        while time.monotonic() < deadline:
            jobs = collect(path)
            if all(len(jobs.get(j, {}).get("up", [])) >= 2 for j in ("app-om", "app-text", "prom", "bad")):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"not every job scraped twice within {WAIT}s: {sorted(jobs)}\n{collector.log_tail()}")
        yield jobs, collector.log_tail(200)
    finally:
        collector.stop()
        collector.kill()


def last(jobs: dict, job: str, name: str) -> tuple[str, dict]:
    assert name in jobs[job], f"{name} missing from {job}: {sorted(jobs[job])}"
    return jobs[job][name][-1]


def by_attr(metric: dict, key: str) -> dict[str, dict]:
    return {attrs(p).get(key): p for p in points(metric)}


def test_openmetrics_app_type_by_type(scraped, app):
    jobs, _ = scraped
    assert any(a.startswith("application/openmetrics-text;version=1.0.0;q=0.75") for a in app.accepts)
    kind, m = last(jobs, "app-om", "requests_total")
    assert kind == "sum" and m["sum"]["isMonotonic"] and m["sum"]["aggregationTemporality"] == 2
    assert m["description"] == "Requests served."
    pts = by_attr(m, "method")
    assert value(pts["GET"]) == 3.0 and value(pts["POST"]) == 1.5
    assert attrs(pts["GET"])["team"] == "core" and "job" not in attrs(pts["GET"])
    # Start time from `requests_created` (seconds → ns, microsecond precision).
    assert int(pts["GET"]["startTimeUnixNano"]) > 1_600_000_000 * 10**9
    assert int(pts["GET"]["startTimeUnixNano"]) <= int(pts["GET"]["timeUnixNano"])

    kind, m = last(jobs, "app-om", "temperature_celsius")
    assert kind == "gauge" and value(points(m)[0]) == 21.5 and m["unit"] == "Cel"

    kind, m = last(jobs, "app-om", "latency_seconds")
    assert kind == "histogram" and m["histogram"]["aggregationTemporality"] == 2
    p = points(m)[0]
    assert p["explicitBounds"] == [0.1, 0.5, 1.0]
    assert [int(c) for c in p["bucketCounts"]] == [1, 2, 0, 1]
    assert int(p["count"]) == 4 and p["sum"] == pytest.approx(2.65)

    kind, m = last(jobs, "app-om", "payload_bytes")
    assert kind == "summary"
    p = points(m)[0]
    assert int(p["count"]) == 2 and p["sum"] == 400.0

    kind, m = last(jobs, "app-om", "build_info")
    assert kind == "sum" and not m["sum"].get("isMonotonic", False)
    assert {k: v for k, v in attrs(points(m)[0]).items() if k in ("version", "commit")} == {"version": "1.2.3", "commit": "abc"}

    kind, m = last(jobs, "app-om", "state")
    assert kind == "sum" and not m["sum"].get("isMonotonic", False)
    assert {k: value(p) for k, p in by_attr(m, "state").items()} == {"starting": 0.0, "running": 1.0, "stopped": 0.0}

    # Counters keep their start time across scrapes (no reset: the values never decrease).
    starts = {p["startTimeUnixNano"] for _, m in jobs["app-om"]["requests_total"] for p in points(m) if attrs(p)["method"] == "GET"}
    assert len(starts) == 1


def test_text_format_app_matches_its_exposition(scraped, app):
    jobs, _ = scraped
    # Every family of the text exposition (parsed by prometheus_client's own parser) arrives with its
    # type and values: counters as monotonic sums, histograms, summaries, gauges (incl. info/enum,
    # which the text format exposes as gauges, and the `_created` gauges).
    expected_kind = {"counter": "sum", "gauge": "gauge", "histogram": "histogram", "summary": "summary"}
    text = generate_latest(app.registry).decode()
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        if family.type == "info":
            name = family.name + "_info"
        kind, m = last(jobs, "app-text", name)
        want = expected_kind.get(family.type, "gauge")
        assert kind == want, f"{name}: {kind} != {want}"
        if kind in ("sum", "gauge"):
            got = {tuple(sorted((k, v) for k, v in attrs(p).items())): value(p) for p in points(m)}
            for s in family.samples:
                key = tuple(sorted(s.labels.items()))
                assert got[key] == pytest.approx(s.value), f"{name}{s.labels}"
    _, m = last(jobs, "app-text", "latency_seconds")
    assert [int(c) for c in points(m)[0]["bucketCounts"]] == [1, 2, 0, 1]


def test_prometheus_server_own_metrics(scraped, prometheus):
    jobs, _ = scraped
    with urllib.request.urlopen(f"http://{prometheus}/metrics", timeout=5) as r:
        text = r.read().decode()
    families = list(text_string_to_metric_families(text))
    assert len(families) > 50
    expected_kind = {"counter": "sum", "gauge": "gauge", "histogram": "histogram", "summary": "summary", "unknown": "gauge"}
    got = jobs["prom"]
    checked = 0
    for family in families:
        name = family.name
        if family.type == "counter" and name + "_total" in got:
            name += "_total"
        if name not in got:
            # Families created between our reference fetch and the collector's scrapes are fine; the bulk must match.
            continue
        kind = got[name][-1][0]
        assert kind == expected_kind[family.type], f"{name}: {kind} != {expected_kind[family.type]}"
        checked += 1
    assert checked > 0.9 * len(families)
    _, m = last(jobs, "prom", "prometheus_config_last_reload_successful")
    assert value(points(m)[0]) == 1.0
    _, m = last(jobs, "prom", "prometheus_build_info")
    assert attrs(points(m)[0])["version"].startswith("2.42")
    _, m = last(jobs, "prom", "go_gc_duration_seconds")
    assert [q.get("quantile", 0.0) for q in points(m)[0]["quantileValues"]]  # proto3 JSON omits 0 == [0.0, 0.25, 0.5, 0.75, 1.0]
    _, m = last(jobs, "prom", "prometheus_http_request_duration_seconds")
    assert points(m)[0]["explicitBounds"][:3] == [0.1, 0.2, 0.4]


def test_malformed_target_is_down_and_others_unaffected(scraped):
    jobs, log = scraped
    for job in ("app-om", "app-text", "prom"):
        assert all(value(points(m)[0]) == 1.0 for _, m in jobs[job]["up"]), job
    assert all(value(points(m)[0]) == 0.0 for _, m in jobs["bad"]["up"])
    assert "broken" not in jobs["bad"]
    assert "line 2" in log and "missing value" in log
