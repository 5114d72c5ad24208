"""A strict test double of Elasticsearch's `_bulk` API (no Elasticsearch server can run here), written
from Elastic's documentation ("Bulk API"): it refuses anything a real cluster would refuse (wrong
Content-Type, an action line that is not exactly one `create`/`index` object, a missing or unparsable
source line, a body not ending in a newline, invalid index names, `index` into a data stream, missing
auth), inflates gzip bodies, answers `errors`/`items` per document with the documented shape, and adds
the `X-Elastic-Product` header the official client requires.

Its answers are scripted (`scripted=True`, test_elasticsearch.py): the first bulk request gets a
whole-request 429; documents for `/busy` get 429 and `/unavailable` 503 the first time they are seen,
`/bad` always gets a 400 `document_parsing_exception`; everything else 201. With `scripted=False` every
well-formed document is accepted, except that `reject_first(doc)` may name documents to answer with a
per-item 429 the first time they are seen (fault test 3).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

AUTH = "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="  # elastic:changeme
INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
NDJSON_TYPES = ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson")


class BulkDouble:
    """A strict `_bulk` endpoint on 127.0.0.1 (see the module docstring)."""

    def __init__(self, expect_gzip: bool, scripted: bool = True, port: int = 0,
                 reject_first: Callable[[dict], bool] | None = None):
        """`port`: a fixed port (a cluster coming back where the exporter keeps retrying), else a free one."""
        self.expect_gzip = expect_gzip
        self.reject_first = reject_first
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.requests: list[list[tuple[dict, dict]]] = []  # per request: (action, source) pairs
        self.statuses: list[list[int] | int] = []  # per request: item statuses, or the whole-request status
        self.stored: list[tuple[str, dict]] = []  # accepted documents: (index, source)
        self.failed_once: set[str] = set()
        self.whole_429_left = 1 if scripted else 0
        self.scripted = scripted  # False: every well-formed document is accepted (but see `reject_first`)
        self.item_429s = 0
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def refuse(self, reason: str) -> None:
                with double.lock:
                    double.violations.append(reason)
                self.reply(400, {"error": {"type": "illegal_argument_exception", "reason": reason}, "status": 400})

            def do_GET(self):
                self.reply(404, {"error": {"type": "not_found", "reason": self.path}, "status": 404})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path.split("?")[0] != "/_bulk":
                    return self.refuse(f"unexpected path {self.path}")
                if self.headers.get("Authorization") != AUTH:
                    return self.reply(401, {"error": {"type": "security_exception", "reason": "missing authentication"}, "status": 401})
                media = self.headers.get("Content-Type", "").split(";")[0].strip()
                if media not in NDJSON_TYPES:
                    return self.refuse(f"Content-Type {self.headers.get('Content-Type')!r} is not NDJSON")
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                elif double.expect_gzip:
                    return self.refuse("expected a gzip body")
                try:
                    pairs = double.parse(body)
                except ValueError as e:
                    return self.refuse(str(e))
                self.reply(*double.answer(pairs))

            do_PUT = do_POST  # the Bulk API takes POST or PUT (the Python client uses PUT)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def parse(self, body: bytes) -> list[tuple[dict, dict]]:
        if not body.endswith(b"\n"):
            raise ValueError("the bulk request must be terminated by a newline [\\n]")
        lines = body.decode("utf-8").split("\n")[:-1]
        if len(lines) % 2:
            raise ValueError("an action line without its source line")
        pairs = []
        for i in range(0, len(lines), 2):
            action = json.loads(lines[i])
            if not isinstance(action, dict) or len(action) != 1:
                raise ValueError(f"malformed action line {lines[i]!r}")
            (op, meta), = action.items()
            if op not in ("create", "index"):
                raise ValueError(f"unsupported action {op!r}")
            index = meta.get("_index", "")
            if not INDEX_NAME.match(index) or len(index.encode()) > 255:
                raise ValueError(f"invalid index name {index!r}")
            if op != "create" and re.match(r"^(logs|traces|metrics)-[^-]+-[^-]+$", index):
                raise ValueError(f"only write ops with an op_type of create are allowed in data streams ({index})")
            source = json.loads(lines[i + 1])
            if not isinstance(source, dict) or "@timestamp" not in source:
                raise ValueError(f"source line is not a document with @timestamp: {lines[i + 1][:200]!r}")
            pairs.append((action, source))
        return pairs

    def answer(self, pairs: list[tuple[dict, dict]]) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(pairs)
            if self.whole_429_left:
                self.whole_429_left -= 1
                self.statuses.append(429)
                return 429, {"error": {"type": "es_rejected_execution_exception", "reason": "scripted"}, "status": 429}
            items, statuses = [], []
            for action, source in pairs:
                (op, meta), = action.items()
                path = source.get("url", {}).get("path", "")
                rid = source.get("http", {}).get("request", {}).get("id", "") or json.dumps(source, sort_keys=True)
                status, error = 201, None
                if not self.scripted:
                    if self.reject_first is not None and self.reject_first(source) and rid not in self.failed_once:
                        self.failed_once.add(rid)
                        self.item_429s += 1
                        status, error = 429, {"type": "es_rejected_execution_exception",
                                              "reason": "rejected execution of coordinating operation"}
                elif path == "/bad":
                    status, error = 400, {"type": "document_parsing_exception", "reason": "[1:12] failed to parse field [url.path]"}
                elif path in ("/busy", "/unavailable") and rid not in self.failed_once:
                    self.failed_once.add(rid)
                    status = 429 if path == "/busy" else 503
                    error = {"type": "es_rejected_execution_exception" if status == 429 else "unavailable_shards_exception", "reason": "scripted"}
                item = {"_index": meta["_index"], "status": status}
                if error:
                    item["error"] = error
                else:
                    self.stored.append((meta["_index"], source))
                    item.update({"_id": str(len(self.stored)), "result": "created", "_version": 1})
                items.append({op: item})
                statuses.append(status)
            self.statuses.append(statuses)
            return 200, {"took": 1, "errors": any(s >= 300 for s in statuses), "items": items}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
