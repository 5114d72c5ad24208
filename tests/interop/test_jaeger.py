"""Interop tests for Sextant's `jaeger` receiver (thrift_http, UDP thrift_compact and thrift_binary) and
its `jaeger_thrift` exporter.

Independent peers on every side:
- `jaeger-client` (the Python Jaeger tracer) reports to the compact UDP port as it would to a
  jaeger-agent; its reporter is wrapped to keep the thrift `Batch` it sent;
- a `Batch` built with the thrift types jaeger-client ships (`jaeger_client.thrift_gen.jaeger.ttypes`)
  and serialised by the `thrift` library goes to thrift_http (TBinaryProtocol body) and, as an
  `Agent.emitBatch` message, to both UDP ports (TBinaryProtocol and TCompactProtocol);
- raw bytes cover what no client sends: truncated thrift, list lengths past the end, garbage;
- a strict Jaeger collector test double (http.server, because no Jaeger runs here) receives what the
  `jaeger_thrift` exporter sends and decodes it with `thrift` TBinaryProtocol into the same ttypes.
What the `file` exporter (format: proto) wrote is decoded with `opentelemetry-proto`.

The mapping is the OTel Collector's (contrib `pkg/translator/jaeger`) and the specification's
(`specification/trace/sdk_exporters/jaeger.md`): traceIdHigh/Low ↔ the 128-bit trace ID (i64 are
signed on the wire), parentSpanId or the first same-trace CHILD_OF reference ↔ parent, other
references ↔ links with `opentracing.ref_type`, logs ↔ events (name from the `event` field), tags
`span.kind`/`error`/`otel.status_code`/`w3c.tracestate`/`otel.scope.*` ↔ span fields, process ↔ resource.
"""

from __future__ import annotations

import socket
import struct
import time

import opentracing
import pytest
import requests
from jaeger_client import Config as JaegerConfig
from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger import ttypes
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport import TTransport

from opentelemetry.exporter.otlp.proto.http import Compression as HTTPCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from conftest import Collector
from http_double import StrictHTTPDouble
from otlp_assertions import (
    decode_output,
    exporter_counters,
    flat_spans,
    per_signal,
    prometheus_samples,
    span_summary,
    wait_for_accepted,
    wait_for_exporter,
)
from sdk_scenario import (
    CHARGE,
    CONSUME,
    LINKED_SPAN,
    LINKED_TRACE,
    MS,
    PUBLISH,
    QUERY,
    REMOTE_PARENT,
    ROOT,
    T0,
    TRACE_A,
    TRACE_B,
    send_traces,
)

TIMEOUT = 10  # seconds: every request and wait in this module is bounded by it
NO_RETRY_WINDOW = 0.6  # seconds watched for an unwanted retry: 6× the configured initial_interval
U64 = (1 << 64) - 1

RECEIVER_CONFIG = """\
receivers:
  jaeger:
    protocols:
      thrift_http:
        endpoint: 127.0.0.1:$http_port
      thrift_compact:
        endpoint: 127.0.0.1:$compact_port
      thrift_binary:
        endpoint: 127.0.0.1:$binary_port
exporters:
  file:
    path: $out/traces.bin
    format: proto
service:
  telemetry:
    metrics:
      address: 127.0.0.1:$telemetry_port
  pipelines:
    traces:
      receivers: [jaeger]
      exporters: [file]
"""


@pytest.fixture
def jaeger_collector(start_collector) -> Collector:
    return start_collector(config_template=RECEIVER_CONFIG, udp_port_names=("compact_port", "binary_port"))


def signed(u: int) -> int:
    """A u64 as thrift's i64 carries it."""
    return u - (1 << 64) if u >= 1 << 63 else u


def trace_hex(high: int, low: int) -> str:
    return f"{((high & U64) << 64) | (low & U64):032x}"


def span_hex(i64: int) -> str:
    return f"{i64 & U64:016x}"


def binary_bytes(struct_value) -> bytes:
    buffer = TTransport.TMemoryBuffer()
    struct_value.write(TBinaryProtocol.TBinaryProtocol(buffer))
    return buffer.getvalue()


def emit_batch_datagram(batch: ttypes.Batch, protocol: str) -> bytes:
    """An `Agent.emitBatch` oneway message, as a jaeger-agent client puts it in one datagram: what
    jaeger-client's generated `Agent.Client.send_emitBatch` writes (its Client needs a tornado
    transport, so the same calls are made here on a memory buffer)."""
    buffer = TTransport.TMemoryBuffer()
    oprot = {"binary": TBinaryProtocol.TBinaryProtocol, "compact": TCompactProtocol.TCompactProtocol}[protocol](buffer)
    oprot.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 0)
    Agent.emitBatch_args(batch=batch).write(oprot)
    oprot.writeMessageEnd()
    return buffer.getvalue()


