"""Interop tests for Sextant's OTLP/gRPC receiver and its `otlp` (gRPC) and `otlphttp` exporters.

Independent peers on every side:
- the OpenTelemetry Python SDK's OTLP/gRPC exporters send to Sextant's gRPC receiver, and what the file
  exporter wrote is compared with the SDK's own encoding of the same data;
- raw grpcio calls (bytes in, bytes out) cover what the SDK never sends: garbage, oversized messages,
  invalid IDs, unknown methods;
- a grpcio server built from the `opentelemetry-proto` servicers receives what Sextant's `otlp` exporter
  sends, answering with scripted status codes to drive retries and drops;
- a strict OTLP/HTTP test double (http.server) receives what the `otlphttp` exporter sends.
Exporter outcomes are also checked through Sextant's self-telemetry counters.
"""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import requests
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GRPCLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GRPCMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HTTPCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HTTPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PBSpan, TracesData

from conftest import SEXTANT_BIN, Collector
from otlp_assertions import (
    assert_same_items,
    decode_output,
    exporter_counters,
    flat_logs,
    flat_points,
    flat_spans,
    otlp_json_to_proto,
    per_signal,
    prometheus_samples,
    wait_for_accepted,
    wait_for_exporter,
)
from sdk_scenario import CUMULATIVE, MS, T0, recording, send_logs, send_metrics, send_traces

TIMEOUT = 10  # seconds: every RPC, HTTP request and wait in this module is bounded by it
NO_RETRY_WINDOW = 0.6  # seconds watched for an unwanted retry: 6× the configured initial_interval

SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}
REQUEST_TYPES = {
    "traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}
FLATTEN = {"traces": flat_spans, "metrics": flat_points, "logs": flat_logs}

# Headers the exporters are configured with; gRPC metadata keys are lowercase on the wire (HTTP/2).
HEADERS = {"Authorization": "Bearer interop-token", "X-Scope-OrgID": "tenant-a"}


def spans_request(*names: str, trace_id: bytes = bytes(range(1, 17))) -> trace_service_pb2.ExportTraceServiceRequest:
    """One resource and scope with a span per name (span IDs 1, 2, ...)."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "interop-grpc"
    ss = rs.scope_spans.add()
    ss.scope.name = "interop.grpc"
    for i, name in enumerate(names, start=1):
        ss.spans.add(
            trace_id=trace_id, span_id=i.to_bytes(8, "big"), name=name, kind=PBSpan.SPAN_KIND_SERVER,
            start_time_unix_nano=T0, end_time_unix_nano=T0 + MS,
        )
    return req


# ---------------------------------------------------------------------------------------------------
# 1. The SDK's OTLP/gRPC exporters → Sextant's gRPC receiver → file exporter (proto).

RecordingGRPCSpanExporter = recording(GRPCSpanExporter, "span")
RecordingGRPCMetricExporter = recording(GRPCMetricExporter, "metric")
RecordingGRPCLogExporter = recording(GRPCLogExporter, "log")


class GRPCSDKRun:
    def __init__(self, collector: Collector, compression: grpc.Compression):
        common = dict(endpoint=collector.grpc_target, insecure=True, timeout=TIMEOUT, compression=compression)
        self.collector = collector
        self.span_exporter = send_traces(RecordingGRPCSpanExporter(**common))
        self.metric_exporter = send_metrics(RecordingGRPCMetricExporter(preferred_temporality=CUMULATIVE, **common))
        self.log_exporter = send_logs(RecordingGRPCLogExporter(**common))
        self.expected = {
            "traces": len(flat_spans(self.span_exporter.sent)),
            "metrics": len(flat_points(self.metric_exporter.sent)),
            "logs": len(flat_logs(self.log_exporter.sent)),
        }
        self.accepted_grpc = wait_for_accepted(collector, self.expected, transport="grpc")
        self.accepted_http = per_signal(collector, "sextant_receiver_accepted_items_total", transport="http")
        collector.stop_cleanly()
        self.traces = decode_output(collector, "traces", TracesData)
        self.metrics = decode_output(collector, "metrics", MetricsData)
        self.logs = decode_output(collector, "logs", LogsData)


@pytest.fixture(scope="module", params=[grpc.Compression.NoCompression, grpc.Compression.Gzip], ids=["none", "gzip"])
def grpc_sdk_run(request, tmp_path_factory):
    collector = Collector(tmp_path_factory.mktemp(f"grpc-sdk-{request.param.name}"), "proto", grpc=True)
    try:
        collector.start()
        yield GRPCSDKRun(collector, request.param)
    finally:
        collector.kill()


def test_grpc_sdk_spans_arrive_exactly(grpc_sdk_run):
    sent = flat_spans(grpc_sdk_run.span_exporter.sent)
    assert len(sent) == 5
    assert_same_items(flat_spans(grpc_sdk_run.traces), sent)


def test_grpc_sdk_metric_points_arrive_exactly(grpc_sdk_run):
    sent = flat_points(grpc_sdk_run.metric_exporter.sent)
    assert len(sent) >= 8
    assert_same_items(flat_points(grpc_sdk_run.metrics), sent)


def test_grpc_sdk_log_records_arrive_exactly(grpc_sdk_run):
    sent = flat_logs(grpc_sdk_run.log_exporter.sent)
    assert len(sent) == 3
    assert_same_items(flat_logs(grpc_sdk_run.logs), sent)


def test_grpc_sdk_items_counted_on_grpc_transport(grpc_sdk_run):
    assert grpc_sdk_run.accepted_grpc == grpc_sdk_run.expected
    assert all(v == 0 for v in grpc_sdk_run.accepted_http.values()), grpc_sdk_run.accepted_http


# ---------------------------------------------------------------------------------------------------
# 2. Raw grpcio calls: what the SDK never sends.

MAX_RECV_MIB = 1


@pytest.fixture
def grpc_collector(start_collector) -> Collector:
    return start_collector("proto", grpc=True, max_recv_msg_size_mib=MAX_RECV_MIB)


@pytest.fixture
def channel(grpc_collector):
    with grpc.insecure_channel(grpc_collector.grpc_target) as ch:
        yield ch


def raw_call(channel: grpc.Channel, method: str, body: bytes, compression: grpc.Compression | None = None):
    """Calls `method` with `body` as the request's bytes (no serializer, so garbage goes out as is);
    returns (response bytes or None, status code, details)."""
    stub = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        response, call = stub.with_call(body, timeout=TIMEOUT, compression=compression)
        return response, call.code(), call.details()
    except grpc.RpcError as e:
        return None, e.code(), e.details()


def export_path(signal_name: str, method: str = "Export") -> str:
    return f"/{SERVICES[signal_name]}/{method}"


def assert_channel_still_serves(channel: grpc.Channel, name: str) -> None:
    """After an error, the same channel (same HTTP/2 connection) carries a good request."""
    response, code, details = raw_call(channel, export_path("traces"), spans_request(name).SerializeToString())
    assert code == grpc.StatusCode.OK, f"{code}: {details}"
    reply = trace_service_pb2.ExportTraceServiceResponse.FromString(response)
    assert not reply.HasField("partial_success") or reply.partial_success.rejected_spans == 0


def written_span_names(collector: Collector) -> list[str]:
    collector.stop_cleanly()
    return sorted(span.name for _, _, span in flat_spans(decode_output(collector, "traces", TracesData)))


GARBAGE = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, length-delimited, length past the end


@pytest.mark.parametrize("signal_name", list(SERVICES))
def test_garbage_is_invalid_argument_with_message(grpc_collector, channel, signal_name):
    _, code, details = raw_call(channel, export_path(signal_name), GARBAGE)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details and details.strip()
    assert_channel_still_serves(channel, f"after garbage {signal_name}")
    assert written_span_names(grpc_collector) == [f"after garbage {signal_name}"]


@pytest.mark.parametrize(
    "method",
    [
        export_path("traces", "Exportt"),
        f"/{SERVICES['traces']}/export",  # method names are case-sensitive
        "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
        "/grpc.health.v1.Health/Check",
    ],
)
def test_unknown_method_is_unimplemented(grpc_collector, channel, method):
    _, code, details = raw_call(channel, method, spans_request("to nowhere").SerializeToString())
    assert code == grpc.StatusCode.UNIMPLEMENTED, f"{code}: {details}"
    assert_channel_still_serves(channel, "after unimplemented")
    assert written_span_names(grpc_collector) == ["after unimplemented"]


@pytest.mark.parametrize(
    "compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip, grpc.Compression.Deflate], ids=["none", "gzip", "deflate"]
)
def test_message_over_max_recv_msg_size_is_resource_exhausted(grpc_collector, channel, compression):
    """A request over max_recv_msg_size_mib (after decompression, so a small gzip body that inflates past
    the limit counts too) fails with RESOURCE_EXHAUSTED, as grpc-go's server answers; nothing is written."""
    big = spans_request(*[f"big-{i}-" + "x" * 200 for i in range(6000)]).SerializeToString()
    assert len(big) > MAX_RECV_MIB << 20
    _, code, details = raw_call(channel, export_path("traces"), big, compression=compression)
    assert_channel_still_serves(channel, "after oversized")
    assert written_span_names(grpc_collector) == ["after oversized"]
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{code}: {details}"
    assert details


@pytest.mark.parametrize(
    "bad",
    [{"trace_id": b"\x01\x02\x03\x04"}, {"span_id": b"\x01\x02\x03"}, {"trace_id": bytes(16)}],
    ids=["short-trace-id", "short-span-id", "zero-trace-id"],
)
def test_invalid_ids_are_partial_success(grpc_collector, channel, bad):
    req = spans_request("good one", "bad one", "good two")
    for field, value in bad.items():
        setattr(req.resource_spans[0].scope_spans[0].spans[1], field, value)
    response, code, details = raw_call(channel, export_path("traces"), req.SerializeToString(), compression=grpc.Compression.Gzip)
    assert code == grpc.StatusCode.OK, f"{code}: {details}"
    reply = trace_service_pb2.ExportTraceServiceResponse.FromString(response)
    assert reply.HasField("partial_success")
    assert reply.partial_success.rejected_spans == 1
    assert reply.partial_success.error_message
    assert_channel_still_serves(channel, "after partial")
    assert wait_for_accepted(grpc_collector, {"traces": 3}, transport="grpc") == {"traces": 3}
    assert per_signal(grpc_collector, "sextant_receiver_refused_items_total", transport="grpc").get("traces") == 1
    assert written_span_names(grpc_collector) == ["after partial", "good one", "good two"]


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate], ids=["gzip", "deflate"])
def test_compressed_requests_are_accepted(grpc_collector, channel, compression):
    """grpcio compresses the message and names the encoding in `grpc-encoding` (gRPC's "deflate" is zlib)."""
    _, code, details = raw_call(channel, export_path("traces"), spans_request(f"compressed {compression.name}").SerializeToString(), compression=compression)
    assert code == grpc.StatusCode.OK, f"{code}: {details}"
    assert written_span_names(grpc_collector) == [f"compressed {compression.name}"]


