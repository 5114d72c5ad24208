"""Builds benchmark payloads with independent libraries, one file per wire format.

Usage: gen_payloads.py OUT_DIR SPANS_PER_REQUEST
Writes otlp.binpb (opentelemetry-proto), zipkin.json (Zipkin v2 JSON), jaeger-compact.bin
(Agent.emitBatch in TCompactProtocol, built with the jaeger types jaeger-client ships and `thrift`).
Every span: 128-bit trace ID, parent, server kind, 6 attributes, one event.
"""
import json
import os
import random
import sys

from gen_payload import main as gen_otlp


def zipkin(path, n, rnd):
    spans = []
    start = 1_700_000_000_000_000
    for i in range(n):
        spans.append({
            "traceId": "%032x" % rnd.getrandbits(128), "id": "%016x" % rnd.getrandbits(64),
            "parentId": "%016x" % rnd.getrandbits(64), "name": "get /api/v1/items/{id}", "kind": "SERVER",
            "timestamp": start + i, "duration": 250,
            "localEndpoint": {"serviceName": "bench-frontend", "ipv4": "10.0.0.1", "port": 8080},
            "tags": {"http.method": "GET", "http.path": f"/api/v1/items/{i}", "http.status_code": "200",
                     "server.address": "items.default.svc.cluster.local", "net.peer.port": "8080", "sampled": "true"},
            "annotations": [{"timestamp": start + i + 100, "value": "cache.miss"}],
        })
    with open(path, "w") as f:
        json.dump(spans, f)


def jaeger_compact(path, n, rnd):
    from jaeger_client.thrift_gen.agent import Agent
    from jaeger_client.thrift_gen.jaeger import ttypes
    from thrift.protocol import TCompactProtocol
    from thrift.transport import TTransport

    def tag(k, v):
        if isinstance(v, bool):
            return ttypes.Tag(key=k, vType=ttypes.TagType.BOOL, vBool=v)
        if isinstance(v, int):
            return ttypes.Tag(key=k, vType=ttypes.TagType.LONG, vLong=v)
        return ttypes.Tag(key=k, vType=ttypes.TagType.STRING, vStr=v)

    def s64(x):
        return x - (1 << 64) if x >= 1 << 63 else x

    spans = []
    start = 1_700_000_000_000_000
    for i in range(n):
        spans.append(ttypes.Span(
            traceIdLow=s64(rnd.getrandbits(64)), traceIdHigh=s64(rnd.getrandbits(64)), spanId=s64(rnd.getrandbits(64)),
            parentSpanId=s64(rnd.getrandbits(64)), operationName="GET /api/v1/items/{id}", flags=1, startTime=start + i, duration=250,
            tags=[tag("span.kind", "server"), tag("http.method", "GET"), tag("http.url", f"/api/v1/items/{i}"),
                  tag("http.status_code", 200), tag("peer.port", 8080), tag("sampled", True)],
            logs=[ttypes.Log(timestamp=start + i + 100, fields=[tag("event", "cache.miss")])]))
    batch = ttypes.Batch(process=ttypes.Process(serviceName="bench-frontend", tags=[tag("hostname", "node-1")]), spans=spans)
    from thrift.Thrift import TMessageType
    buf = TTransport.TMemoryBuffer()
    proto = TCompactProtocol.TCompactProtocol(buf)
    proto.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 0)
    Agent.emitBatch_args(batch=batch).write(proto)
    proto.writeMessageEnd()
    with open(path, "wb") as f:
        f.write(buf.getvalue())


if __name__ == "__main__":
    out, n = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(7)
    gen_otlp(os.path.join(out, "otlp.binpb"), n)
    zipkin(os.path.join(out, "zipkin.json"), n, rnd)
    jaeger_compact(os.path.join(out, "jaeger-compact.bin"), n, rnd)
