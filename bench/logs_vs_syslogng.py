#!/usr/bin/env python3
"""Benchmark: Sextant side by side with syslog-ng (Debian) on the same input and the same Elasticsearch
`_bulk` sink.

Input: RFC 5424 syslog lines with LF framing (RFC 6587 non-transparent framing) over one TCP connection,
each carrying an Istio access-log line as MSG (the lines of bench/elasticsearch_export.py), ~400 B/line.
Both systems do the same work: parse the RFC 5424 header, turn each message into one JSON document and
index it through `_bulk` with HTTP/1.1 keep-alive, 2 workers, batches of up to 8192 documents / 5 MiB:
  sextant:   `syslog` receiver (rfc5424, tcp) → `batch` → `elasticsearch` exporter (ECS mapping)
  syslog-ng: network(transport(tcp) flags(syslog-protocol)) → elasticsearch-http() (its default
             format-json template), log path with flags(flow-control) so it pushes back instead of dropping
Optionally (--with-parse) a third row: Sextant with the `envoyaccesslog` processor also parsing the
access-log line into attributes (syslog-ng has no Envoy parser; that row has no peer).

The sink is bench/elasticsearch_export.py's `_bulk` double (counts documents, answers 201 per item).
The system under test runs on core 0; this script (sender thread + sink) on core 1. The sender writes
as fast as TCP takes it, so the figure is the steady-state rate the sink acknowledged over the window
after a warm-up. After the window the sender stops and the script waits for the pipeline to drain to
report lost messages (sent − indexed). CPU is the system's utime+stime over the window.

Usage: bench/logs_vs_syslogng.py [--seconds 20] [--rounds 2] [--with-parse]
(installs syslog-ng-core, syslog-ng-mod-http, syslog-ng-scl with apt-get when missing; needs the interop
venv and a deployment build: bench/release-build.sh).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from elasticsearch_export import Sink, access_log_line
from procstat import cpu_seconds, free_port, rss_mib

ROOT = Path(__file__).resolve().parents[1]


def ensure_syslog_ng() -> None:
    if shutil.which("syslog-ng") and Path("/usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf").exists() \
            and any(Path("/usr/lib/syslog-ng").glob("*/libhttp.so")):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "syslog-ng-core", "syslog-ng-mod-http", "syslog-ng-scl"], check=True, env=env, stdout=subprocess.DEVNULL)
    # Debian starts the system service on install where there is an init; this benchmark runs its own.
    subprocess.run(["sh", "-c", "command -v systemctl >/dev/null && systemctl stop syslog-ng"], stderr=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)


def make_block(lines: int) -> tuple[bytes, int]:
    out = bytearray()
    for i in range(lines):
        ts = f"2026-11-25T01:02:{i % 60:02d}.{i % 1000:03d}Z"
        out += f"<134>1 {ts} node-{i % 7} istio-proxy {1000 + i % 13} - - {access_log_line(i)}\n".encode()
    return bytes(out), lines


@dataclass
class Result:
    name: str
    events_per_s: float
    input_mib_s: float
    bulk_mib_s: float
    cores: float
    cpu_s_per_m: float
    peak_rss: float
    lost: int
    driver_cores: float


def sextant_config(tmp: Path, port: int, sink_port: int, parse: bool) -> list[str]:
    tport = free_port()
    (tmp / "c.yaml").write_text(f"""
receivers:
  syslog: {{protocol: rfc5424, tcp: {{listen_address: 127.0.0.1:{port}}}}}
processors:
  envoyaccesslog: {{}}
  batch: {{send_batch_size: 8192, timeout: 200ms}}
exporters:
  elasticsearch:
    endpoints: [http://127.0.0.1:{sink_port}]
    flush: {{bytes: 5MiB, interval: 1s}}
    num_workers: 2
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{tport}}}, logs: {{level: warn}}}}
  pipelines:
    logs: {{receivers: [syslog], processors: [{"envoyaccesslog, " if parse else ""}batch], exporters: [elasticsearch]}}
""")
    return [str(Path(os.environ.get("SEXTANT_BIN", ROOT / ".build-deploy" / "release" / "sextant"))),
            "collector", "--config", str(tmp / "c.yaml")]


def syslog_ng_config(tmp: Path, port: int, sink_port: int) -> list[str]:
    (tmp / "syslog-ng.conf").write_text(f"""@version: 3.38
@include "scl.conf"
options {{ threaded(yes); stats-freq(0); use-dns(no); use-fqdn(no); keep-hostname(yes); chain-hostnames(no);
          log-msg-size(65536); log-fifo-size(200000); }};
source s_in {{ network(ip("127.0.0.1") port({port}) transport("tcp") flags(syslog-protocol)
                      log-iw-size(100000) log-fetch-limit(1000) max-connections(1)); }};
destination d_es {{ elasticsearch-http(url("http://127.0.0.1:{sink_port}/_bulk") index("logs-generic-default") type("")
                                       workers(2) batch-lines(8192) batch-bytes(5242880) batch-timeout(1000)); }};
