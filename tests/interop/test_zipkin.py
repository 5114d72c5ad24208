"""Interop tests for Sextant's `zipkin` receiver and `zipkin` exporter (Zipkin v2, JSON and protobuf).

Independent peers on every side:
- the OpenTelemetry Python SDK's Zipkin exporters (opentelemetry-exporter-zipkin-json and
  opentelemetry-exporter-zipkin-proto-http) send the `sdk_scenario` spans to the `zipkin` receiver;
  what the `file` exporter (format: proto) wrote is decoded with `opentelemetry-proto` and checked
  field by field;
- raw requests cover what the SDK never sends: malformed bodies, invalid IDs, endpoints, gzip;
- strict Zipkin test doubles (http.server, because no Zipkin server runs here) receive what the
  `zipkin` exporter sends and decode it independently: JSON with `json`, protobuf with the
  `ListOfSpans` class built from the zipkin.proto that opentelemetry-exporter-zipkin-proto-http ships.

The mapping checked is the OpenTelemetry specification's (`exporter-zipkin.md`) and the OTel
Collector's translator (contrib `pkg/translator/zipkin/zipkinv2`); where Sextant follows one and not
the other, the comment says which.
"""

from __future__ import annotations

import ast
import gzip
import importlib.metadata
import json
import sys
import time
import types
from pathlib import Path

import pytest
import requests
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from opentelemetry.exporter.otlp.proto.http import Compression as HTTPCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter as ZipkinJSONExporter
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from conftest import Collector
from http_double import StrictHTTPDouble
from otlp_assertions import (
    decode_output,
    exporter_counters,
    flat_spans,
    per_signal,
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
    recording,
    send_traces,
)


def zipkin_pb2_for_this_runtime() -> types.ModuleType:
    """The `zipkin_pb2` module of opentelemetry-exporter-zipkin-proto-http, rebuilt for protobuf 7.

    The shipped module is protoc-3 output: protobuf 7's runtime refuses to import it (and its
    pure-Python runtime loads it with map fields broken). What regenerating it would give is built
    instead: its serialized FileDescriptorProto (the `serialized_pb=` literal, the zipkin-api schema as
    shipped) is read out of the source, loaded into a private pool, and its messages made into classes.
    """
    files = importlib.metadata.files("opentelemetry-exporter-zipkin-proto-http") or []
    source = next(Path(f.locate()) for f in files if f.name == "zipkin_pb2.py")
    literals = [
        kw.value for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Call) for kw in node.keywords if kw.arg == "serialized_pb"
    ]
    assert len(literals) == 1, f"{source}: expected one serialized_pb= literal"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(ast.literal_eval(literals[0])))
    module = types.ModuleType(ZIPKIN_PB2)
    for name in ("Span", "Endpoint", "Annotation", "ListOfSpans", "ReportResponse"):
        setattr(module, name, message_factory.GetMessageClass(pool.FindMessageTypeByName(f"zipkin.proto3.{name}")))
    return module


ZIPKIN_PB2 = "opentelemetry.exporter.zipkin.proto.http.v2.gen.zipkin_pb2"
zipkin_pb2 = sys.modules[ZIPKIN_PB2] = zipkin_pb2_for_this_runtime()

from opentelemetry.exporter.zipkin.proto.http import ZipkinExporter as ZipkinProtoExporter  # noqa: E402 — needs the module above

TIMEOUT = 10  # seconds: every request and wait in this module is bounded by it
NO_RETRY_WINDOW = 0.6  # seconds watched for an unwanted retry: 6× the configured initial_interval

RECEIVER_CONFIG = """\
receivers:
  zipkin:
    endpoint: 127.0.0.1:$http_port
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
      receivers: [zipkin]
      exporters: [file]
"""


def spans_url(collector: Collector) -> str:
    return f"{collector.base_url}/api/v2/spans"


def written(collector: Collector) -> list[tuple]:
    """Stops the collector (it must exit 0) and returns what the file exporter wrote, flattened."""
    collector.stop_cleanly()
    return flat_spans(decode_output(collector, "traces", TracesData))


def hex_id(value: int, width: int) -> str:
    return value.to_bytes(width, "big").hex()


def usec(ns: int) -> int:
    """Zipkin time: µs, rounded to nearest as the OpenTelemetry SDKs round (`exporter-zipkin.md`, "Unit of time")."""
    return (ns + 500) // 1000


