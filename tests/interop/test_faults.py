"""Fault tests 2, 3, 4 and 5 (issue 8): the promise is at-least-once delivery — every record the collector
acknowledged reaches every exporter of its pipeline — through backend outages, partial refusals, a full
queue and a slow backend. Every test keeps an oracle of the record IDs it got a 2xx for, runs on 127.0.0.1
and bounds its own duration.

Test 2: three backends are down for 30 s at once, then come back on the same ports: an OTLP/HTTP backend (a
strict OTLP double, http_double.py), Elasticsearch (a strict `_bulk` double, es_double.py — no
Elasticsearch server can run here) and a real Prometheus server (Debian's `prometheus` with
`--web.enable-remote-write-receiver`). Records keep arriving during the outage and every request is
acknowledged (the queues take them); afterwards every acknowledged record is in each backend, the queues
drain to 0, the retries show in the self-metrics, and RSS stayed bounded.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import zlib

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

from conftest import free_port, wait_until
from es_double import AUTH, BulkDouble
from http_double import StrictHTTPDouble
from otlp_assertions import prometheus_samples

PROMETHEUS = shutil.which("prometheus")
OUTAGE = 30.0
RECORDS_PER_REQUEST = 100
REQUESTS_PER_SECOND = 20  # 2,000 records/s for the whole outage: 60,000 records queued
RSS_CEILING = 400 * 1024 * 1024


def request(ids: list[str]) -> bytes:
    records = [logs_pb2.LogRecord(time_unix_nano=time.time_ns(), body=common_pb2.AnyValue(string_value=i)) for i in ids]
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]).SerializeToString()


def ids_of(body: bytes) -> list[str]:
    r = logs_service_pb2.ExportLogsServiceRequest()
    r.ParseFromString(body)
    return [rec.body.string_value for rl in r.resource_logs for sl in rl.scope_logs for rec in sl.log_records]


def metrics_request(batch: int, total: int) -> bytes:
    """Two series per request: `fault_batch_records{batch="N"}` (a new series per request, value 100) and
    the counter `fault_records` (one series, cumulative, so its samples must reach Prometheus in time order)."""
    now = time.time_ns()
    gauge = metrics_pb2.Metric(name="fault_batch_records", gauge=metrics_pb2.Gauge(data_points=[metrics_pb2.NumberDataPoint(
        time_unix_nano=now, as_int=RECORDS_PER_REQUEST,
        attributes=[common_pb2.KeyValue(key="batch", value=common_pb2.AnyValue(string_value=str(batch)))])]))
    counter = metrics_pb2.Metric(name="fault_records", sum=metrics_pb2.Sum(
        is_monotonic=True, aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
        data_points=[metrics_pb2.NumberDataPoint(time_unix_nano=now, start_time_unix_nano=now - 3_600_000_000_000, as_int=total)]))
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[gauge, counter])])]).SerializeToString()


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> int:
    conn.request("POST", path, body, {"Content-Type": "application/x-protobuf"})
    response = conn.getresponse()
    response.read()
    return response.status


OTLP_HTTP_RECEIVER = """receivers:
  otlp:
    protocols:
      http: {endpoint: "127.0.0.1:$http_port"}
"""


def otlphttp_exporter(sink_port: int, retry: str, queue: str = "") -> str:
    """An `otlphttp` exporter block (indented under `exporters:`) to the sink's port."""
    return f"""  otlphttp:
    endpoint: http://127.0.0.1:{sink_port}
    compression: none
    timeout: 2s
    retry_on_failure: {retry}
{"    sending_queue: " + queue if queue else ""}
"""


def logs_to_otlphttp(sink_port: int, retry: str, queue: str = "", storage_dir=None) -> str:
    """`otlp` (HTTP) → `otlphttp` to the sink's port; `queue`: a `sending_queue` value, `storage_dir`: a
    `file_storage/q` extension (256 KiB, no fsync) for it."""
    extension = f"extensions:\n  file_storage/q: {{directory: {storage_dir}, fsync: false, max_size: 256KiB}}\n" if storage_dir else ""
    return f"""{extension}
{OTLP_HTTP_RECEIVER}
exporters:
{otlphttp_exporter(sink_port, retry, queue)}
service:
{"  extensions: [file_storage/q]" if storage_dir else ""}
  telemetry: {{metrics: {{address: "127.0.0.1:$telemetry_port"}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [otlphttp]}}
"""


def wait_delivered(sink: StrictHTTPDouble, acknowledged: set[str], timeout: float = 60) -> set[str]:
    """Waits (bounded) until every acknowledged ID reached the sink; returns what it received."""
    deadline = time.monotonic() + timeout
    delivered: set[str] = set()
    while time.monotonic() < deadline:
        delivered = {i for batch in sink.delivered() for i in batch}
        if acknowledged <= delivered:
            break
        time.sleep(0.2)
    missing = acknowledged - delivered
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged records never arrived"
    return delivered


