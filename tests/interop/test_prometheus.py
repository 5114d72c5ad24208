"""Prometheus interop against real peers: Debian's `prometheus` server and `promtool`, the Python
`prometheus_client` OpenMetrics parser and `cramjam`'s Snappy (an independent Rust implementation of
Google's block format).

One Prometheus server (loopback, temp TSDB, 1 s scrape interval, remote-write receiver and exemplar
storage enabled) and one Sextant collector serve the whole module:

    OTLP/JSON ──▶ sextant ──▶ `prometheus` exporter ◀── scraped by Prometheus        (a, c, d)
                         └──▶ `prometheusremotewrite` exporter ──▶ Prometheus /api/v1/write  (b)
    Prometheus (scraping itself) ──remote_write──▶ sextant `prometheusremotewrite` receiver ──▶ file  (e)
    OTLP/JSON ──▶ sextant `otlp/capture` ──▶ `prometheusremotewrite/capture` ──▶ Python capture server (Snappy via cramjam)
"""

from __future__ import annotations

import gzip
import http.server
import json
import shutil
import threading
import subprocess
import time
import struct
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import cramjam
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import Collector, free_port, read_json_lines

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
WAIT = 30.0  # seconds any eventual condition may take (Prometheus start, scrape, remote-write flush)

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"


def wait_for(what: str, probe, timeout: float = WAIT):
    """Polls `probe` until it returns something truthy; fails with `what` and the last value otherwise."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}: last {last!r}")


def get(url: str, headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.headers, r.read()  # case-insensitive header access


def otlp_metrics(now_ns: int) -> dict:
    """OTLP/JSON with a counter, a byte gauge, a millisecond gauge and a histogram with an exemplar."""
    attrs = [{"key": "code", "value": {"stringValue": "200"}}]
    start = now_ns - 60_000_000_000
    return {
        "resourceMetrics": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "shop"}},
                {"key": "service.instance.id", "value": {"stringValue": "pod-1"}},
                {"key": "host.name", "value": {"stringValue": "h1"}},
            ]},
            "scopeMetrics": [{"metrics": [
                {"name": "http.server.requests", "unit": "{request}", "description": "Requests served.",
                 "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
                     {"attributes": attrs, "startTimeUnixNano": str(start), "timeUnixNano": str(now_ns), "asInt": "42"}]}},
                {"name": "queue.size", "unit": "By", "gauge": {"dataPoints": [{"timeUnixNano": str(now_ns), "asDouble": 7.5}]}},
                {"name": "rpc.server.latency", "unit": "ms", "gauge": {"dataPoints": [{"timeUnixNano": str(now_ns), "asDouble": 12.5}]}},
                {"name": "http.server.duration", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [{
                    "startTimeUnixNano": str(start), "timeUnixNano": str(now_ns), "count": "5", "sum": 1.25,
                    "bucketCounts": ["1", "3", "1"], "explicitBounds": [0.1, 1.0],
                    "exemplars": [{"timeUnixNano": str(now_ns), "asDouble": 0.5, "traceId": TRACE_ID, "spanId": SPAN_ID}]}]}},
            ]}],
        }]
    }


def varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def pb_fields(buf: bytes):
    """Minimal protobuf wire reader (encoding guide): yields (field number, wire type, value)."""
    i = 0
    while i < len(buf):
        tag, i = varint(buf, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i : i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        yield field, wire, value


def series_labels(timeseries: bytes) -> dict[str, str]:
    """The labels of an encoded prompb TimeSeries (Label = 1 {name = 1, value = 2})."""
    labels = {}
    for field, _, label in pb_fields(timeseries):
        if field == 1:
            parts = {f: v for f, _, v in pb_fields(label)}
            labels[parts.get(1, b"").decode()] = parts.get(2, b"").decode()
    return labels


def pb_varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def pb_bytes(field: int, payload: bytes) -> bytes:
    return pb_varint(field << 3 | 2) + pb_varint(len(payload)) + payload


def write_request(series: list[tuple[dict[str, str], float, int]]) -> bytes:
    """A prompb WriteRequest: TimeSeries = 1 {Label labels = 1 {name = 1, value = 2}, Sample samples = 2}."""
    out = b""
    for labels, value, ts_ms in series:
        body = b"".join(pb_bytes(1, pb_bytes(1, k.encode()) + pb_bytes(2, v.encode())) for k, v in sorted(labels.items()))
        sample = b"\x09" + struct.pack("<d", value) + b"\x10" + pb_varint(ts_ms)
        out += pb_bytes(1, body + pb_bytes(2, sample))
    return out


class CaptureServer(http.server.ThreadingHTTPServer):
    """Records remote-write POSTs and answers 204, as Prometheus does."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N805
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.requests.append((dict(handler.headers), body))
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Stack:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.prom_port = free_port()
        self.exporter_port = free_port()
        self.receiver_port = free_port()
        self.capture_otlp_port = free_port()
        self.capture = CaptureServer()
        self.process: subprocess.Popen | None = None
        self.collector: Collector | None = None

    @property
    def prom(self) -> str:
        return f"http://127.0.0.1:{self.prom_port}"

    @property
    def exporter(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}/metrics"

    def start_prometheus(self) -> None:
        config = self.workdir / "prometheus.yml"
        config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: sextant
    honor_labels: true
    static_configs: [{{targets: ["127.0.0.1:{self.exporter_port}"]}}]
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{self.prom_port}"]}}]
remote_write:
  - url: http://127.0.0.1:{self.receiver_port}/api/v1/write
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
    write_relabel_configs:
      - {{source_labels: [__name__], regex: "up|prometheus_build_info", action: keep}}