# ---------------------------------------------------------------------------------------------------
# 1. The SDK's Zipkin exporters → Sextant's zipkin receiver → file exporter (proto).

# What the SDK scenario becomes after SDK → Zipkin v2 → Sextant. Per span: (trace, span, parent,
# name, kind, start and end offsets from T0 in ms, status, span attributes, events).
# - Times: the SDK rounds start and duration to µs; Sextant gives them back in ns (×1000).
# - Resource: `localEndpoint.serviceName` → `service.name`; the SDK also copies every resource
#   attribute into the tags, and tags named like a resource attribute of semantic conventions 1.6.1
#   (`service.version`) go back to the resource, as in the collector; others (`host.cpu.count`) stay
#   span attributes, as strings.
# - Scope: the SDK sends `otel.scope.*` and `otel.library.*` tags; Sextant takes both into the scope.
#   (The collector reads only `otel.library.*` and would keep `otel.scope.*` as attributes.)
# - Attributes: Zipkin tags are strings (the SDK writes bools lower-case, arrays as JSON lists of
#   strings); Sextant, like the collector without `parse_string_tags`, keeps them as strings.
# - Kind: INTERNAL has no Zipkin kind and the Python SDK sends no `span.kind` tag, so it arrives
#   UNSPECIFIED (the collector maps only a `span.kind=internal` tag back to INTERNAL).
# - Status: the SDK writes `otel.status_code: ERROR|OK` and `error: <description>`
#   (`exporter-zipkin.md`, "Status"); Sextant maps them back to the status as the specification
#   reads. (The collector's translator only knows `STATUS_CODE_*` values and `error=true`, and would
#   leave these UNSET with an `error` attribute.)
# - Events: the SDK writes `{"<name>": {<attributes>}}` annotations; Sextant unpacks them into name and
#   typed attributes (the collector unpacks only its own `name|{attrs}|dropped` form).
# - Links and trace state: the SDK's Zipkin exporters drop them (the specification says TBD).
SDK_ATTRIBUTES_AS_TAGS = {
    "str": "héllo wörld ✓",
    "str.empty": "",
    "bool.true": "true",
    "bool.false": "false",
    "int": "42",
    "int.negative": "-7",
    "int.max": "9223372036854775807",
    "int.min": "-9223372036854775808",
    "double": "3.14159",
    "double.negative": "-0.5",
    "double.integral": "2.0",
    "array.str": '["a","b",""]',
    "array.bool": '["true","false","true"]',
    "array.int": '["1","-2","9007199254740993"]',
    "array.double": '["1.5","-2.25","0.0"]',
    "array.empty": "[]",
}
RESOURCE_TAGS_LEFT_ON_SPANS = {"host.cpu.count": "8"}
SDK_SPANS_VIA_ZIPKIN = [
    (TRACE_A, ROOT, None, "GET /checkout", "SPAN_KIND_SERVER", 0, 50, ("STATUS_CODE_UNSET", ""), SDK_ATTRIBUTES_AS_TAGS,
     [(1, "cache.miss", {"attempt": 2, "cache.key": "cart:17"}), (2, "no.attributes", {})]),
    (TRACE_A, CHARGE, ROOT, "charge card", "SPAN_KIND_CLIENT", 5, 30, ("STATUS_CODE_ERROR", "card declined"),
     {"payment.amount": "12.5", "payment.retries": "3"},
     [(29, "exception", {"exception.type": "CardDeclined", "exception.message": "insufficient funds"})]),
    (TRACE_A, QUERY, CHARGE, "SELECT orders", "SPAN_KIND_UNSPECIFIED", 6, 9, ("STATUS_CODE_UNSET", ""), {}, []),
    (TRACE_A, PUBLISH, ROOT, "publish order", "SPAN_KIND_PRODUCER", 31, 32, ("STATUS_CODE_OK", ""), {}, []),
    (TRACE_B, CONSUME, REMOTE_PARENT, "consume order", "SPAN_KIND_CONSUMER", 60, 70, ("STATUS_CODE_UNSET", ""), {}, []),
]