def total(collector, name: str, **labels) -> float:
    return sum(v for l, v in prometheus_samples(collector, name) if all(l.get(k) == x for k, x in labels.items()))


class PrometheusServer:
    """Debian's Prometheus as a remote-write receiver on a fixed loopback port, started when asked."""

    def __init__(self, workdir, port: int):
        self.workdir, self.port, self.process = workdir, port, None

    def start(self) -> None:
        (self.workdir / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
        self.log = open(self.workdir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.workdir / 'prometheus.yml'}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir)

    def query(self, promql: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.loads(r.read())
        assert data["status"] == "success", data
        return data["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        try:
            result = self.query(promql)
        except OSError:
            return None
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.log.close()


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus is installed by scripts/system-deps.sh")
def test_backends_down_for_30_seconds_then_back_lose_nothing(start_collector, tmp_path):
    """Fault test 2 (see the module docstring)."""
    sink_port, es_port, prom_port = free_port(), free_port(), free_port()
    retry = "{initial_interval: 1s, max_interval: 5s, max_elapsed_time: 300s}"
    collector = start_collector(config_template=f"""
{OTLP_HTTP_RECEIVER}
exporters:
{otlphttp_exporter(sink_port, retry)}
  elasticsearch:
    endpoints: [http://127.0.0.1:{es_port}]
    logs_index: fault-logs
    user: elastic
    password: changeme
    timeout: 2s
    flush: {{bytes: 1MiB}}
    retry: {{initial_interval: 1s, max_interval: 5s, max_retries: 60}}
    sending_queue: {{queue_size: 200000}}
  prometheusremotewrite:
    endpoint: http://127.0.0.1:{prom_port}/api/v1/write
    timeout: 2s
    retry_on_failure: {retry}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:$telemetry_port"}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [otlphttp, elasticsearch]}}
    metrics: {{receivers: [otlp], exporters: [prometheusremotewrite]}}
""")
    acknowledged: set[str] = set()
    batches = 0
    peak_rss = 0
    conn = http.client.HTTPConnection("127.0.0.1", collector.otlp_port, timeout=10)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < OUTAGE:
        tick = time.monotonic()
        ids = [f"r-{n + i}" for i in range(RECORDS_PER_REQUEST)]
        status = post(conn, "/v1/logs", request(ids))
        assert status == 200, f"a logs request during the outage was answered {status}"
        acknowledged.update(ids)
        n += RECORDS_PER_REQUEST
        status = post(conn, "/v1/metrics", metrics_request(batches, n))
        assert status == 200, f"a metrics request during the outage was answered {status}"
        batches += 1
        peak_rss = max(peak_rss, collector.proc_status("VmRSS"))
        time.sleep(max(0.0, 1 / REQUESTS_PER_SECOND - (time.monotonic() - tick)))
    conn.close()
    retries = {e: total(collector, "sextant_exporter_retries_total", exporter=e) for e in ("otlphttp", "prometheusremotewrite")}
    retries["elasticsearch"] = total(collector, "sextant_elasticsearch_retried_documents_total")
    assert all(v > 0 for v in retries.values()), f"an exporter never retried while its backend was down: {retries}"
    assert total(collector, "sextant_exporter_queue_size") > 0, "nothing was waiting in the queues during the outage"

    sink = StrictHTTPDouble("/v1/logs", {"application/x-protobuf": ids_of}, success=200, count_items=len, port=sink_port)
    es = BulkDouble(expect_gzip=False, scripted=False, port=es_port)
    prometheus = PrometheusServer(tmp_path, prom_port)
    try:
        es.__enter__()
        prometheus.start()
        delivered = wait_delivered(sink, acknowledged)
        assert not sink.violations, sink.violations
        wait_until(lambda: {s["message"] for _, s in es.stored} >= acknowledged, "every record in the Elasticsearch double", 60,
                   lambda: f"({len(es.stored)} stored)")
        assert es.violations == [], es.violations
        indexed = [s["message"] for _, s in es.stored]
        wait_until(lambda: prometheus.scalar("count(fault_batch_records)") == batches, f"{batches} batch series in Prometheus", 60,
                   lambda: f"(has {prometheus.scalar('count(fault_batch_records)')})")
        assert prometheus.scalar("sum(fault_batch_records)") == len(acknowledged)
        # One series written in time order: every sample stored, none refused as out of order.
        assert prometheus.scalar("count_over_time(fault_records_total[10m])") == batches
        assert prometheus.scalar("max_over_time(fault_records_total[10m])") == len(acknowledged)
        wait_until(lambda: total(collector, "sextant_exporter_queue_size") == 0, "the queues to drain", 10)
        failed = total(collector, "sextant_exporter_send_failed_items_total")
        assert failed == 0, f"{failed} items were given up on"
        assert peak_rss < RSS_CEILING, f"RSS reached {peak_rss / 2**20:.0f} MiB holding {len(acknowledged)} records"
        print(f"\nfault test 2: {len(acknowledged)} log records and {2 * batches} metric points acknowledged during a "
              f"{OUTAGE:.0f} s outage of all three backends, all delivered (OTLP {len(delivered)} distinct, Elasticsearch "
              f"{len(indexed)} documents / {len(set(indexed))} distinct, Prometheus {batches} + {batches} samples); "
              f"retries {retries}; peak RSS {peak_rss / 2**20:.0f} MiB")
    finally:
        sink.stop()
        es.__exit__(None, None, None)
        prometheus.stop()


def test_elasticsearch_per_item_429_retries_only_those(start_collector):
    """Fault test 3: the Elasticsearch double answers a per-item 429 (`es_rejected_execution_exception`) the
    first time it sees one document in ten; only those documents are sent again, and the final count is
    exact — every record indexed exactly once."""
    es = BulkDouble(expect_gzip=True, scripted=False, reject_first=lambda doc: zlib.crc32(doc["message"].encode()) % 10 == 0)
    with es:
        collector = start_collector(config_template=f"""
{OTLP_HTTP_RECEIVER}
processors:
  batch: {{timeout: 100ms, send_batch_size: 2000}}
exporters:
  elasticsearch:
    endpoints: [{es.url}]
    logs_index: fault-logs
    user: elastic
    password: changeme
    compression: gzip
    flush: {{bytes: 512KiB}}
    retry: {{initial_interval: 50ms, max_interval: 500ms, max_retries: 5}}
    sending_queue: {{}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:$telemetry_port"}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: [batch], exporters: [elasticsearch]}}
""")
        acknowledged: list[str] = []
        conn = http.client.HTTPConnection("127.0.0.1", collector.otlp_port, timeout=10)
        for r in range(200):
            ids = [f"p-{r}-{i}" for i in range(RECORDS_PER_REQUEST)]
            assert post(conn, "/v1/logs", request(ids)) == 200
            acknowledged += ids
        conn.close()
        wait_until(lambda: total(collector, "sextant_exporter_sent_items_total", exporter="elasticsearch") >= len(acknowledged),
                   "every document indexed", 60, lambda: f"({len(es.stored)} stored)")
        indexed = [s["message"] for _, s in es.stored]
        retried = total(collector, "sextant_elasticsearch_retried_documents_total")
        refused_once = sum(1 for i in acknowledged if zlib.crc32(i.encode()) % 10 == 0)
        assert es.violations == []
        assert sorted(indexed) == sorted(acknowledged), "a record was lost or indexed twice"
        assert es.item_429s == refused_once and retried == refused_once, (es.item_429s, retried, refused_once)
        resent = [s["message"] for pairs in es.requests for _, s in pairs]
        assert len(resent) == len(acknowledged) + refused_once, "documents other than the refused ones were sent again"
        assert total(collector, "sextant_exporter_send_failed_items_total") == 0
        print(f"\nfault test 3: {len(acknowledged)} records, {refused_once} answered 429 once and retried alone; "
              f"{len(indexed)} indexed, {len(set(indexed))} distinct; {len(es.requests)} bulk requests")


SLOW_LIMIT_MIB = 160
SLOW_SPIKE_MIB = 40
SLOW_SECONDS = 120


def test_slow_exporter_for_minutes_stays_under_memory_limit(start_collector):
    """Fault test 5: for two minutes the backend takes 1 s per request while senders push as fast as they
    can. The exporter's in-memory queue is sized far beyond the memory budget (2 M items), so only
    `memory_limiter` (limit 160 MiB, spike 40 MiB) stands between the load and the process's memory: RSS,
    sampled every 100 ms, must stay under the limit; the surplus is refused with 429 (never 500); once the
    backend is fast again, requests are accepted again and every acknowledged record arrives."""
    sink = StrictHTTPDouble("/v1/logs", {"application/x-protobuf": ids_of}, success=200, count_items=len)
    sink.delay = 1.0
    collector = start_collector(config_template=f"""
{OTLP_HTTP_RECEIVER}
processors:
  memory_limiter: {{check_interval: 100ms, limit_mib: {SLOW_LIMIT_MIB}, spike_limit_mib: {SLOW_SPIKE_MIB}}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sink.port}
    compression: none
    timeout: 10s
    retry_on_failure: {{initial_interval: 1s, max_interval: 2s, max_elapsed_time: 0s}}
    sending_queue: {{queue_size: 2000000, num_consumers: 2}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:$telemetry_port"}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlphttp]}}
""")
    acknowledged: set[str] = set()
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    peak = [0]

    def sender(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", collector.otlp_port, timeout=30)
        n = 0
        while not stop.is_set():
            ids = [f"s{k}-{n}-{i}" for i in range(1000)]  # ~1000 records, ~30 KB per request
            n += 1
            status = post(conn, "/v1/logs", request(ids))
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    acknowledged.update(ids)
            if status == 429:
                time.sleep(0.05)

    def sampler() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], collector.proc_status("VmRSS"))
            time.sleep(0.1)

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(3)]
    threads.append(threading.Thread(target=sampler, daemon=True))
    try:
        for t in threads:
            t.start()
        time.sleep(SLOW_SECONDS)
        stop.set()
        for t in threads:
            t.join(timeout=40)
        assert collector.process.poll() is None, "the collector died"
        assert set(statuses) <= {200, 429}, f"answers other than 200/429: {statuses}"
        assert statuses.get(429, 0) > 0, f"memory_limiter never refused anything: {statuses}"
        assert peak[0] < SLOW_LIMIT_MIB * 2**20, f"RSS reached {peak[0] / 2**20:.0f} MiB (limit {SLOW_LIMIT_MIB} MiB)"
        refused_items = total(collector, "sextant_processor_memory_limiter_refused_items_total")
        sink.delay = 0.0
        wait_delivered(sink, acknowledged, timeout=120)
        conn = http.client.HTTPConnection("127.0.0.1", collector.otlp_port, timeout=10)
        wait_until(lambda: post(conn, "/v1/logs", request(["after"])) == 200, "requests accepted again", 30)
        conn.close()
        print(f"\nfault test 5: {SLOW_SECONDS} s of a 1 s/request backend: answers {statuses}, {len(acknowledged)} records "
              f"acknowledged and all delivered, {refused_items:.0f} items refused by memory_limiter; peak RSS "
              f"{peak[0] / 2**20:.0f} MiB (limit {SLOW_LIMIT_MIB} MiB, soft {SLOW_LIMIT_MIB - SLOW_SPIKE_MIB} MiB)")
    finally:
        stop.set()
        sink.stop()