def test_non_http2_bytes_get_goaway_and_close(grpc_collector, channel):
    """An HTTP/1.1 request on the gRPC port is a connection error: GOAWAY (frame type 7), then the
    connection closes instead of lingering; other connections keep being served."""
    with socket.create_connection(("127.0.0.1", grpc_collector.grpc_port), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := s.recv(4096):
            received += chunk
    frames, i = [], 0
    while i + 9 <= len(received):
        length = int.from_bytes(received[i:i + 3], "big")
        frames.append(received[i + 3])
        i += 9 + length
    assert 7 in frames, f"no GOAWAY in {received!r}"
    assert_channel_still_serves(channel, "after http1")
    assert written_span_names(grpc_collector) == ["after http1"]


def test_concurrent_calls_on_one_channel(grpc_collector, channel):
    """HTTP/2 multiplexes: many calls in flight on one connection, each answered and written once."""
    def call(i: int):
        return raw_call(channel, export_path("traces"), spans_request(f"concurrent-{i}").SerializeToString())[1]

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(call, range(64)))
    assert codes == [grpc.StatusCode.OK] * 64
    assert written_span_names(grpc_collector) == sorted(f"concurrent-{i}" for i in range(64))


# ---------------------------------------------------------------------------------------------------
# 3. Sextant's `otlp` exporter → a grpcio OTLP server.


@dataclass
class ExportCall:
    signal: str
    request: Message
    metadata: dict[str, str]
    answered: grpc.StatusCode
    at: float  # time.monotonic()