def expected_sdk_spans() -> list[dict]:
    out = []
    for trace_id, span_id, parent, name, kind, start_ms, end_ms, status, attributes, events in SDK_SPANS_VIA_ZIPKIN:
        start_us = usec(T0 + start_ms * MS)
        duration_us = usec((end_ms - start_ms) * MS)
        out.append({
            "resource": {"service.name": "interop-checkout", "service.version": "9.9.9"},
            "scope": ("interop.tracer", "1.2.3"),
            "trace_id": hex_id(trace_id, 16),
            "span_id": hex_id(span_id, 8),
            "parent_span_id": hex_id(parent, 8) if parent else "",
            "trace_state": "",
            "name": name,
            "kind": kind,
            "start": start_us * 1000,
            "end": (start_us + duration_us) * 1000,
            "status": status,
            "attributes": {**attributes, **RESOURCE_TAGS_LEFT_ON_SPANS},
            "events": [(usec(T0 + at_ms * MS) * 1000, event, attrs) for at_ms, event, attrs in events],
            "links": [],
        })
    return out


def assert_sdk_spans_arrived(collector: Collector) -> None:
    assert wait_for_accepted(collector, {"traces": 5}, receiver="zipkin") == {"traces": 5}, collector.log_tail()
    got = sorted((span_summary(*entry) for entry in written(collector)), key=lambda s: s["span_id"])
    want = sorted(expected_sdk_spans(), key=lambda s: s["span_id"])
    assert [s["name"] for s in got] == [s["name"] for s in want]
    for g, w in zip(got, want):
        assert g == w, f"span {w['name']!r}"


def test_sdk_zipkin_json_exporter_spans_arrive_mapped(start_collector):
    collector = start_collector(config_template=RECEIVER_CONFIG)
    send_traces(ZipkinJSONExporter(endpoint=spans_url(collector), timeout=TIMEOUT))
    assert_sdk_spans_arrived(collector)


def test_sdk_zipkin_proto_exporter_spans_arrive_mapped(start_collector):
    collector = start_collector(config_template=RECEIVER_CONFIG)
    send_traces(ZipkinProtoExporter(endpoint=spans_url(collector), timeout=TIMEOUT))
    assert_sdk_spans_arrived(collector)


# ---------------------------------------------------------------------------------------------------
# 2. Raw requests: endpoints, tags that stand for span fields, gzip, and bad input.

def post(collector: Collector, body, content_type: str = "application/json", gzipped: bool = False) -> requests.Response:
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    headers = {"Content-Type": content_type}
    if gzipped:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return requests.post(spans_url(collector), data=data, headers=headers, timeout=TIMEOUT)


TRACE_HEX = "5b8efff798038103d269b633813fc60c"


def zspan(span_id: str, name: str, trace_id: str = TRACE_HEX, **fields) -> dict:
    return {"traceId": trace_id, "id": span_id, "name": name, "timestamp": 1_700_000_000_123_456, "duration": 1500,
            "localEndpoint": {"serviceName": "raw-zipkin"}, **fields}


