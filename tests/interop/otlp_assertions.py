"""Reading back OTLP data a peer received, in a form that ignores how batching regrouped it, and
comparing it with what was sent; reading Sextant's self-telemetry.

Shared by the interop tests: data is decoded with the `opentelemetry-proto` classes (OTLP/JSON through
`otlp_json_to_proto`), flattened to one entry per span, data point or log record with its resource and
scope, and compared as a multiset of canonical text, shown as a diff when it differs.
"""

from __future__ import annotations

import base64
import difflib
import re
import time

import pytest
import requests
from google.protobuf import json_format, text_format
from google.protobuf.message import Message

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

HTTP_TIMEOUT = 10  # seconds, for every request to the collector's telemetry endpoint

ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def otlp_json_to_proto(doc: dict, message: Message) -> Message:
    """Parses an OTLP/JSON document: like proto3 JSON, except that trace and span IDs are hex."""

    def convert(node):
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode() if k in ID_FIELDS and isinstance(v, str) else convert(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    return json_format.ParseDict(convert(doc), message, ignore_unknown_fields=False)


def decode_output(collector, signal_name: str, message_type) -> list[Message]:
    """What a collector's file exporter wrote for a signal, as `message_type` (TracesData, ...)."""
    records = collector.records(signal_name)
    if collector.file_format == "proto":
        return [message_type.FromString(r) for r in records]
    return [otlp_json_to_proto(r, message_type()) for r in records]


def canonical(message: Message) -> Message:
    """A copy in a normal form: every `attributes` list sorted by key (OTLP attributes are a map, order
    is not data) and empty sub-messages outside oneofs cleared (proto3: `status {}` means no status)."""
    copy = type(message)()
    copy.CopyFrom(message)

    def walk(m: Message):
        for fd, value in m.ListFields():
            if fd.message_type is None:
                continue
            if fd.is_repeated:
                for item in value:
                    walk(item)
                if fd.name == "attributes":
                    items = sorted(value, key=lambda kv: kv.key)
                    copies = [type(kv)() for kv in items]
                    for c, kv in zip(copies, items):
                        c.CopyFrom(kv)
                    del value[:]
                    value.extend(copies)
            else:
                walk(value)
                if fd.containing_oneof is None and value.ByteSize() == 0:
                    m.ClearField(fd.name)

    walk(copy)
    return copy


def show(message: Message) -> str:
    return text_format.MessageToString(canonical(message), as_utf8=True)


def flat_spans(batches) -> list[tuple[Message, Message, Message]]:
    return [(rs.resource, ss.scope, span) for b in batches for rs in b.resource_spans for ss in rs.scope_spans for span in ss.spans]


def flat_logs(batches) -> list[tuple[Message, Message, Message]]:
    return [(rl.resource, sl.scope, lr) for b in batches for rl in b.resource_logs for sl in rl.scope_logs for lr in sl.log_records]


def flat_points(batches) -> list[tuple[Message, Message, Message, Message]]:
    """(resource, scope, metric without its points, point) for every data point."""
    out = []
    for b in batches:
        for rm in b.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        shell = type(metric)()
                        shell.CopyFrom(metric)
                        del getattr(shell, kind).data_points[:]
                        out.append((rm.resource, sm.scope, shell, point))
    return out


def as_text(flat) -> list[str]:
    return sorted("\n".join(show(part) for part in entry) for entry in flat)


def assert_same_items(written, sent) -> None:
    """The collector wrote exactly the items that were sent (as a multiset), shown as a diff if not."""
    actual, expected = as_text(written), as_text(sent)
    if actual != expected:
        diff = difflib.unified_diff(
            "\n====\n".join(expected).splitlines(), "\n====\n".join(actual).splitlines(), "sent", "written by collector", lineterm=""
        )
        pytest.fail("collector output differs from what was sent:\n" + "\n".join(diff), pytrace=False)


def attributes_of(kvs) -> dict:
    return {kv.key: any_value(kv.value) for kv in kvs}


def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(v.kvlist_value.values)
    return getattr(v, kind) if kind else None


def span_summary(resource, scope, span) -> dict:
    """A span with its resource and scope as plain Python values, for comparing with a mapping from
    another format (IDs as hex, enums by name, attributes as dicts)."""
    return {
        "resource": attributes_of(resource.attributes),
        "scope": (scope.name, scope.version),
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "trace_state": span.trace_state,
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind),
        "start": span.start_time_unix_nano,
        "end": span.end_time_unix_nano,
        "status": (Status.StatusCode.Name(span.status.code), span.status.message),
        "attributes": attributes_of(span.attributes),
        "events": [(e.time_unix_nano, e.name, attributes_of(e.attributes)) for e in span.events],
        "links": [(link.trace_id.hex(), link.span_id.hex(), link.trace_state, attributes_of(link.attributes)) for link in span.links],
    }


def by_span_id(spans) -> dict[int, tuple]:
    return {int.from_bytes(s.span_id, "big"): (r, sc, s) for r, sc, s in spans}


# ---------------------------------------------------------------------------------------------------
# Self-telemetry (Prometheus text at service.telemetry.metrics.address/metrics).

SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)')


def prometheus_samples(collector, name: str) -> list[tuple[dict, float]]:
    text = requests.get(f"{collector.telemetry_url}/metrics", timeout=HTTP_TIMEOUT).text
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m["name"] == name:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m["labels"] or ""))
            out.append((labels, float(m["value"])))
    return out


def per_signal(collector, name: str, transport: str | None = None, receiver: str = "otlp") -> dict[str, int]:
    """A receiver counter summed per signal (over both transports unless `transport` is given)."""
    totals: dict[str, int] = {}
    for labels, value in prometheus_samples(collector, name):
        if labels.get("receiver") == receiver and transport in (None, labels.get("transport")):
            totals[labels["signal"]] = totals.get(labels["signal"], 0) + int(value)
    return totals


def refused_items(collector) -> dict[str, int]:
    return per_signal(collector, "sextant_receiver_refused_items_total")


def wait_for_accepted(
    collector, expected: dict[str, int], timeout: float = 10.0, transport: str | None = None, receiver: str = "otlp"
) -> dict[str, int]:
    """Polls /metrics until the accepted counters reach `expected` (bounded); returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        accepted = per_signal(collector, "sextant_receiver_accepted_items_total", transport, receiver)
        current = {s: accepted.get(s, 0) for s in expected}
        if current == expected or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


EXPORTER_COUNTERS = ("sent_items", "send_failed_items", "enqueue_failed_items", "retries")


def exporter_counters(collector, exporter: str, signal: str) -> dict[str, int]:
    """`sextant_exporter_<counter>_total{exporter, signal}` for every counter in EXPORTER_COUNTERS."""
    out = {}
    for counter in EXPORTER_COUNTERS:
        values = [v for labels, v in prometheus_samples(collector, f"sextant_exporter_{counter}_total")
                  if labels.get("exporter") == exporter and labels.get("signal") == signal]
        assert len(values) <= 1, f"{counter}: several samples for exporter={exporter} signal={signal}"
        out[counter] = int(values[0]) if values else 0
    return out


def wait_for_exporter(collector, exporter: str, signal: str, until, timeout: float = 10.0) -> dict[str, int]:
    """Polls the exporter counters until `until(counters)` holds (bounded); returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        counters = exporter_counters(collector, exporter, signal)
        if until(counters) or time.monotonic() > deadline:
            return counters
        time.sleep(0.05)