class RecordingOTLPServer:
    """A real OTLP/gRPC server: grpcio with the `*_service_pb2_grpc` servicers from opentelemetry-proto.

    Records every Export call. `script` lists the status codes answered to the first calls (in order);
    every later call is answered OK with an empty Export*ServiceResponse.
    """

    def __init__(self, script: list[grpc.StatusCode] = ()):
        self.calls: list[ExportCall] = []
        self._script = list(script)
        self._changed = threading.Condition()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self._servicer("traces"), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self._servicer("metrics"), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self._servicer("logs"), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        assert self.port, "could not bind the OTLP/gRPC test server"
        self._server.start()

    def _servicer(self, signal_name: str):
        server = self

        class Servicer:
            def Export(self, request, context):
                return server._export(signal_name, request, context)

        return Servicer()

    def _export(self, signal_name: str, request: Message, context: grpc.ServicerContext):
        with self._changed:
            code = self._script.pop(0) if self._script else grpc.StatusCode.OK
            metadata = {m.key: m.value for m in context.invocation_metadata()}
            self.calls.append(ExportCall(signal_name, request, metadata, code, time.monotonic()))
            self._changed.notify_all()
        if code != grpc.StatusCode.OK:
            context.abort(code, f"scripted {code.name} from the interop server")
        return REQUEST_TYPES[signal_name][1]()

    def wait_for_items(self, signal_name: str, count: int, timeout: float = TIMEOUT) -> int:
        """Waits (bounded) until OK-answered calls hold `count` items of a signal; returns the last count."""
        def delivered():
            return len(FLATTEN[signal_name](self.delivered(signal_name)))

        with self._changed:
            self._changed.wait_for(lambda: delivered() >= count, timeout=timeout)
            return delivered()

    def wait_for_calls(self, count: int, timeout: float = TIMEOUT) -> int:
        with self._changed:
            self._changed.wait_for(lambda: len(self.calls) >= count, timeout=timeout)
            return len(self.calls)

    def delivered(self, signal_name: str) -> list[Message]:
        return [c.request for c in self.calls if c.signal == signal_name and c.answered == grpc.StatusCode.OK]

    def stop(self) -> None:
        self._server.stop(grace=0).wait(timeout=TIMEOUT)


class ByteCountingRelay:
    """A TCP relay in front of a peer that counts the bytes the client sends through it.

    grpcio hides `grpc-encoding` from servicers (it is consumed by the transport), so this is how the
    suite sees whether Sextant compressed its messages: a highly compressible request must shrink on
    the wire with `compression: gzip` and must not with `compression: none`.
    """

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.client_bytes = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=TIMEOUT)
            for s in (client, upstream):
                s.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client:
                    with self._lock:
                        self.client_bytes += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()


