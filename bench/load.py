"""Load driver for the trace benchmarks: gRPC (OTLP Export), UDP datagrams, or HTTP POST.

Usage: load.py MODE TARGET PAYLOAD --rate R | --max [--threads T] --duration S [--pid PID]
  MODE     grpc (OTLP TraceService/Export, raw bytes) | udp (one datagram per send) | http (POST, JSON)
  --rate   requests per second, paced (steady load); --max sends as fast as the threads can
  --pid    report the CPU % of one core and RSS of that process over the measured window
"""
import argparse
import os
import socket
import threading
import time


def sender(mode, target, body):
    if mode == "grpc":
        import grpc
        ch = grpc.insecure_channel(target)
        call = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        return lambda: call(body, timeout=10)
    if mode == "udp":
        host, port = target.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        addr = (host, int(port))
        return lambda: s.sendto(body, addr)
    import requests
    sess = requests.Session()
    return lambda: sess.post(target, data=body, headers={"Content-Type": "application/json"}, timeout=10).raise_for_status()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        vals = {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith(("VmRSS", "VmHWM"))}
    return vals["VmRSS"] / 1024, vals["VmHWM"] / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("target")
    ap.add_argument("payload")
    ap.add_argument("--rate", type=float)
    ap.add_argument("--max", action="store_true")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--pid", type=int)
    a = ap.parse_args()
    body = open(a.payload, "rb").read()
    counts = [0] * a.threads
    errors = [0] * a.threads
    stop = time.monotonic() + a.duration
    hz = os.sysconf("SC_CLK_TCK")
    c0 = cpu_ticks(a.pid) if a.pid else 0
    t0 = time.monotonic()

    def run(i):
        send = sender(a.mode, a.target, body)
        interval = a.threads / a.rate if a.rate else 0
        nxt = time.monotonic() + (interval * i / a.threads if a.rate else 0)
        while time.monotonic() < stop:
            try:
                send()
                counts[i] += 1
            except Exception:
                errors[i] += 1
            if a.rate:
                nxt += interval
                time.sleep(max(0, nxt - time.monotonic()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    out = f"requests={sum(counts)} errors={sum(errors)} rate={sum(counts) / elapsed:.1f}/s"
    if a.pid:
        cpu = (cpu_ticks(a.pid) - c0) / hz / elapsed * 100
        rss, peak = rss_mib(a.pid)
        out += f" cpu_pct_one_core={cpu:.2f} rss_mib={rss:.1f} peak_rss_mib={peak:.1f}"
    print(out)


if __name__ == "__main__":
    main()
