"""Fault test 1 (issue 8): `kill -9` the collector while records flow into a persistent-queue
pipeline; every record whose request was acknowledged must reach the sink after a restart.

The pipeline is `otlp` (HTTP) + `fluentforward` → `otlphttp` exporter whose `sending_queue` lives in
a `file_storage` extension (fsync on). The sink is a strict OTLP/HTTP double that is slow (and refuses
its first requests with 503) while the first collector runs, so the queue holds a backlog when the
collector is killed. Senders (4 OTLP/HTTP threads, 1 forward thread waiting for `chunk` acks) push
~5k records/s, each record carrying a unique ID, and note the IDs of every request answered 2xx or
acked. Then: SIGKILL mid-stream, restart on the same queue directory, sink made fast, and the oracle
checks that every acknowledged ID arrives. Duplicates (records in flight at the kill) are allowed and
reported. Everything listens on 127.0.0.1 on free ports; the whole test is bounded (< 60 s).
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from string import Template

import msgpack
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from conftest import free_port
from http_double import StrictHTTPDouble
from otlp_assertions import prometheus_samples

SEND_SECONDS = 3.0  # records flow this long; the collector is killed after KILL_AFTER
KILL_AFTER = 2.0
RECORDS_PER_REQUEST = 50
OTLP_SENDERS = 4
TARGET_RATE = 5000  # records/s over all senders
DELIVERY_TIMEOUT = 30.0
ID = re.compile(r"(?:oid|fid)-\d+")

CONFIG = Template("""
extensions:
  file_storage/queue:
    directory: $queue_dir
    fsync: true
    max_size: 256MiB
receivers:
  otlp:
    protocols:
      http: {endpoint: "127.0.0.1:$${http_port}"}
  fluentforward:
    endpoint: 127.0.0.1:$${ff_port}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:$sink_port
    compression: none
    timeout: 2s
    retry_on_failure: {initial_interval: 50ms, max_interval: 500ms, max_elapsed_time: 0s}
    sending_queue: {storage: file_storage/queue, num_consumers: 4}
service:
  extensions: [file_storage/queue]
  telemetry: {metrics: {address: "127.0.0.1:$${telemetry_port}"}}
  pipelines:
    logs:
      receivers: [otlp, fluentforward]
      exporters: [otlphttp]
""")


class Sink:
    """The OTLP/HTTP double behind the exporter, slowed down (and refusing at first) on demand."""

    def __init__(self):
        self.slow = threading.Event()
        self.slow.set()

        def decode(body: bytes) -> list[bytes]:
            request = logs_service_pb2.ExportLogsServiceRequest()
            request.ParseFromString(body)  # the double answers 400 if this raises
            if self.slow.is_set():
                time.sleep(0.2)
            return record_ids(request)

        self.double = StrictHTTPDouble(
            "/v1/logs", {"application/x-protobuf": decode}, success=200, count_items=len, script=[503] * 10)

    @property
    def port(self) -> int:
        return self.double.port

    def delivered_ids(self) -> list[bytes]:
        return [i for ids in self.double.delivered() for i in ids]

    def wait_for(self, wanted: set[bytes], timeout: float) -> set[bytes]:
        """Waits (bounded) until every wanted ID was delivered; returns the ones still missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = wanted - set(self.delivered_ids())
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.1)


def record_ids(request: logs_service_pb2.ExportLogsServiceRequest) -> list[bytes]:
    """The ID of each log record: its string body (OTLP) or the `message` value of its map body (forward)."""
    out = []
    for rl in request.resource_logs:
        for sl in rl.scope_logs:
            for record in sl.log_records:
                strings = [record.body.string_value] + [kv.value.string_value for kv in record.body.kvlist_value.values]
                strings += [kv.value.string_value for kv in record.attributes]
                out += [s.encode() for s in strings if ID.fullmatch(s)]
    return out


def otlp_request(ids: list[str]) -> bytes:
    records = [logs_pb2.LogRecord(time_unix_nano=time.time_ns(), body=common_pb2.AnyValue(string_value=i)) for i in ids]
    request = logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])])
    return request.SerializeToString()