@pytest.fixture
def otlp_grpc_server():
    """Starts RecordingOTLPServers on demand: `otlp_grpc_server(script=[...])`; all stopped at the end."""
    servers: list[RecordingOTLPServer] = []

    def start(script: list[grpc.StatusCode] = ()) -> RecordingOTLPServer:
        servers.append(RecordingOTLPServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def relay():
    relays: list[ByteCountingRelay] = []

    def start(upstream_port: int) -> ByteCountingRelay:
        relays.append(ByteCountingRelay(upstream_port))
        return relays[-1]

    yield start
    for r in relays:
        r.close()


def exporter_config(exporter_yaml: str, exporter_id: str, receiver_id: str = "otlp") -> str:
    """A config template: an `otlp` receiver (OTLP/HTTP) → the given exporter, for every signal, no processors
    (so each received request becomes one export)."""
    pipelines = "".join(
        f"    {s}:\n      receivers: [{receiver_id}]\n      exporters: [{exporter_id}]\n" for s in SERVICES
    )
    return (
        "receivers:\n"
        f"  {receiver_id}:\n"
        "    protocols:\n"
        "      http:\n"
        "        endpoint: 127.0.0.1:$http_port\n"
        "exporters:\n"
        f"{exporter_yaml}"
        "service:\n"
        "  telemetry:\n"
        "    metrics:\n"
        "      address: 127.0.0.1:$telemetry_port\n"
        "  pipelines:\n"
        f"{pipelines}"
    )


RETRY_YAML = (
    "    retry_on_failure:\n"
    "      initial_interval: 100ms\n"
    "      max_interval: 200ms\n"
    "      randomization_factor: 0\n"
)
HEADERS_YAML = "    headers:\n" + "".join(f'      {k}: "{v}"\n' for k, v in HEADERS.items())


def otlp_exporter_config(port: int, compression: str = "none") -> str:
    # The standard gateway shape: receiver `otlp` in, exporter `otlp` out.
    exporter = (
        "  otlp:\n"
        f"    endpoint: 127.0.0.1:{port}\n"
        "    tls:\n"
        "      insecure: true\n"
        f"    compression: {compression}\n"
        f"{HEADERS_YAML}{RETRY_YAML}"
    )
    return exporter_config(exporter, "otlp", receiver_id="otlp")


RecordingHTTPSpanExporter = recording(HTTPSpanExporter, "span")
RecordingHTTPMetricExporter = recording(HTTPMetricExporter, "metric")
RecordingHTTPLogExporter = recording(HTTPLogExporter, "log")


def send_sdk_data_over_http(collector: Collector) -> dict[str, list[Message]]:
    """The SDK scenario into the collector's OTLP/HTTP receiver; returns the SDK's encoding per signal."""
    base = collector.base_url
    plain = dict(timeout=TIMEOUT, compression=HTTPCompression.NoCompression)
    return {
        "traces": send_traces(RecordingHTTPSpanExporter(endpoint=f"{base}/v1/traces", **plain)).sent,
        "metrics": send_metrics(RecordingHTTPMetricExporter(endpoint=f"{base}/v1/metrics", preferred_temporality=CUMULATIVE, **plain)).sent,
        "logs": send_logs(RecordingHTTPLogExporter(endpoint=f"{base}/v1/logs", **plain)).sent,
    }


def post_spans(collector: Collector, req: trace_service_pb2.ExportTraceServiceRequest) -> None:
    response = requests.post(
        f"{collector.base_url}/v1/traces", data=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"}, timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text


COMPRESSIBLE = "interop " * 8192  # 64 KiB that gzip shrinks ~100×


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_otlp_exporter_delivers_sdk_data(start_collector, otlp_grpc_server, relay, compression):
    server = otlp_grpc_server()
    wire = relay(server.port)
    collector = start_collector(config_template=otlp_exporter_config(wire.port, compression))
    sent = send_sdk_data_over_http(collector)
    big = spans_request("compressible")
    big.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="blob").value.string_value = COMPRESSIBLE
    post_spans(collector, big)
    sent["traces"].append(big)

    for signal_name, requests_sent in sent.items():
        expected = len(FLATTEN[signal_name](requests_sent))
        assert server.wait_for_items(signal_name, expected) == expected, f"{signal_name}: {collector.log_tail()}"
        assert_same_items(FLATTEN[signal_name](server.delivered(signal_name)), FLATTEN[signal_name](requests_sent))
        counters = wait_for_exporter(collector, "otlp", signal_name, lambda c: c["sent_items"] >= expected)
        assert counters == {"sent_items": expected, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 0}

    assert all(c.answered == grpc.StatusCode.OK for c in server.calls)
    for call in server.calls:
        for key, value in HEADERS.items():
            assert call.metadata.get(key.lower()) == value, f"{key} missing from {call.metadata}"

    # In this gateway shape nothing reads the model, so the SDK's trace requests (canonical protobuf, with
    # the empty Status messages the SDK writes) went on as received, and still arrived exactly (above).
    kept = sum(v for labels, v in prometheus_samples(collector, "sextant_receiver_kept_encoded_spans_total")
               if labels.get("transport") == "http")
    assert kept == len(FLATTEN["traces"](sent["traces"])), collector.log_tail()

    payload = sum(c.request.ByteSize() for c in server.calls)
    if compression == "gzip":
        assert wire.client_bytes < payload / 4, f"{wire.client_bytes} bytes on the wire for {payload} bytes of messages"
    else:
        assert wire.client_bytes > payload, f"{wire.client_bytes} bytes on the wire for {payload} bytes of messages"
    collector.stop_cleanly()


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED],
    ids=lambda c: c.name,
)
def test_otlp_exporter_retries_retryable_codes(start_collector, otlp_grpc_server, code):
    """OTLP spec §Failures (gRPC): retryable codes are retried with backoff; the data is delivered once."""
    server = otlp_grpc_server(script=[code, code])
    collector = start_collector(config_template=otlp_exporter_config(server.port))
    req = spans_request("retry-a", "retry-b", "retry-c")
    post_spans(collector, req)

    assert server.wait_for_items("traces", 3) == 3, collector.log_tail()
    counters = wait_for_exporter(collector, "otlp", "traces", lambda c: c["sent_items"] >= 3)
    assert counters == {"sent_items": 3, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 2}
    time.sleep(NO_RETRY_WINDOW)
    assert [c.answered for c in server.calls] == [code, code, grpc.StatusCode.OK]
    assert all(c.request == req for c in server.calls), "a retry must resend the same request"
    gaps = [b.at - a.at for a, b in zip(server.calls, server.calls[1:])]
    assert all(gap >= 0.08 for gap in gaps), f"retried without backing off: {gaps}"
    assert len(server.delivered("traces")) == 1
    collector.stop_cleanly()


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED],
    ids=lambda c: c.name,
)
def test_otlp_exporter_drops_on_permanent_codes(start_collector, otlp_grpc_server, code):
    """Non-retryable codes drop the batch at once, counted as failed; nothing is retried."""
    server = otlp_grpc_server(script=[code])  # a retry would be answered OK, and seen
    collector = start_collector(config_template=otlp_exporter_config(server.port))
    post_spans(collector, spans_request("doomed-a", "doomed-b", "doomed-c"))

    counters = wait_for_exporter(collector, "otlp", "traces", lambda c: c["send_failed_items"] >= 3)
    time.sleep(NO_RETRY_WINDOW)
    assert [c.answered for c in server.calls] == [code]
    assert exporter_counters(collector, "otlp", "traces") == counters == {
        "sent_items": 0, "send_failed_items": 3, "enqueue_failed_items": 0, "retries": 0,
    }
    collector.stop_cleanly()


