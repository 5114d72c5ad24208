"""Interop tests for TLS, mutual TLS and authentication on Sextant's receivers and exporters.

A throwaway PKI is made per module with the `openssl` CLI: a CA, a server certificate for
localhost/127.0.0.1, a client certificate, and an unrelated CA with its own client certificate.
Independent peers on every side:
- the OpenTelemetry Python SDK's OTLP/HTTP and OTLP/gRPC exporters send to Sextant's receivers over
  TLS and mutual TLS, and what the file exporter wrote is counted;
- `requests` and raw grpcio calls cover what the SDK cannot: plaintext to a TLS port, a client
  certificate from another CA, missing and wrong bearer tokens (401 / UNAUTHENTICATED);
- an ssl-wrapped http.server and a grpcio secure server (both requiring client certificates) receive
  what Sextant's `otlphttp`, `zipkin` and `otlp` exporters send, and record the client certificate and
  the Authorization header they got.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import io
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import msgpack
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import SEXTANT_BIN, free_port, read_json_lines
from http_double import StrictHTTPDouble

TIMEOUT = 10  # seconds, for every wait
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


# ---------------------------------------------------------------------------------------------------
# The throwaway PKI.


class PKI:
    def __init__(self, directory: Path):
        self.dir = directory
        self._ca("ca", "interop CA")
        self._ca("other-ca", "unrelated CA")
        self._leaf("server", "ca", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self._leaf("client", "ca", "interop client", "extendedKeyUsage=clientAuth\n")
        self._leaf("stranger", "other-ca", "stranger", "extendedKeyUsage=clientAuth\n")

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.dir, check=True, capture_output=True, timeout=TIMEOUT)

    def _key(self, name: str) -> None:
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")

    def _ca(self, name: str, subject: str) -> None:
        self._key(name)
        self._openssl(
            "req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={subject}", "-days", "2", "-out", f"{name}.crt",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )

    def _leaf(self, name: str, ca: str, subject: str, extensions: str) -> None:
        self._key(name)
        self._openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={subject}", "-out", f"{name}.csr")
        (self.dir / f"{name}.ext").write_text(extensions)
        self._openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2",
            "-out", f"{name}.crt", "-extfile", f"{name}.ext",
        )

    def server_tls(self, mutual: bool) -> str:
        """A receiver's `tls` block (flow style)."""
        client_ca = f", client_ca_file: {self.path('ca.crt')}" if mutual else ""
        return f"{{cert_file: {self.path('server.crt')}, key_file: {self.path('server.key')}{client_ca}}}"

    def server_context(self) -> ssl.SSLContext:
        """What a test server requires: TLS ≥ 1.2 and a client certificate signed by the CA."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.path("server.crt"), self.path("server.key"))
        ctx.load_verify_locations(self.path("ca.crt"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


@pytest.fixture(autouse=True)
def no_ca_bundle_override(monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE win over a session's `verify` (psf/requests#3829),
    which is how the SDK's OTLP/HTTP exporter passes `certificate_file`: drop them for these tests."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


# ---------------------------------------------------------------------------------------------------
# Helpers.


def sdk_spans(n: int, name: str):
    """`n` finished SDK spans (ReadableSpan), made by a real TracerProvider."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("interop.tls")
    for i in range(n):
        with tracer.start_as_current_span(f"{name}-{i}"):
            pass
    provider.shutdown()
    return memory.get_finished_spans()


def span_names(collector) -> list[str]:
    """Span names in what the file exporter wrote (`format: json`)."""
    names = []
    for line in read_json_lines(collector.workdir / "out" / "traces.jsonl"):
        for rs in line.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                names += [s["name"] for s in ss.get("spans", [])]
    return names


def wait_for_names(collector, prefix: str, count: int) -> list[str]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        names = [n for n in span_names(collector) if n.startswith(prefix)]
        if len(names) >= count or time.monotonic() > deadline:
            return names
        time.sleep(0.05)


def receiver_config(protocols: str, extensions: str = "", service_extensions: str = "") -> str:
    """An `otlp` receiver with the given `protocols` body → a `file` exporter (JSON)."""
    return (
        f"{extensions}"
        "receivers:\n"
        "  otlp:\n"
        "    protocols:\n"
        f"{protocols}"
        "exporters:\n"
        "  file:\n"
        "    path: $out/traces.jsonl\n"
        "    format: json\n"
        "service:\n"
        f"{service_extensions}"
        "  telemetry:\n"
        "    metrics:\n"
        "      address: 127.0.0.1:$telemetry_port\n"
        "  pipelines:\n"
        "    traces: {receivers: [otlp], exporters: [file]}\n"
    )


def export_request(name: str) -> trace_service_pb2.ExportTraceServiceRequest:
    req = trace_service_pb2.ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes(range(1, 17))
    span.span_id = bytes(range(1, 9))
    span.name = name
    span.start_time_unix_nano = 1_700_000_000_000_000_000
    span.end_time_unix_nano = 1_700_000_000_000_001_000
    return req