def refused(collector: Collector) -> int:
    return per_signal(collector, "sextant_receiver_refused_items_total", receiver="zipkin").get("traces", 0)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_zipkin_fields_map_like_the_collector(start_collector, gzipped):
    """A hand-written Zipkin v2 span with what the SDK never sends: endpoints with addresses, the
    collector's own tags for INTERNAL kind, trace state, links and events with attributes, and a 64-bit
    trace ID (Zipkin allows 16 hex digits; OTLP left-pads it with zeros)."""
    collector = start_collector(config_template=RECEIVER_CONFIG)
    body = [
        zspan(
            "00f067aa0ba902b7", "get /api", parentId="53995c3f42cd8ad8", kind="SERVER", debug=True,
            localEndpoint={"serviceName": "frontend", "ipv4": "10.1.2.3", "port": 8080},
            remoteEndpoint={"serviceName": "backend", "ipv6": "2001:db8::c001", "port": 9000},
            tags={
                "http.method": "GET", "error": "true", "otel.scope.name": "raw.scope", "otel.scope.version": "0.1",
                "w3c.tracestate": "vendor=v1", "deployment.environment": "interop",
                "otlp.link.0": f"{LINKED_TRACE:032x}|{LINKED_SPAN:016x}|k=v|{{\"link.n\":1}}|2",
            },
            annotations=[{"timestamp": 1_700_000_000_123_999, "value": "cache.miss|{\"hit\":false,\"key\":\"a|b\"}|1"},
                         {"timestamp": 1_700_000_000_124_000, "value": "plain annotation"}],
        ),
        zspan("00f067aa0ba902b8", "work", trace_id="d269b633813fc60c", parentId="00f067aa0ba902b7",
              tags={"span.kind": "internal", "otel.status_code": "OK"}),
    ]
    response = post(collector, body, gzipped=gzipped)
    assert response.status_code == 202, response.text
    assert wait_for_accepted(collector, {"traces": 2}, receiver="zipkin") == {"traces": 2}
    assert refused(collector) == 0
    spans = {s["name"]: s for s in (span_summary(*e) for e in written(collector))}

    assert spans["get /api"] == {
        # Tags named like resource attributes (semconv 1.6.1) move to the resource, as in the collector.
        "resource": {"service.name": "frontend", "deployment.environment": "interop"},
        "scope": ("raw.scope", "0.1"),
        "trace_id": TRACE_HEX,
        "span_id": "00f067aa0ba902b7",
        "parent_span_id": "53995c3f42cd8ad8",
        "trace_state": "vendor=v1",
        "name": "get /api",
        "kind": "SPAN_KIND_SERVER",
        "start": 1_700_000_000_123_456_000,
        "end": 1_700_000_000_124_956_000,
        "status": ("STATUS_CODE_ERROR", ""),  # error=true (collector: `populateSpanStatus`)
        "attributes": {
            "http.method": "GET",
            # Endpoints → semantic conventions 1.6.1 net.* attributes and peer.service (collector).
            "net.host.ip": "10.1.2.3", "net.host.port": 8080,
            "peer.service": "backend", "net.peer.ip": "2001:db8::c001", "net.peer.port": 9000,
        },
        "events": [
            (1_700_000_000_123_999_000, "cache.miss", {"hit": False, "key": "a|b"}),
            (1_700_000_000_124_000_000, "plain annotation", {}),
        ],
        "links": [(f"{LINKED_TRACE:032x}", f"{LINKED_SPAN:016x}", "k=v", {"link.n": 1})],
    }
    work = spans["work"]
    assert work["trace_id"] == "0000000000000000d269b633813fc60c"
    assert work["kind"] == "SPAN_KIND_INTERNAL"  # the collector's `span.kind=internal` tag
    assert work["status"] == ("STATUS_CODE_OK", "")
    assert work["attributes"] == {} and work["resource"] == {"service.name": "raw-zipkin"}


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'[{"traceId": "5b8efff798038103d269b633813fc60c", "id": ', "application/json"),
        (b'{"traceId": "5b8efff798038103d269b633813fc60c", "id": "00f067aa0ba902b7"}', "application/json"),
        (b"not json at all", "application/json"),
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf"),  # ListOfSpans.spans, length past the end
    ],
    ids=["truncated-json", "object-not-array", "garbage-json", "truncated-proto"],
)
def test_malformed_body_is_400_with_reason(start_collector, body, content_type):
    collector = start_collector(config_template=RECEIVER_CONFIG)
    response = post(collector, body, content_type)
    assert response.status_code == 400
    assert response.text.strip(), "a 400 must say why"
    assert post(collector, [zspan("00000000000000a1", "after malformed")]).status_code == 202
    assert [s.name for _, _, s in written(collector)] == ["after malformed"]


@pytest.mark.parametrize(
    "bad",
    [
        {"traceId": "zz8efff798038103d269b633813fc60c"},
        {"id": "00f067aa0ba902bx"},
        {"id": "00f067aa0ba902b"},  # 15 hex digits
        {"traceId": "00000000000000000000000000000000"},
        {"parentId": "not-hex"},
    ],
    ids=["trace-id-not-hex", "span-id-not-hex", "span-id-odd-length", "trace-id-all-zero", "parent-id-not-hex"],
)
def test_invalid_ids(start_collector, bad):
    """Zipkin has no partial success: a span with an invalid ID is dropped and counted as refused while
    the others are accepted (202); when no valid span remains the request is a 400."""
    collector = start_collector(config_template=RECEIVER_CONFIG)
    mixed = [zspan("00000000000000b1", "good one"), {**zspan("00000000000000b2", "bad one"), **bad}]
    response = post(collector, mixed)
    assert response.status_code == 202, response.text
    assert wait_for_accepted(collector, {"traces": 1}, receiver="zipkin") == {"traces": 1}
    assert refused(collector) == 1

    alone = post(collector, [{**zspan("00000000000000b3", "bad alone"), **bad}])
    assert alone.status_code == 400
    assert alone.text.strip()
    assert refused(collector) == 2
    assert [s.name for _, _, s in written(collector)] == ["good one"]