def test_otlp_receiver_and_otlp_exporter_share_a_pipeline(tmp_path: Path):
    """Receivers and exporters live in separate namespaces (as in the OTel Collector): a gateway pipeline
    `receivers: [otlp]` → `exporters: [otlp]` is valid and is no connector."""
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n"
        "exporters:\n  otlp:\n    endpoint: 127.0.0.1:14317\n    tls:\n      insecure: true\n"
        "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp]\n"
    )
    result = subprocess.run([str(SEXTANT_BIN), "validate", "--config", str(config)], capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output


# ---------------------------------------------------------------------------------------------------
# 4. Sextant's `otlphttp` exporter → a strict OTLP/HTTP test double.

HTTP_PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
MEDIA_TYPES = {"application/x-protobuf": "proto", "application/json": "json"}


ENUM_FIELDS = {"kind", "code", "severityNumber", "aggregationTemporality"}


def otlp_json_problems(node, path: str = "$") -> list[str]:
    """Where a document is proto3 JSON but not OTLP/JSON (OTLP spec §JSON Protobuf Encoding): keys must be
    lowerCamelCase, enums integers. (Hex IDs are enforced by otlp_json_to_proto.)"""
    problems = []
    if isinstance(node, dict):
        for key, value in node.items():
            if "_" in key:
                problems.append(f"{path}.{key}: key is not lowerCamelCase")
            if key in ENUM_FIELDS and not isinstance(value, int):
                problems.append(f"{path}.{key}: enum {value!r} is not an integer")
            problems += otlp_json_problems(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems += otlp_json_problems(value, f"{path}[{i}]")
    return problems


@dataclass
class HTTPExport:
    signal: str
    headers: dict[str, str]  # lower-cased names
    body: bytes  # as received (before gunzip)
    request: Message
    encoding: str
    answered: int
    at: float


class OTLPHTTPDouble:
    """A strict OTLP/HTTP server test double (OTLP spec §OTLP/HTTP), on http.server.ThreadingHTTPServer.

    The real peer of an `otlphttp` exporter is another collector; this double stands in for one and is
    stricter than one need be: it accepts only POST to /v1/{traces,metrics,logs} with Content-Type
    application/x-protobuf or application/json, Content-Encoding gzip or none, and a body that decodes
    (protobuf with opentelemetry-proto; OTLP/JSON with hex IDs, integer enums, lowerCamelCase keys and no
    unknown fields). Anything else is
    answered 4xx and recorded in `violations`. Valid requests are recorded and answered 200 with an
    empty Export*ServiceResponse in the request's encoding, unless `script` lists responses
    ((status, headers, body)) for the first requests.
    """

    def __init__(self, script: list[tuple[int, dict, bytes]] = ()):
        self.exports: list[HTTPExport] = []
        self.violations: list[str] = []
        self._script = list(script)
        self._changed = threading.Condition()
        double = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as an exporter's client expects

            def log_message(self, *args):
                pass

            def do_POST(self):
                double._handle(self)

            def do_GET(self):
                double._reject(self, 405, f"GET {self.path}")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _read_body(handler) -> bytes:
        if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(handler.rfile.readline().split(b";")[0], 16)
                chunk = handler.rfile.read(size + 2)[:size]
                if size == 0:
                    return body
                body += chunk
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))

    def _reject(self, handler, status: int, problem: str) -> None:
        with self._changed:
            self.violations.append(problem)
            self._changed.notify_all()
        body = status_pb2.Status(code=3, message=problem).SerializeToString()
        self._respond(handler, status, {"Content-Type": "application/x-protobuf"}, body)

    @staticmethod
    def _respond(handler, status: int, headers: dict, body: bytes) -> None:
        handler.send_response(status)
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler) -> None:
        raw = self._read_body(handler)
        signal_name = HTTP_PATHS.get(handler.path)
        if signal_name is None:
            return self._reject(handler, 404, f"POST to unknown path {handler.path}")
        media_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        encoding = MEDIA_TYPES.get(media_type)
        if encoding is None:
            return self._reject(handler, 415, f"unsupported Content-Type {media_type!r}")
        content_encoding = (handler.headers.get("Content-Encoding") or "identity").lower()
        if content_encoding not in ("gzip", "identity"):
            return self._reject(handler, 415, f"unsupported Content-Encoding {content_encoding!r}")
        try:
            body = gzip.decompress(raw) if content_encoding == "gzip" else raw
            request_type, response_type = REQUEST_TYPES[signal_name]
            if encoding == "proto":
                request = request_type.FromString(body)
            else:
                doc = json.loads(body)
                if problems := otlp_json_problems(doc):
                    return self._reject(handler, 400, f"not OTLP/JSON: {problems[:5]}")
                request = otlp_json_to_proto(doc, request_type())
        except (OSError, EOFError, DecodeError, ValueError, json_format.ParseError) as e:
            return self._reject(handler, 400, f"undecodable {encoding} body ({content_encoding}): {e}")

        with self._changed:
            status, headers, reply = self._script.pop(0) if self._script else (200, {}, None)
            self.exports.append(HTTPExport(
                signal_name, {k.lower(): v for k, v in handler.headers.items()}, raw, request, encoding, status, time.monotonic()
            ))
            self._changed.notify_all()
        if reply is None:
            reply = response_type().SerializeToString() if encoding == "proto" else b"{}"
            headers = {"Content-Type": media_type}
        self._respond(handler, status, headers, reply)

    def delivered(self, signal_name: str) -> list[Message]:
        return [e.request for e in self.exports if e.signal == signal_name and e.answered == 200]

    def wait_for_items(self, signal_name: str, count: int, timeout: float = TIMEOUT) -> int:
        def delivered():
            return len(FLATTEN[signal_name](self.delivered(signal_name)))

        with self._changed:
            self._changed.wait_for(lambda: delivered() >= count or self.violations, timeout=timeout)
            return delivered()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=TIMEOUT)


