#!/usr/bin/env python3
"""Writes the OTLP golden vectors used by SextantOTLPTests.

Each fixed message is built with the reference protobuf classes from the `opentelemetry-proto`
package and written twice: `<name>.binpb` (binary protobuf, as the reference encoder emits it) and
`<name>.json` (OTLP/JSON). `google.protobuf.json_format` is *not* OTLP/JSON (it base64-encodes IDs),
so the JSON is produced by `otlp_json` below: lowerCamelCase keys in field-number order, proto3
defaults omitted, 64-bit integers as strings, enums as integers, trace/span IDs as lower-case hex,
other bytes as base64, compact separators, raw UTF-8.

The Swift tests build the same messages with the model and compare both directions byte for byte,
so any change here must be mirrored in GoldenTests.swift. See README.md for how to run this.
"""

import base64
import json
import math
import os
import struct

from google.protobuf.descriptor import FieldDescriptor as FD
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

HERE = os.path.dirname(os.path.abspath(__file__))

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
LINK_TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
LINK_SPAN_ID = bytes.fromhex("b7ad6b7169203331")
T0 = 1_700_000_000_000_000_000

HEX_ID_FIELDS = {"trace_id", "span_id", "parent_span_id"}
INT64_TYPES = {FD.TYPE_INT64, FD.TYPE_UINT64, FD.TYPE_FIXED64, FD.TYPE_SFIXED64, FD.TYPE_SINT64}


def kv(key, **value):
    """A KeyValue whose AnyValue has the one member given, e.g. kv("a", string_value="b")."""
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def traces():
    span = trace_pb2.Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        trace_state="rojo=00f067aa0ba902b7",
        parent_span_id=PARENT_ID,
        flags=0x301,
        name="GET /api/checkout",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 250_000_000,
        dropped_attributes_count=3,
        dropped_events_count=4,
        dropped_links_count=6,
        status=trace_pb2.Status(message="upstream failed", code=trace_pb2.Status.STATUS_CODE_ERROR),
    )
    span.attributes.extend([
        kv("http.method", string_value="GET"),
        kv("http.status_code", int_value=200),
        kv("ratio", double_value=0.25),
        kv("cached", bool_value=False),
        kv("blob", bytes_value=b"\x00\x01\xfe\xff"),
        kv("list", array_value=common_pb2.ArrayValue(values=[
            common_pb2.AnyValue(string_value="a"),
            common_pb2.AnyValue(int_value=1),
            common_pb2.AnyValue(double_value=2.5),
            common_pb2.AnyValue(bool_value=True),
        ])),
        kv("map", kvlist_value=common_pb2.KeyValueList(values=[
            kv("inner", string_value="x"),
            kv("nested", kvlist_value=common_pb2.KeyValueList(values=[kv("deep", int_value=-5)])),
        ])),
        kv("nothing"),
        kv("greeting", string_value="h\u00e9llo \u4e16\u754c \U0001F680\n\"quoted\"\t\x01"),
        kv("negative", int_value=-42),
    ])
    span.events.extend([
        trace_pb2.Span.Event(time_unix_nano=T0 + 1000, name="exception",
                             attributes=[kv("exception.message", string_value="boom")],
                             dropped_attributes_count=1),
        trace_pb2.Span.Event(time_unix_nano=T0 + 2000, name="retry"),
    ])
    span.links.append(trace_pb2.Span.Link(
        trace_id=LINK_TRACE_ID, span_id=LINK_SPAN_ID, trace_state="a=b",
        attributes=[kv("link.kind", string_value="follows")], dropped_attributes_count=5, flags=0x101,
    ))
    child = trace_pb2.Span(
        trace_id=TRACE_ID, span_id=bytes.fromhex("00000000000000ff"), name="child",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT, start_time_unix_nano=T0 + 10, end_time_unix_nano=T0 + 20,
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_OK),
    )
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    rs.resource.attributes.extend([kv("service.name", string_value="checkout"), kv("host.cores", int_value=8)])
    rs.resource.dropped_attributes_count = 1
    ss = rs.scope_spans.add(schema_url="https://opentelemetry.io/schemas/1.25.0")
    ss.scope.name = "io.sextant.test"
    ss.scope.version = "1.2.3"
    ss.scope.attributes.append(kv("scope.attr", bool_value=True))
    ss.scope.dropped_attributes_count = 2
    ss.spans.extend([span, child])
    return data


