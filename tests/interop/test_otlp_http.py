"""Interop tests for Sextant's OTLP/HTTP receiver and file exporter.

These tests use the real OpenTelemetry Python SDK and its OTLP/HTTP exporters as an independent
peer: the SDK encodes and sends, a `sextant collector` process receives, batches and writes files,
and the files are decoded with the `opentelemetry-proto` classes (or parsed as OTLP/JSON). What the
collector wrote is compared both with literal expectations and with the SDK's own encoding of the
same data, so a bug shared by Sextant's encoder and decoder cannot hide.

Hand-built requests (sent with `requests` / `http.client`) cover the error paths the SDK never takes:
malformed bodies, wrong media types and paths, oversized and gzip-bomb bodies, invalid IDs.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import math
import re
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from google.rpc import status_pb2

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import SpanFlags, Span as PBSpan, Status as PBStatus, TracesData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from conftest import SEXTANT_BIN, Collector
from otlp_assertions import (
    any_value,
    assert_same_items,
    attributes_of,
    by_span_id,
    decode_output,
    flat_logs,
    flat_points,
    flat_spans,
    refused_items,
    wait_for_accepted,
)
from sdk_scenario import (
    ATTRIBUTES,
    CHARGE,
    CONSUME,
    CUMULATIVE,
    LINKED_SPAN,
    LINKED_TRACE,
    LOGGER_SCOPE,
    METER_SCOPE,
    MS,
    PUBLISH,
    QUERY,
    REMOTE_PARENT,
    RESOURCE,
    ROOT,
    T0,
    TRACE_A,
    TRACE_B,
    TRACER_SCOPE,
    recording,
    send_logs,
    send_metrics,
    send_traces,
)

HTTP_TIMEOUT = 10  # seconds, for every request this suite sends

# The SDK's OTLP/HTTP exporters, keeping the SDK's own encoding of each request.
RecordingSpanExporter = recording(OTLPSpanExporter, "span")
RecordingMetricExporter = recording(OTLPMetricExporter, "metric")
RecordingLogExporter = recording(OTLPLogExporter, "log")


def send_traces_over_http(collector: Collector):
    return send_traces(RecordingSpanExporter(
        endpoint=f"{collector.base_url}/v1/traces", timeout=HTTP_TIMEOUT, compression=Compression.NoCompression
    ))


def send_metrics_over_http(collector: Collector):
    return send_metrics(RecordingMetricExporter(
        endpoint=f"{collector.base_url}/v1/metrics", timeout=HTTP_TIMEOUT, compression=Compression.Gzip,
        preferred_temporality=CUMULATIVE,
    ))


def send_logs_over_http(collector: Collector):
    return send_logs(RecordingLogExporter(endpoint=f"{collector.base_url}/v1/logs", timeout=HTTP_TIMEOUT, compression=Compression.Gzip))


# ---------------------------------------------------------------------------------------------------
# One SDK run per file format: send all three signals, read the self-telemetry, stop, read the files.


class SDKRun:
    def __init__(self, collector: Collector):
        self.collector = collector
        self.span_exporter = send_traces_over_http(collector)
        self.metric_exporter = send_metrics_over_http(collector)
        self.log_exporter = send_logs_over_http(collector)
        self.self_metrics = wait_for_accepted(collector, {"traces": 5, "metrics": self.sent_points(), "logs": 3})
        collector.stop_cleanly()
        self.traces = decode_output(collector, "traces", TracesData)
        self.metrics = decode_output(collector, "metrics", MetricsData)
        self.logs = decode_output(collector, "logs", LogsData)
        self.json_lines = {s: collector.records(s) for s in ("traces", "metrics", "logs")} if collector.file_format == "json" else {}

    def sent_points(self) -> int:
        return len(flat_points(self.metric_exporter.sent))


@pytest.fixture(scope="module", params=["proto", "json"])
def sdk_run(request, tmp_path_factory):
    collector = Collector(tmp_path_factory.mktemp(f"sdk-{request.param}"), request.param, None)
    try:
        collector.start()
        yield SDKRun(collector)
    finally:
        collector.kill()


def test_spans_match_what_the_sdk_sent(sdk_run):
    sent = flat_spans(sdk_run.span_exporter.sent)
    assert len(sent) == 5
    assert_same_items(flat_spans(sdk_run.traces), sent)


def test_span_ids_names_kinds_and_times(sdk_run):
    spans = by_span_id(flat_spans(sdk_run.traces))
    assert set(spans) == {ROOT, CHARGE, QUERY, PUBLISH, CONSUME}
    expected = {
        # span: (trace, parent, name, kind, start offset ms, end offset ms)
        ROOT: (TRACE_A, None, "GET /checkout", PBSpan.SPAN_KIND_SERVER, 0, 50),
        CHARGE: (TRACE_A, ROOT, "charge card", PBSpan.SPAN_KIND_CLIENT, 5, 30),
        QUERY: (TRACE_A, CHARGE, "SELECT orders", PBSpan.SPAN_KIND_INTERNAL, 6, 9),
        PUBLISH: (TRACE_A, ROOT, "publish order", PBSpan.SPAN_KIND_PRODUCER, 31, 32),
        CONSUME: (TRACE_B, REMOTE_PARENT, "consume order", PBSpan.SPAN_KIND_CONSUMER, 60, 70),
    }
    for span_id, (trace_id, parent, name, kind, start, end) in expected.items():
        resource, scope, span = spans[span_id]
        assert span.trace_id == trace_id.to_bytes(16, "big")
        assert span.span_id == span_id.to_bytes(8, "big")
        assert span.parent_span_id == (parent.to_bytes(8, "big") if parent else b"")
        assert (span.name, span.kind) == (name, kind)
        assert (span.start_time_unix_nano, span.end_time_unix_nano) == (T0 + start * MS, T0 + end * MS)
        assert attributes_of(resource.attributes) == RESOURCE
        assert (scope.name, scope.version) == TRACER_SCOPE


def test_span_attributes_events_links_and_status(sdk_run):
    spans = by_span_id(flat_spans(sdk_run.traces))
    root, charge, publish, consume = (spans[i][2] for i in (ROOT, CHARGE, PUBLISH, CONSUME))

    assert attributes_of(root.attributes) == ATTRIBUTES
    kinds = {kv.key: kv.value.WhichOneof("value") for kv in root.attributes}
    assert kinds["int.max"] == kinds["int"] == "int_value"
    assert kinds["double.integral"] == "double_value"
    assert kinds["array.int"] == "array_value"
    assert [v.WhichOneof("value") for kv in root.attributes if kv.key == "array.double" for v in kv.value.array_value.values] == ["double_value"] * 3

    assert [(e.name, e.time_unix_nano, attributes_of(e.attributes)) for e in root.events] == [
        ("cache.miss", T0 + 1 * MS, {"cache.key": "cart:17", "attempt": 2}),
        ("no.attributes", T0 + 2 * MS, {}),
    ]
    assert root.status.code == PBStatus.STATUS_CODE_UNSET

    assert charge.status.code == PBStatus.STATUS_CODE_ERROR
    assert charge.status.message == "card declined"
    assert attributes_of(charge.attributes) == {"payment.amount": 12.5, "payment.retries": 3}
    assert [(e.name, e.time_unix_nano) for e in charge.events] == [("exception", T0 + 29 * MS)]
    [link] = charge.links
    assert link.trace_id == LINKED_TRACE.to_bytes(16, "big")
    assert link.span_id == LINKED_SPAN.to_bytes(8, "big")
    assert attributes_of(link.attributes) == {"link.reason": "retry-of", "link.attempt": 1}

    assert publish.status.code == PBStatus.STATUS_CODE_OK
    assert consume.trace_state == "vendor=v1"
    assert consume.flags == SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
    assert root.flags == SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
    [back] = consume.links
    assert (back.trace_id, back.span_id) == (TRACE_A.to_bytes(16, "big"), PUBLISH.to_bytes(8, "big"))


def test_metric_points_match_what_the_sdk_sent(sdk_run):
    sent = flat_points(sdk_run.metric_exporter.sent)
    assert len(sent) >= 8
    assert_same_items(flat_points(sdk_run.metrics), sent)


def test_metric_values(sdk_run):
    points = flat_points(sdk_run.metrics)
    assert all(attributes_of(r.attributes) == RESOURCE and (sc.name, sc.version) == METER_SCOPE for r, sc, _, _ in points)

    def latest(name):
        """name -> {attributes as tuple: point} for the last export (cumulative, so the last is complete)."""
        out = {}
        for _, _, metric, point in points:
            if metric.name == name:
                key = tuple(sorted(attributes_of(point.attributes).items()))
                if key not in out or point.time_unix_nano >= out[key][1].time_unix_nano:
                    out[key] = (metric, point)
        assert out, f"no points for {name}"
        return out

    orders = latest("orders.placed")
    metric, eu = orders[(("region", "eu"),)]
    assert (metric.unit, metric.description) == ("{order}", "Orders placed")
    assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert eu.as_int == 7 and eu.start_time_unix_nano > 0 and eu.time_unix_nano >= eu.start_time_unix_nano
    assert orders[(("region", "us"),)][1].as_int == 5

    [(metric, ratio)] = latest("ratio.total").values()
    assert ratio.WhichOneof("value") == "as_double" and ratio.as_double == 0.75

    [(metric, depth)] = latest("queue.depth").values()
    assert not metric.sum.is_monotonic and depth.as_int == 7

    [(metric, h)] = latest("request.duration").values()
    assert metric.histogram.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert list(h.explicit_bounds) == [0, 5, 10, 25, 50, 100]
    assert list(h.bucket_counts) == [1, 1, 2, 0, 1, 0, 1]
    assert (h.count, h.sum, h.min, h.max) == (6, 167, 0, 120)
    # The SDK attaches exemplars to the first collection only (its reservoir resets on collect).
    exemplars = [x for _, _, m, p in points if m.name == "request.duration" for x in p.exemplars]
    assert exemplars and all((x.trace_id, x.span_id) == (TRACE_A.to_bytes(16, "big"), ROOT.to_bytes(8, "big")) for x in exemplars)

    [(metric, e)] = latest("payload.size").values()
    assert metric.WhichOneof("data") == "exponential_histogram"
    assert (e.count, e.sum, e.zero_count, e.min, e.max) == (5, 1007, 1, 0, 1000)
    assert sum(e.positive.bucket_counts) == 4 and sum(e.negative.bucket_counts) == 0

    gauge = latest("cpu.temperature")
    assert gauge[(("core", "0"),)][0].WhichOneof("data") == "gauge"
    assert gauge[(("core", "0"),)][1].as_double == 61.5
    assert gauge[(("core", "1"),)][1].as_int == 58


def test_log_records_match_what_the_sdk_sent(sdk_run):
    sent = flat_logs(sdk_run.log_exporter.sent)
    assert len(sent) == 3
    assert_same_items(flat_logs(sdk_run.logs), sent)


def test_log_record_fields(sdk_run):
    records = {any_value(lr.body) if lr.body.HasField("string_value") else "map": (r, sc, lr) for r, sc, lr in flat_logs(sdk_run.logs)}
    assert set(records) == {"payment retry scheduled", "map", "order A-17 failed"}

    resource, scope, warn = records["payment retry scheduled"]
    assert attributes_of(resource.attributes) == RESOURCE
    assert (scope.name, scope.version) == LOGGER_SCOPE
    assert (warn.time_unix_nano, warn.observed_time_unix_nano) == (T0 + 10 * MS, T0 + 11 * MS)
    assert (warn.severity_number, warn.severity_text) == (SeverityNumber.WARN.value, "WARN")
    assert attributes_of(warn.attributes) == ATTRIBUTES
    assert warn.event_name == "payment.retry"
    assert (warn.trace_id, warn.span_id, warn.flags) == (TRACE_A.to_bytes(16, "big"), ROOT.to_bytes(8, "big"), 1)

    _, _, structured = records["map"]
    assert any_value(structured.body) == {"order": "A-17", "items": 3, "ok": False, "nested": {"list": [1, "two", 3.5]}}
    assert (structured.severity_number, structured.trace_id, structured.span_id) == (SeverityNumber.ERROR.value, b"", b"")

    _, scope, bridged = records["order A-17 failed"]
    assert scope.name == "interop.stdlib"
    assert (bridged.severity_number, bridged.severity_text) == (SeverityNumber.ERROR.value, "ERROR")
    assert attributes_of(bridged.attributes)["order.id"] == "A-17"
    assert (bridged.trace_id, bridged.span_id) == (TRACE_A.to_bytes(16, "big"), CHARGE.to_bytes(8, "big"))


def test_self_telemetry_counts_accepted_items(sdk_run):
    accepted = sdk_run.self_metrics
    assert accepted == {"traces": 5, "metrics": sdk_run.sent_points(), "logs": 3}


HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


@pytest.mark.parametrize("sdk_run", ["json"], indirect=True)
def test_json_output_is_otlp_json(sdk_run):
    """OTLP/JSON differs from proto3 JSON: hex IDs, camelCase keys, int64 as strings, enums as ints."""
    span_docs = [
        span
        for line in sdk_run.json_lines["traces"]
        for rs in line["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    root = next(s for s in span_docs if s["spanId"] == f"{ROOT:016x}")
    assert HEX32.match(root["traceId"]) and root["traceId"] == f"{TRACE_A:032x}"
    assert root.get("parentSpanId", "") == ""
    assert root["kind"] == 2
    assert root["startTimeUnixNano"] == str(T0) and root["endTimeUnixNano"] == str(T0 + 50 * MS)
    attrs = {kv["key"]: kv["value"] for kv in root["attributes"]}
    assert attrs["int.max"] == {"intValue": str(2**63 - 1)}
    assert attrs["int.min"] == {"intValue": str(-(2**63))}
    assert attrs["bool.false"] == {"boolValue": False}
    assert attrs["double"] == {"doubleValue": 3.14159}
    assert attrs["str"] == {"stringValue": "héllo wörld ✓"}
    assert attrs["array.int"] == {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "-2"}, {"intValue": str(2**53 + 1)}]}}
    charge = next(s for s in span_docs if s["spanId"] == f"{CHARGE:016x}")
    assert charge["parentSpanId"] == f"{ROOT:016x}"
    assert charge["status"] == {"code": 2, "message": "card declined"}
    assert charge["links"][0]["traceId"] == f"{LINKED_TRACE:032x}" and HEX16.match(charge["links"][0]["spanId"])
    assert charge["events"][0]["timeUnixNano"] == str(T0 + 29 * MS)

    metric_docs = [
        m for line in sdk_run.json_lines["metrics"] for rm in line["resourceMetrics"] for sm in rm["scopeMetrics"] for m in sm["metrics"]
    ]
    hists = [m["histogram"] for m in metric_docs if m["name"] == "request.duration"]
    assert all(h["aggregationTemporality"] == 2 for h in hists)
    point = next(p for h in hists for p in h["dataPoints"] if p.get("exemplars"))
    assert point["count"] == "6" and point["bucketCounts"] == ["1", "1", "2", "0", "1", "0", "1"]
    assert point["explicitBounds"] == [0, 5, 10, 25, 50, 100] and point["sum"] == 167
    assert point["exemplars"][0]["traceId"] == f"{TRACE_A:032x}" and point["exemplars"][0]["spanId"] == f"{ROOT:016x}"
    orders = next(m for m in metric_docs if m["name"] == "orders.placed")["sum"]
    assert orders["isMonotonic"] is True and all(isinstance(p["asInt"], str) for p in orders["dataPoints"])

    log_docs = [
        lr for line in sdk_run.json_lines["logs"] for rl in line["resourceLogs"] for sl in rl["scopeLogs"] for lr in sl["logRecords"]
    ]
    warn = next(lr for lr in log_docs if lr["body"] == {"stringValue": "payment retry scheduled"})
    assert (warn["traceId"], warn["spanId"]) == (f"{TRACE_A:032x}", f"{ROOT:016x}")
    assert warn["severityNumber"] == SeverityNumber.WARN.value and warn["timeUnixNano"] == str(T0 + 10 * MS)


# ---------------------------------------------------------------------------------------------------
# Hand-built requests: what the SDK never sends.

BODY_LIMIT = 64 * 1024
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def collector(start_collector) -> Collector:
    return start_collector("proto", max_request_body_size=BODY_LIMIT)


def traces_request(*spans: tuple[bytes, bytes, str]) -> bytes:
    """An ExportTraceServiceRequest with one span per (trace_id, span_id, name)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "hand-built"
    ss = rs.scope_spans.add()
    ss.scope.name = "interop.raw"
    for trace_id, span_id, name in spans:
        ss.spans.add(
            trace_id=trace_id, span_id=span_id, name=name, kind=PBSpan.SPAN_KIND_INTERNAL,
            start_time_unix_nano=T0, end_time_unix_nano=T0 + MS,
        )
    return req.SerializeToString()


