#!/usr/bin/env python3
"""Benchmark: Fluentd Forward PackedForward over TCP → `fluentforward` receiver → `nop` exporter.

One sender (this script, pinned to core 1) writes pre-encoded PackedForward chunks as fast as the
socket takes them; every chunk asks for an ack, and at most `--window` chunks are unacknowledged, so
the figure is what the collector (pinned to core 0) decoded, mapped and handed downstream, not what
sat in socket buffers. Reports MiB/s of Forward frames, events/s, and CPU of the collector (utime+stime
from /proc/PID/stat over the window, as a fraction of one core) to give MiB per CPU-second.

Events look like a container log line from Fluent Bit's tail input: EventTime, `log` (~120 bytes),
`stream`, `time` and a `kubernetes` map with 4 keys (≈ 300 bytes of msgpack per event).

Usage: bench/fluentforward_ingest.py [--seconds 15] [--events-per-chunk 1000] [--gzip]
(needs `msgpack` from the interop venv and a deployment build: bench/release-build.sh).
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack

from procstat import cpu_seconds, free_port, rss_mib

ROOT = Path(__file__).resolve().parents[1]


def make_chunks(events_per_chunk: int, use_gzip: bool, count: int = 16) -> list[bytes]:
    chunks = []
    for c in range(count):
        stream = bytearray()
        for i in range(events_per_chunk):
            t = 1700000000 + c
            stream += msgpack.packb([
                msgpack.ExtType(0, struct.pack(">II", t, i * 1000)),
                {
                    "log": f"2026-11-25T01:00:00.{i:06d}Z INFO request served method=GET path=/api/v1/items/{i} status=200 duration_ms={i % 97}",
                    "stream": "stdout",
                    "time": "2026-11-25T01:00:00.000000000Z",
                    "kubernetes": {"pod_name": f"web-{c}-abcde", "namespace_name": "default", "container_name": "web",
                                   "host": "node-1"},
                },
            ], use_bin_type=True)
        option = {"size": events_per_chunk, "chunk": f"bench-{c}"}
        payload = bytes(stream)
        if use_gzip:
            payload = gzip.compress(payload, 1)
            option["compressed"] = "gzip"
        chunks.append(msgpack.packb(["bench.app", payload, option], use_bin_type=True))
    return chunks


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--events-per-chunk", type=int, default=1000)
    ap.add_argument("--window", type=int, default=8, help="chunks in flight (unacknowledged) at most")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--bin", default=str(ROOT / ".build-deploy" / "release" / "sextant"))
    args = ap.parse_args()

    port, tport = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "c.yaml").write_text(f"""
receivers:
  fluentforward: {{endpoint: 127.0.0.1:{port}}}
exporters:
  nop:
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{tport}}}, logs: {{level: warn}}}}
  pipelines:
    logs: {{receivers: [fluentforward], exporters: [nop]}}
""")
    os.sched_setaffinity(0, {1})
    collector = subprocess.Popen(["taskset", "-c", "0", args.bin, "collector", "--config", str(tmp / "c.yaml")],
                                 stdout=open(tmp / "log", "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or collector.poll() is not None:
                    print((tmp / "log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.05)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chunks = make_chunks(args.events_per_chunk, args.gzip)
        unpacker = msgpack.Unpacker(raw=False)

        def await_ack():
            while True:
                for _ in unpacker:
                    return
                data = sock.recv(65536)
                if not data:
                    raise SystemExit("collector closed the connection:\n" + (tmp / "log").read_text())
                unpacker.feed(data)

        # Warm-up, then the measured window.
        for ch in chunks:
            sock.sendall(ch)
            await_ack()
        sent_bytes = sent_chunks = 0
        in_flight = 0
        cpu0, t0 = cpu_seconds(collector.pid), time.monotonic()
        i = 0
        while time.monotonic() - t0 < args.seconds:
            ch = chunks[i % len(chunks)]
            i += 1
            sock.sendall(ch)
            sent_bytes += len(ch)
            sent_chunks += 1
            in_flight += 1
            if in_flight >= args.window:
                await_ack()
                in_flight -= 1
        while in_flight:
            await_ack()
            in_flight -= 1
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(collector.pid) - cpu0
        sock.close()
        events = sent_chunks * args.events_per_chunk
        mib = sent_bytes / (1 << 20)
        print(f"fluentforward PackedForward{' gzip' if args.gzip else ''} → nop, {args.events_per_chunk} events/chunk, "
              f"{sent_bytes / events:.0f} B/event on the wire, window {args.window}")
        print(f"  {elapsed:.1f} s: {mib / elapsed:.1f} MiB/s, {events / elapsed:,.0f} events/s")
        print(f"  collector CPU {cpu / elapsed * 100:.0f} % of one core → {mib / cpu:.1f} MiB per CPU-second, "
              f"{events / cpu:,.0f} events per CPU-second; peak RSS {rss_mib(collector.pid):.0f} MiB")
    finally:
        collector.terminate()
        collector.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
