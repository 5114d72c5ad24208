"""What the OpenTelemetry Python SDK sends in the interop suite: fixed IDs, timestamps and attributes.

The same scenario runs through any of the SDK's OTLP exporters (HTTP or gRPC): each `send_*` takes an
exporter built by the caller and drives a real SDK provider into it. Wrap the exporter class with
`recording()` to keep the SDK's own encoding of every request, so what a collector wrote can be compared
with what went on the wire.
"""

from __future__ import annotations

import logging
import warnings

from google.protobuf.message import Message

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality as SDKTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

EXPORT_TIMEOUT_MS = 10_000  # bound on every SDK flush

TRACE_A = 0x5B8EFFF798038103D269B633813FC60C
TRACE_B = 0x0AF7651916CD43DD8448EB211C80319C
LINKED_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
LINKED_SPAN = 0x00F067AA0BA902B7
REMOTE_PARENT = 0x2000000000000001  # a span in another process; its context carries a tracestate
SPAN_IDS = [0x1000000000000001 + i for i in range(16)]
ROOT, CHARGE, QUERY, PUBLISH, CONSUME = SPAN_IDS[:5]

T0 = 1_700_000_000_123_456_789  # ns; every span time is T0 + a fixed offset
MS = 1_000_000

# One attribute of every OTLP AnyValue type this SDK can produce, with edge values.
ATTRIBUTES = {
    "str": "héllo wörld ✓",
    "str.empty": "",
    "bool.true": True,
    "bool.false": False,
    "int": 42,
    "int.negative": -7,
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "double": 3.14159,
    "double.negative": -0.5,
    "double.integral": 2.0,
    "array.str": ["a", "b", ""],
    "array.bool": [True, False, True],
    "array.int": [1, -2, 2**53 + 1],
    "array.double": [1.5, -2.25, 0.0],
    "array.empty": [],
}

RESOURCE = {"service.name": "interop-checkout", "service.version": "9.9.9", "host.cpu.count": 8}
TRACER_SCOPE = ("interop.tracer", "1.2.3")
METER_SCOPE = ("interop.meter", "0.4.2")
LOGGER_SCOPE = ("interop.logger", "1.0.0")


class FixedIdGenerator(IdGenerator):
    """Hands out known IDs in creation order, so every ID in the output can be asserted."""

    def __init__(self) -> None:
        self._traces = iter([TRACE_A])
        self._spans = iter(SPAN_IDS)

    def generate_trace_id(self) -> int:
        return next(self._traces)

    def generate_span_id(self) -> int:
        return next(self._spans)


# Cumulative temporality for every instrument, so the last export of a metric stream is complete.
CUMULATIVE = {
    kind: SDKTemporality.CUMULATIVE
    for kind in (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge)
}

_ENCODERS = {"span": encode_spans, "metric": encode_metrics, "log": encode_logs}


def recording(exporter_class: type, kind: str) -> type:
    """A subclass of an SDK exporter that sends exactly as the SDK would and keeps the SDK's own
    encoding (an Export*ServiceRequest) of each request in `.sent`. `kind` is span, metric or log."""
    encode = _ENCODERS[kind]

    class Recording(exporter_class):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.sent: list[Message] = []

        def export(self, data, *args, **kw):
            self.sent.append(encode(data))
            return super().export(data, *args, **kw)

    Recording.__name__ = f"Recording{exporter_class.__name__}"
    return Recording