def good_request(name: str = "good") -> bytes:
    return traces_request((bytes(range(1, 17)), bytes(range(1, 9)), name))


def json_request(name: str, trace_id: str = "0102030405060708090a0b0c0d0e0f10") -> bytes:
    doc = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hand-built-json"}}]},
            "scopeSpans": [{
                "scope": {"name": "interop.json", "version": "1"},
                "spans": [{
                    "traceId": trace_id, "spanId": "1112131415161718", "parentSpanId": "2122232425262728",
                    "name": name, "kind": 3, "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 5),
                    "attributes": [
                        {"key": "big", "value": {"intValue": str(2**62 + 1)}},
                        {"key": "pi", "value": {"doubleValue": 3.5}},
                        {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"boolValue": True}]}}},
                    ],
                    "status": {"code": 2, "message": "boom"},
                }],
            }],
        }]
    }
    return json.dumps(doc).encode()


def post(collector: Collector, body: bytes, headers: dict, path: str = "/v1/traces", session=requests) -> requests.Response:
    return session.post(f"{collector.base_url}{path}", data=body, headers=headers, timeout=HTTP_TIMEOUT)


def written_spans(collector: Collector) -> dict[str, PBSpan]:
    collector.stop_cleanly()
    return {span.name: span for _, _, span in flat_spans(decode_output(collector, "traces", TracesData))}