def test_full_queue_refuses_with_429_and_recovers(start_collector, tmp_path):
    """Fault test 4 (issue 8), with a size cap as the full disk: a persistent queue of 256 KiB in front of a
    backend that is down. Once the queue is full, requests get 429 (never 500) after `block_timeout`, the
    collector keeps serving, and nothing it acknowledged is lost or damaged: when the backend comes back the
    queue drains, new requests are accepted again, and every acknowledged record arrives."""
    sink_port = free_port()
    collector = start_collector(config_template=logs_to_otlphttp(
        sink_port, "{initial_interval: 200ms, max_interval: 1s, max_elapsed_time: 0s}",
        queue="{storage: file_storage/q, when_full: block, block_timeout: 500ms}", storage_dir=tmp_path / "queue"))
    acknowledged: set[str] = set()
    statuses: dict[int, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", collector.otlp_port, timeout=10)
    n = 0

    def send() -> int:
        nonlocal n
        ids = [f"q-{n + i}" for i in range(RECORDS_PER_REQUEST)]
        n += RECORDS_PER_REQUEST
        conn.request("POST", "/v1/logs", request(ids), {"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status == 200:
            acknowledged.update(ids)
        return response.status

    deadline = time.monotonic() + 30
    refused = 0
    while time.monotonic() < deadline and refused < 3:
        status = send()
        assert status in (200, 429), f"answered {status} while the queue filled up"
        refused += status == 429
    assert refused == 3, f"the 256 KiB queue never filled: {statuses}"
    assert acknowledged, "nothing was accepted before the queue was full"
    assert collector.process.poll() is None

    sink = StrictHTTPDouble("/v1/logs", {"application/x-protobuf": ids_of}, success=200, count_items=len, port=sink_port)
    try:
        deadline = time.monotonic() + 30
        accepted_again = False
        while time.monotonic() < deadline and not accepted_again:
            accepted_again = send() == 200
            time.sleep(0.2)
        assert accepted_again, f"never accepted again once the backend was back: {statuses}"
        wait_delivered(sink, acknowledged, timeout=30)
        corruptions = sum(v for _, v in prometheus_samples(collector, "sextant_exporter_queue_corruptions_total"))
        assert corruptions == 0
        print(f"\nfault test 4: {statuses} — {len(acknowledged)} acknowledged, all delivered after the backend returned")
    finally:
        conn.close()
        sink.stop()