log {{ source(s_in); destination(d_es); flags(flow-control); }};
""")
    return ["syslog-ng", "-F", "--no-caps", "-f", str(tmp / "syslog-ng.conf"), "-R", str(tmp / "persist"),
            "-p", str(tmp / "pid"), "-c", str(tmp / "ctl")]


def run_one(name: str, argv_for, block: bytes, block_lines: int, warmup: float, seconds: float) -> Result:
    sink = Sink()
    sink_port = sink.server.server_address[1]
    port = free_port()
    tmp = Path(tempfile.mkdtemp())
    argv = argv_for(tmp, port, sink_port)
    proc = subprocess.Popen(["taskset", "-c", "0", *argv], stdout=open(tmp / "log", "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{name} did not start:\n" + (tmp / "log").read_text())
                time.sleep(0.05)
        sock.settimeout(60)
        sent = [0]
        failure: list[BaseException] = []
        stop = threading.Event()

        def sender():
            try:
                while not stop.is_set():
                    sock.sendall(block)
                    sent[0] += block_lines
            except OSError as e:
                failure.append(e)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        time.sleep(warmup)
        with sink.lock:
            docs0, bytes0 = sink.documents, sink.bytes
        cpu0, me0, t0 = cpu_seconds(proc.pid), cpu_seconds(os.getpid()), time.monotonic()
        time.sleep(seconds)
        with sink.lock:
            docs1, bytes1 = sink.documents, sink.bytes
        cpu1, me1, t1 = cpu_seconds(proc.pid), cpu_seconds(os.getpid()), time.monotonic()
        stop.set()
        t.join(timeout=60)
        sock.close()
        if failure:
            raise SystemExit(f"{name}: sending failed: {failure[0]!r}\n" + (tmp / "log").read_text()[-2000:])
        # Drain: wait until every sent line is indexed or nothing arrives for 5 s.
        last, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < 5:
            with sink.lock:
                n = sink.documents
            if n >= sent[0]:
                break
            if n != last:
                last, last_change = n, time.monotonic()
            time.sleep(0.2)
        with sink.lock:
            total = sink.documents
        elapsed, docs = t1 - t0, docs1 - docs0
        cpu = cpu1 - cpu0
        line_bytes = len(block) / block_lines
        return Result(name, docs / elapsed, docs * line_bytes / elapsed / 2**20, (bytes1 - bytes0) / elapsed / 2**20,
                      cpu / elapsed, cpu / docs * 1e6 if docs else float("nan"), rss_mib(proc.pid), sent[0] - total,
                      (me1 - me0) / elapsed)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        sink.server.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--with-parse", action="store_true", help="also run Sextant with envoyaccesslog (no peer)")
    args = ap.parse_args()
    ensure_syslog_ng()
    os.sched_setaffinity(0, {1})
    block, lines = make_block(10000)
    print(f"input: RFC 5424 + LF framing over TCP, {len(block) / lines:.0f} B/line; window {args.seconds:.0f} s "
          f"after {args.warmup:.0f} s warm-up; SUT on core 0, sender+sink on core 1")
    systems = [("sextant", lambda tmp, p, s: sextant_config(tmp, p, s, False)), ("syslog-ng", syslog_ng_config)]
    if args.with_parse:
        systems.append(("sextant+envoyaccesslog", lambda tmp, p, s: sextant_config(tmp, p, s, True)))
    header = (f"{'round':>5} {'system':<24}{'events/s':>10}{'in MiB/s':>10}{'bulk MiB/s':>11}{'cores':>7}"
              f"{'CPU s/1M ev':>12}{'peak RSS':>10}{'lost':>6}{'driver cores':>13}")
    print(header)
    results: dict[str, list[Result]] = {}
    for rnd in range(1, args.rounds + 1):
        for name, argv_for in systems:
            r = run_one(name, argv_for, block, lines, args.warmup, args.seconds)
            results.setdefault(name, []).append(r)
            print(f"{rnd:>5} {r.name:<24}{r.events_per_s:>10,.0f}{r.input_mib_s:>10.1f}{r.bulk_mib_s:>11.1f}{r.cores:>7.2f}"
                  f"{r.cpu_s_per_m:>12.2f}{r.peak_rss:>7.0f} MiB{r.lost:>6}{r.driver_cores:>13.2f}", flush=True)

    def mean(name: str, attr: str) -> float:
        rs = results[name]
        return sum(getattr(r, attr) for r in rs) / len(rs)

    print("ratios sextant / syslog-ng (means over rounds): "
          f"events/s {mean('sextant', 'events_per_s') / mean('syslog-ng', 'events_per_s'):.2f}x, "
          f"CPU per event {mean('sextant', 'cpu_s_per_m') / mean('syslog-ng', 'cpu_s_per_m'):.2f}x, "
          f"peak RSS {mean('sextant', 'peak_rss') / mean('syslog-ng', 'peak_rss'):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