def test_otlp_json_hand_built_and_gzip(collector):
    plain = post(collector, json_request("plain json"), JSON)
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json() in ({}, {"partialSuccess": {}})

    zipped = post(collector, gzip.compress(json_request("gzip json")), {**JSON, "Content-Encoding": "gzip"})
    assert zipped.status_code == 200, zipped.text
    zipped_proto = post(collector, gzip.compress(good_request("gzip proto")), {**PROTOBUF, "Content-Encoding": "gzip"})
    assert zipped_proto.status_code == 200, zipped_proto.text
    ExportTraceServiceResponse.FromString(zipped_proto.content)

    spans = written_spans(collector)
    assert set(spans) == {"plain json", "gzip json", "gzip proto"}
    span = spans["gzip json"]
    assert span.trace_id == bytes(range(1, 17))
    assert span.span_id == bytes.fromhex("1112131415161718") and span.parent_span_id == bytes.fromhex("2122232425262728")
    assert (span.kind, span.start_time_unix_nano, span.end_time_unix_nano) == (PBSpan.SPAN_KIND_CLIENT, T0, T0 + 5)
    assert attributes_of(span.attributes) == {"big": 2**62 + 1, "pi": 3.5, "list": ["x", True]}
    assert (span.status.code, span.status.message) == (PBStatus.STATUS_CODE_ERROR, "boom")