def send_traces(exporter):
    """Five spans in two traces, through a BatchSpanProcessor into `exporter`; returns `exporter`."""
    provider = TracerProvider(resource=Resource(RESOURCE), id_generator=FixedIdGenerator())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer(*TRACER_SCOPE)

    def within(span):
        return trace.set_span_in_context(span)

    root = tracer.start_span("GET /checkout", kind=SpanKind.SERVER, attributes=ATTRIBUTES, start_time=T0)
    root.add_event("cache.miss", {"cache.key": "cart:17", "attempt": 2}, timestamp=T0 + 1 * MS)
    root.add_event("no.attributes", timestamp=T0 + 2 * MS)

    external = SpanContext(LINKED_TRACE, LINKED_SPAN, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    charge = tracer.start_span(
        "charge card",
        context=within(root),
        kind=SpanKind.CLIENT,
        attributes={"payment.amount": 12.5, "payment.retries": 3},
        links=[Link(external, {"link.reason": "retry-of", "link.attempt": 1})],
        start_time=T0 + 5 * MS,
    )
    query = tracer.start_span("SELECT orders", context=within(charge), kind=SpanKind.INTERNAL, start_time=T0 + 6 * MS)
    query.end(end_time=T0 + 9 * MS)
    charge.set_status(Status(StatusCode.ERROR, "card declined"))
    charge.add_event("exception", {"exception.type": "CardDeclined", "exception.message": "insufficient funds"}, timestamp=T0 + 29 * MS)
    charge.end(end_time=T0 + 30 * MS)

    publish = tracer.start_span("publish order", context=within(root), kind=SpanKind.PRODUCER, start_time=T0 + 31 * MS)
    publish.set_status(Status(StatusCode.OK))
    publish.end(end_time=T0 + 32 * MS)
    root.end(end_time=T0 + 50 * MS)

    # Another trace, continued from a remote parent with a tracestate; the consumer links back to the producer.
    remote = SpanContext(
        TRACE_B, REMOTE_PARENT, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("vendor", "v1")])
    )
    consume = tracer.start_span(
        "consume order",
        context=within(NonRecordingSpan(remote)),
        kind=SpanKind.CONSUMER,
        links=[Link(publish.get_span_context())],
        start_time=T0 + 60 * MS,
    )
    consume.end(end_time=T0 + 70 * MS)

    assert provider.force_flush(timeout_millis=EXPORT_TIMEOUT_MS)
    provider.shutdown()
    return exporter


def send_metrics(exporter):
    """Every instrument kind, two cumulative exports into `exporter` (built with
    `preferred_temporality=CUMULATIVE`); returns `exporter`."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource(RESOURCE),
        metric_readers=[reader],
        views=[
            View(instrument_name="request.duration", aggregation=ExplicitBucketHistogramAggregation([0, 5, 10, 25, 50, 100])),
            View(instrument_name="payload.size", aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
        ],
    )
    meter = provider.get_meter(*METER_SCOPE)

    orders = meter.create_counter("orders.placed", unit="{order}", description="Orders placed")
    orders.add(3, {"region": "eu"})
    orders.add(4, {"region": "eu"})
    orders.add(5, {"region": "us"})
    meter.create_counter("ratio.total", unit="1").add(0.75)
    depth = meter.create_up_down_counter("queue.depth")
    depth.add(10, {"queue": "q1"})
    depth.add(-3, {"queue": "q1"})
    duration = meter.create_histogram("request.duration", unit="ms")
    in_root = NonRecordingSpan(SpanContext(TRACE_A, ROOT, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    with trace.use_span(in_root):  # sampled context: the SDK attaches exemplars with trace and span IDs
        for v in (3, 7, 7, 30, 120, 0):
            duration.record(v)
    payload = meter.create_histogram("payload.size", unit="By")
    for v in (1, 2, 4, 1000, 0):
        payload.record(v)
    meter.create_observable_gauge(
        "cpu.temperature",
        callbacks=[lambda _options: [Observation(61.5, {"core": "0"}), Observation(58, {"core": "1"})]],
        unit="Cel",
    )

    assert provider.force_flush(timeout_millis=EXPORT_TIMEOUT_MS)
    provider.shutdown()  # exports the cumulative state once more; both exports must arrive
    return exporter


def send_logs(exporter):
    """Three log records (one through the stdlib logging bridge) into `exporter`; returns `exporter`."""
    provider = LoggerProvider(resource=Resource(RESOURCE))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger(*LOGGER_SCOPE)
    in_root = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(TRACE_A, ROOT, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    )

    logger.emit(
        timestamp=T0 + 10 * MS,
        observed_timestamp=T0 + 11 * MS,
        context=in_root,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body="payment retry scheduled",
        attributes=ATTRIBUTES,
        event_name="payment.retry",
    )
    logger.emit(
        timestamp=T0 + 12 * MS,
        observed_timestamp=T0 + 12 * MS,
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body={"order": "A-17", "items": 3, "ok": False, "nested": {"list": [1, "two", 3.5]}},
    )

    # The stdlib logging bridge, inside the CHARGE span.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # LoggingHandler moves to an instrumentation package
        handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    stdlib = logging.getLogger("interop.stdlib")
    stdlib.propagate = False
    stdlib.setLevel(logging.INFO)
    stdlib.addHandler(handler)
    try:
        in_charge = NonRecordingSpan(SpanContext(TRACE_A, CHARGE, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
        with trace.use_span(in_charge):
            stdlib.error("order %s failed", "A-17", extra={"order.id": "A-17"})
    finally:
        stdlib.removeHandler(handler)

    assert provider.force_flush(timeout_millis=EXPORT_TIMEOUT_MS)
    provider.shutdown()
    return exporter
