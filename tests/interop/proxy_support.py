"""Upstream test servers and a `sextant proxy` runner for the proxy conformance suite.

Upstreams are Python `http.server` HTTP/1.1 servers (keep-alive) on free loopback ports. Each answers
with JSON naming itself (`name`), echoing the path and headers it received, and obeys a few control
paths, so tests can see where a request went and make an upstream misbehave:

    /status/<code>       answer with that status
    /delay/<ms>          sleep, then answer 200
    /flaky/<n>           the first n requests of this path get 503, later ones 200 (per upstream)
    /close               close the connection without answering
    /download/<n>        answer n bytes (a repeating 0..255 pattern) with their Content-Length, in 64 KiB writes
    /stream/<ms>         answer chunked: a first chunk `first`, then after <ms> a second chunk `second`

Every request is recorded (`requests`), so tests can count retries and mirrored copies.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import SEXTANT_BIN, free_port

READY_TIMEOUT = 20.0


def read_chunked(rfile) -> bytes:
    """Reads an HTTP/1.1 chunked body (RFC 9112 §7.1), trailers ignored."""
    out = bytearray()
    while True:
        size = int(rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        out += rfile.read(size)
        rfile.readline()


class Upstream:
    """One upstream app: a threaded HTTP/1.1 server on a free port (HTTPS with `ssl_context`)."""

    def __init__(self, name: str, default_status: int = 200, ssl_context=None):
        self.name = name
        self.default_status = default_status
        self.requests: list[dict] = []
        self.flaky: dict[str, int] = {}
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Some responses (downloads, streams) go out in several writes; with Nagle on, each would wait
            # for a delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                    body = read_chunked(self.rfile)
                peer = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
                with upstream.lock:
                    upstream.requests.append(
                        {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                         "peer_cert": peer}
                    )
                status = upstream.default_status
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[0] == "status" and len(parts) > 1:
                    status = int(parts[1])
                elif parts[0] == "delay" and len(parts) > 1:
                    time.sleep(int(parts[1]) / 1000)
                elif parts[0] == "flaky" and len(parts) > 1:
                    with upstream.lock:
                        seen = upstream.flaky.get(self.path, 0)
                        upstream.flaky[self.path] = seen + 1
                    status = 503 if seen < int(parts[1]) else 200
                elif parts[0] == "close":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                elif parts[0] == "download" and len(parts) > 1:
                    n = int(parts[1])
                    self.send_response(status)
                    self.send_header("content-type", "application/octet-stream")
                    self.send_header("content-length", str(n))
                    self.end_headers()
                    block = bytes(range(256)) * 256
                    for i in range(0, n, len(block)):
                        self.wfile.write(block[: min(len(block), n - i)])
                    return
                elif parts[0] == "stream" and len(parts) > 1:
                    self.send_response(status)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"5\r\nfirst\r\n")
                    self.wfile.flush()
                    time.sleep(int(parts[1]) / 1000)
                    self.wfile.write(b"6\r\nsecond\r\n0\r\n\r\n")
                    return
                payload = json.dumps(
                    {"name": upstream.name, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body_len": len(body)}
                ).encode()
                self.respond_whole(status, "application/json", payload)

            def respond_whole(self, status: int, content_type: str, payload: bytes):
                """Status line, headers and body in one write, so that a proxy in front reads the whole response
                at once. Written in two, the proxy may pass the head on before the body arrives; a client-side
                proxy that retries on that head (a 503) closes the connection meanwhile, and the server-side
                proxy then rightly records the exchange as cut short (`DC`): a race in the test, not a fault."""
                reason = self.responses.get(status, ("",))[0]
                head = (
                    f"{self.protocol_version} {status} {reason}\r\nServer: {self.version_string()}\r\n"
                    f"Date: {self.date_time_string()}\r\ncontent-type: {content_type}\r\n"
                    f"content-length: {len(payload)}\r\n\r\n"
                )
                self.wfile.write(head.encode("latin-1") + payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = handle_any

            def do_HEAD(self):
                # Headers only. `/chunked` answers as a streaming app does, with `Transfer-Encoding: chunked`
                # and no length; other paths with the `Content-Length` a GET would get.
                with upstream.lock:
                    upstream.requests.append({"method": "HEAD", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                              "body": b"", "peer_cert": None})
                self.send_response(upstream.default_status)
                self.send_header("content-type", "application/json")
                if self.path.startswith("/chunked"):
                    self.send_header("transfer-encoding", "chunked")
                else:
                    self.send_header("content-length", "42")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if ssl_context is not None:
            # The handshake runs on the connection's thread (first read), not in the accept loop.
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path_prefix: str = "") -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["path"].startswith(path_prefix))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """A `sextant proxy` process with an outbound listener and an admin port."""

    def __init__(self, tmp: Path, config: str, extra_args: list[str] | None = None):
        self.config_path = tmp / "mesh.yaml"
        self.config_path.write_text(config)
        self.log_path = tmp / "proxy.log"
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.admin_port = 0

    def start(self):
        for _ in range(3):
            self.port, self.admin_port = free_port(), free_port()
            cmd = [str(SEXTANT_BIN), "proxy", "--config", str(self.config_path), "--listen", f"127.0.0.1:{self.port}",
                   "--admin", f"127.0.0.1:{self.admin_port}", "--workload", "productpage-v1", "--namespace", "default",
                   "--label", "app=productpage", "--label", "version=v1", *self.extra_args]
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                        if r.status == 200:
                            return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise AssertionError(f"proxy did not become ready; log:\n{self.log_path.read_text(errors='replace')}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def config_dump(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/config_dump", timeout=5) as r:
            return json.loads(r.read())

    def client(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(self, host: str, path: str = "/", method: str = "GET", headers: dict | None = None, body: bytes | None = None,
                conn: http.client.HTTPConnection | None = None):
        """One request through the proxy; returns (status, headers, parsed JSON body or raw bytes)."""
        c = conn or self.client()
        h = {"Host": host, **(headers or {})}
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed


def mesh_config(body: str) -> str:
    """An IstioOperator document whose `spec.meshConfig` is `body` (YAML at the mapping's own indent)."""
    indented = "".join(f"    {line}\n" if line.strip() else "\n" for line in body.strip("\n").splitlines())
    return f"""---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {{name: mesh, namespace: istio-system}}
spec:
  meshConfig:
{indented}"""


def service_entry(name: str, endpoints: list[tuple[Upstream | int, dict]], port: int = 9080, port_name: str = "http",
                  protocol: str | None = "HTTP", location: str | None = "MESH_INTERNAL") -> str:
    """A STATIC ServiceEntry for `name` in namespace default whose endpoints are the given upstreams (or bare
    ports on 127.0.0.1, e.g. a sidecar's inbound listener). `protocol`/`location` None leave the key out."""
    eps = "\n".join(
        f"  - {{address: 127.0.0.1, ports: {{{port_name}: {u if isinstance(u, int) else u.port}}}, labels: {json.dumps(labels)}}}"
        for u, labels in endpoints
    )
    return f"""---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
{f"  location: {location}" + chr(10) if location else ""}  resolution: STATIC
  ports: [{{number: {port}, name: {port_name}{f", protocol: {protocol}" if protocol else ""}}}]
  endpoints:
{eps}
"""


def two_sidecars(tmp, app: Upstream, extra_mesh: str = "", client_args: list[str] | None = None,
                 server_args: list[str] | None = None, endpoint_labels: dict | None = None):
    """productpage's sidecar (outbound listener) and reviews-v2's sidecar (inbound listener in front of
    `app`), both reading one mesh whose `reviews` endpoint is the second sidecar's inbound port
    (`server.inbound_port`). `client_args`/`server_args` are extra flags (e.g. mesh certificates).
    Returns (client, server) proxies, started; the caller stops them."""
    inbound = free_port()
    labels = {"app": "reviews", "version": "v2"} if endpoint_labels is None else endpoint_labels
    mesh = service_entry("reviews", [(inbound, labels)]) + extra_mesh
    return sidecar_pair(tmp, mesh, inbound, app.port, client_args=client_args, server_args=[
        "--workload", "reviews-v2", "--label", "app=reviews", "--label", "version=v2", *(server_args or [])])


def sidecar_pair(tmp, mesh: str, inbound: int, app_port: int, client_args: list[str] | None = None,
                 server_args: list[str] | None = None):
    """Two proxies reading `mesh`: the client's (productpage-v1, outbound listener) and the server's (inbound
    listener on `inbound` in front of the app on `app_port`; its workload and labels in `server_args`).
    Returns (client, server), started, with `server.inbound_port` set; the caller stops them."""
    (tmp / "client").mkdir()
    (tmp / "server").mkdir()
    client = Proxy(tmp / "client", mesh, extra_args=client_args).start()
    try:
        server = Proxy(tmp / "server", mesh, extra_args=[
            "--inbound", f"127.0.0.1:{inbound}", "--app", f"127.0.0.1:{app_port}", *(server_args or [])]).start()
    except BaseException:
        client.stop()
        raise
    server.inbound_port = inbound
    return client, server