def test_otlp_json_tolerances(collector):
    """OTLP/JSON receivers must ignore unknown fields and accept int64 as JSON numbers as well as strings."""
    doc = json.loads(json_request("tolerant"))
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"], span["endTimeUnixNano"] = T0, T0 + 7
    span["attributes"] = [{"key": "n", "value": {"intValue": 12}}]
    span["someFutureField"] = {"nested": [1, 2]}
    doc["resourceSpans"][0]["someFutureField"] = "ignored"
    response = post(collector, json.dumps(doc).encode(), {"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200, response.text
    span = written_spans(collector)["tolerant"]
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (T0, T0 + 7)
    assert attributes_of(span.attributes) == {"n": 12}


@pytest.mark.parametrize("file_format", ["proto", "json"])
def test_edge_values_round_trip(start_collector, file_format):
    """Values the SDK does not produce: NaN and infinities, uint64 max, bytes, maps, empty values, control
    characters and U+2028 in strings, a summary. Written exactly as sent, in both file formats."""
    collector = start_collector(file_format)
    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    rs.resource.dropped_attributes_count = 1
    span = rs.scope_spans.add().spans.add(
        trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name='ctrl \x00\x01\x1f "q" \\ \u2028 \U0001F600',
        start_time_unix_nano=2**64 - 1, end_time_unix_nano=2**64 - 1, dropped_attributes_count=3, flags=0x301,
    )
    for key, value in [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("tiny", 5e-324), ("huge", 1.7976931348623157e308), ("-0", -0.0)]:
        span.attributes.add(key=key).value.double_value = value
    span.attributes.add(key="bytes").value.bytes_value = b"\x00\xffabc"
    span.attributes.add(key="map").value.kvlist_value.values.add(key="inner").value.int_value = -1
    span.attributes.add(key="empty.map").value.kvlist_value.SetInParent()
    span.attributes.add(key="no.value")
    metrics = ExportMetricsServiceRequest()
    scope_metrics = metrics.resource_metrics.add().scope_metrics.add()
    summary = scope_metrics.metrics.add(name="rpc.latency", unit="s").summary.data_points.add(
        count=3, sum=math.nan, start_time_unix_nano=4, time_unix_nano=5
    )
    summary.quantile_values.add(quantile=0.5, value=1.5)
    summary.quantile_values.add(quantile=1.0, value=math.inf)
    scope_metrics.metrics.add(name="gauge").gauge.data_points.add(as_double=-math.inf, time_unix_nano=6)

    assert post(collector, traces.SerializeToString(), PROTOBUF).status_code == 200
    assert post(collector, metrics.SerializeToString(), PROTOBUF, path="/v1/metrics").status_code == 200
    collector.stop_cleanly()
    assert_same_items(flat_spans(decode_output(collector, "traces", TracesData)), flat_spans([traces]))
    assert_same_items(flat_points(decode_output(collector, "metrics", MetricsData)), flat_points([metrics]))
    if file_format == "json":
        [line] = collector.records("traces")
        attrs = {kv["key"]: kv["value"] for kv in line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]}
        assert (attrs["nan"], attrs["inf"], attrs["-inf"]) == ({"doubleValue": "NaN"}, {"doubleValue": "Infinity"}, {"doubleValue": "-Infinity"})
        assert attrs["bytes"] == {"bytesValue": base64.b64encode(b"\x00\xffabc").decode()}


def assert_still_serving(collector: Collector, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
    """After a rejected request: a good request succeeds on the same connection (unless the server
    said it would close it) and on a new one."""
    sock = conn.sock
    keep_alive = (response.getheader("connection") or "").lower() != "close" and sock is not None
    conn.request("POST", "/v1/traces", body=good_request("after error, same connection"), headers=PROTOBUF)
    again = conn.getresponse()
    again.read()
    assert again.status == 200
    if keep_alive:
        assert conn.sock is sock, "connection was not kept alive after the error response"
    fresh = post(collector, good_request("after error, new connection"), PROTOBUF)
    assert fresh.status_code == 200, fresh.text


def raw_request(collector: Collector, method: str, path: str, body: bytes | None, headers: dict):
    conn = http.client.HTTPConnection("127.0.0.1", collector.otlp_port, timeout=HTTP_TIMEOUT)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    return conn, response, payload


def test_malformed_protobuf_is_400_with_status(collector):
    conn, response, payload = raw_request(collector, "POST", "/v1/traces", b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF)
    try:
        assert response.status == 400
        assert response.getheader("content-type").startswith("application/x-protobuf")
        status = status_pb2.Status.FromString(payload)
        assert status.code == 3  # INVALID_ARGUMENT
        assert status.message
        assert_still_serving(collector, conn, response)
    finally:
        conn.close()


def test_malformed_json_is_400_with_status(collector):
    conn, response, payload = raw_request(collector, "POST", "/v1/traces", b'{"resourceSpans": [', JSON)
    try:
        assert response.status == 400
        status = json.loads(payload)
        assert status["code"] == 3 and status["message"]
        assert_still_serving(collector, conn, response)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "method, path, headers, expected",
    [
        ("POST", "/v1/traces", {"Content-Type": "text/plain"}, 415),
        ("POST", "/v1/unknown", PROTOBUF, 404),
        ("POST", "/", PROTOBUF, 404),
        ("GET", "/v1/traces", {}, 405),
        ("POST", "/v1/traces", {**PROTOBUF, "Content-Encoding": "gzip"}, 400),  # body is not gzip
    ],
)
def test_wrong_request_shape(collector, method, path, headers, expected):
    body = good_request() if method == "POST" else None
    conn, response, _ = raw_request(collector, method, path, body, headers)
    try:
        assert response.status == expected
        assert_still_serving(collector, conn, response)
    finally:
        conn.close()


def test_body_over_limit_is_413(collector):
    big = traces_request(*[(bytes(range(1, 17)), i.to_bytes(8, "big"), "x" * 200) for i in range(1, 400)])
    assert len(big) > BODY_LIMIT
    conn, response, _ = raw_request(collector, "POST", "/v1/traces", big, PROTOBUF)
    try:
        assert response.status == 413
        assert_still_serving(collector, conn, response)
    finally:
        conn.close()


def test_gzip_bomb_is_413_without_inflating(collector):
    inflated = 50 * 1024 * 1024
    bomb = gzip.compress(b"\0" * inflated, compresslevel=9)
    assert len(bomb) < BODY_LIMIT
    peak_before = collector.proc_status("VmHWM")
    conn, response, _ = raw_request(collector, "POST", "/v1/traces", bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
    try:
        assert response.status == 413
        peak_growth = collector.proc_status("VmHWM") - peak_before
        rss = collector.proc_status("VmRSS")
        assert peak_growth < inflated // 4, f"peak RSS grew by {peak_growth} bytes for a {inflated}-byte bomb"
        assert rss < inflated, f"RSS {rss} bytes after a {inflated}-byte bomb"
        assert_still_serving(collector, conn, response)
    finally:
        conn.close()


def test_chunked_body_is_accepted_and_limited(collector):
    body = good_request("chunked")
    small = requests.post(f"{collector.base_url}/v1/traces", data=iter([body[:10], body[10:]]), headers=PROTOBUF, timeout=HTTP_TIMEOUT)
    assert small.status_code == 200, small.text
    big = traces_request(*[(bytes(range(1, 17)), i.to_bytes(8, "big"), "x" * 200) for i in range(1, 400)])
    chunks = (big[i : i + 4096] for i in range(0, len(big), 4096))
    over = requests.post(f"{collector.base_url}/v1/traces", data=chunks, headers=PROTOBUF, timeout=HTTP_TIMEOUT)
    assert over.status_code == 413
    assert set(written_spans(collector)) == {"chunked"}


def test_expect_100_continue(collector):
    """curl sends `Expect: 100-continue` for bodies over 1 KiB and waits a second for the interim response."""
    body = good_request("expect")
    with socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: sextant\r\nContent-Type: application/x-protobuf\r\n"
            + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        sock.settimeout(2)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        sock.settimeout(HTTP_TIMEOUT)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
    assert set(written_spans(collector)) == {"expect"}


def test_concurrent_clients(collector):
    clients, per_client = 8, 25

    def client(n: int) -> list[int]:
        with requests.Session() as session:
            return [
                post(collector, traces_request((bytes(range(1, 17)), (n * 1000 + i + 1).to_bytes(8, "big"), f"c{n}-{i}")), PROTOBUF, session=session).status_code
                for i in range(per_client)
            ]

    with ThreadPoolExecutor(clients) as pool:
        statuses = [code for codes in pool.map(client, range(clients)) for code in codes]
    assert statuses == [200] * clients * per_client
    assert wait_for_accepted(collector, {"traces": clients * per_client}) == {"traces": clients * per_client}
    names = [span.name for _, _, span in flat_spans(decode_output_after_stop(collector))]
    assert sorted(names) == sorted(f"c{n}-{i}" for n in range(clients) for i in range(per_client))


def test_sdk_volume_through_batching(start_collector):
    """More spans than one batch holds (send_batch_size 512): nothing lost, nothing duplicated."""
    collector = start_collector("proto")
    count = 3000
    exporter = OTLPSpanExporter(endpoint=f"{collector.base_url}/v1/traces", timeout=HTTP_TIMEOUT, compression=Compression.Gzip)
    provider = TracerProvider(resource=Resource(RESOURCE))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=count, max_export_batch_size=1000))
    tracer = provider.get_tracer(*TRACER_SCOPE)
    for i in range(count):
        tracer.start_span(f"span-{i}", attributes={"i": i}).end()
    assert provider.force_flush(timeout_millis=30_000)
    provider.shutdown()
    assert wait_for_accepted(collector, {"traces": count}) == {"traces": count}
    spans = flat_spans(decode_output_after_stop(collector))
    assert sorted(attributes_of(s.attributes)["i"] for _, _, s in spans) == list(range(count))
    assert len({s.span_id for _, _, s in spans}) == count