class Senders:
    """Threads pushing uniquely numbered records until stopped or the collector is gone."""

    def __init__(self, http_port: int, ff_port: int):
        self.http_port = http_port
        self.ff_port = ff_port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent: set[bytes] = set()
        self.acknowledged: set[bytes] = set()
        self.refused = 0
        self.errors = 0
        self.next_id = 0
        self.threads = [threading.Thread(target=self.otlp, daemon=True) for _ in range(OTLP_SENDERS)]
        self.threads.append(threading.Thread(target=self.forward, daemon=True))
        # Every thread (forward included) sends RECORDS_PER_REQUEST per request at this pace.
        self.interval = RECORDS_PER_REQUEST * len(self.threads) / TARGET_RATE

    def ids(self, prefix: str) -> list[str]:
        with self.lock:
            first = self.next_id
            self.next_id += RECORDS_PER_REQUEST
        ids = [f"{prefix}-{n}" for n in range(first, first + RECORDS_PER_REQUEST)]
        with self.lock:
            self.sent.update(i.encode() for i in ids)
        return ids

    def acked(self, ids: list[str]) -> None:
        with self.lock:
            self.acknowledged.update(i.encode() for i in ids)

    def pace(self, started: float) -> None:
        delay = self.interval - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)

    def otlp(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
        while not self.stop.is_set():
            started = time.monotonic()
            ids = self.ids("oid")
            try:
                conn.request("POST", "/v1/logs", otlp_request(ids), {"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
                if 200 <= response.status < 300:
                    self.acked(ids)
                else:
                    with self.lock:
                        self.refused += 1
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.errors += 1
                conn.close()
                if self.stop.wait(0.05):
                    return
                conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
            self.pace(started)
        conn.close()

    def forward(self) -> None:
        chunk = 0
        sock = None
        unpacker = msgpack.Unpacker(raw=False)
        while not self.stop.is_set():
            started = time.monotonic()
            ids = self.ids("fid")
            chunk += 1
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.ff_port), timeout=5)
                    unpacker = msgpack.Unpacker(raw=False)
                now = int(time.time())
                frame = ["durable.test", [[now, {"message": i}] for i in ids], {"chunk": f"c{chunk}"}]
                sock.sendall(msgpack.packb(frame, use_bin_type=True))
                reply = None
                while reply is None:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("closed without ack")
                    unpacker.feed(data)
                    for obj in unpacker:
                        reply = obj
                        break
                if reply == {"ack": f"c{chunk}"}:
                    self.acked(ids)
            except OSError:
                with self.lock:
                    self.errors += 1
                if sock is not None:
                    sock.close()
                sock = None
                if self.stop.wait(0.05):
                    return
            self.pace(started)
        if sock is not None:
            sock.close()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.double.stop()


def test_kill_9_loses_no_acknowledged_record(start_collector, sink, tmp_path):
    config = CONFIG.substitute(queue_dir=tmp_path / "queue", sink_port=sink.port)
    first = start_collector(config_template=config, udp_port_names=("ff_port",))
    senders = Senders(first.otlp_port, first.udp_ports["ff_port"])
    senders.start()
    time.sleep(KILL_AFTER)
    first.process.kill()  # SIGKILL: no drain, no flush
    first.process.wait(timeout=10)
    time.sleep(SEND_SECONDS - KILL_AFTER)  # the senders now only see refused connections
    senders.join()
    delivered_before = len(sink.delivered_ids())

    sink.slow.clear()
    second = start_collector(config_template=config, udp_port_names=("ff_port",))
    missing = sink.wait_for(senders.acknowledged, DELIVERY_TIMEOUT)

    delivered = sink.delivered_ids()
    unique = set(delivered)
    duplicates = len(delivered) - len(unique)
    redelivered = sum(v for _, v in prometheus_samples(second, "sextant_exporter_queue_redelivered_items_total"))
    corruptions = sum(v for _, v in prometheus_samples(second, "sextant_exporter_queue_corruptions_total"))
    print(
        f"\nsent {len(senders.sent)} records, acknowledged {len(senders.acknowledged)} "
        f"(refused requests {senders.refused}, connection errors {senders.errors}); "
        f"delivered before the kill {delivered_before}, delivered in all {len(delivered)} "
        f"({len(unique)} unique, {duplicates} duplicates; queue redelivered {int(redelivered)}, "
        f"damaged regions skipped {int(corruptions)})")

    assert not sink.double.violations, sink.double.violations
    assert len(senders.acknowledged) >= 2000, "too few records acknowledged to prove anything"
    assert delivered_before < len(senders.acknowledged), "the kill came after everything was delivered: no backlog"
    assert not missing, f"{len(missing)} acknowledged records never arrived, e.g. {sorted(missing)[:5]}"
    assert unique <= senders.sent, f"invented records: {sorted(unique - senders.sent)[:5]}"
    assert any(i.startswith(b"fid-") for i in senders.acknowledged), "no forward chunk was acknowledged"
    second.stop_cleanly()