""")
        with open(self.workdir / "prometheus.log", "wb") as log:
            self.process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.prom_port}", "--web.enable-remote-write-receiver",
                 "--enable-feature=exemplar-storage"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for("Prometheus /-/ready", lambda: get(f"{self.prom}/-/ready")[1])

    def start_collector(self) -> None:
        self.collector = Collector(self.workdir / "sextant", file_format="json", config_template=f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:$http_port"}}
  otlp/capture:
    protocols:
      http: {{endpoint: "127.0.0.1:{self.capture_otlp_port}"}}
  prometheusremotewrite: {{endpoint: "127.0.0.1:{self.receiver_port}"}}
exporters:
  prometheusremotewrite/capture:
    endpoint: http://127.0.0.1:{self.capture.server_port}/api/v1/write
  prometheus:
    endpoint: 127.0.0.1:{self.exporter_port}
    enable_open_metrics: true
  prometheusremotewrite:
    endpoint: http://127.0.0.1:{self.prom_port}/api/v1/write
    external_labels: {{source: rw}}
    retry_on_failure: {{initial_interval: 100ms, max_interval: 1s}}
  file:
    path: $out/metrics.jsonl
    format: json
service:
  telemetry:
    metrics: {{address: "127.0.0.1:$telemetry_port"}}
  pipelines:
    metrics/otlp: {{receivers: [otlp], exporters: [prometheus, prometheusremotewrite]}}
    metrics/rw: {{receivers: [prometheusremotewrite], exporters: [file]}}
    metrics/capture: {{receivers: [otlp/capture], exporters: [prometheusremotewrite/capture]}}
""")
        self.collector.workdir.mkdir()
        self.collector.start()

    def query(self, promql: str) -> list[dict]:
        _, body = get(f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        data = json.loads(body)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def stop(self) -> None:
        self.capture.shutdown()
        if self.collector is not None:
            self.collector.kill()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    assert PROMETHEUS and PROMTOOL, "prometheus/promtool missing: scripts/system-deps.sh installs Debian's prometheus package"
    s = Stack(tmp_path_factory.mktemp("prometheus"))
    try:
        s.start_collector()
        s.start_prometheus()
        body = json.dumps(otlp_metrics(time.time_ns())).encode()
        req = urllib.request.Request(f"{s.collector.base_url}/v1/metrics", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
        yield s
    finally:
        s.stop()


def test_prometheus_scrapes_the_exporter(stack):
    """(a) Prometheus scrapes the `prometheus` exporter (OpenMetrics, negotiated) and stores the exact values."""
    wait_for("up{job=sextant} == 1", lambda: stack.value('up{job="sextant"}') == 1)
    assert wait_for("the counter", lambda: stack.value('http_server_requests_total{job="shop",instance="pod-1",code="200",source=""}')) == 42
    assert stack.value('queue_size_bytes{job="shop",source=""}') == 7.5
    assert stack.value('rpc_server_latency_milliseconds{job="shop",source=""}') == 12.5
    buckets = {r["metric"]["le"]: float(r["value"][1]) for r in stack.query('http_server_duration_seconds_bucket{job="shop",source=""}')}
    assert buckets == {"0.1": 1, "1": 4, "+Inf": 5}
    assert stack.value('http_server_duration_seconds_sum{job="shop",source=""}') == 1.25
    assert stack.value('target_info{job="shop",instance="pod-1",source=""}') == 1
    assert stack.query('target_info{source=""}')[0]["metric"]["host_name"] == "h1"
    # The exemplar travelled through OpenMetrics into Prometheus's exemplar storage.
    def exemplars():
        now = time.time()
        _, body = get(f"{stack.prom}/api/v1/query_exemplars?" + urllib.parse.urlencode(
            {"query": 'http_server_duration_seconds_bucket{source=""}', "start": now - 600, "end": now + 60}))
        return [e for series in json.loads(body)["data"] for e in series["exemplars"]]
    found = wait_for("the exemplar", exemplars)
    assert found[0]["labels"] == {"trace_id": TRACE_ID, "span_id": SPAN_ID} and float(found[0]["value"]) == 0.5


def test_remote_write_into_prometheus(stack):
    """(b) The `prometheusremotewrite` exporter writes into Prometheus's receiver; the series read back exactly."""
    assert wait_for("the written counter", lambda: stack.value('http_server_requests_total{source="rw"}')) == 42
    series = stack.query('http_server_requests_total{source="rw"}')[0]["metric"]
    assert series == {"__name__": "http_server_requests_total", "source": "rw", "job": "shop", "instance": "pod-1", "code": "200"}
    buckets = {r["metric"]["le"]: float(r["value"][1]) for r in stack.query('http_server_duration_seconds_bucket{source="rw"}')}
    assert buckets == {"0.1": 1, "1": 4, "+Inf": 5}
    assert stack.value('http_server_duration_seconds_count{source="rw"}') == 5
    assert stack.value('queue_size_bytes{source="rw"}') == 7.5
    assert stack.query('target_info{source="rw"}')[0]["metric"]["host_name"] == "h1"


def test_promtool_lints_only_the_otel_millisecond_name(stack):
    """(c) `promtool check metrics` on the text output. OTel's naming gives unit `ms` the suffix
    `_milliseconds` (as Istio's `istio_request_duration_milliseconds`); promtool's lint prefers base
    units, so that metric — and only it — is reported. Sextant keeps the OTel name."""
    headers, text = get(stack.exporter)
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30)
    findings = (result.stdout + result.stderr).decode().strip().splitlines()
    assert findings == ['rpc_server_latency_milliseconds use base unit "seconds" instead of "milliseconds"'], findings
    without_ms = b"".join(line + b"\n" for line in text.splitlines() if b"rpc_server_latency_milliseconds" not in line)
    clean = subprocess.run([PROMTOOL, "check", "metrics"], input=without_ms, capture_output=True, timeout=30)
    assert clean.returncode == 0 and clean.stdout + clean.stderr == b"", clean


def test_openmetrics_parses_strictly(stack):
    """(d) The OpenMetrics answer (gzip-negotiated) parses with prometheus_client's strict parser."""
    headers, body = get(stack.exporter, {"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"})
    assert headers["Content-Type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert headers["Content-Encoding"] == "gzip"
    families = {f.name: f for f in text_string_to_metric_families(gzip.decompress(body).decode())}
    assert families["http_server_requests"].type == "counter"
    samples = {s.name: s for s in families["http_server_requests"].samples}
    assert samples["http_server_requests_total"].value == 42
    assert samples["http_server_requests_total"].labels == {"code": "200", "job": "shop", "instance": "pod-1"}
    assert "http_server_requests_created" in samples
    hist = families["http_server_duration_seconds"]
    assert hist.type == "histogram" and hist.unit == "seconds"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    assert [(s.labels["le"], s.value) for s in buckets] == [("0.1", 1), ("1", 4), ("+Inf", 5)]
    exemplar = buckets[1].exemplar
    assert exemplar.labels == {"trace_id": TRACE_ID, "span_id": SPAN_ID} and exemplar.value == 0.5
    assert families["queue_size_bytes"].unit == "bytes"
    assert families["target"].type == "info"


def test_prometheus_remote_writes_into_sextant(stack):
    """(e) Prometheus's own remote_write (its `up` and `prometheus_build_info`) reaches the receiver → file."""
    path = stack.collector.workdir / "out" / "metrics.jsonl"

    def names():
        seen = {}
        for record in read_json_lines(path):
            for rm in record["resourceMetrics"]:
                resource = {a["key"]: a["value"]["stringValue"] for a in rm["resource"]["attributes"]}
                for sm in rm["scopeMetrics"]:
                    for m in sm["metrics"]:
                        seen.setdefault((resource.get("service.name"), m["name"]), []).append(m)
        return seen if ("prometheus", "prometheus_build_info") in seen and ("sextant", "up") in seen else None

    def latest(metrics: list[dict]) -> dict:
        """The series' newest point. Each remote-write request is a batch of its own, and the file exporter's
        sending queue has several workers (`num_consumers`), so the last line written need not be the newest."""
        return max((p for m in metrics for p in m["gauge"]["dataPoints"]), key=lambda p: int(p["timeUnixNano"]))

    seen = wait_for("remote-written series in the file exporter", names)
    build_info = latest(seen[("prometheus", "prometheus_build_info")])
    assert build_info["asDouble"] == 1
    assert {a["key"] for a in build_info["attributes"]} >= {"version", "goversion", "revision"}
    assert latest(seen[("sextant", "up")])["asDouble"] == 1


def test_snappy_both_ways_with_cramjam(stack):
    """Snappy interop in both directions with cramjam, on payloads spanning several 64 KiB fragments:
    cramjam inflates the blocks Sextant's exporter sends, and Sextant's receiver inflates cramjam's."""
    n = 3000
    points = [{"attributes": [{"key": "i", "value": {"stringValue": f"{i:05d}"}}, {"key": "pad", "value": {"stringValue": "x" * (i % 50)}}],
               "timeUnixNano": str(time.time_ns()), "asDouble": float(i)} for i in range(n)]
    body = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "interop.gauge", "gauge": {"dataPoints": points}}]}]}]})
    req = urllib.request.Request(f"http://127.0.0.1:{stack.capture_otlp_port}/v1/metrics", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    wait_for("the exporter's request", lambda: stack.capture.requests)
    headers, block = stack.capture.requests[0]
    assert headers["Content-Encoding"] == "snappy" and headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    raw = bytes(cramjam.snappy.decompress_raw(block))
    assert len(raw) > 3 * 65536 and len(block) < len(raw) // 2
    series = [series_labels(ts) for f, _, ts in pb_fields(raw) if f == 1]
    assert sorted(s["i"] for s in series) == [f"{i:05d}" for i in range(n)]
    assert all(s["__name__"] == "interop_gauge" for s in series)

    # The other way: cramjam compresses, Sextant's receiver inflates, the file exporter shows every point.
    message = write_request([({"__name__": "cramjam_gauge", "job": "cramjam", "i": f"{i:05d}", "pad": "y" * (i % 70)}, float(i), 1_000 + i)
                             for i in range(n)])
    compressed = bytes(cramjam.snappy.compress_raw(message))
    req = urllib.request.Request(f"http://127.0.0.1:{stack.receiver_port}/api/v1/write", data=compressed,
                                 headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 204
    path = stack.collector.workdir / "out" / "metrics.jsonl"

    def cramjam_points():
        got = [p for rec in read_json_lines(path) for rm in rec["resourceMetrics"] for sm in rm["scopeMetrics"]
               for m in sm["metrics"] if m["name"] == "cramjam_gauge" for p in m["gauge"]["dataPoints"]]
        return got if len(got) == n else None

    got = wait_for("cramjam's series in the file exporter", cramjam_points)
    assert sorted(float(p["asDouble"]) for p in got) == [float(i) for i in range(n)]

    # A corrupt block is refused with Snappy's reason.
    bad = urllib.request.Request(f"http://127.0.0.1:{stack.receiver_port}/api/v1/write", data=compressed[:-10],
                                 headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=5)
    assert refused.value.code == 400 and b"snappy:" in refused.value.read()
