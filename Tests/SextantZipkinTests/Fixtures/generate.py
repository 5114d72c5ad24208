"""Golden Zipkin v2 payloads written by the OpenTelemetry Python SDK's own Zipkin encoders.

Writes sdk-spans.json (opentelemetry-exporter-zipkin-json, JsonV2Encoder) and sdk-spans.pb
(opentelemetry-exporter-zipkin-proto-http, ProtobufEncoder) next to this script, from fixed
ReadableSpans. ZipkinFixtureTests decodes both and checks every field against the constants below.
See README.md for the command.
"""

import os

from opentelemetry import trace
from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint
from opentelemetry.exporter.zipkin.proto.http.v2 import ProtobufEncoder
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

HERE = os.path.dirname(os.path.abspath(__file__))

# NodeEndpoint takes the service name from the global tracer provider's resource.
RESOURCE = Resource(
    {
        "service.name": "checkout",
        "service.version": "2.4.1",
        "host.name": "node-7",
        "telemetry.sdk.language": "python",
    }
)
trace.set_tracer_provider(TracerProvider(resource=RESOURCE))

TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
TRACE_ID_64 = 0x00000000000000000102030405060708
SCOPE = InstrumentationScope("shop.instrumentation", "1.2.3")
SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def context(trace_id, span_id, flags=SAMPLED):
    return SpanContext(trace_id=trace_id, span_id=span_id, is_remote=False, trace_flags=flags)


spans = [
    # A server span with a parent, typed attributes, two events and an error status.
    ReadableSpan(
        name="GET /cart",
        context=context(TRACE_ID, 0xEEE19B7EC3C1B174),
        parent=context(TRACE_ID, 0xEEE19B7EC3C1B173),
        resource=RESOURCE,
        attributes={
            "http.method": "GET",
            "http.status_code": 500,
            "cache.hit": False,
            "ratio": 0.25,
            "tags": ("a", "b"),
        },
        events=(
            Event("retry", {"attempt": 2, "reason": "timeout"}, timestamp=1_700_000_000_100_000_000),
            Event("done", {}, timestamp=1_700_000_000_900_400_000),
        ),
        kind=SpanKind.SERVER,
        instrumentation_scope=SCOPE,
        status=Status(StatusCode.ERROR, "upstream failed"),
        start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_001_000_000_000,
    ),
    # A root client span with status OK; times that round to the microsecond.
    ReadableSpan(
        name="POST /pay",
        context=context(TRACE_ID, 0x1111111111111111),
        parent=None,
        resource=RESOURCE,
        attributes={"peer.service": "payments"},
        kind=SpanKind.CLIENT,
        instrumentation_scope=SCOPE,
        status=Status(StatusCode.OK),
        start_time=1_700_000_002_000_000_600,
        end_time=1_700_000_002_250_000_400,
    ),
    # An internal span (no Zipkin kind) with a 64-bit trace ID, not sampled (so no debug flag).
    ReadableSpan(
        name="compute",
        context=context(TRACE_ID_64, 0x2222222222222222, TraceFlags(TraceFlags.DEFAULT)),
        parent=context(TRACE_ID_64, 0x3333333333333333),
        resource=RESOURCE,
        attributes={},
        kind=SpanKind.INTERNAL,
        instrumentation_scope=SCOPE,
        start_time=1_700_000_003_000_000_000,
        end_time=1_700_000_003_000_001_000,
    ),
    # Producer and consumer kinds.
    ReadableSpan(
        name="send",
        context=context(TRACE_ID, 0x4444444444444444),
        parent=None,
        resource=RESOURCE,
        kind=SpanKind.PRODUCER,
        instrumentation_scope=SCOPE,
        start_time=1_700_000_004_000_000_000,
        end_time=1_700_000_004_000_005_000,
    ),
    ReadableSpan(
        name="receive",
        context=context(TRACE_ID, 0x5555555555555555),
        parent=None,
        resource=RESOURCE,
        kind=SpanKind.CONSUMER,
        instrumentation_scope=SCOPE,
        links=(Link(context(TRACE_ID, 0x4444444444444444)),),
        start_time=1_700_000_005_000_000_000,
        end_time=1_700_000_005_000_007_000,
    ),
]

endpoint = NodeEndpoint(ipv4="10.1.2.3", ipv6="2001:db8::7", port=8080)

with open(os.path.join(HERE, "sdk-spans.json"), "w", encoding="utf-8") as f:
    f.write(JsonV2Encoder().serialize(spans, endpoint))
with open(os.path.join(HERE, "sdk-spans.pb"), "wb") as f:
    f.write(ProtobufEncoder().serialize(spans, endpoint))
