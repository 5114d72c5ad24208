#!/usr/bin/env python3
"""Benchmark: is the collector's memory flat under sustained load?

Sends Fluentd Forward PackedForward chunks (bench/fluentforward_ingest.py's container-log events, every
chunk acked, at most --window unacknowledged) at a constant rate for --seconds, and samples the
collector's resident set (VmRSS) every --every seconds. Two pipelines:
  nop:           fluentforward → nop
  elasticsearch: fluentforward → batch → elasticsearch (ECS) → bench/elasticsearch_export.py's `_bulk` sink
Prints the series and, after a --warmup (30 s), min/max/last, the mean of the first and last thirds
(a leak shows as a rising last third) and the peak (VmHWM). The collector runs on core 0; this script
(sender and sink) on core 1.

Usage: bench/sustained_rss.py --pipeline nop --rate 500000 --seconds 180
       bench/sustained_rss.py --pipeline elasticsearch --rate 80000 --seconds 180
(needs the interop venv and a deployment build: bench/release-build.sh).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack

from elasticsearch_export import Sink
from fluentforward_ingest import make_chunks
from procstat import cpu_seconds, free_port, rss_mib, rss_now_mib

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", choices=["nop", "elasticsearch"], default="nop")
    ap.add_argument("--rate", type=float, default=400_000, help="events per second")
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--every", type=float, default=5, help="RSS sampling interval, seconds")
    ap.add_argument("--warmup", type=float, default=30, help="seconds left out of min/max/means")
    ap.add_argument("--events-per-chunk", type=int, default=1000)
    ap.add_argument("--window", type=int, default=8, help="chunks in flight (unacknowledged) at most")
    ap.add_argument("--bin", default=str(ROOT / ".build-deploy" / "release" / "sextant"))
    args = ap.parse_args()

    port, tport = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp())
    sink = None
    if args.pipeline == "nop":
        exporters, processors = "exporters: {nop: }", "[]"
        exporter = "nop"
    else:
        sink = Sink()
        exporters = f"""exporters:
  elasticsearch:
    endpoints: [http://127.0.0.1:{sink.server.server_address[1]}]
    flush: {{bytes: 5MiB, interval: 1s}}
    num_workers: 2"""
        processors, exporter = "[batch]", "elasticsearch"
    (tmp / "c.yaml").write_text(f"""
receivers:
  fluentforward: {{endpoint: 127.0.0.1:{port}}}
processors:
  batch: {{send_batch_size: 8192, timeout: 200ms}}
{exporters}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{tport}}}, logs: {{level: warn}}}}
  pipelines:
    logs: {{receivers: [fluentforward], processors: {processors}, exporters: [{exporter}]}}
""")
    os.sched_setaffinity(0, {1})
    collector = subprocess.Popen(["taskset", "-c", "0", args.bin, "collector", "--config", str(tmp / "c.yaml")],
                                 stdout=open(tmp / "log", "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline or collector.poll() is not None:
                    print((tmp / "log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.05)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chunks = make_chunks(args.events_per_chunk, False)
        unpacker = msgpack.Unpacker(raw=False)

        def await_ack():
            while True:
                for _ in unpacker:
                    return
                data = sock.recv(65536)
                if not data:
                    raise SystemExit("collector closed the connection:\n" + (tmp / "log").read_text())
                unpacker.feed(data)

        interval = args.events_per_chunk / args.rate
        samples: list[tuple[float, float]] = []
        cpu0 = cpu_seconds(collector.pid)
        t0 = time.monotonic()
        next_sample = t0
        sent = in_flight = 0
        while True:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t0, rss_now_mib(collector.pid)))
                print(f"  t={now - t0:6.1f} s  RSS {samples[-1][1]:6.1f} MiB  sent {sent * args.events_per_chunk:,}", flush=True)
                next_sample += args.every
            if now - t0 >= args.seconds:
                break
            due = t0 + sent * interval
            if now < due:
                time.sleep(min(due - now, max(0.0, next_sample - now)))
                continue
            sock.sendall(chunks[sent % len(chunks)])
            sent += 1
            in_flight += 1
            if in_flight >= args.window:
                await_ack()
                in_flight -= 1
        while in_flight:
            await_ack()
            in_flight -= 1
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(collector.pid) - cpu0
        events = sent * args.events_per_chunk
        print(f"RSS samples every {args.every:.0f} s (MiB): {' '.join(f'{r:.0f}' for _, r in samples)}")
        rss = [r for t, r in samples if t >= args.warmup] or [samples[-1][1]]
        third = max(1, len(rss) // 3)
        print(f"fluentforward → {args.pipeline}: target {args.rate:,.0f} events/s, achieved {events / elapsed:,.0f} events/s "
              f"over {elapsed:.0f} s ({events:,} events acked), collector {cpu / elapsed:.2f} cores")
        print(f"after the {args.warmup:.0f} s warm-up: RSS min {min(rss):.1f}  max {max(rss):.1f}  last {rss[-1]:.1f}"
              f"  mean first third {sum(rss[:third]) / third:.1f}  mean last third {sum(rss[-third:]) / third:.1f}  peak (VmHWM) {rss_mib(collector.pid):.1f} MiB")
        if sink is not None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with sink.lock:
                    if sink.documents >= events:
                        break
                time.sleep(0.2)
            print(f"documents indexed by the sink: {sink.documents:,} of {events:,}")
    finally:
        collector.terminate()
        try:
            collector.wait(timeout=15)
        except subprocess.TimeoutExpired:
            collector.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