def raw_export(channel: grpc.Channel, name: str, metadata=()) -> None:
    call = channel.unary_unary(EXPORT_METHOD, request_serializer=lambda m: m.SerializeToString(), response_deserializer=lambda b: b)
    call(export_request(name), metadata=metadata, timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------------
# 1. Receivers over TLS and mutual TLS.


def test_otlp_http_over_tls_with_the_sdk_and_plaintext_is_refused(start_collector, pki):
    collector = start_collector(
        config_template=receiver_config(f"      http:\n        endpoint: 127.0.0.1:$http_port\n        tls: {pki.server_tls(mutual=False)}\n")
    )
    url = f"https://localhost:{collector.otlp_port}/v1/traces"
    exporter = HTTPSpanExporter(endpoint=url, certificate_file=pki.path("ca.crt"), timeout=TIMEOUT)
    assert exporter.export(sdk_spans(3, "tls-a")) == SpanExportResult.SUCCESS
    assert len(wait_for_names(collector, "tls-a", 3)) == 3

    # Plaintext HTTP to the TLS port: no HTTP answer comes back (the handshake fails), the collector lives.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"http://127.0.0.1:{collector.otlp_port}/v1/traces", data=b"", timeout=TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf"})
    # A client that does not trust the collector's CA refuses it.
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(url, data=b"", timeout=TIMEOUT, headers={"Content-Type": "application/x-protobuf"})
    assert exporter.export(sdk_spans(2, "tls-b")) == SpanExportResult.SUCCESS
    assert len(wait_for_names(collector, "tls-b", 2)) == 2
    exporter.shutdown()
    collector.stop_cleanly()


def test_mutual_tls_on_otlp_http_and_grpc(start_collector, pki):
    tls = pki.server_tls(mutual=True)
    collector = start_collector(
        config_template=receiver_config(
            f"      http:\n        endpoint: 127.0.0.1:$http_port\n        tls: {tls}\n"
            f"      grpc:\n        endpoint: 127.0.0.1:$grpc_port\n        tls: {tls}\n"
        )
    )
    http_url = f"https://localhost:{collector.otlp_port}/v1/traces"
    grpc_target = f"localhost:{collector.grpc_port}"

    # The SDK with a client certificate, over both transports.
    with_cert = HTTPSpanExporter(
        endpoint=http_url, certificate_file=pki.path("ca.crt"), client_key_file=pki.path("client.key"),
        client_certificate_file=pki.path("client.crt"), timeout=TIMEOUT,
    )
    assert with_cert.export(sdk_spans(4, "mtls-http")) == SpanExportResult.SUCCESS
    credentials = grpc.ssl_channel_credentials(pki.read("ca.crt"), pki.read("client.key"), pki.read("client.crt"))
    grpc_exporter = GRPCSpanExporter(endpoint=grpc_target, credentials=credentials, timeout=TIMEOUT)
    assert grpc_exporter.export(sdk_spans(5, "mtls-grpc")) == SpanExportResult.SUCCESS
    assert len(wait_for_names(collector, "mtls-http", 4)) == 4
    assert len(wait_for_names(collector, "mtls-grpc", 5)) == 5

    # Refused: no client certificate, or one from another CA (HTTP); no certificate, or plaintext (gRPC).
    for cert in (None, (pki.path("stranger.crt"), pki.path("stranger.key"))):
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            requests.post(http_url, data=b"", cert=cert, verify=pki.path("ca.crt"), timeout=TIMEOUT,
                          headers={"Content-Type": "application/x-protobuf"})
    for channel in (
        grpc.secure_channel(grpc_target, grpc.ssl_channel_credentials(pki.read("ca.crt"))),
        grpc.secure_channel(grpc_target, grpc.ssl_channel_credentials(pki.read("ca.crt"), pki.read("stranger.key"), pki.read("stranger.crt"))),
        grpc.insecure_channel(grpc_target),
    ):
        with channel, pytest.raises(grpc.RpcError) as refused:
            raw_export(channel, "refused")
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    # grpcio with ssl_channel_credentials and a client certificate, after all that: still served.
    with grpc.secure_channel(grpc_target, credentials) as channel:
        raw_export(channel, "mtls-raw")
    assert len(wait_for_names(collector, "mtls-raw", 1)) == 1
    assert not [n for n in span_names(collector) if n == "refused"]
    with_cert.shutdown()
    grpc_exporter.shutdown()
    collector.stop_cleanly()


def test_min_version_13_refuses_a_tls12_client(start_collector, pki):
    tls = f"{{cert_file: {pki.path('server.crt')}, key_file: {pki.path('server.key')}, min_version: \"1.3\"}}"
    collector = start_collector(config_template=receiver_config(f"      http:\n        endpoint: 127.0.0.1:$http_port\n        tls: {tls}\n"))
    for version, ok in ((ssl.TLSVersion.TLSv1_2, False), (ssl.TLSVersion.TLSv1_3, True)):
        ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT) as raw:
            if ok:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    assert s.version() == "TLSv1.3"
            else:
                with pytest.raises(ssl.SSLError):
                    ctx.wrap_socket(raw, server_hostname="localhost")
    collector.stop_cleanly()