def send_datagram(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ("127.0.0.1", port))


def post_batch(collector: Collector, body: bytes) -> requests.Response:
    return requests.post(
        f"{collector.base_url}/api/traces", data=body, headers={"Content-Type": "application/x-thrift"}, timeout=TIMEOUT
    )


def written(collector: Collector) -> dict[str, dict]:
    """Stops the collector (it must exit 0); what the file exporter wrote, by span name."""
    collector.stop_cleanly()
    spans = [span_summary(*entry) for entry in flat_spans(decode_output(collector, "traces", TracesData))]
    by_name = {s["name"]: s for s in spans}
    assert len(by_name) == len(spans), f"span names repeat: {sorted(s['name'] for s in spans)}"
    return by_name


def accepted(collector: Collector, count: int, transport: str) -> int:
    return wait_for_accepted(collector, {"traces": count}, transport=transport, receiver="jaeger")["traces"]


def refused(collector: Collector) -> int:
    return per_signal(collector, "sextant_receiver_refused_items_total", receiver="jaeger").get("traces", 0)


def malformed_datagrams(collector: Collector) -> int:
    return int(sum(v for labels, v in prometheus_samples(collector, "sextant_receiver_malformed_datagrams_total")
                   if labels.get("receiver") == "jaeger"))


def wait_for_malformed(collector: Collector, count: int) -> int:
    deadline = time.monotonic() + TIMEOUT
    while (n := malformed_datagrams(collector)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


# ---------------------------------------------------------------------------------------------------
# 1. jaeger-client → the compact UDP port (as to a jaeger-agent on 6831).

START = 1_700_000_000.123456  # s, as jaeger-client takes times (time.time())


def report_with_jaeger_client(port: int) -> ttypes.Batch:
    """Four spans through a real jaeger-client tracer (const sampler, 128-bit trace IDs) to 127.0.0.1:port;
    returns the Batch its reporter sent."""
    config = JaegerConfig(
        config={
            "sampler": {"type": "const", "param": 1},
            "local_agent": {"reporting_host": "127.0.0.1", "reporting_port": port},
            "logging": False,
            "generate_128bit_trace_id": True,
            "reporter_flush_interval": 0.05,
            "tags": {"deployment.environment": "interop"},
        },
        service_name="interop-jaeger-client",
        validate=True,
    )
    tracer = config.new_tracer()
    sent: list[ttypes.Batch] = []
    send = tracer.reporter._send  # the reporter's one call into Agent.emitBatch

    def recording_send(batch):
        sent.append(batch)
        return send(batch)

    tracer.reporter._send = recording_send
    root = tracer.start_span("GET /jaeger", tags={"span.kind": "server", "http.method": "GET", "retries": 3, "ratio": 0.25,
                                                   "cached": False}, start_time=START)
    root.log_kv({"event": "cache.miss", "cache.key": "cart:17"}, timestamp=START + 0.001)
    root.log_kv({"message": "no event field"}, timestamp=START + 0.002)
    charge = tracer.start_span("charge card", child_of=root, tags={"span.kind": "client"}, start_time=START + 0.005)
    charge.set_tag("error", True)
    charge.finish(finish_time=START + 0.030)
    audit = tracer.start_span("audit", child_of=root, references=[opentracing.follows_from(charge.context)], start_time=START + 0.031)
    audit.finish(finish_time=START + 0.032)
    later = tracer.start_span("later", references=[opentracing.follows_from(root.context)], start_time=START + 0.040)
    later.finish(finish_time=START + 0.041)
    root.finish(finish_time=START + 0.050)
    flushed = tracer.close()  # an asyncio future of the reporter's IOLoop thread, done once its queue is drained
    deadline = time.monotonic() + TIMEOUT
    while not flushed.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert flushed.done() and flushed.exception() is None, "jaeger-client did not flush its reporter"
    assert sum(len(b.spans) for b in sent) == 4, sent
    return sent


def test_jaeger_client_spans_over_compact_udp(jaeger_collector):
    batches = report_with_jaeger_client(jaeger_collector.udp_ports["compact_port"])
    assert accepted(jaeger_collector, 4, "udp") == 4, jaeger_collector.log_tail()
    assert refused(jaeger_collector) == 0
    spans = written(jaeger_collector)
    sent = {s.operationName: s for b in batches for s in b.spans}
    process = {t.key: t.vStr for t in batches[0].process.tags}

    def ids(name):
        s = sent[name]
        return trace_hex(s.traceIdHigh, s.traceIdLow), span_hex(s.spanId)

    def times(name):
        s = sent[name]
        return s.startTime * 1000, (s.startTime + s.duration) * 1000

    root_trace, root_id = ids("GET /jaeger")
    assert int(root_trace[:16], 16) != 0, "generate_128bit_trace_id: the high half must be used"
    # Process → resource: serviceName → service.name; tags as attributes, with the collector's renames
    # of the client tags `hostname` → host.name and `jaeger.version` → opencensus.exporterversion.
    resource = {
        "service.name": "interop-jaeger-client",
        "deployment.environment": "interop",
        "ip": process["ip"],
        "host.name": process["hostname"],
        "opencensus.exporterversion": "Jaeger-Python-4.8.0",
    }
    common = {"resource": resource, "scope": ("", ""), "trace_state": ""}
    assert spans["GET /jaeger"] == {
        **common, "trace_id": root_trace, "span_id": root_id, "parent_span_id": "", "name": "GET /jaeger",
        "kind": "SPAN_KIND_SERVER", **dict(zip(("start", "end"), times("GET /jaeger"))),
        "status": ("STATUS_CODE_UNSET", ""),
        # Typed tags keep their type; the client's sampler tags are ordinary tags.
        "attributes": {"http.method": "GET", "retries": 3, "ratio": 0.25, "cached": False, "sampler.type": "const", "sampler.param": True},
        "events": [
            (sent["GET /jaeger"].logs[0].timestamp * 1000, "cache.miss", {"cache.key": "cart:17"}),
            (sent["GET /jaeger"].logs[1].timestamp * 1000, "", {"message": "no event field"}),
        ],
        "links": [],
    }
    charge_trace, charge_id = ids("charge card")
    assert spans["charge card"] == {
        **common, "trace_id": root_trace, "span_id": charge_id, "parent_span_id": root_id, "name": "charge card",
        "kind": "SPAN_KIND_CLIENT", **dict(zip(("start", "end"), times("charge card"))),
        "status": ("STATUS_CODE_ERROR", ""),  # error=true (bool tag) → ERROR; the tag is consumed
        "attributes": {}, "events": [], "links": [],
    }
    # child_of plus a FOLLOWS_FROM reference: the parent from parentSpanId, the reference a link.
    assert spans["audit"]["parent_span_id"] == root_id
    assert spans["audit"]["links"] == [(root_trace, charge_id, "", {"opentracing.ref_type": "follows_from"})]
    assert spans["audit"]["kind"] == "SPAN_KIND_UNSPECIFIED"
    # Only a FOLLOWS_FROM reference: jaeger-client makes it the parent (parentSpanId) and keeps the
    # reference; the collector keeps every reference but the parent's CHILD_OF one as a link.
    assert spans["later"]["parent_span_id"] == root_id
    assert spans["later"]["links"] == [(root_trace, root_id, "", {"opentracing.ref_type": "follows_from"})]
    assert charge_trace == root_trace


# ---------------------------------------------------------------------------------------------------
# 2. One hand-built Batch (jaeger-client's ttypes, `thrift` serialisation) over each transport.

Tag, TagType = ttypes.Tag, ttypes.TagType
HIGH, LOW = signed(0xF1E2D3C4B5A69788), signed(0x8877665544332211)  # top bits set: negative on the wire
OTHER_HIGH, OTHER_LOW = 0x0102030405060708, signed(0x90A0B0C0D0E0F001)
ROOT_ID, CHILD_ID, FOLLOWER_ID, OTHER_SPAN = signed(0x8000000000000001), 0x0000000000000002, 0x0000000000000003, signed(0xFEDCBA9876543210)
START_US = 1_700_000_000_123_456


def handmade_batch(service: str = "interop-thrift") -> ttypes.Batch:
    process = ttypes.Process(serviceName=service, tags=[
        Tag("hostname", TagType.STRING, vStr="thrift-host"),
        Tag("jaeger.version", TagType.STRING, vStr="Go-2.30.0"),
        Tag("process.pid", TagType.LONG, vLong=4242),
    ])
    root = ttypes.Span(
        traceIdLow=LOW, traceIdHigh=HIGH, spanId=ROOT_ID, parentSpanId=0, operationName="root op", flags=1,
        startTime=START_US, duration=50_000,
        tags=[
            Tag("span.kind", TagType.STRING, vStr="server"),
            Tag("str", TagType.STRING, vStr="héllo ✓"),
            Tag("long", TagType.LONG, vLong=-(2**63)),
            Tag("double", TagType.DOUBLE, vDouble=2.5),
            Tag("bool", TagType.BOOL, vBool=True),
            # jaeger-client's generated code writes vBinary with writeString, which takes a str in Python 3
            # and sends its UTF-8 bytes: the bytes on the wire are 00 01 c3 a9.
            Tag("binary", TagType.BINARY, vBinary="\x00\x01é"),
        ],
        logs=[
            ttypes.Log(timestamp=START_US + 1_000, fields=[
                Tag("event", TagType.STRING, vStr="cache.miss"), Tag("cache.key", TagType.STRING, vStr="cart:17"),
                Tag("attempt", TagType.LONG, vLong=2),
            ]),
            ttypes.Log(timestamp=START_US + 2_000, fields=[Tag("message", TagType.STRING, vStr="no event field")]),
        ],
    )
    # Parent only through a CHILD_OF reference (parentSpanId 0), as Zipkin-style clients send it.
    child = ttypes.Span(
        traceIdLow=LOW, traceIdHigh=HIGH, spanId=CHILD_ID, parentSpanId=0, operationName="child via CHILD_OF", flags=1,
        startTime=START_US + 5_000, duration=25_000,
        references=[ttypes.SpanRef(ttypes.SpanRefType.CHILD_OF, LOW, HIGH, ROOT_ID)],
        tags=[
            Tag("span.kind", TagType.STRING, vStr="client"),
            Tag("error", TagType.BOOL, vBool=True),
            Tag("otel.status_description", TagType.STRING, vStr="card declined"),
        ],
    )
    follower = ttypes.Span(
        traceIdLow=LOW, traceIdHigh=HIGH, spanId=FOLLOWER_ID, parentSpanId=ROOT_ID, operationName="follower", flags=1,
        startTime=START_US + 31_000, duration=1_000,
        references=[ttypes.SpanRef(ttypes.SpanRefType.FOLLOWS_FROM, OTHER_LOW, OTHER_HIGH, OTHER_SPAN)],
        tags=[
            Tag("span.kind", TagType.STRING, vStr="producer"),
            Tag("otel.status_code", TagType.STRING, vStr="OK"),
            Tag("w3c.tracestate", TagType.STRING, vStr="vendor=v1"),
            Tag("otel.scope.name", TagType.STRING, vStr="thrift.scope"),
            Tag("otel.scope.version", TagType.STRING, vStr="2.0"),
        ],
    )
    return ttypes.Batch(process=process, spans=[root, child, follower])


def expected_handmade(service: str = "interop-thrift") -> dict[str, dict]:
    trace = trace_hex(HIGH, LOW)
    resource = {"service.name": service, "host.name": "thrift-host", "opencensus.exporterversion": "Jaeger-Go-2.30.0",
                "process.pid": 4242}
    base = {"resource": resource, "scope": ("", ""), "trace_id": trace, "trace_state": "", "events": [], "links": []}
    return {
        "root op": {
            **base, "span_id": span_hex(ROOT_ID), "parent_span_id": "", "name": "root op", "kind": "SPAN_KIND_SERVER",
            "start": START_US * 1000, "end": (START_US + 50_000) * 1000, "status": ("STATUS_CODE_UNSET", ""),
            "attributes": {"str": "héllo ✓", "long": -(2**63), "double": 2.5, "bool": True, "binary": b"\x00\x01\xc3\xa9"},
            "events": [
                ((START_US + 1_000) * 1000, "cache.miss", {"cache.key": "cart:17", "attempt": 2}),
                ((START_US + 2_000) * 1000, "", {"message": "no event field"}),
            ],
        },
        "child via CHILD_OF": {
            **base, "span_id": span_hex(CHILD_ID), "parent_span_id": span_hex(ROOT_ID), "name": "child via CHILD_OF",
            "kind": "SPAN_KIND_CLIENT", "start": (START_US + 5_000) * 1000, "end": (START_US + 30_000) * 1000,
            "status": ("STATUS_CODE_ERROR", "card declined"), "attributes": {},
        },
        "follower": {
            **base, "scope": ("thrift.scope", "2.0"), "trace_state": "vendor=v1",
            "span_id": span_hex(FOLLOWER_ID), "parent_span_id": span_hex(ROOT_ID), "name": "follower",
            "kind": "SPAN_KIND_PRODUCER", "start": (START_US + 31_000) * 1000, "end": (START_US + 32_000) * 1000,
            "status": ("STATUS_CODE_OK", ""), "attributes": {},
            "links": [(trace_hex(OTHER_HIGH, OTHER_LOW), span_hex(OTHER_SPAN), "", {"opentracing.ref_type": "follows_from"})],
        },
    }


@pytest.mark.parametrize("transport", ["thrift_http", "udp_binary", "udp_compact"])
def test_thrift_batch_maps_on_every_transport(jaeger_collector, transport):
    batch = handmade_batch()
    if transport == "thrift_http":
        response = post_batch(jaeger_collector, binary_bytes(batch))
        assert response.status_code == 202, response.text
    else:
        protocol = transport.removeprefix("udp_")
        send_datagram(jaeger_collector.udp_ports[f"{protocol}_port"], emit_batch_datagram(batch, protocol))
    assert accepted(jaeger_collector, 3, "thrift_http" if transport == "thrift_http" else "udp") == 3, jaeger_collector.log_tail()
    assert refused(jaeger_collector) == 0
    spans = written(jaeger_collector)
    want = expected_handmade()
    assert sorted(spans) == sorted(want)
    for name in want:
        assert spans[name] == want[name], name


# ---------------------------------------------------------------------------------------------------
# 3. Bad input: HTTP answers 400 with the reason; bad datagrams are dropped, counted, and the listener
#    keeps serving.

def list_past_the_end() -> bytes:
    """A Batch whose `spans` list (field 2, list<struct>) claims 2^31-1 elements and has none
    (thrift binary protocol: field header type 15 id 2, element type 12, i32 size)."""
    process = b"\x0c\x00\x01" + b"\x0b\x00\x01" + struct.pack(">i", 3) + b"svc" + b"\x00"
    return process + b"\x0f\x00\x02" + b"\x0c" + struct.pack(">i", 0x7FFFFFFF) + b"\x00"


def emit_batch_message(batch_bytes: bytes) -> bytes:
    """`emitBatch` as a binary-protocol oneway message (strict header) around raw Batch bytes."""
    header = struct.pack(">I", 0x80010004) + struct.pack(">i", 9) + b"emitBatch" + struct.pack(">i", 0)
    return header + b"\x0c\x00\x01" + batch_bytes + b"\x00"


GOOD_HTTP = binary_bytes(handmade_batch())


@pytest.mark.parametrize(
    "body",
    [GOOD_HTTP[: len(GOOD_HTTP) // 2], GOOD_HTTP[:1], list_past_the_end(), b"\xff" * 64],
    ids=["truncated", "one-byte", "list-length-past-end", "garbage"],
)
def test_bad_thrift_http_body_is_400_with_reason(jaeger_collector, body):
    response = post_batch(jaeger_collector, body)
    assert response.status_code == 400
    assert response.text.startswith("Unable to process request body: "), response.text
    assert len(response.text) > len("Unable to process request body: ")
    assert post_batch(jaeger_collector, GOOD_HTTP).status_code == 202
    assert sorted(written(jaeger_collector)) == sorted(expected_handmade())


def good_and_bad_datagrams(protocol: str) -> tuple[bytes, list[bytes]]:
    good = emit_batch_datagram(handmade_batch(), protocol)
    bad = [
        good[: len(good) // 2],
        good[:5],
        b"\x00",
        bytes(range(256)) * 4,
        b"\xde\xad\xbe\xef" * 16,
    ]
    if protocol == "binary":
        bad.append(emit_batch_message(list_past_the_end()))
    return good, bad


@pytest.mark.parametrize("protocol", ["compact", "binary"])
def test_malformed_datagrams_are_counted_and_listener_keeps_serving(jaeger_collector, protocol):
    good, bad = good_and_bad_datagrams(protocol)
    port = jaeger_collector.udp_ports[f"{protocol}_port"]
    for datagram in bad:
        send_datagram(port, datagram)
    assert wait_for_malformed(jaeger_collector, len(bad)) == len(bad), jaeger_collector.log_tail()
    send_datagram(port, good)
    assert accepted(jaeger_collector, 3, "udp") == 3, jaeger_collector.log_tail()
    assert malformed_datagrams(jaeger_collector) == len(bad)
    assert sorted(written(jaeger_collector)) == sorted(expected_handmade())


@pytest.mark.parametrize(
    "bad_ids", [{"traceIdHigh": 0, "traceIdLow": 0}, {"spanId": 0}], ids=["trace-id-all-zero", "span-id-zero"]
)
@pytest.mark.parametrize("transport", ["thrift_http", "udp_compact"])
def test_invalid_ids_are_refused_and_the_rest_accepted(jaeger_collector, bad_ids, transport):
    """OTLP cannot carry an all-zero trace ID or span ID: such a span is dropped and counted as refused,
    the others in the batch go on (202 over HTTP)."""
    batch = handmade_batch()
    for key, value in bad_ids.items():
        setattr(batch.spans[2], key, value)  # "follower"
    if transport == "thrift_http":
        response = post_batch(jaeger_collector, binary_bytes(batch))
        assert response.status_code == 202, response.text
    else:
        send_datagram(jaeger_collector.udp_ports["compact_port"], emit_batch_datagram(batch, "compact"))
    assert accepted(jaeger_collector, 2, "thrift_http" if transport == "thrift_http" else "udp") == 2, jaeger_collector.log_tail()
    assert refused(jaeger_collector) == 1
    assert sorted(written(jaeger_collector)) == ["child via CHILD_OF", "root op"]


# ---------------------------------------------------------------------------------------------------
# 4. Sextant's `jaeger_thrift` exporter → a strict Jaeger collector test double.


def decode_batch(body: bytes) -> ttypes.Batch:
    """A binary-protocol Batch, the whole body and nothing else (Jaeger collector, POST /api/traces)."""
    buffer = TTransport.TMemoryBuffer(body)
    batch = ttypes.Batch()
    batch.read(TBinaryProtocol.TBinaryProtocol(buffer))
    batch.validate()  # required fields (process, spans, IDs, times) present
    left = len(body) - buffer._buffer.tell()
    assert left == 0, f"{left} bytes after the Batch"
    return batch


def jaeger_double(script: list[int] = ()) -> StrictHTTPDouble:
    return StrictHTTPDouble("/api/traces", {"application/x-thrift": decode_batch}, success=202,
                            count_items=lambda batch: len(batch.spans), script=script)


@pytest.fixture
def doubles():
    started: list[StrictHTTPDouble] = []

    def start(double: StrictHTTPDouble) -> StrictHTTPDouble:
        started.append(double)
        return double

    yield start
    for d in started:
        d.stop()


def jaeger_exporter_config(url: str) -> str:
    """`otlp` (HTTP) receiver → `jaeger_thrift` exporter, no processors: each OTLP request becomes one export."""
    return (
        "receivers:\n"
        "  otlp:\n"
        "    protocols:\n"
        "      http:\n"
        "        endpoint: 127.0.0.1:$http_port\n"
        "exporters:\n"
        "  jaeger_thrift:\n"
        f"    endpoint: {url}\n"
        "    retry_on_failure:\n"
        "      initial_interval: 100ms\n"
        "      max_interval: 200ms\n"
        "      randomization_factor: 0\n"
        "service:\n"
        "  telemetry:\n"
        "    metrics:\n"
        "      address: 127.0.0.1:$telemetry_port\n"
        "  pipelines:\n"
        "    traces:\n"
        "      receivers: [otlp]\n"
        "      exporters: [jaeger_thrift]\n"
    )


def tag_value(tag: ttypes.Tag):
    kind = TagType._VALUES_TO_NAMES[tag.vType]
    return kind, {"STRING": tag.vStr, "DOUBLE": tag.vDouble, "BOOL": tag.vBool, "LONG": tag.vLong, "BINARY": tag.vBinary}[kind]


def tags_of(tags) -> dict:
    tags = tags or []
    out = {t.key: tag_value(t) for t in tags}
    assert len(out) == len(tags), f"repeated tag keys: {[t.key for t in tags]}"
    return out


def plain_span(s: ttypes.Span) -> dict:
    return {
        "trace": trace_hex(s.traceIdHigh, s.traceIdLow), "span": span_hex(s.spanId), "parent": span_hex(s.parentSpanId),
        "name": s.operationName, "flags": s.flags, "start": s.startTime, "duration": s.duration,
        "references": [(ttypes.SpanRefType._VALUES_TO_NAMES[r.refType], trace_hex(r.traceIdHigh, r.traceIdLow), span_hex(r.spanId))
                       for r in s.references or []],
        "tags": tags_of(s.tags),
        "logs": [(log.timestamp, tags_of(log.fields)) for log in s.logs or []],
    }


# The SDK scenario after OTLP → Sextant → jaeger.thrift, as the collector's `traces_to_jaegerproto.go`
# maps it: times in µs truncated (the collector divides ns by 1000); the parent as the first CHILD_OF
# reference and parentSpanId; links as FOLLOWS_FROM references (their attributes have no place in
# Jaeger); the scope as `otel.scope.*` tags; kind as `span.kind`; status as `otel.status_code`, plus
# `error=true` and `otel.status_description` for ERROR; events as logs with an `event` field; typed
# attributes keep their type, arrays become JSON text (pdata `AsString`, Go float format).
STRING, LONG, DOUBLE, BOOL = "STRING", "LONG", "DOUBLE", "BOOL"
SCOPE_TAGS = {"otel.scope.name": (STRING, "interop.tracer"), "otel.scope.version": (STRING, "1.2.3")}
SDK_ATTRIBUTE_TAGS = {
    "str": (STRING, "héllo wörld ✓"),
    "str.empty": (STRING, ""),
    "bool.true": (BOOL, True),
    "bool.false": (BOOL, False),
    "int": (LONG, 42),
    "int.negative": (LONG, -7),
    "int.max": (LONG, 2**63 - 1),
    "int.min": (LONG, -(2**63)),
    "double": (DOUBLE, 3.14159),
    "double.negative": (DOUBLE, -0.5),
    "double.integral": (DOUBLE, 2.0),
    "array.str": (STRING, '["a","b",""]'),
    "array.bool": (STRING, "[true,false,true]"),
    "array.int": (STRING, "[1,-2,9007199254740993]"),
    "array.double": (STRING, "[1.5,-2.25,0]"),
    "array.empty": (STRING, "[]"),
}


def expected_jaeger_spans() -> list[dict]:
    def span(trace, span_id, parent, name, start_ms, end_ms, tags, refs=(), logs=()):
        return {
            "trace": f"{trace:032x}", "span": f"{span_id:016x}", "parent": f"{parent or 0:016x}", "name": name,
            # The SDK's OTLP encoding puts no W3C trace flags in Span.flags (only the is-remote bits), so
            # there is no sampled bit to carry over.
            "flags": 0,
            "start": (T0 + start_ms * MS) // 1000, "duration": (end_ms - start_ms) * MS // 1000,
            "references": ([("CHILD_OF", f"{trace:032x}", f"{parent:016x}")] if parent else []) + list(refs),
            "tags": {**SCOPE_TAGS, **tags},
            "logs": [((T0 + at_ms * MS) // 1000, fields) for at_ms, fields in logs],
        }

    return [
        span(TRACE_A, ROOT, None, "GET /checkout", 0, 50, {**SDK_ATTRIBUTE_TAGS, "span.kind": (STRING, "server")}, logs=[
            (1, {"event": (STRING, "cache.miss"), "cache.key": (STRING, "cart:17"), "attempt": (LONG, 2)}),
            (2, {"event": (STRING, "no.attributes")}),
        ]),
        span(TRACE_A, CHARGE, ROOT, "charge card", 5, 30, {
            "payment.amount": (DOUBLE, 12.5), "payment.retries": (LONG, 3), "span.kind": (STRING, "client"),
            "otel.status_code": (STRING, "ERROR"), "error": (BOOL, True), "otel.status_description": (STRING, "card declined"),
        }, refs=[("FOLLOWS_FROM", f"{LINKED_TRACE:032x}", f"{LINKED_SPAN:016x}")], logs=[
            (29, {"event": (STRING, "exception"), "exception.type": (STRING, "CardDeclined"),
                  "exception.message": (STRING, "insufficient funds")}),
        ]),
        span(TRACE_A, QUERY, CHARGE, "SELECT orders", 6, 9, {"span.kind": (STRING, "internal")}),
        span(TRACE_A, PUBLISH, ROOT, "publish order", 31, 32, {"span.kind": (STRING, "producer"), "otel.status_code": (STRING, "OK")}),
        span(TRACE_B, CONSUME, REMOTE_PARENT, "consume order", 60, 70,
             {"span.kind": (STRING, "consumer"), "w3c.tracestate": (STRING, "vendor=v1")},
             refs=[("FOLLOWS_FROM", f"{TRACE_A:032x}", f"{PUBLISH:016x}")]),
    ]


def test_jaeger_thrift_exporter_delivers_sdk_spans(start_collector, doubles):
    double = doubles(jaeger_double())
    collector = start_collector(config_template=jaeger_exporter_config(double.url))
    send_traces(HTTPSpanExporter(endpoint=f"{collector.base_url}/v1/traces", timeout=TIMEOUT, compression=HTTPCompression.NoCompression))

    assert double.wait_for_items(5) == 5, f"{double.violations} {collector.log_tail()}"
    assert double.violations == []
    batches = double.delivered()
    for batch in batches:  # one resource → every batch has the same process
        assert batch.process.serviceName == "interop-checkout"
        assert tags_of(batch.process.tags) == {"service.version": (STRING, "9.9.9"), "host.cpu.count": (LONG, 8)}
    got = sorted((plain_span(s) for b in batches for s in b.spans), key=lambda s: s["span"])
    want = sorted(expected_jaeger_spans(), key=lambda s: s["span"])
    assert [s["name"] for s in got] == [s["name"] for s in want]
    for g, w in zip(got, want):
        assert g == w, f"span {w['name']!r}"
    for r in double.received:
        assert r.headers["content-type"].split(";")[0] == "application/x-thrift"
    counters = wait_for_exporter(collector, "jaeger_thrift", "traces", lambda c: c["sent_items"] >= 5)
    assert counters == {"sent_items": 5, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 0}
    collector.stop_cleanly()


def otlp_request(*services: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """One resource per service, each with two spans."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    for r, service in enumerate(services):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        ss = rs.scope_spans.add()
        for i in (1, 2):
            ss.spans.add(trace_id=bytes(range(1, 17)), span_id=(16 * r + i).to_bytes(8, "big"), name=f"{service}-{i}",
                         start_time_unix_nano=T0, end_time_unix_nano=T0 + MS)
    return req


def post_otlp(collector: Collector, req) -> None:
    response = requests.post(f"{collector.base_url}/v1/traces", data=req.SerializeToString(),
                             headers={"Content-Type": "application/x-protobuf"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


def test_jaeger_thrift_exporter_retries_503_and_delivers_once(start_collector, doubles):
    double = doubles(jaeger_double(script=[503]))
    collector = start_collector(config_template=jaeger_exporter_config(double.url))
    post_otlp(collector, otlp_request("retry"))

    assert double.wait_for_items(2) == 2, f"{double.violations} {collector.log_tail()}"
    counters = wait_for_exporter(collector, "jaeger_thrift", "traces", lambda c: c["sent_items"] >= 2)
    assert counters == {"sent_items": 2, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 1}
    time.sleep(NO_RETRY_WINDOW)
    assert [r.answered for r in double.received] == [503, 202]
    assert double.received[0].body == double.received[1].body, "a retry must resend the same batch"
    assert double.violations == []
    collector.stop_cleanly()


def test_jaeger_thrift_exporter_retry_does_not_resend_delivered_batches(start_collector, doubles):
    """One batch per resource: when the second of two batches is refused with 503, only it is retried;
    the first, already answered 202, must not reach the Jaeger collector twice."""
    double = doubles(jaeger_double(script=[202, 503]))
    collector = start_collector(config_template=jaeger_exporter_config(double.url))
    post_otlp(collector, otlp_request("first", "second"))

    assert double.wait_for_items(4) == 4, f"{double.violations} {collector.log_tail()}"
    wait_for_exporter(collector, "jaeger_thrift", "traces", lambda c: c["sent_items"] >= 4)
    time.sleep(NO_RETRY_WINDOW)
    delivered = sorted(batch.process.serviceName for batch in double.delivered())
    answers = [r.answered for r in double.received]
    assert delivered == ["first", "second"], f"answers {answers}"
    collector.stop_cleanly()


def test_jaeger_thrift_exporter_drops_on_400(start_collector, doubles):
    double = doubles(jaeger_double(script=[400]))  # a retry would be answered 202, and seen
    collector = start_collector(config_template=jaeger_exporter_config(double.url))
    post_otlp(collector, otlp_request("doomed"))

    counters = wait_for_exporter(collector, "jaeger_thrift", "traces", lambda c: c["send_failed_items"] >= 2)
    time.sleep(NO_RETRY_WINDOW)
    assert [r.answered for r in double.received] == [400]
    assert exporter_counters(collector, "jaeger_thrift", "traces") == counters == {
        "sent_items": 0, "send_failed_items": 2, "enqueue_failed_items": 0, "retries": 0,
    }
    collector.stop_cleanly()
