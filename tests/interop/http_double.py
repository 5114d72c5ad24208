"""A strict HTTP server test double for exporters whose real peer (a Zipkin server, a Jaeger collector)
does not run here: http.server.ThreadingHTTPServer on a free loopback port.

It accepts only POST to one path with one of the given Content-Types, `Content-Encoding` gzip or none,
and a body that the Content-Type's decoder turns into a value without error (the decoders are
independent libraries: `json`, protobuf classes, `thrift`). Anything else is answered 4xx and recorded
in `violations`. Valid requests are recorded and answered with the success status, or with the
statuses `script` lists for the first requests (a retry of a refused request is then seen as a second
request).
"""

from __future__ import annotations

import gzip
import http.server
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

TIMEOUT = 10  # seconds, for every wait on a double


@dataclass
class Received:
    headers: dict[str, str]  # lower-cased names
    body: bytes  # as received (before gunzip)
    content_type: str
    decoded: Any
    answered: int
    at: float  # time.monotonic()
    peer_cert: dict | None = None  # the client certificate (ssl.SSLSocket.getpeercert()) over mutual TLS


class StrictHTTPDouble:
    def __init__(
        self,
        path: str,
        decoders: dict[str, Callable[[bytes], Any]],
        success: int,
        count_items: Callable[[Any], int],
        script: list[int] = (),
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ):
        """`tls`: serve HTTPS with this server-side context (the handshake runs when a connection is accepted).
        `port`: a fixed port (a backend coming back where an exporter keeps retrying), else a free one."""
        self.path = path
        self.tls = tls
        self.received: list[Received] = []
        self.violations: list[str] = []
        self._decoders = decoders
        self._success = success
        self._count_items = count_items
        self._script = list(script)
        self.delay = 0.0  # seconds each valid request waits before its answer (a slow backend); settable
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

            do_PUT = do_GET

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.port}{self.path}"
        return f"http://127.0.0.1:{self.port}{self.path}"

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
        self._respond(handler, status, problem.encode())

    @staticmethod
    def _respond(handler, status: int, body: bytes = b"") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler) -> None:
        raw = self._read_body(handler)
        if handler.path != self.path:
            return self._reject(handler, 404, f"POST to unknown path {handler.path}")
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        decode = self._decoders.get(content_type)
        if decode is None:
            return self._reject(handler, 415, f"unsupported Content-Type {content_type!r}")
        content_encoding = (handler.headers.get("Content-Encoding") or "identity").lower()
        if content_encoding not in ("gzip", "identity"):
            return self._reject(handler, 415, f"unsupported Content-Encoding {content_encoding!r}")
        try:
            decoded = decode(gzip.decompress(raw) if content_encoding == "gzip" else raw)
        except Exception as e:  # noqa: BLE001 — any decoder failure is the sender's fault
            return self._reject(handler, 400, f"undecodable {content_type} body: {type(e).__name__}: {e}")

        if self.delay:
            time.sleep(self.delay)
        with self._changed:
            status = self._script.pop(0) if self._script else self._success
            headers = {k.lower(): v for k, v in handler.headers.items()}
            peer = handler.connection.getpeercert() if isinstance(handler.connection, ssl.SSLSocket) else None
            self.received.append(Received(headers, raw, content_type, decoded, status, time.monotonic(), peer))
            self._changed.notify_all()
        self._respond(handler, status, b"" if status == self._success else f"scripted {status}".encode())

    def delivered(self) -> list[Any]:
        """What was decoded from the requests answered with the success status, in arrival order."""
        return [r.decoded for r in self.received if r.answered == self._success]

    def wait_for_items(self, count: int, timeout: float = TIMEOUT) -> int:
        """Waits (bounded) until delivered requests hold `count` items or a violation is seen."""
        def delivered() -> int:
            return sum(self._count_items(d) for d in self.delivered())

        with self._changed:
            self._changed.wait_for(lambda: delivered() >= count or self.violations, timeout=timeout)
            return delivered()

    def wait_for_requests(self, count: int, timeout: float = TIMEOUT) -> int:
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count or self.violations, timeout=timeout)
            return len(self.received)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=TIMEOUT)
