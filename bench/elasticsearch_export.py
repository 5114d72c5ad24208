#!/usr/bin/env python3
"""Benchmark: Istio access-log lines over OTLP/HTTP → `envoyaccesslog` → `batch` → `elasticsearch` exporter
→ a `_bulk` sink.

No Elasticsearch can run here; the sink is a minimal `_bulk` endpoint in this script that counts the
documents of each request and answers every one with 201 in Elasticsearch's response shape. The
figure is documents the sink acknowledged per second over the measured window (after a warm-up), so
it covers parsing the lines, ECS mapping, NDJSON encoding, the HTTP round trips and per-item response
parsing. The collector runs pinned to core 0, this script (sender and sink) to core 1; CPU is the
collector's utime+stime over the window as a fraction of one core.

Usage: bench/elasticsearch_export.py [--seconds 15] [--records-per-request 1000] [--gzip]
(needs `requests` from the interop venv and a deployment build: bench/release-build.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from procstat import cpu_seconds, free_port, rss_mib

ROOT = Path(__file__).resolve().parents[1]


class Sink:
    def __init__(self):
        self.documents = 0
        self.bytes = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                wire = len(body)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = zlib.decompress(body, 47)
                n = body.count(b"\n") // 2
                reply = b'{"took":1,"errors":false,"items":[' + b",".join([b'{"create":{"status":201}}'] * n) + b"]}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                with sink.lock:
                    sink.documents += n
                    sink.bytes += wire

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def access_log_line(i: int) -> str:
    """The i-th Istio access-log line (Istio's default text format; every 10th a 503 with flags)."""
    return (f'[2026-11-25T01:02:{i % 60:02d}.{i % 1000:03d}Z] "GET /api/v1/products/{i} HTTP/1.1" {200 if i % 10 else 503} '
            f'{"-" if i % 10 else "UF,URX"} via_upstream - "-" 0 {1000 + i % 500} {i % 97} {i % 90} "-" "Mozilla/5.0" '
            f'"{i:08x}-6d84-929d-98bd-c5aee93b5c88" "productpage:9080" "10.44.1.27:9080" '
            f"outbound|9080||productpage.default.svc.cluster.local 10.44.1.23:37652 10.0.45.184:9080 10.44.1.23:46520 - default")


def payload(n: int) -> bytes:
    records = [{"body": {"stringValue": access_log_line(i)}} for i in range(n)]
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "istio-ingressgateway"}}]},
        "scopeLogs": [{"logRecords": records}]}]}).encode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--records-per-request", type=int, default=1000)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--bin", default=str(ROOT / ".build-deploy" / "release" / "sextant"))
    args = ap.parse_args()

    sink = Sink()
    port, tport = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "c.yaml").write_text(f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{port}}}}}}}
processors:
  envoyaccesslog: {{}}
  batch: {{send_batch_size: 8192, timeout: 200ms}}
exporters:
  elasticsearch:
    endpoints: [http://127.0.0.1:{sink.server.server_address[1]}]
    compression: {"gzip" if args.gzip else "none"}
    flush: {{bytes: 5MiB, interval: 1s}}
    num_workers: 2
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{tport}}}, logs: {{level: warn}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: [envoyaccesslog, batch], exporters: [elasticsearch]}}
""")
    os.sched_setaffinity(0, {1})
    collector = subprocess.Popen(["taskset", "-c", "0", args.bin, "collector", "--config", str(tmp / "c.yaml")],
                                 stdout=open(tmp / "log", "wb"), stderr=subprocess.STDOUT)
    try:
        session = requests.Session()
        url = f"http://127.0.0.1:{port}/v1/logs"
        body = payload(args.records_per_request)
        deadline = time.monotonic() + 20
        while True:
            try:
                if session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or collector.poll() is not None:
                print((tmp / "log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.05)
        sent = args.records_per_request
        # Warm-up, then the measured window: keep posting (429 answers mean back pressure: retry).
        for _ in range(20):
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
            sent += args.records_per_request
        time.sleep(1.5)
        with sink.lock:
            docs0, bytes0 = sink.documents, sink.bytes
        cpu0, t0 = cpu_seconds(collector.pid), time.monotonic()
        refused = 0
        while time.monotonic() - t0 < args.seconds:
            r = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
            if r.status_code == 200:
                sent += args.records_per_request
            else:
                refused += 1
                time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(collector.pid) - cpu0
        with sink.lock:
            docs, wire = sink.documents - docs0, sink.bytes - bytes0
        print(f"records per request {args.records_per_request}, gzip {args.gzip}, window {elapsed:.1f} s")
        print(f"documents indexed: {docs} → {docs / elapsed:,.0f} docs/s; bulk bytes on the wire {wire / elapsed / 2**20:.1f} MiB/s")
        print(f"collector CPU {cpu / elapsed:.2f} cores → {docs / cpu:,.0f} docs per CPU-second; peak RSS {rss_mib(collector.pid):.0f} MiB; "
              f"refused requests {refused}")
        return 0
    finally:
        collector.terminate()
        try:
            collector.wait(timeout=15)
        except subprocess.TimeoutExpired:
            collector.kill()


if __name__ == "__main__":
    sys.exit(main())
