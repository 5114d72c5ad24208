"""Interop tests for receiver `limits:` (issue 8, "bounded everything").

The real OpenTelemetry Python SDK, with its own span limits raised out of the way, sends a span with
too many attributes and a long multi-byte value; raw OTLP/JSON sends too many events and links. The
`sextant collector` process must write the span cut down to the receiver's limits, with OTLP's
`dropped_*_count` fields raised, and count what it dropped and cut in its self-metrics. A third test
holds `max_connections` connections open and checks the next one is closed on accept while the first
ones keep being served.
"""

from __future__ import annotations

import json
import socket
import time

import requests

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from conftest import read_json_lines
from otlp_assertions import prometheus_samples

CONFIG = """
receivers:
  otlp:
    protocols: {http: {endpoint: "127.0.0.1:$http_port"}}
    limits: {max_attributes: 8, max_attribute_value_length: 64, max_events: 2, max_links: 1, max_connections: 2}
exporters:
  file: {path: $out/traces.jsonl, format: json}
service:
  telemetry: {metrics: {address: "127.0.0.1:$telemetry_port"}}
  pipelines:
    traces: {receivers: [otlp], exporters: [file]}
"""

TIMEOUT = 10.0


def counter(collector, name: str) -> int:
    return int(sum(v for labels, v in prometheus_samples(collector, name) if labels.get("receiver") == "otlp"))


def written_spans(collector, count: int) -> list[dict]:
    """The spans the file exporter wrote, polled (bounded) until `count` are there."""
    path = collector.workdir / "out" / "traces.jsonl"
    deadline = time.monotonic() + TIMEOUT
    while True:
        spans = []
        if path.exists():
            for doc in read_json_lines(path):
                for rs in doc["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        spans += ss["spans"]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def test_sdk_span_over_the_limits_is_cut_and_counted(start_collector):
    collector = start_collector(config_template=CONFIG)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "limits"}),
        span_limits=SpanLimits(max_span_attributes=50, max_attribute_length=None),
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.base_url}/v1/traces", timeout=5)))
    tracer = provider.get_tracer("limits-test")
    long_value = "é" * 100  # 200 UTF-8 bytes: the cut at 64 bytes falls between two scalars
    with tracer.start_as_current_span("oversized") as span:
        span.set_attribute("long", long_value)
        span.set_attribute("odd", "a" + "é" * 40)  # 81 bytes: a cut at 64 would split an "é"
        for i in range(20):
            span.set_attribute(f"k{i:02}", i)
    provider.shutdown()

    [written] = written_spans(collector, 1)
    attrs = {a["key"]: a["value"] for a in written["attributes"]}
    assert list(attrs) == ["long", "odd"] + [f"k{i:02}" for i in range(6)]  # the first 8 are kept
    assert attrs["long"]["stringValue"] == "é" * 32
    assert attrs["odd"]["stringValue"] == "a" + "é" * 31  # 63 bytes: never half a character
    assert written.get("droppedAttributesCount") == 22 - 8
    assert counter(collector, "sextant_receiver_dropped_attributes_total") == 14
    assert counter(collector, "sextant_receiver_truncated_attributes_total") == 2
    collector.stop_cleanly()


def test_raw_json_events_and_links_over_the_limits(start_collector):
    collector = start_collector(config_template=CONFIG)
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    span = {
        "traceId": trace_id, "spanId": span_id, "name": "busy", "kind": 2,
        "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
        "droppedEventsCount": 5,  # what the sender already dropped is kept and added to
        "events": [{"timeUnixNano": str(1000 + i), "name": f"e{i}"} for i in range(5)],
        "links": [{"traceId": trace_id, "spanId": f"{i + 1:016x}"} for i in range(3)],
    }
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [span]}]}]}
    response = requests.post(f"{collector.base_url}/v1/traces", data=json.dumps(body),
                             headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text

    [written] = written_spans(collector, 1)
    assert [e["name"] for e in written["events"]] == ["e0", "e1"]
    assert written["droppedEventsCount"] == 5 + 3
    assert len(written["links"]) == 1 and written["droppedLinksCount"] == 2
    assert counter(collector, "sextant_receiver_dropped_span_events_total") == 3
    assert counter(collector, "sextant_receiver_dropped_span_links_total") == 2
    collector.stop_cleanly()


def http_post(sock: socket.socket, body: bytes) -> bytes:
    """One keep-alive OTLP/JSON POST on a raw socket; returns the status line."""
    head = (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    sock.sendall(head.encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_connection_past_max_connections_is_closed_others_keep_working(start_collector):
    collector = start_collector(config_template=CONFIG)
    empty = json.dumps({"resourceSpans": []}).encode()
    held = [socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT) for _ in range(2)]
    try:
        for s in held:
            assert http_post(s, empty).startswith(b"HTTP/1.1 200")
        extra = socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT)
        try:
            try:
                assert extra.recv(1) == b"", "the connection past the limit must be closed"
            except ConnectionResetError:
                pass  # a reset is a close too
        finally:
            extra.close()
        assert counter(collector, "sextant_receiver_refused_connections_total") == 1
        for s in held:
            assert http_post(s, empty).startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()
    collector.stop_cleanly()