# ---------------------------------------------------------------------------------------------------
# 3. Sextant's `zipkin` exporter → strict Zipkin test doubles.


PROTO_KINDS = {0: None, 1: "CLIENT", 2: "SERVER", 3: "PRODUCER", 4: "CONSUMER"}


def decode_zipkin_json(body: bytes) -> list[dict]:
    """Zipkin v2 JSON (zipkin2-api.yaml): an array of spans with lower-hex IDs, µs integers."""
    spans = json.loads(body)
    assert isinstance(spans, list), "body is not a JSON array"
    for s in spans:
        for key, width in (("traceId", 32), ("id", 16), ("parentId", 16)):
            if key in s:
                value = s[key]
                assert isinstance(value, str) and len(value) == width and value == value.lower(), f"{key}={value!r}"
                int(value, 16)
        for key in ("timestamp", "duration"):
            if key in s:
                assert isinstance(s[key], int) and s[key] > 0, f"{key}={s[key]!r}"
        assert all(isinstance(v, str) for v in s.get("tags", {}).values()), "tag values must be strings"
    return [normal_zipkin_span(s) for s in spans]


def decode_zipkin_proto(body: bytes) -> list[dict]:
    """A protobuf ListOfSpans, into the same plain form as JSON (zipkin.proto → zipkin2-api.yaml)."""
    message = zipkin_pb2.ListOfSpans.FromString(body)
    out = []
    for s in message.spans:
        out.append(normal_zipkin_span({
            "traceId": s.trace_id.hex(), "id": s.id.hex(),
            **({"parentId": s.parent_id.hex()} if s.parent_id else {}),
            "kind": PROTO_KINDS[s.kind], "name": s.name,
            **({"timestamp": s.timestamp} if s.timestamp else {}), **({"duration": s.duration} if s.duration else {}),
            "localEndpoint": endpoint_from_proto(s.local_endpoint) if s.HasField("local_endpoint") else None,
            "remoteEndpoint": endpoint_from_proto(s.remote_endpoint) if s.HasField("remote_endpoint") else None,
            "annotations": [{"timestamp": a.timestamp, "value": a.value} for a in s.annotations],
            "tags": dict(s.tags),
        }))
    return out


def endpoint_from_proto(e) -> dict:
    import ipaddress

    out = {"serviceName": e.service_name}
    if e.ipv4:
        out["ipv4"] = str(ipaddress.IPv4Address(e.ipv4))
    if e.ipv6:
        out["ipv6"] = str(ipaddress.IPv6Address(e.ipv6))
    if e.port:
        out["port"] = e.port
    return out


def normal_zipkin_span(s: dict) -> dict:
    """The fields compared, with absent and empty the same (as both encodings allow)."""
    return {
        "traceId": s["traceId"], "id": s["id"], "parentId": s.get("parentId"), "kind": s.get("kind"), "name": s.get("name", ""),
        "timestamp": s.get("timestamp"), "duration": s.get("duration"),
        "localEndpoint": s.get("localEndpoint") or None, "remoteEndpoint": s.get("remoteEndpoint") or None,
        "annotations": [(a["timestamp"], a["value"]) for a in s.get("annotations") or []],
        "tags": s.get("tags") or {},
    }


def zipkin_double(script: list[int] = (), fmt: str = "json") -> StrictHTTPDouble:
    decoders = {"json": {"application/json": decode_zipkin_json}, "proto": {"application/x-protobuf": decode_zipkin_proto}}
    return StrictHTTPDouble("/api/v2/spans", decoders[fmt], success=202, count_items=len, script=script)


@pytest.fixture
def doubles():
    started: list[StrictHTTPDouble] = []

    def start(double: StrictHTTPDouble) -> StrictHTTPDouble:
        started.append(double)
        return double

    yield start
    for d in started:
        d.stop()


RETRY_YAML = (
    "    retry_on_failure:\n"
    "      initial_interval: 100ms\n"
    "      max_interval: 200ms\n"
    "      randomization_factor: 0\n"
)


