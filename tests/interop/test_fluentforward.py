"""Interop tests for Sextant's `fluentforward` receiver and exporter (Fluentd Forward Protocol v1).

Peers:
- Python `fluent-logger` (`FluentSender`, with and without `nanosecond_precision`, i.e. EventTime)
  sends to the receiver as an application would;
- frames built by hand with the `msgpack` library cover every event mode (Message, Forward,
  PackedForward as bin and as str, CompressedPackedForward with two concatenated gzip members),
  `chunk` acks, the TCP and UDP heartbeats, a stream cut at odd byte boundaries, malformed frames, and
  the shared-key handshake (digests computed here with `hashlib`);
- no Fluentd runs here, so the exporter is checked against a strict forward server (forward_double.py) written
  with `msgpack`: it validates every frame (PackedForward shape, bin entry stream, EventTime, option `size`
  and `chunk`, gzip when announced), performs the HELO/PING/PONG handshake itself, answers acks, and
  withholds one ack to prove the exporter resends.
What the receiver accepted is read back from a `file` exporter's OTLP JSON lines.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import struct
import time

import msgpack
import pytest
import requests
from fluent import sender

from conftest import Collector
from forward_double import StrictForwardServer
from otlp_assertions import prometheus_samples

SHARED_KEY = "s3cret"

RECEIVER_CONFIG = """
receivers:
  fluentforward:
    endpoint: 127.0.0.1:$ff_port
    max_message_size: 1MiB
    max_decompressed_size: 4MiB
  fluentforward/secure:
    endpoint: 127.0.0.1:$ff_secure_port
    security: {shared_key: s3cret, self_hostname: sextant-server}
exporters:
  file/logs: {path: $out/logs.jsonl, format: json}
service:
  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}
  pipelines:
    logs:
      receivers: [fluentforward, fluentforward/secure]
      exporters: [file/logs]
"""


@pytest.fixture
def ff(start_collector) -> Collector:
    return start_collector(file_format="json", config_template=RECEIVER_CONFIG, udp_port_names=("ff_port", "ff_secure_port"))


def event_time(t: float) -> msgpack.ExtType:
    sec = int(t)
    return msgpack.ExtType(0, struct.pack(">II", sec, int(round((t - sec) * 1e9))))


def written_logs(collector: Collector) -> list[dict]:
    """Flattened log records from the file exporter: body, attributes (as a dict) and time."""
    out = []
    for doc in collector.records("logs"):
        for rl in doc.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for lr in sl.get("logRecords", []):
                    attrs = {a["key"]: next(iter(a["value"].values()), None) for a in lr.get("attributes", [])}
                    body = lr.get("body", {})
                    out.append({"body": next(iter(body.values()), None) if body else None, "attrs": attrs, "time": int(lr.get("timeUnixNano", "0"))})
    return out


def wait_for_logs(collector: Collector, count: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = written_logs(collector)
        if len(logs) >= count:
            return logs
        time.sleep(0.05)
    pytest.fail(f"expected {count} log records, found {len(written_logs(collector))}:\n{collector.log_tail()}")


def wait_for_counter(collector: Collector, name: str, receiver: str, expected: float = 1, timeout: float = 5.0) -> float:
    """A receiver's counter once it reaches `expected` (the client can see the close before it is counted)."""
    deadline = time.monotonic() + timeout
    while True:
        value = sum(v for labels, v in prometheus_samples(collector, name) if labels.get("receiver") == receiver)
        if value >= expected or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