@pytest.fixture
def otlp_http_double():
    doubles: list[OTLPHTTPDouble] = []

    def start(script: list[tuple[int, dict, bytes]] = ()) -> OTLPHTTPDouble:
        doubles.append(OTLPHTTPDouble(script))
        return doubles[-1]

    yield start
    for d in doubles:
        d.stop()


def otlphttp_exporter_config(url: str, encoding: str = "proto", compression: str = "none") -> str:
    exporter = (
        "  otlphttp:\n"
        f"    endpoint: {url}\n"
        f"    encoding: {encoding}\n"
        f"    compression: {compression}\n"
        f"{HEADERS_YAML}{RETRY_YAML}"
    )
    return exporter_config(exporter, "otlphttp")


@pytest.mark.parametrize("encoding, compression", [("proto", "gzip"), ("proto", "none"), ("json", "gzip"), ("json", "none")])
def test_otlphttp_exporter_delivers_sdk_data(start_collector, otlp_http_double, encoding, compression):
    double = otlp_http_double()
    collector = start_collector(config_template=otlphttp_exporter_config(double.url, encoding, compression))
    sent = send_sdk_data_over_http(collector)

    for signal_name, requests_sent in sent.items():
        expected = len(FLATTEN[signal_name](requests_sent))
        assert double.wait_for_items(signal_name, expected) == expected, f"{signal_name}: {double.violations} {collector.log_tail()}"
        assert_same_items(FLATTEN[signal_name](double.delivered(signal_name)), FLATTEN[signal_name](requests_sent))
        counters = wait_for_exporter(collector, "otlphttp", signal_name, lambda c: c["sent_items"] >= expected)
        assert counters == {"sent_items": expected, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 0}

    assert double.violations == []
    media_type = {"proto": "application/x-protobuf", "json": "application/json"}[encoding]
    for export in double.exports:
        assert export.encoding == encoding
        assert export.headers["content-type"].split(";")[0] == media_type
        assert export.headers.get("content-encoding", "identity") == ("gzip" if compression == "gzip" else "identity")
        if compression == "gzip":
            assert export.body[:2] == b"\x1f\x8b"
        for key, value in HEADERS.items():
            assert export.headers.get(key.lower()) == value, f"{key} missing from {export.headers}"
    collector.stop_cleanly()


