"""Fault tests 2 and 4 (issue 8). Test 2: the backend is down for 30 s, then back — zero loss, bounded
memory, and the retries visible in the collector's self-metrics. Test 4 (below): a persistent queue full.

`otlp` (HTTP) → `otlphttp` exporter with the default in-memory sending queue and retries with backoff
(1 s initial, 5 s cap). While nothing listens on the exporter's port, records keep arriving and every request
is acknowledged (2xx: the queue took them). After 30 s a strict OTLP/HTTP double (http_double.py, standing in
for an OTLP backend) starts on that port; every acknowledged record ID must then arrive there, the queue must
drain to 0, `sextant_exporter_retries_total` must show the retries, and the collector's RSS must have stayed
bounded during the outage. Everything is on 127.0.0.1; the test ends by itself in about a minute.
"""

from __future__ import annotations

import http.client
import time

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from conftest import free_port
from http_double import StrictHTTPDouble
from otlp_assertions import prometheus_samples

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


def logs_to_otlphttp(sink_port: int, retry: str, queue: str = "", storage_dir=None) -> str:
    """`otlp` (HTTP) → `otlphttp` to the sink's port; `queue`: a `sending_queue` value, `storage_dir`: a
    `file_storage/q` extension (256 KiB, no fsync) for it."""
    extension = f"extensions:\n  file_storage/q: {{directory: {storage_dir}, fsync: false, max_size: 256KiB}}\n" if storage_dir else ""
    return f"""{extension}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:$http_port"}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sink_port}
    compression: none
    timeout: 2s
    retry_on_failure: {retry}
{"    sending_queue: " + queue if queue else ""}
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


def test_backend_down_for_30_seconds_then_back_loses_nothing(start_collector):
    sink_port = free_port()
    collector = start_collector(
        config_template=logs_to_otlphttp(sink_port, "{initial_interval: 1s, max_interval: 5s, max_elapsed_time: 300s}"))
    acknowledged: set[str] = set()
    peak_rss = 0
    conn = http.client.HTTPConnection("127.0.0.1", collector.otlp_port, timeout=10)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < OUTAGE:
        tick = time.monotonic()
        ids = [f"r-{n + i}" for i in range(RECORDS_PER_REQUEST)]
        n += RECORDS_PER_REQUEST
        conn.request("POST", "/v1/logs", request(ids), {"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, f"a request during the outage was answered {response.status}"
        acknowledged.update(ids)
        peak_rss = max(peak_rss, collector.proc_status("VmRSS"))
        time.sleep(max(0.0, 1 / REQUESTS_PER_SECOND - (time.monotonic() - tick)))
    conn.close()
    retries_during_outage = sum(v for _, v in prometheus_samples(collector, "sextant_exporter_retries_total"))
    queued = sum(v for _, v in prometheus_samples(collector, "sextant_exporter_queue_size"))
    assert retries_during_outage > 0, "the exporter never retried while the backend was down"
    assert queued > 0, "nothing was waiting in the queue during the outage"

    sink = StrictHTTPDouble("/v1/logs", {"application/x-protobuf": ids_of}, success=200, count_items=len, port=sink_port)
    try:
        delivered = wait_delivered(sink, acknowledged)
        assert not sink.violations, sink.violations
        deadline = time.monotonic() + 10
        while sum(v for _, v in prometheus_samples(collector, "sextant_exporter_queue_size")) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sum(v for _, v in prometheus_samples(collector, "sextant_exporter_queue_size")) == 0
        failed = sum(v for _, v in prometheus_samples(collector, "sextant_exporter_send_failed_items_total"))
        assert failed == 0, f"{failed} items were given up on"
        assert peak_rss < RSS_CEILING, f"RSS reached {peak_rss / 2**20:.0f} MiB holding {len(acknowledged)} records"
        print(f"\nfault test 2: {len(acknowledged)} records acknowledged during a {OUTAGE:.0f} s outage, all delivered "
              f"({len(delivered)} distinct); {retries_during_outage:.0f} retries; peak RSS {peak_rss / 2**20:.0f} MiB")
    finally:
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