class Conn:
    """A raw TCP connection speaking msgpack frames."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, obj) -> None:
        self.sock.sendall(msgpack.packb(obj, use_bin_type=True))

    def reply(self):
        """The next msgpack value from the server; None at EOF."""
        while True:
            for obj in self.unpacker:
                return obj
            data = self.sock.recv(65536)
            if not data:
                return None
            self.unpacker.feed(data)

    def close(self) -> None:
        self.sock.close()


def test_fluent_logger_with_and_without_event_time(ff):
    port = ff.udp_ports["ff_port"]
    t0 = time.time()
    for precise in (False, True):
        logger = sender.FluentSender("app", host="127.0.0.1", port=port, nanosecond_precision=precise)
        assert logger.emit("web", {"log": f"hello precise={precise}", "user": "ada", "n": 7, "nested": {"k": [1, 2]}}), logger.last_error
        assert logger.emit_with_time("db", 1700000000.25 if precise else 1700000000, {"message": "query", "ms": 1.5}), logger.last_error
        logger.close()
    logs = wait_for_logs(ff, 4)
    by_body = {l["body"]: l for l in logs}
    hello = by_body["hello precise=True"]
    assert hello["attrs"]["fluent.tag"] == "app.web"
    assert hello["attrs"]["user"] == "ada" and hello["attrs"]["n"] == "7"  # OTLP JSON int64 is a string
    assert hello["attrs"]["nested"] == {"values": [{"key": "k", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "2"}]}}}]}
    assert abs(hello["time"] / 1e9 - t0) < 30
    assert by_body["hello precise=False"]["time"] % 1_000_000_000 == 0  # integer seconds
    queries = sorted(l["time"] for l in logs if l["body"] == "query")
    assert queries == [1700000000_000000000, 1700000000_250000000]
    assert all(l["attrs"]["fluent.tag"] == "app.db" for l in logs if l["body"] == "query")


def test_every_mode_with_acks(ff):
    port = ff.udp_ports["ff_port"]
    c = Conn(port)
    entry = lambda i: [event_time(1700000000 + i + 0.5), {"log": f"e{i}", "i": i}]
    stream = b"".join(msgpack.packb(entry(i), use_bin_type=True) for i in range(3, 6))
    gz = gzip.compress(b"".join(msgpack.packb(entry(i), use_bin_type=True) for i in (6, 7))) + gzip.compress(
        msgpack.packb(entry(8), use_bin_type=True))
    c.send(None)  # TCP heartbeat: accepted silently
    c.send(["m", event_time(1700000000.5), {"log": "e0", "i": 0}, {"chunk": "c-message"}])
    assert c.reply() == {"ack": "c-message"}
    c.send(["f", [entry(1), entry(2)], {"chunk": "c-forward", "size": 2}])
    assert c.reply() == {"ack": "c-forward"}
    c.send(["p", stream, {"chunk": "c-packed-bin", "size": 3}])  # bytes → msgpack bin
    assert c.reply() == {"ack": "c-packed-bin"}
    # PackedForward with the stream as a msgpack str (older clients): pack the raw bytes as str by hand.
    as_str = b"\x93" + msgpack.packb("q") + b"\xdb" + struct.pack(">I", len(stream)) + stream + msgpack.packb({"chunk": "c-packed-str"})
    c.sock.sendall(as_str)
    assert c.reply() == {"ack": "c-packed-str"}
    c.send(["z", gz, {"chunk": "c-gzip", "compressed": "gzip", "size": 3}])
    assert c.reply() == {"ack": "c-gzip"}
    c.close()
    logs = wait_for_logs(ff, 12)
    by_tag: dict[str, list] = {}
    for l in logs:
        by_tag.setdefault(l["attrs"]["fluent.tag"], []).append((l["body"], int(l["attrs"]["i"]), l["time"]))
    expect = lambda tag, ids: sorted((f"e{i}", i, (1700000000 + i) * 1_000_000_000 + 500_000_000) for i in ids)
    assert {tag: sorted(v) for tag, v in by_tag.items()} == {
        "m": expect("m", [0]), "f": expect("f", [1, 2]), "p": expect("p", [3, 4, 5]), "q": expect("q", [3, 4, 5]), "z": expect("z", [6, 7, 8]),
    }


def test_stream_split_at_odd_boundaries_and_udp_heartbeat(ff):
    port = ff.udp_ports["ff_port"]
    frames = b"".join(
        msgpack.packb(["split", [[1700000000 + i, {"log": "x" * (i * 37 % 300), "i": i}] for i in range(j, j + 5)], {"chunk": f"s{j}"}],
                      use_bin_type=True)
        for j in range(0, 50, 5))
    c = Conn(port)
    offset, sizes = 0, [1, 3, 7, 2, 11, 5, 101, 13]
    k = 0
    while offset < len(frames):
        n = sizes[k % len(sizes)]
        c.sock.sendall(frames[offset : offset + n])
        offset += n
        k += 1
        if k % 50 == 0:
            time.sleep(0.002)
    assert [c.reply() for _ in range(10)] == [{"ack": f"s{j}"} for j in range(0, 50, 5)]
    c.close()
    assert sorted(int(l["attrs"]["i"]) for l in wait_for_logs(ff, 50)) == list(range(50))

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"\x00", ("127.0.0.1", port))
        data, _ = u.recvfrom(16)
        assert data == b"\x00"

    # SIGTERM with an idle client connected: the collector closes it and exits 0. (The secure port's
    # HELO proves the connection was accepted, not still in the listen backlog, which the kernel resets.)
    idle = Conn(ff.udp_ports["ff_secure_port"])
    assert idle.reply()[0] == "HELO"
    ff.stop_cleanly()
    assert idle.reply() is None
    idle.close()


@pytest.mark.parametrize("bad", [
    b"\x93\xa1t\xc1",                                   # 0xc1 is never valid msgpack
    b"\x92\xa1t\xc4\x03\x92\x01\x81",                   # PackedForward stream ends inside an entry
    b"\x93\xa1t\xdb\xff\xff\xff\xff",                   # str32 claiming 4 GiB (over max_message_size)
    b"\x92\x01\x02",                                    # tag is not a string
    msgpack.packb(["t", gzip.compress(b"\x90" * (8 << 20)), {"compressed": "gzip", "chunk": "bomb"}]),  # gzip bomb
])
def test_bad_frames_close_only_their_connection(ff, bad):
    port = ff.udp_ports["ff_port"]
    good = Conn(port)
    good.send(["good", 1700000000, {"log": "before"}, {"chunk": "g1"}])
    assert good.reply() == {"ack": "g1"}
    b = Conn(port)
    b.sock.sendall(bad)
    assert b.reply() is None  # closed, nothing acked
    b.close()
    good.send(["good", 1700000001, {"log": "after"}, {"chunk": "g2"}])
    assert good.reply() == {"ack": "g2"}
    good.close()
    assert sorted(l["body"] for l in wait_for_logs(ff, 2)) == ["after", "before"]
    assert wait_for_counter(ff, "sextant_receiver_malformed_frames_total", "fluentforward") == 1


@pytest.mark.parametrize("key,ok", [(SHARED_KEY, True), ("wrong-key", False)])
def test_shared_key_handshake(ff, key, ok):
    c = Conn(ff.udp_ports["ff_secure_port"])
    helo = c.reply()
    assert helo[0] == "HELO" and len(helo[1]["nonce"]) == 16 and helo[1]["auth"] == b""
    nonce = helo[1]["nonce"]
    salt = os.urandom(16)
    digest = hashlib.sha512(salt + b"py-client" + nonce + key.encode()).hexdigest()
    c.send(["PING", "py-client", salt, digest, "", ""])
    pong = c.reply()
    assert pong[0] == "PONG" and pong[1] is ok and pong[3] == "sextant-server"
    if ok:
        assert pong[4] == hashlib.sha512(salt + b"sextant-server" + nonce + key.encode()).hexdigest()
        c.send(["sec", 1700000000, {"log": "authenticated"}, {"chunk": "a1"}])
        assert c.reply() == {"ack": "a1"}
        assert wait_for_logs(ff, 1)[0]["body"] == "authenticated"
    else:
        assert pong[2] == "shared_key mismatch"
        assert c.reply() is None
        assert wait_for_counter(ff, "sextant_receiver_auth_failures_total", "fluentforward/secure") == 1
    c.close()


EXPORTER_CONFIG = """
receivers:
  otlp:
    protocols:
      http: {endpoint: 127.0.0.1:$http_port}