def decode_output_after_stop(collector: Collector) -> list[TracesData]:
    collector.stop_cleanly()
    return decode_output(collector, "traces", TracesData)


def test_invalid_trace_id_is_partial_success(collector):
    body = traces_request(
        (bytes(range(1, 17)), bytes(range(1, 9)), "good one"),
        (b"\x01\x02\x03\x04", bytes(range(2, 10)), "short trace id"),
        (bytes(range(1, 17)), bytes(range(3, 11)), "good two"),
    )
    response = post(collector, body, PROTOBUF)
    assert response.status_code == 200, response.text
    result = ExportTraceServiceResponse.FromString(response.content)
    assert result.HasField("partial_success")
    assert result.partial_success.rejected_spans == 1
    assert result.partial_success.error_message

    as_json = post(collector, json_request("short json trace id", trace_id="01020304"), JSON)
    assert as_json.status_code == 200, as_json.text
    assert int(as_json.json()["partialSuccess"]["rejectedSpans"]) == 1

    accepted = wait_for_accepted(collector, {"traces": 2})
    assert accepted["traces"] == 2
    assert refused_items(collector)["traces"] == 2
    assert set(written_spans(collector)) == {"good one", "good two"}


# ---------------------------------------------------------------------------------------------------
# Config validation.

BROKEN_CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
        max_request_body_sise: 1024
  zipkinn:
    endpoint: 127.0.0.1:9411
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug, file/missing]
"""


def test_validate_reports_every_error_with_position(tmp_path: Path):
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN_CONFIG)
    result = subprocess.run(
        [str(SEXTANT_BIN), "validate", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    positioned = [line for line in output.splitlines() if line.startswith(f"{config}:")]
    assert len(positioned) >= 3, output

    def error_at(line: int, column: int, *fragments: str):
        matches = [l for l in positioned if l.startswith(f"{config}:{line}:{column}:")]
        assert matches, f"no error at {line}:{column} in:\n{output}"
        assert any(all(f in l for f in fragments) for l in matches), f"{matches} lacks {fragments}"

    error_at(6, 9, "max_request_body_sise", "max_request_body_size")  # unknown key, with a suggestion
    error_at(7, 3, "zipkinn")  # unknown component type
    error_at(16, 26, "file/missing")  # pipeline names an undefined exporter


def test_validate_accepts_the_default_pipeline():
    result = subprocess.run(
        [str(SEXTANT_BIN), "validate", "--config", str(Path(__file__).resolve().parents[2] / "pipelines" / "default.yaml")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
