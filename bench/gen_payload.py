"""Builds an OTLP ExportTraceServiceRequest with the reference `opentelemetry-proto` classes.

Usage: gen_payload.py OUT SPANS_PER_REQUEST
Each span has realistic shape: 16-byte trace ID, parent, 6 attributes of mixed types, one event, span
flags and an empty Status, as the OpenTelemetry SDKs' exporters write them.
"""
import random
import sys

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def kv(key, **value):
    return KeyValue(key=key, value=AnyValue(**value))


def main(out, n):
    rnd = random.Random(42)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", string_value="bench-frontend"), kv("host.name", string_value="node-1")])
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    ss.scope.version = "1.0.0"
    start = 1_700_000_000_000_000_000
    for i in range(n):
        s = ss.spans.add()
        s.trace_id = rnd.getrandbits(128).to_bytes(16, "big")
        s.span_id = rnd.getrandbits(64).to_bytes(8, "big")
        s.parent_span_id = rnd.getrandbits(64).to_bytes(8, "big")
        s.name = "GET /api/v1/items/{id}"
        s.kind = Span.SPAN_KIND_SERVER
        s.start_time_unix_nano = start + i * 1000
        s.end_time_unix_nano = start + i * 1000 + 250_000
        s.attributes.extend([
            kv("http.request.method", string_value="GET"),
            kv("url.path", string_value=f"/api/v1/items/{i}"),
            kv("http.response.status_code", int_value=200),
            kv("server.address", string_value="items.default.svc.cluster.local"),
            kv("net.peer.port", int_value=8080),
            kv("sampled", bool_value=True),
        ])
        # As the SDKs' OTLP exporters write spans: span flags (0x100: the parent's remoteness is known)
        # and a Status message even when the status is unset (an empty message on the wire).
        s.flags = 0x100
        s.status.SetInParent()
        e = s.events.add()
        e.time_unix_nano = start + i * 1000 + 100_000
        e.name = "cache.miss"
    with open(out, "wb") as f:
        f.write(req.SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
