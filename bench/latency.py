"""Open-loop HTTP/1.1 load at a constant rate, with latency percentiles (wrk2's method, in Python).

Requests are scheduled at fixed intervals spread over keep-alive connections; each latency is measured
from the request's *scheduled* time, so a stall is charged to every request it delays (no coordinated
omission). Prints one JSON line: rate achieved, errors, p50/p90/p99/max in ms, and the CPU seconds and
peak RSS of `--pid` (the process under test) over the run.

    python bench/latency.py --port 15001 --host reviews:9080 --rate 1000 --seconds 20 --pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def connection(host: str, port: int, authority: str, path: str, queue: asyncio.Queue, latencies: list, errors: list):
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: latency.py\r\n\r\n".encode()
    while True:
        scheduled = await queue.get()
        if scheduled is None:
            writer.close()
            return
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(request)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n")[0].decode())
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            errors.append(repr(e))
            reader, writer = await asyncio.open_connection(host, port)
        latencies.append(time.perf_counter() - scheduled)


async def run(args) -> dict:
    queues = [asyncio.Queue() for _ in range(args.connections)]
    latencies: list[float] = []
    errors: list[str] = []
    tasks = [asyncio.create_task(connection("127.0.0.1", args.port, args.host, args.path, q, latencies, errors)) for q in queues]
    await asyncio.sleep(0.2)
    # Warm-up: one second at the target rate, not measured.
    interval = 1.0 / args.rate
    start = time.perf_counter() + 0.05
    n_warm = int(args.rate)
    for i in range(n_warm):
        queues[i % len(queues)].put_nowait(start + i * interval)
    while len(latencies) < n_warm and time.perf_counter() < start + 5:
        await asyncio.sleep(0.05)
    latencies.clear()
    cpu0 = cpu_seconds(args.pid) if args.pid else 0.0
    start = time.perf_counter() + 0.05
    total = int(args.rate * args.seconds)
    # Feed the schedule in slices so the queues stay short.
    fed = 0
    peak_rss = 0.0
    while fed < total or len(latencies) < total:
        now = time.perf_counter()
        while fed < total and start + fed * interval < now + 0.2:
            queues[fed % len(queues)].put_nowait(start + fed * interval)
            fed += 1
        if args.pid:
            peak_rss = max(peak_rss, rss_mib(args.pid))
        if now > start + args.seconds + 10:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds(args.pid) - cpu0) if args.pid else 0.0
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*tasks, return_exceptions=True)
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 3) if lat else float("nan")

    return {
        "target": args.label, "rate": round(len(lat) / elapsed, 1), "requests": len(lat), "errors": len(errors),
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": round(lat[-1] * 1000, 3) if lat else None,
        "first_error": errors[0] if errors else None, "cpu_seconds": round(cpu, 3), "vcpu": round(cpu / elapsed, 4), "peak_rss_mib": round(peak_rss, 1),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--path", default="/")
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--label", default="")
    print(json.dumps(asyncio.run(run(ap.parse_args()))))


if __name__ == "__main__":
    main()