def test_otlphttp_exporter_honours_retry_after(start_collector, otlp_http_double):
    """503 with Retry-After: 1 → the retry waits a second (not the 100 ms backoff); delivered once."""
    double = otlp_http_double(script=[(503, {"Retry-After": "1"}, b"")])
    collector = start_collector(config_template=otlphttp_exporter_config(double.url))
    req = spans_request("later-a", "later-b")
    post_spans(collector, req)

    assert double.wait_for_items("traces", 2) == 2, f"{double.violations} {collector.log_tail()}"
    counters = wait_for_exporter(collector, "otlphttp", "traces", lambda c: c["sent_items"] >= 2)
    assert counters == {"sent_items": 2, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 1}
    time.sleep(NO_RETRY_WINDOW)
    assert [e.answered for e in double.exports] == [503, 200]
    assert all(e.request == req for e in double.exports)
    gap = double.exports[1].at - double.exports[0].at
    assert 0.9 <= gap < 5, f"retried {gap:.2f}s after a 503 with Retry-After: 1"
    assert double.violations == []
    collector.stop_cleanly()


@pytest.mark.parametrize("status", [429, 502, 504])
def test_otlphttp_exporter_retries_retryable_statuses(start_collector, otlp_http_double, status):
    """OTLP/HTTP spec: 429, 502, 503 and 504 are retryable; without Retry-After the backoff applies."""
    double = otlp_http_double(script=[(status, {}, b"")])
    collector = start_collector(config_template=otlphttp_exporter_config(double.url))
    post_spans(collector, spans_request("retry-me"))

    assert double.wait_for_items("traces", 1) == 1, f"{double.violations} {collector.log_tail()}"
    counters = wait_for_exporter(collector, "otlphttp", "traces", lambda c: c["sent_items"] >= 1)
    assert counters == {"sent_items": 1, "send_failed_items": 0, "enqueue_failed_items": 0, "retries": 1}
    time.sleep(NO_RETRY_WINDOW)
    assert [e.answered for e in double.exports] == [status, 200]
    collector.stop_cleanly()


BAD_DATA = status_pb2.Status(code=3, message="interop double: span 0 has an empty name")


@pytest.mark.parametrize(
    "status, headers, body",
    [
        (400, {"Content-Type": "application/x-protobuf"}, BAD_DATA.SerializeToString()),
        (401, {}, b""),
        (404, {"Content-Type": "text/plain"}, b"not here"),
        (413, {}, b""),
    ],
    ids=["400-status", "401", "404", "413"],
)
def test_otlphttp_exporter_drops_on_other_4xx(start_collector, otlp_http_double, status, headers, body):
    double = otlp_http_double(script=[(status, headers, body)])  # a retry would be answered 200, and seen
    collector = start_collector(config_template=otlphttp_exporter_config(double.url))
    post_spans(collector, spans_request("doomed-a", "doomed-b"))

    counters = wait_for_exporter(collector, "otlphttp", "traces", lambda c: c["send_failed_items"] >= 2)
    time.sleep(NO_RETRY_WINDOW)
    assert [e.answered for e in double.exports] == [status]
    assert exporter_counters(collector, "otlphttp", "traces") == counters == {
        "sent_items": 0, "send_failed_items": 2, "enqueue_failed_items": 0, "retries": 0,
    }
    collector.stop_cleanly()
    if status == 400:
        assert BAD_DATA.message in collector.log_tail(), "the google.rpc.Status message should be logged"