exporters:
  fluentforward:
    endpoint: 127.0.0.1:$server_port
    tag: sextant.test
    require_ack: true
    compress_gzip: $gzip
    connection_timeout: 2s
    $security
    timeout: 1s
    retry_on_failure: {initial_interval: 100ms, max_interval: 200ms, randomization_factor: 0}
    sending_queue: {num_consumers: 1}
service:
  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [fluentforward]
"""


def post_logs(collector: Collector, bodies: list[str]) -> None:
    doc = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                             "scopeLogs": [{"logRecords": [
                                 {"timeUnixNano": str(1700000000_000000000 + i), "body": {"stringValue": b},
                                  "attributes": [{"key": "i", "value": {"intValue": str(i)}}]}
                                 for i, b in enumerate(bodies)]}]}]}
    r = requests.post(f"{collector.base_url}/v1/logs", json=doc, timeout=5)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("gzip_on,shared_key", [(False, None), (True, "k3y")])
def test_exporter_sends_packed_forward_and_resends_without_ack(start_collector, gzip_on, shared_key):
    server = StrictForwardServer(shared_key=shared_key, withhold_acks=1)
    try:
        security = f"shared_key: {shared_key}\n    self_hostname: sextant-client" if shared_key else ""
        template = EXPORTER_CONFIG.replace("$server_port", str(server.port)).replace("$gzip", str(gzip_on).lower()).replace("$security", security)
        collector = start_collector(config_template=template)
        post_logs(collector, ["alpha", "beta", "gamma"])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(server.chunks) < 2:
            time.sleep(0.05)
        assert not server.errors, server.errors
        assert len(server.chunks) == 2, f"expected the chunk and its resend, got {len(server.chunks)}:\n{collector.log_tail()}"
        first, resend = server.chunks
        assert first["events"] == resend["events"] and first["option"]["chunk"] != "" and server.connections >= 2
        assert first["tag"] == "sextant.test" and (first["option"].get("compressed") == "gzip") == gzip_on
        events = first["events"]
        assert [r["log"] for _, r in events] == ["alpha", "beta", "gamma"]
        assert events[1][0] == (1700000000, 1)  # EventTime: seconds, nanoseconds
        assert events[1][1] == {"log": "beta", "i": 1, "service.name": "svc"}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sent = sum(v for labels, v in prometheus_samples(collector, "sextant_exporter_sent_items_total")
                       if labels.get("exporter") == "fluentforward" and labels.get("signal") == "logs")
            if sent == 3:
                break
            time.sleep(0.05)
        assert sent == 3
        collector.stop_cleanly()
    finally:
        server.stop()


def test_proxy_access_log_reaches_the_receiver(ff, tmp_path):
    """`sextant proxy`'s Fluentd access logger (`envoyFluentdAccessLog`) pointed at this receiver, as a mesh
    would point it at a collector: each request becomes one log record tagged as configured, its fields
    attributes (numbers as integers), its time the request's start."""
    from proxy_support import Proxy, Upstream, mesh_config, service_entry  # noqa: PLC0415

    app = Upstream("v1")
    mesh = service_entry("reviews", [(app, {"version": "v1"})]) + mesh_config(f"""
extensionProviders:
- name: fluentd
  envoyFluentdAccessLog: {{service: 127.0.0.1, port: {ff.udp_ports["ff_port"]}, tag: istio.access, bufferFlushInterval: 100ms}}
defaultProviders: {{accessLogging: [fluentd]}}
""")
    proxy = Proxy(tmp_path, mesh).start()
    try:
        t0 = time.time()
        ids = []
        for i in range(4):
            status, _, body = proxy.request("reviews.default.svc.cluster.local:9080", f"/reviews/{i}")
            assert status == 200
            ids.append(body["headers"]["x-request-id"])
        logs = wait_for_logs(ff, 4)
    finally:
        proxy.stop()
        app.stop()
    by_id = {l["attrs"]["request_id"]: l for l in logs}
    assert sorted(by_id) == sorted(ids)
    first = by_id[ids[0]]["attrs"]
    assert first["fluent.tag"] == "istio.access" and first["path"] == "/reviews/0" and first["method"] == "GET"
    assert first["response_code"] == "200" and first["upstream_cluster"] == "outbound|9080||reviews.default.svc.cluster.local"
    assert all(abs(l["time"] / 1e9 - t0) < 30 and l["time"] % 1_000_000_000 != 0 for l in logs)