def zipkin_exporter_config(url: str, fmt: str) -> str:
    """`otlp` (HTTP) receiver → `zipkin` exporter, no processors: each OTLP request becomes one export."""
    return (
        "receivers:\n"
        "  otlp:\n"
        "    protocols:\n"
        "      http:\n"
        "        endpoint: 127.0.0.1:$http_port\n"
        "exporters:\n"
        "  zipkin:\n"
        f"    endpoint: {url}\n"
        f"    format: {fmt}\n"
        f"{RETRY_YAML}"
        "service:\n"
        "  telemetry:\n"
        "    metrics:\n"
        "      address: 127.0.0.1:$telemetry_port\n"
        "  pipelines:\n"
        "    traces:\n"
        "      receivers: [otlp]\n"
        "      exporters: [zipkin]\n"
    )


RecordingHTTPSpanExporter = recording(HTTPSpanExporter, "span")


def send_sdk_over_otlp_http(collector: Collector) -> None:
    send_traces(RecordingHTTPSpanExporter(
        endpoint=f"{collector.base_url}/v1/traces", timeout=TIMEOUT, compression=HTTPCompression.NoCompression
    ))


# The SDK scenario after OTLP → Sextant → Zipkin v2, per the specification's `exporter-zipkin.md` and
# the collector's `from_translator.go`:
# - times in µs, rounded to nearest as the SDK exporters round them (T0 ends in …456789 ns);
# - resource `service.name` → localEndpoint.serviceName; other resource attributes, the scope
#   (`otel.scope.name`/`otel.scope.version`) and the span attributes → tags, values as strings
#   (arrays as JSON). Doubles are written as Sextant writes them ("2.0", "[1.5,-2.25,0.0]"); the
#   collector's pdata `AsString` writes Go's shortest form ("2", "[1.5,-2.25,0]"), as Sextant's own
#   jaeger_thrift exporter does for arrays; the specification leaves the number format open;
# - INTERNAL → no kind and a `span.kind: internal` tag (collector);
# - status ERROR → `otel.status_code: ERROR` and `error: <description>`; OK → `otel.status_code: OK`;
# - events → annotations `name|{attributes}|dropped` when they have attributes (collector), else the name;
# - links → `otlp.link.<i>: trace|span|tracestate|{attributes}|dropped` tags (collector);
# - trace state → `w3c.tracestate` (collector).
BASE_TAGS = {"service.version": "9.9.9", "host.cpu.count": "8", "otel.scope.name": "interop.tracer", "otel.scope.version": "1.2.3"}
ATTRIBUTE_TAGS = {
    "str": "héllo wörld ✓",
    "str.empty": "",
    "bool.true": "true",
    "bool.false": "false",
    "int": "42",
    "int.negative": "-7",
    "int.max": "9223372036854775807",
    "int.min": "-9223372036854775808",
    "double": "3.14159",
    "double.negative": "-0.5",
    "double.integral": "2.0",
    "array.str": '["a","b",""]',
    "array.bool": "[true,false,true]",
    "array.int": "[1,-2,9007199254740993]",
    "array.double": "[1.5,-2.25,0.0]",
    "array.empty": "[]",
}
LOCAL = {"serviceName": "interop-checkout"}


def expected_zipkin_spans() -> list[dict]:
    def span(trace_id, span_id, parent, name, kind, start_ms, end_ms, tags, annotations=()):
        return {
            "traceId": hex_id(trace_id, 16), "id": hex_id(span_id, 8), "parentId": hex_id(parent, 8) if parent else None,
            "kind": kind, "name": name,
            "timestamp": usec(T0 + start_ms * MS), "duration": usec((end_ms - start_ms) * MS),
            "localEndpoint": LOCAL, "remoteEndpoint": None,
            "annotations": [(usec(T0 + at_ms * MS), value) for at_ms, value in annotations],
            "tags": {**BASE_TAGS, **tags},
        }

    return [
        span(TRACE_A, ROOT, None, "GET /checkout", "SERVER", 0, 50, ATTRIBUTE_TAGS,
             [(1, 'cache.miss|{"attempt":2,"cache.key":"cart:17"}|0'), (2, "no.attributes")]),
        span(TRACE_A, CHARGE, ROOT, "charge card", "CLIENT", 5, 30,
             {"payment.amount": "12.5", "payment.retries": "3", "otel.status_code": "ERROR", "error": "card declined",
              "otlp.link.0": f'{LINKED_TRACE:032x}|{LINKED_SPAN:016x}||{{"link.attempt":1,"link.reason":"retry-of"}}|0'},
             [(29, 'exception|{"exception.message":"insufficient funds","exception.type":"CardDeclined"}|0')]),
        span(TRACE_A, QUERY, CHARGE, "SELECT orders", None, 6, 9, {"span.kind": "internal"}),
        span(TRACE_A, PUBLISH, ROOT, "publish order", "PRODUCER", 31, 32, {"otel.status_code": "OK"}),
        span(TRACE_B, CONSUME, REMOTE_PARENT, "consume order", "CONSUMER", 60, 70,
             {"w3c.tracestate": "vendor=v1", "otlp.link.0": f"{TRACE_A:032x}|{PUBLISH:016x}||{{}}|0"}),
    ]


