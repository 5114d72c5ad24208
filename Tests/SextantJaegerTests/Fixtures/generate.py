#!/usr/bin/env python3
"""Writes the Thrift and Jaeger golden vectors used by SextantJaegerTests.

The bytes come from the reference Apache Thrift Python library (`thrift`, pure-Python protocol
classes, not the C accelerator) and the jaeger.thrift / agent.thrift types generated into the
`jaeger-client` package (`jaeger_client.thrift_gen`). The Swift tests build the same values with
the Swift codec and compare both directions byte for byte, so any change here must be mirrored in
Fixtures.swift. See README.md for how to run this.
"""

import os
import uuid

from thrift.Thrift import TMessageType, TType
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.transport import TTransport

from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger import ttypes as j

HERE = os.path.dirname(os.path.abspath(__file__))


def tolerant(protocol_class):
    """The generated code (made for Python 2) writes `binary` fields with writeString, which on
    Python 3 only takes str; pass bytes straight through. Nothing else about the encoding changes."""

    class Tolerant(protocol_class):
        def writeString(self, value):
            self.writeBinary(value if isinstance(value, bytes) else value.encode("utf-8"))

    return Tolerant


BINARY = tolerant(TBinaryProtocol.TBinaryProtocol)
COMPACT = tolerant(TCompactProtocol.TCompactProtocol)

T0 = 1_700_000_000_000_000  # epoch microseconds
TRACE_HIGH = 0x5B8EFFF798038103
TRACE_LOW = -0x2D9649CC7EC039F4  # 0xd269b633813fc60c as a signed i64
OTHER_TRACE_LOW = 0x0AF7651916CD43DD


def tag(key, **value):
    """A Tag with the one value given, e.g. tag("a", vStr="b"); vType follows from the field."""
    vtype = {
        "vStr": j.TagType.STRING,
        "vDouble": j.TagType.DOUBLE,
        "vBool": j.TagType.BOOL,
        "vLong": j.TagType.LONG,
        "vBinary": j.TagType.BINARY,
    }[next(iter(value))]
    return j.Tag(key=key, vType=vtype, **value)


def batch():
    process = j.Process(
        serviceName="checkout",
        tags=[
            tag("hostname", vStr="node-1"),
            tag("ip", vStr="10.0.0.7"),
            tag("jaeger.version", vStr="Python-4.8.0"),
            tag("host.cores", vLong=8),
            tag("load", vDouble=0.75),
            tag("canary", vBool=True),
            tag("blob", vBinary=b"\x00\x01\xfe\xff"),
        ],
    )
    server = j.Span(
        traceIdLow=TRACE_LOW,
        traceIdHigh=TRACE_HIGH,
        spanId=0x0EE19B7EC3C1B174,
        parentSpanId=0,
        operationName="GET /api/checkout",
        references=[
            j.SpanRef(refType=j.SpanRefType.CHILD_OF, traceIdLow=TRACE_LOW, traceIdHigh=TRACE_HIGH, spanId=0x0EE19B7EC3C1B173),
            j.SpanRef(refType=j.SpanRefType.FOLLOWS_FROM, traceIdLow=OTHER_TRACE_LOW, traceIdHigh=0, spanId=-5),
        ],
        flags=1,
        startTime=T0,
        duration=250_000,
        tags=[
            tag("otel.scope.name", vStr="io.sextant.test"),
            tag("otel.scope.version", vStr="1.2.3"),
            tag("span.kind", vStr="server"),
            tag("http.status_code", vLong=500),
            tag("error", vBool=True),
            tag("otel.status_description", vStr="upstream failed"),
            tag("w3c.tracestate", vStr="rojo=00f067aa0ba902b7"),
            tag("greeting", vStr="h\u00e9llo \u4e16\u754c \U0001F680"),
            tag("negative", vLong=-42),
            tag("ratio", vDouble=-2.5e-7),
            tag("cached", vBool=False),
        ],
        logs=[
            j.Log(timestamp=T0 + 1, fields=[tag("event", vStr="exception"), tag("exception.message", vStr="boom")]),
            j.Log(timestamp=T0 + 2, fields=[tag("attempt", vLong=2)]),
            j.Log(timestamp=T0 + 3, fields=[]),
        ],
    )
    client = j.Span(
        traceIdLow=0x1234,
        traceIdHigh=0,
        spanId=0xFF,
        parentSpanId=0x0EE19B7EC3C1B174,
        operationName="SELECT",
        flags=3,
        startTime=T0 + 10,
        duration=20,
        # Fifteen tags: the compact list header needs its long form (sizes above 14).
        tags=[tag("span.kind", vStr="client"), tag("otel.status_code", vStr="OK")] + [tag("k%d" % i, vLong=i) for i in range(13)],
    )
    return j.Batch(process=process, spans=[server, client])