# ---------------------------------------------------------------------------------------------------
# 2. Bearer tokens on receivers.


def test_bearer_token_on_otlp_http_and_grpc(start_collector, pki, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    auth = "        auth: {authenticator: bearertokenauth}\n"
    collector = start_collector(
        config_template=receiver_config(
            f"      http:\n        endpoint: 127.0.0.1:$http_port\n        tls: {pki.server_tls(mutual=False)}\n{auth}"
            f"      grpc:\n        endpoint: 127.0.0.1:$grpc_port\n{auth}",
            extensions=f"extensions:\n  bearertokenauth:\n    filename: {token_file}\n",
            service_extensions="  extensions: [bearertokenauth]\n",
        )
    )
    url = f"https://localhost:{collector.otlp_port}/v1/traces"
    body = export_request("bearer-http").SerializeToString()

    def post(authorization: str | None) -> requests.Response:
        headers = {"Content-Type": "application/x-protobuf"}
        if authorization is not None:
            headers["Authorization"] = authorization
        return requests.post(url, data=body, headers=headers, verify=pki.path("ca.crt"), timeout=TIMEOUT)

    for refused in (None, "Bearer wrong-token", "Basic Zmlyc3QtdG9rZW4=", "Bearer first-token-and-more"):
        r = post(refused)
        assert r.status_code == 401, (refused, r.status_code, r.text)
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert post("Bearer first-token").status_code == 200

    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        for metadata in ((), (("authorization", "Bearer wrong-token"),)):
            with pytest.raises(grpc.RpcError) as refused:
                raw_export(channel, "bearer-refused", metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        raw_export(channel, "bearer-grpc", (("authorization", "Bearer first-token"),))

        # The token file is re-read when it changes (rotation by rename, as secret volumes do).
        (tmp_path / "token.new").write_text("second-token")
        (tmp_path / "token.new").rename(token_file)
        deadline = time.monotonic() + TIMEOUT
        while post("Bearer second-token").status_code != 200:
            assert time.monotonic() < deadline, "the rotated token was not picked up"
            time.sleep(0.1)
        assert post("Bearer first-token").status_code == 401
        raw_export(channel, "bearer-rotated", (("authorization", "Bearer second-token"),))

    assert len(wait_for_names(collector, "bearer-", 4)) == 4
    assert "bearer-refused" not in span_names(collector)
    metrics = requests.get(f"{collector.telemetry_url}/metrics", timeout=TIMEOUT).text
    refused = {
        transport: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() for transport in ("http", "grpc")
        if line.startswith(f'sextant_receiver_unauthenticated_requests_total{{receiver="otlp",transport="{transport}"}}')
    }
    # HTTP: the four above, the stale token after rotation, and any polls before the reload; gRPC: none + wrong.
    assert refused["http"] >= 5 and refused["grpc"] == 2, refused
    assert "first-token" not in collector.log_path.read_text() and "second-token" not in collector.log_path.read_text()
    collector.stop_cleanly()


RECEIVERS = {
    # type: (config body with $http_port, path, content type of a body the handler must reject with 400)
    "zipkin": ("    endpoint: 127.0.0.1:$http_port\n{security}", "/api/v2/spans", "application/json"),
    "jaeger": ("    protocols:\n      thrift_http:\n        endpoint: 127.0.0.1:$http_port\n{security_nested}", "/api/traces", "application/x-thrift"),
    "prometheusremotewrite": ("    endpoint: 127.0.0.1:$http_port\n{security}", "/api/v1/write", "application/x-protobuf"),
}


@pytest.mark.parametrize("kind", sorted(RECEIVERS))
def test_http_receivers_share_tls_and_bearer_auth(start_collector, pki, kind):
    """The other receivers on the shared HTTP server: TLS, then 401 before the body is looked at; with the
    token the request reaches the receiver's own handler (which rejects the garbage body with 400)."""
    body, path, content_type = RECEIVERS[kind]
    security = f"    tls: {pki.server_tls(mutual=False)}\n    auth: {{authenticator: bearertokenauth}}\n"
    nested = security.replace("    ", "        ", 1).replace("\n    auth", "\n        auth")
    signal = "metrics" if kind == "prometheusremotewrite" else "traces"
    collector = start_collector(config_template=(
        "extensions: {bearertokenauth: {token: recv-s3cret}}\n"
        f"receivers:\n  {kind}:\n" + body.format(security=security, security_nested=nested) +
        "exporters: {nop: }\n"
        "service:\n"
        "  extensions: [bearertokenauth]\n"
        "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
        f"  pipelines: {{{signal}: {{receivers: [{kind}], exporters: [nop]}}}}\n"
    ))
    url = f"https://localhost:{collector.otlp_port}{path}"

    def post(token: str | None) -> requests.Response:
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(url, data=b"\xff\x00 not a valid body", headers=headers, verify=pki.path("ca.crt"), timeout=TIMEOUT)

    for token in (None, "wrong"):
        r = post(token)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", (token, r.status_code, r.text)
    r = post("recv-s3cret")
    assert r.status_code == 400, (r.status_code, r.text)
    collector.stop_cleanly()


# ---------------------------------------------------------------------------------------------------
# 3. Exporters over mutual TLS, with credentials.


def forwarding_config(exporter_id: str, exporter_body: str, extension_id: str, extension_body: str) -> str:
    """OTLP/HTTP (plaintext) in → exporter `exporter_id` (its keys in `exporter_body`) out, with one extension."""
    return (
        "extensions:\n"
        f"  {extension_id}:\n{extension_body}"
        "receivers:\n"
        "  otlp:\n"
        "    protocols:\n"
        "      http:\n"
        "        endpoint: 127.0.0.1:$http_port\n"
        "exporters:\n"
        f"  {exporter_id}:\n{exporter_body}"
        "    retry_on_failure: {initial_interval: 100ms, max_interval: 200ms}\n"
        "service:\n"
        f"  extensions: [{extension_id}]\n"
        "  telemetry:\n"
        "    metrics:\n"
        "      address: 127.0.0.1:$telemetry_port\n"
        "  pipelines:\n"
        f"    traces: {{receivers: [otlp], exporters: [{exporter_id}]}}\n"
    )


def post_to_collector(collector, name: str) -> None:
    r = requests.post(
        f"{collector.base_url}/v1/traces", data=export_request(name).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"}, timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text


def client_tls(pki: PKI) -> str:
    return f"{{ca_file: {pki.path('ca.crt')}, cert_file: {pki.path('client.crt')}, key_file: {pki.path('client.key')}}}"


@pytest.mark.parametrize("kind", ["otlphttp", "zipkin"])
def test_http_exporters_over_mutual_tls_with_basic_auth(start_collector, pki, kind):
    if kind == "otlphttp":
        double = StrictHTTPDouble(
            "/v1/traces", {"application/x-protobuf": trace_service_pb2.ExportTraceServiceRequest.FromString}, 200,
            lambda r: sum(len(ss.spans) for rs in r.resource_spans for ss in rs.scope_spans), tls=pki.server_context(),
        )
        endpoint = double.url.removesuffix("/v1/traces")
    else:
        double = StrictHTTPDouble("/api/v2/spans", {"application/json": json.loads}, 202, len, tls=pki.server_context())
        endpoint = double.url
    try:
        collector = start_collector(config_template=forwarding_config(
            f"{kind}/out", f"    endpoint: {endpoint}\n    tls: {client_tls(pki)}\n    auth: {{authenticator: basicauth/backend}}\n",
            "basicauth/backend", "    client_auth: {username: sextant, password: \"p@ss:word\"}\n",
        ))
        post_to_collector(collector, f"{kind}-over-mtls")
        assert double.wait_for_items(1) == 1, double.violations
        got = double.received[0]
        assert got.headers["authorization"] == "Basic " + base64.b64encode(b"sextant:p@ss:word").decode()
        subject = dict(x[0] for x in got.peer_cert["subject"])
        assert subject["commonName"] == "interop client"
        assert not double.violations
        assert "p@ss:word" not in collector.log_path.read_text()
        collector.stop_cleanly()
    finally:
        double.stop()


class SecureOTLPServer:
    """A grpcio OTLP trace server that requires a client certificate signed by the test CA (plaintext
    when `pki` is None)."""

    def __init__(self, pki: PKI | None):
        self.calls: list[tuple[dict[str, str], int]] = []
        self._changed = threading.Condition()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        server = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                with server._changed:
                    spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                    server.calls.append(({m.key: m.value for m in context.invocation_metadata()}, spans))
                    server._changed.notify_all()
                return trace_service_pb2.ExportTraceServiceResponse()

        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self._server)
        if pki is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            credentials = grpc.ssl_server_credentials(
                [(pki.read("server.key"), pki.read("server.crt"))], root_certificates=pki.read("ca.crt"), require_client_auth=True
            )
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        assert self.port
        self._server.start()

    def wait_for_calls(self, n: int) -> int:
        with self._changed:
            self._changed.wait_for(lambda: len(self.calls) >= n, timeout=TIMEOUT)
            return len(self.calls)

    def stop(self) -> None:
        self._server.stop(grace=None).wait(TIMEOUT)


def test_otlp_grpc_exporter_over_mutual_tls_with_a_bearer_token(start_collector, pki):
    server = SecureOTLPServer(pki)
    try:
        collector = start_collector(config_template=forwarding_config(
            "otlp/out",
            f"    endpoint: 127.0.0.1:{server.port}\n"
            f"    tls: {{ca_file: {pki.path('ca.crt')}, cert_file: {pki.path('client.crt')}, key_file: {pki.path('client.key')}, server_name_override: localhost}}\n"
            "    auth: {authenticator: bearertokenauth/backend}\n",
            "bearertokenauth/backend", "    token: grpc-s3cret\n",
        ))
        post_to_collector(collector, "grpc-over-mtls")
        assert server.wait_for_calls(1) == 1
        metadata, spans = server.calls[0]
        assert spans == 1
        assert metadata["authorization"] == "Bearer grpc-s3cret"
        assert "grpc-s3cret" not in collector.log_path.read_text()
        collector.stop_cleanly()
    finally:
        server.stop()


def test_otlp_exporter_without_a_tls_block_uses_tls(start_collector):
    """No `tls` key means TLS, as in the OTel Collector; `tls: {insecure: true}` is plaintext. Both
    exporters send to one plaintext server: only the insecure one gets through."""
    server = SecureOTLPServer(None)
    try:
        exporters = "".join(
            f"  otlp/{name}:\n    endpoint: 127.0.0.1:{server.port}\n    headers: {{x-exporter: {name}}}\n{tls}"
            "    retry_on_failure: {initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 1s}\n"
            for name, tls in (("default", ""), ("insecure", "    tls: {insecure: true}\n"))
        )
        collector = start_collector(config_template=(
            "receivers:\n  otlp: {protocols: {http: {endpoint: 127.0.0.1:$http_port}}}\n"
            f"exporters:\n{exporters}"
            "service:\n"
            "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
            "  pipelines: {traces: {receivers: [otlp], exporters: [otlp/default, otlp/insecure]}}\n"
        ))
        post_to_collector(collector, "default-is-tls")
        assert server.wait_for_calls(1) == 1
        time.sleep(1.0)  # bounded: the TLS exporter retries every 100–200 ms meanwhile
        assert [m["x-exporter"] for m, _ in server.calls] == ["insecure"]
        collector.stop_cleanly()
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------
# 4. Configuration errors name the file and its position.


def test_a_missing_certificate_file_is_a_config_error(tmp_path, pki):
    config = tmp_path / "c.yaml"
    config.write_text(receiver_config(
        "      http:\n        endpoint: 127.0.0.1:0\n"
        f"        tls: {{cert_file: {tmp_path}/missing.crt, key_file: {pki.path('client.key')}, client_ca_file: {pki.path('server.key')}}}\n"
    ).replace("$telemetry_port", "0").replace("$out", str(tmp_path)))
    run = subprocess.run([str(SEXTANT_BIN), "validate", "--config", str(config)], capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert f"{config}:6:" in out and f"cannot read certificate file '{tmp_path}/missing.crt': No such file or directory" in out, out
    assert f"'{pki.path('server.key')}' is not a PEM certificate file" in out, out
    assert "BEGIN" not in out  # no key material in messages


# ---------------------------------------------------------------------------------------------------
# 5. Fluentd Forward over TLS, both directions.


def test_fluentforward_receiver_over_mutual_tls(start_collector, pki):
    collector = start_collector(config_template=(
        "receivers:\n"
        "  fluentforward:\n"
        "    endpoint: 127.0.0.1:$http_port\n"
        f"    tls: {pki.server_tls(mutual=True)}\n"
        "exporters:\n"
        "  file: {path: $out/logs.jsonl, format: json}\n"
        "service:\n"
        "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
        "  pipelines: {logs: {receivers: [fluentforward], exporters: [file]}}\n"
    ))
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
    ctx.load_cert_chain(pki.path("client.crt"), pki.path("client.key"))
    with socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(msgpack.packb(["tls.tag", 1700000000, {"log": "over tls"}, {"chunk": "c1"}], use_bin_type=True))
        unpacker = msgpack.Unpacker(raw=False)
        deadline = time.monotonic() + TIMEOUT
        reply = None
        while reply is None and time.monotonic() < deadline:
            data = s.recv(4096)
            assert data, "connection closed before the ack"
            unpacker.feed(data)
            reply = next(unpacker, None)
        assert reply == {"ack": "c1"}
    # Without a client certificate the handshake is refused.
    bare = ssl.create_default_context(cafile=pki.path("ca.crt"))
    with socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with bare.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(msgpack.packb(["tls.tag", 1700000000, {"log": "refused"}], use_bin_type=True))
                assert s.recv(1) == b""  # TLS 1.3: the refusal arrives after the handshake
                raise ConnectionError("closed")
    collector.stop_cleanly()
    bodies = [r["body"]["stringValue"] for line in read_json_lines(collector.workdir / "out" / "logs.jsonl")
              for rl in line["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    assert bodies == ["over tls"]


def test_fluentforward_exporter_over_mutual_tls(start_collector, pki):
    frames: list = []
    peers: list = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    ctx = pki.server_context()

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with ctx.wrap_socket(conn, server_side=True) as s:
            peers.append(dict(x[0] for x in s.getpeercert()["subject"]))
            unpacker = msgpack.Unpacker(raw=False)
            while not frames:
                data = s.recv(65536)
                if not data:
                    return
                unpacker.feed(data)
                for frame in unpacker:
                    frames.append(frame)
                    s.sendall(msgpack.packb({"ack": frame[2]["chunk"]}))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        collector = start_collector(config_template=(
            "receivers:\n  otlp: {protocols: {http: {endpoint: 127.0.0.1:$http_port}}}\n"
            "exporters:\n"
            "  fluentforward:\n"
            f"    endpoint: 127.0.0.1:{listener.getsockname()[1]}\n"
            "    require_ack: true\n"
            f"    tls: {{insecure: false, ca_file: {pki.path('ca.crt')}, cert_file: {pki.path('client.crt')}, key_file: {pki.path('client.key')}}}\n"
            "service:\n"
            "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
            "  pipelines: {logs: {receivers: [otlp], exporters: [fluentforward]}}\n"
        ))
        r = requests.post(
            f"{collector.base_url}/v1/logs", timeout=TIMEOUT, headers={"Content-Type": "application/json"},
            data=json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "to fluentd"}}]}]}]}),
        )
        assert r.status_code == 200, r.text
        thread.join(TIMEOUT)
        assert peers == [{"commonName": "interop client"}]
        tag, stream, option = frames[0]
        entries = list(msgpack.Unpacker(io.BytesIO(stream), raw=False))
        assert [e[1]["log"] for e in entries] == ["to fluentd"]
        collector.stop_cleanly()
    finally:
        listener.close()