@pytest.mark.parametrize("fmt", ["json", "proto"])
def test_zipkin_exporter_delivers_sdk_spans(start_collector, doubles, fmt):
    double = doubles(zipkin_double(fmt=fmt))
    collector = start_collector(config_template=zipkin_exporter_config(double.url, fmt))
    send_sdk_over_otlp_http(collector)

    assert double.wait_for_items(5) == 5, f"{double.violations} {collector.log_tail()}"
    assert double.violations == []
    got = sorted((s for spans in double.delivered() for s in spans), key=lambda s: s["id"])
    want = sorted(expected_zipkin_spans(), key=lambda s: s["id"])
    assert [s["name"] for s in got] == [s["name"] for s in want]
    for g, w in zip(got, want):
        assert g == w, f"span {w['name']!r}"
    counters = wait_for_exporter(collector, "zipkin", "traces", lambda c: c["sent_items"] >= 5)
    assert counters == {"sent_items": 5, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 0}
    collector.stop_cleanly()


def otlp_span_request(*names: str):
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "interop-retry"
    ss = rs.scope_spans.add()
    for i, name in enumerate(names, start=1):
        ss.spans.add(trace_id=bytes(range(1, 17)), span_id=i.to_bytes(8, "big"), name=name,
                     start_time_unix_nano=T0, end_time_unix_nano=T0 + MS)
    return req


def post_otlp(collector: Collector, req) -> None:
    response = requests.post(f"{collector.base_url}/v1/traces", data=req.SerializeToString(),
                             headers={"Content-Type": "application/x-protobuf"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("fmt", ["json", "proto"])
def test_zipkin_exporter_retries_503_and_delivers_once(start_collector, doubles, fmt):
    double = doubles(zipkin_double(script=[503], fmt=fmt))
    collector = start_collector(config_template=zipkin_exporter_config(double.url, fmt))
    post_otlp(collector, otlp_span_request("retry-a", "retry-b"))

    assert double.wait_for_items(2) == 2, f"{double.violations} {collector.log_tail()}"
    counters = wait_for_exporter(collector, "zipkin", "traces", lambda c: c["sent_items"] >= 2)
    assert counters == {"sent_items": 2, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 1}
    time.sleep(NO_RETRY_WINDOW)
    assert [r.answered for r in double.received] == [503, 202]
    assert double.received[0].decoded == double.received[1].decoded, "a retry must resend the same spans"
    assert double.violations == []
    collector.stop_cleanly()


@pytest.mark.parametrize("fmt", ["json", "proto"])
def test_zipkin_exporter_drops_on_400(start_collector, doubles, fmt):
    double = doubles(zipkin_double(script=[400], fmt=fmt))  # a retry would be answered 202, and seen
    collector = start_collector(config_template=zipkin_exporter_config(double.url, fmt))
    post_otlp(collector, otlp_span_request("doomed-a", "doomed-b"))

    counters = wait_for_exporter(collector, "zipkin", "traces", lambda c: c["send_failed_items"] >= 2)
    time.sleep(NO_RETRY_WINDOW)
    assert [r.answered for r in double.received] == [400]
    assert exporter_counters(collector, "zipkin", "traces") == counters == {
        "sent_items": 0, "send_failed_items": 2, "enqueue_failed_items": 0, "retries": 0,
    }
    collector.stop_cleanly()