def batch_with_stats(oprot):
    """A Batch with the fields jaeger-idl added after jaeger-client's copy of the IDL was generated:
    `3: optional i64 seqNo` and `4: optional ClientStats stats` (jaeger-idl thrift/jaeger.thrift).
    Written field by field with the same protocol calls generated code makes."""
    b = batch()
    oprot.writeStructBegin("Batch")
    oprot.writeFieldBegin("process", TType.STRUCT, 1)
    b.process.write(oprot)
    oprot.writeFieldEnd()
    oprot.writeFieldBegin("spans", TType.LIST, 2)
    oprot.writeListBegin(TType.STRUCT, 1)
    b.spans[1].write(oprot)
    oprot.writeListEnd()
    oprot.writeFieldEnd()
    oprot.writeFieldBegin("seqNo", TType.I64, 3)
    oprot.writeI64(42)
    oprot.writeFieldEnd()
    oprot.writeFieldBegin("stats", TType.STRUCT, 4)
    oprot.writeStructBegin("ClientStats")
    for fid, value in ((1, 1), (2, 2), (3, 3)):
        oprot.writeFieldBegin("counter", TType.I64, fid)
        oprot.writeI64(value)
        oprot.writeFieldEnd()
    oprot.writeFieldStop()
    oprot.writeStructEnd()
    oprot.writeFieldEnd()
    oprot.writeFieldStop()
    oprot.writeStructEnd()


def write(name, protocol_class, body):
    transport = TTransport.TMemoryBuffer()
    body(protocol_class(transport))
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(transport.getvalue())


def emit_batch(oprot):
    # Exactly what Agent.Client.send_emitBatch writes, minus the transport flush.
    oprot.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 7)
    Agent.emitBatch_args(batch=batch()).write(oprot)
    oprot.writeMessageEnd()


def all_types(oprot):
    """One message whose struct holds every Thrift type, written through the raw protocol calls."""
    oprot.writeMessageBegin("allTypes", TMessageType.CALL, -2)
    oprot.writeStructBegin("AllTypes")

    def field(ftype, fid, write_value):
        oprot.writeFieldBegin("f", ftype, fid)
        write_value()
        oprot.writeFieldEnd()

    field(TType.BOOL, 1, lambda: oprot.writeBool(True))
    field(TType.BOOL, 2, lambda: oprot.writeBool(False))
    field(TType.BYTE, 3, lambda: oprot.writeByte(-7))
    field(TType.I16, 4, lambda: oprot.writeI16(-300))
    field(TType.I32, 5, lambda: oprot.writeI32(100000))
    field(TType.I64, 6, lambda: oprot.writeI64(-1234567890123))
    field(TType.DOUBLE, 7, lambda: oprot.writeDouble(3.5))
    field(TType.STRING, 8, lambda: oprot.writeString("h\u00e9llo"))
    field(TType.STRING, 9, lambda: oprot.writeBinary(b"\x00\xff"))

    def long_list():
        oprot.writeListBegin(TType.I32, 20)
        for i in range(20):
            oprot.writeI32(i * 1000 - 5000)
        oprot.writeListEnd()

    field(TType.LIST, 20, long_list)

    def string_set():
        oprot.writeSetBegin(TType.STRING, 2)
        oprot.writeString("a")
        oprot.writeString("b")
        oprot.writeSetEnd()

    field(TType.SET, 40, string_set)

    def string_map():
        oprot.writeMapBegin(TType.STRING, TType.I64, 2)
        oprot.writeString("x")
        oprot.writeI64(1)
        oprot.writeString("y")
        oprot.writeI64(-1)
        oprot.writeMapEnd()

    field(TType.MAP, 41, string_map)

    def empty_map():
        oprot.writeMapBegin(TType.I32, TType.BOOL, 0)
        oprot.writeMapEnd()

    field(TType.MAP, 42, empty_map)

    def nested():
        oprot.writeStructBegin("Nested")
        oprot.writeFieldBegin("n", TType.I32, 1)
        oprot.writeI32(5)
        oprot.writeFieldEnd()
        oprot.writeFieldBegin("bools", TType.LIST, 2)
        oprot.writeListBegin(TType.BOOL, 3)
        oprot.writeBool(True)
        oprot.writeBool(False)
        oprot.writeBool(True)
        oprot.writeListEnd()
        oprot.writeFieldEnd()
        oprot.writeFieldStop()
        oprot.writeStructEnd()

    field(TType.STRUCT, 43, nested)

    def list_of_lists():
        oprot.writeListBegin(TType.LIST, 2)
        oprot.writeListBegin(TType.I16, 2)
        oprot.writeI16(1)
        oprot.writeI16(2)
        oprot.writeListEnd()
        oprot.writeListBegin(TType.I16, 0)
        oprot.writeListEnd()
        oprot.writeListEnd()

    field(TType.LIST, 44, list_of_lists)
    field(TType.UUID, 45, lambda: oprot.writeUuid(uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")))
    field(TType.I32, -1, lambda: oprot.writeI32(99))
    field(TType.BOOL, 46, lambda: oprot.writeBool(True))
    oprot.writeFieldStop()
    oprot.writeStructEnd()
    oprot.writeMessageEnd()


def main():
    write("batch.binary.thrift", BINARY, lambda p: batch().write(p))
    write("batch.compact.thrift", COMPACT, lambda p: batch().write(p))
    write("batch_with_stats.compact.thrift", COMPACT, batch_with_stats)
    write("emit_batch.binary.thrift", BINARY, emit_batch)
    write("emit_batch.compact.thrift", COMPACT, emit_batch)
    write("all_types.binary.thrift", BINARY, all_types)
    write("all_types.compact.thrift", COMPACT, all_types)


if __name__ == "__main__":
    main()