# ---------------------------------------------------------------------------------------------------
# The rest of issue 8: syslog over TLS, the prometheus receiver's scrape client, and the collector's
# own HTTP endpoints (prometheus and jaeger_query exporters, health_check) over TLS.


def log_bodies(collector) -> list[str]:
    return [r["body"]["stringValue"] for line in read_json_lines(collector.workdir / "out" / "logs.jsonl")
            for rl in line["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]]


def test_syslog_over_mutual_tls_rfc5425(start_collector, pki):
    """RFC 5425: TLS, then octet-counted RFC 5424 messages (`MSG-LEN SP SYSLOG-MSG`). A client without
    a certificate from the CA, and a plaintext client, get no records in."""
    collector = start_collector(config_template=(
        "receivers:\n"
        "  syslog:\n"
        "    tcp:\n"
        "      listen_address: 127.0.0.1:$http_port\n"
        f"      tls: {pki.server_tls(mutual=True)}\n"
        "exporters:\n"
        "  file: {path: $out/logs.jsonl, format: json}\n"
        "service:\n"
        "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
        "  pipelines: {logs: {receivers: [syslog], exporters: [file]}}\n"
    ))
    messages = [f"<165>1 2026-12-03T10:00:0{i}.000Z host app 42 ID{i} - over tls {i}".encode() for i in range(3)]
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
    ctx.load_cert_chain(pki.path("client.crt"), pki.path("client.key"))
    with socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        # One frame split across two writes, then two frames in one write.
        first = b"%d " % len(messages[0]) + messages[0]
        s.sendall(first[:10])
        time.sleep(0.05)
        s.sendall(first[10:])
        s.sendall(b"".join(b"%d " % len(m) + m for m in messages[1:]))
        deadline = time.monotonic() + TIMEOUT
        while len(log_bodies(collector)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    # No client certificate: the handshake (or, with TLS 1.3, the first read) fails.
    bare = ssl.create_default_context(cafile=pki.path("ca.crt"))
    with socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with bare.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"12 <14>1 - - - -")
                assert s.recv(1) == b""
                raise ConnectionError("closed")
    # Plain text to the TLS port is not syslog to it: the server closes (its alert is not a syslog reply).
    with socket.create_connection(("127.0.0.1", collector.otlp_port), timeout=TIMEOUT) as s:
        m = b"<14>1 - host app - - - plaintext"
        s.sendall(b"%d " % len(m) + m)
        try:
            while s.recv(1024):
                pass
        except OSError:
            pass
    collector.stop_cleanly()
    assert sorted(log_bodies(collector)) == [f"over tls {i}" for i in range(3)]


class MetricsTarget:
    """An HTTPS `/metrics` target that requires a client certificate signed by the test CA and records
    the Authorization header and client certificate of each scrape."""

    def __init__(self, pki: PKI):
        self.scrapes: list[tuple[str | None, dict]] = []
        self.hosts: list[str | None] = []
        self.server_names: list[str | None] = []  # SNI of each handshake
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                target.scrapes.append((self.headers.get("Authorization"), self.connection.getpeercert()))
                target.hosts.append(self.headers.get("Host"))
                body = b"# TYPE tls_scraped_total counter\ntls_scraped_total 7\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = pki.server_context()
        ctx.sni_callback = lambda _sock, name, _ctx: target.server_names.append(name)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def scraped_values(collector, name: str) -> list[float]:
    values = []
    for line in read_json_lines(collector.workdir / "out" / "metrics.jsonl"):
        for rm in line.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    if m["name"] == name:
                        for p in m.get("sum", m.get("gauge", {})).get("dataPoints", []):
                            values.append(float(p.get("asDouble", p.get("asInt", 0))))
    return values


def scrape_config(scrape_configs: str) -> str:
    """A collector whose `prometheus` receiver has these scrape configs, written to the file exporter."""
    return (
        "receivers:\n"
        "  prometheus:\n"
        "    config:\n"
        "      scrape_configs:\n"
        f"{scrape_configs}"
        "exporters:\n"
        "  file: {path: $out/metrics.jsonl, format: json}\n"
        "service:\n"
        "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
        "  pipelines: {metrics: {receivers: [prometheus], exporters: [file]}}\n"
    )


@pytest.mark.parametrize("auth", ["basic_auth", "authorization_file"])
def test_prometheus_receiver_scrapes_an_https_mtls_target(start_collector, pki, tmp_path, auth):
    target = MetricsTarget(pki)
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-token\n")
    # basic_auth: the target by IP address, verified and sent in SNI as `server_name` (the certificate's
    # DNS name); authorization_file: the target by that name.
    auth_block = (
        "        basic_auth: {username: scraper, password: \"p@ss:word\"}\n" if auth == "basic_auth"
        else f"        authorization: {{type: Bearer, credentials_file: {secret}}}\n"
    )
    address = f"127.0.0.1:{target.port}" if auth == "basic_auth" else f"localhost:{target.port}"
    server_name = ", server_name: localhost" if auth == "basic_auth" else ""
    try:
        collector = start_collector(config_template=scrape_config(
            "      - job_name: secure\n"
            "        scrape_interval: 200ms\n"
            "        scheme: https\n"
            f"        tls_config: {{ca_file: {pki.path('ca.crt')}, cert_file: {pki.path('client.crt')}, "
            f"key_file: {pki.path('client.key')}, min_version: TLS12{server_name}}}\n"
            f"{auth_block}"
            f"        static_configs: [{{targets: ['{address}']}}]\n"
        ))
        deadline = time.monotonic() + TIMEOUT
        while not scraped_values(collector, "tls_scraped_total") and time.monotonic() < deadline:
            time.sleep(0.1)
        collector.stop_cleanly()
        assert 7.0 in scraped_values(collector, "tls_scraped_total")
        assert 1.0 in scraped_values(collector, "up")
        header, cert = target.scrapes[0]
        expected = ("Basic " + base64.b64encode(b"scraper:p@ss:word").decode()) if auth == "basic_auth" else "Bearer s3cr3t-token"
        assert header == expected
        assert dict(x[0] for x in cert["subject"])["commonName"] == "interop client"
        assert target.server_names[0] == "localhost" and target.hosts[0] == address
        log = collector.log_path.read_text()
        assert "p@ss:word" not in log and "s3cr3t-token" not in log
    finally:
        target.stop()


def test_prometheus_receiver_without_the_ca_reports_up_0(start_collector, pki):
    """The target's CA is not trusted (system roots only): every scrape fails its handshake, `up` is 0."""
    target = MetricsTarget(pki)
    try:
        collector = start_collector(config_template=scrape_config(
            "      - {job_name: untrusted, scrape_interval: 200ms, scheme: https,\n"
            f"         static_configs: [{{targets: ['localhost:{target.port}']}}]}}\n"
        ))
        deadline = time.monotonic() + TIMEOUT
        while not scraped_values(collector, "up") and time.monotonic() < deadline:
            time.sleep(0.1)
        collector.stop_cleanly()
        assert scraped_values(collector, "up") and set(scraped_values(collector, "up")) == {0.0}
        assert not scraped_values(collector, "tls_scraped_total")
    finally:
        target.stop()


def client_context(pki: PKI, with_certificate: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
    if with_certificate:
        ctx.load_cert_chain(pki.path("client.crt"), pki.path("client.key"))
    return ctx


def https_get(url: str, ctx: ssl.SSLContext) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, context=ctx, timeout=TIMEOUT) as r:
        return r.status, r.read()


def refused_without_certificate(url: str, pki: PKI) -> bool:
    try:
        https_get(url, client_context(pki, with_certificate=False))
    except (ssl.SSLError, ConnectionError, urllib.error.URLError):
        return True
    return False


def test_jaeger_query_and_health_check_over_mutual_tls(start_collector, pki):
    collector = start_collector(udp_port_names=("health",), config_template=(
        "extensions:\n"
        f"  health_check: {{endpoint: '127.0.0.1:$health', tls: {pki.server_tls(mutual=True)}}}\n"
        "receivers:\n"
        "  otlp: {protocols: {http: {endpoint: '127.0.0.1:$http_port'}}}\n"
        "exporters:\n"
        f"  jaeger_query: {{endpoint: '127.0.0.1:$grpc_port', tls: {pki.server_tls(mutual=True)}}}\n"
        "service:\n"
        "  extensions: [health_check]\n"
        "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
        "  pipelines: {traces: {receivers: [otlp], exporters: [jaeger_query]}}\n"
    ))
    post_to_collector(collector, "query-over-tls")
    base = f"https://localhost:{collector.grpc_port}"
    deadline = time.monotonic() + TIMEOUT
    while True:
        status, body = https_get(f"{base}/api/services", client_context(pki))
        if "interop" in body.decode() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 200 and json.loads(body)["data"], body
    assert refused_without_certificate(f"{base}/api/services", pki)
    health = f"https://localhost:{collector.udp_ports['health']}/"
    assert https_get(health, client_context(pki)) == (200, b'{"status":"Server available"}')
    assert refused_without_certificate(health, pki)
    # Plain HTTP to the TLS port gets no answer.
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn = http.client.HTTPConnection("127.0.0.1", collector.grpc_port, timeout=TIMEOUT)
        conn.request("GET", "/api/services")
        conn.getresponse()
    collector.stop_cleanly()


PROMETHEUS = shutil.which("prometheus")


def test_prometheus_scrapes_the_exporter_over_mutual_tls(start_collector, pki, tmp_path):
    """Debian's real Prometheus server scrapes the `prometheus` exporter over HTTPS with `tls_config`
    (CA, client certificate, server_name); a scrape without a client certificate is refused."""
    assert PROMETHEUS, "prometheus missing: scripts/system-deps.sh installs Debian's prometheus package"
    collector = start_collector(config_template=(
        "receivers:\n"
        "  otlp: {protocols: {http: {endpoint: '127.0.0.1:$http_port'}}}\n"
        "exporters:\n"
        f"  prometheus: {{endpoint: '127.0.0.1:$grpc_port', tls: {pki.server_tls(mutual=True)}}}\n"
        "service:\n"
        "  telemetry: {metrics: {address: 127.0.0.1:$telemetry_port}}\n"
        "  pipelines: {metrics: {receivers: [otlp], exporters: [prometheus]}}\n"
    ))
    now = time.time_ns()
    body = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeMetrics": [{"metrics": [{"name": "tls_orders", "gauge": {"dataPoints": [{"asDouble": 42, "timeUnixNano": str(now)}]}}]}]}]}
    r = requests.post(f"{collector.base_url}/v1/metrics", json=body, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    url = f"https://localhost:{collector.grpc_port}/metrics"
    assert b"tls_orders" in https_get(url, client_context(pki))[1]
    assert refused_without_certificate(url, pki)

    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: sextant-tls
    scheme: https
    tls_config: {{ca_file: {pki.path('ca.crt')}, cert_file: {pki.path('client.crt')}, key_file: {pki.path('client.key')}, server_name: localhost}}
    static_configs: [{{targets: ["127.0.0.1:{collector.grpc_port}"]}}]
  - job_name: sextant-no-client-cert
    scheme: https
    tls_config: {{ca_file: {pki.path('ca.crt')}, server_name: localhost}}
    static_configs: [{{targets: ["127.0.0.1:{collector.grpc_port}"]}}]
""")
    with open(tmp_path / "prometheus.log", "wb") as log:
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        def query(promql: str) -> list[dict]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": promql}),
                                            timeout=TIMEOUT) as resp:
                    return json.loads(resp.read())["data"]["result"]
            except OSError:
                return []

        deadline = time.monotonic() + 30
        ups: dict[str, str] = {}
        value: list[dict] = []
        while time.monotonic() < deadline:
            ups = {s["metric"]["job"]: s["value"][1] for s in query("up")}
            value = query('tls_orders{job="sextant-tls"}')
            if ups.get("sextant-tls") == "1" and ups.get("sextant-no-client-cert") == "0" and value:
                break
            time.sleep(0.2)
        assert ups == {"sextant-tls": "1", "sextant-no-client-cert": "0"}, (ups, (tmp_path / "prometheus.log").read_text()[-2000:])
        assert float(value[0]["value"][1]) == 42
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(timeout=10)
    collector.stop_cleanly()


def test_self_telemetry_endpoint_over_mutual_tls(tmp_path, pki):
    """`service::telemetry::metrics::tls`: /readyz and /metrics over HTTPS, a client certificate
    required. (Started by hand: the shared fixture probes /readyz over plain HTTP.)"""
    port = free_port()
    config = tmp_path / "collector.yaml"
    config.write_text(
        "receivers:\n"
        f"  otlp: {{protocols: {{http: {{endpoint: '127.0.0.1:{free_port()}'}}}}}}\n"
        "exporters:\n"
        "  nop:\n"
        "service:\n"
        f"  telemetry: {{metrics: {{address: '127.0.0.1:{port}', tls: {pki.server_tls(mutual=True)}}}}}\n"
        "  pipelines: {traces: {receivers: [otlp], exporters: [nop]}}\n"
    )
    log = open(tmp_path / "collector.log", "wb")
    proc = subprocess.Popen([str(SEXTANT_BIN), "collector", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = https_get(f"https://localhost:{port}/readyz", client_context(pki))[0]
                if status == 200:
                    break
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        assert status == 200, (tmp_path / "collector.log").read_text()
        assert b"sextant_build_info" in https_get(f"https://localhost:{port}/metrics", client_context(pki))[1]
        assert refused_without_certificate(f"https://localhost:{port}/metrics", pki)
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