def metrics():
    M = metrics_pb2
    exemplar = M.Exemplar(filtered_attributes=[kv("user", string_value="u1")], time_unix_nano=T0 + 5,
                          as_double=72.0, span_id=SPAN_ID, trace_id=TRACE_ID)
    gauge = M.Metric(name="cpu.temp", description="CPU temperature", unit="Cel",
                     metadata=[kv("source", string_value="sensor")])
    gauge.gauge.data_points.extend([
        M.NumberDataPoint(attributes=[kv("core", int_value=0)], start_time_unix_nano=T0, time_unix_nano=T0 + 1,
                          as_double=71.5, exemplars=[exemplar]),
        M.NumberDataPoint(time_unix_nano=T0 + 2, as_int=-3, flags=1),
    ])
    total = M.Metric(name="requests", unit="1")
    total.sum.aggregation_temporality = M.AGGREGATION_TEMPORALITY_CUMULATIVE
    total.sum.is_monotonic = True
    total.sum.data_points.append(M.NumberDataPoint(
        start_time_unix_nano=T0, time_unix_nano=T0 + 3, as_int=1234567890123,
        exemplars=[M.Exemplar(time_unix_nano=T0 + 4, as_int=7)]))
    hist = M.Metric(name="latency", unit="ms")
    hist.histogram.aggregation_temporality = M.AGGREGATION_TEMPORALITY_DELTA
    hist.histogram.data_points.extend([
        M.HistogramDataPoint(attributes=[kv("route", string_value="/a")], start_time_unix_nano=T0,
                             time_unix_nano=T0 + 6, count=10, sum=123.5, bucket_counts=[1, 2, 3, 4],
                             explicit_bounds=[1.0, 10.0, 100.0], min=0.5, max=250.0,
                             exemplars=[M.Exemplar(time_unix_nano=T0 + 7, as_double=99.5, trace_id=TRACE_ID)]),
        M.HistogramDataPoint(time_unix_nano=T0 + 8, count=2, sum=0.0),
    ])
    exp = M.Metric(name="eh")
    exp.exponential_histogram.aggregation_temporality = M.AGGREGATION_TEMPORALITY_CUMULATIVE
    point = exp.exponential_histogram.data_points.add(
        attributes=[kv("k", string_value="v")], start_time_unix_nano=T0, time_unix_nano=T0 + 9, count=20,
        sum=42.0, scale=-2, zero_count=3, flags=0, min=-7.5, max=99.0, zero_threshold=1e-9,
        exemplars=[M.Exemplar(time_unix_nano=T0 + 10, as_int=5)])
    point.positive.offset = -1
    point.positive.bucket_counts.extend([1, 0, 300])
    point.negative.offset = 2
    point.negative.bucket_counts.append(5)
    summary = M.Metric(name="rpc.duration", unit="ms")
    summary.summary.data_points.append(M.SummaryDataPoint(
        attributes=[kv("rpc", string_value="Get")], start_time_unix_nano=T0, time_unix_nano=T0 + 11, count=100,
        sum=5000.5, flags=1, quantile_values=[
            M.SummaryDataPoint.ValueAtQuantile(quantile=0.0, value=1.5),
            M.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=40.0),
            M.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=120.25),
            M.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=300.0),
        ]))
    no_data = M.Metric(name="no.data", description="a metric with no data set")
    data = M.MetricsData()
    rm = data.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", string_value="meter-svc"))
    sm = rm.scope_metrics.add()
    sm.scope.name = "meter"
    sm.metrics.extend([gauge, total, hist, exp, summary, no_data])
    return data


def logs():
    L = logs_pb2
    data = L.LogsData()
    rl = data.resource_logs.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    rl.resource.attributes.append(kv("service.name", string_value="logger"))
    sl = rl.scope_logs.add()
    sl.scope.name = "app.log"
    sl.scope.version = "0.1"
    sl.log_records.extend([
        L.LogRecord(time_unix_nano=T0, observed_time_unix_nano=T0 + 100, severity_number=L.SEVERITY_NUMBER_ERROR,
                    severity_text="ERROR", body=common_pb2.AnyValue(string_value="something bad"),
                    attributes=[kv("thread", int_value=7)], dropped_attributes_count=2, flags=1,
                    trace_id=TRACE_ID, span_id=SPAN_ID, event_name="app.crash"),
        L.LogRecord(observed_time_unix_nano=T0 + 200, severity_number=L.SEVERITY_NUMBER_INFO,
                    body=common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[
                        kv("msg", string_value="structured"), kv("count", int_value=3)]))),
        L.LogRecord(body=common_pb2.AnyValue(bytes_value=b"\xde\xad")),
    ])
    return data


def export_response():
    response = trace_service_pb2.ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 3
    response.partial_success.error_message = "span 3: trace_id must be 16 bytes, got 4"
    return response


def json_scalar(field, value):
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if field.type in INT64_TYPES:
        return str(value)
    if field.type == FD.TYPE_BYTES:
        if field.name in HEX_ID_FIELDS:
            return value.hex()
        return base64.b64encode(value).decode("ascii")
    if field.type == FD.TYPE_MESSAGE:
        return otlp_json(value)
    return value  # int32 family, enums (as integers), bool, string


def is_default(field, value):
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return struct.pack("<d", value) == b"\x00" * 8  # -0.0 is not a default
    return value == field.default_value


def otlp_json(message):
    out = {}
    for field in sorted(message.DESCRIPTOR.fields, key=lambda f: f.number):
        value = getattr(message, field.name)
        if field.is_repeated:
            if len(value) == 0:
                continue
            out[field.json_name] = [json_scalar(field, v) for v in value]
        elif field.has_presence:
            if message.HasField(field.name):
                out[field.json_name] = json_scalar(field, value)
        elif not is_default(field, value):
            out[field.json_name] = json_scalar(field, value)
    return out


def write(name, message):
    with open(os.path.join(HERE, name + ".binpb"), "wb") as f:
        f.write(message.SerializeToString(deterministic=True))
    with open(os.path.join(HERE, name + ".json"), "wb") as f:
        f.write(json.dumps(otlp_json(message), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


if __name__ == "__main__":
    write("traces", traces())
    write("metrics", metrics())
    write("logs", logs())
    write("export_trace_response", export_response())
