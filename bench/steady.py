"""Sends OTLP/HTTP protobuf requests at a constant rate and reports what the collector used.

Usage: steady.py URL PAYLOAD RATE_PER_SEC DURATION_S PID
Prints CPU % of one core (utime+stime from /proc/PID/stat over the window), RSS now and peak.
"""
import os
import sys
import time

import requests


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) / 1024
    return out


def main(url, payload_path, rate, duration, pid):
    body = open(payload_path, "rb").read()
    s = requests.Session()
    headers = {"Content-Type": "application/x-protobuf"}
    hz = os.sysconf("SC_CLK_TCK")
    interval = 1.0 / rate
    # Warm up for 3 s, then measure.
    t_end_warm = time.monotonic() + 3
    nxt = time.monotonic()
    while time.monotonic() < t_end_warm:
        s.post(url, data=body, headers=headers)
        nxt += interval
        time.sleep(max(0, nxt - time.monotonic()))
    c0, t0 = cpu_ticks(pid), time.monotonic()
    sent = failed = 0
    nxt = time.monotonic()
    while time.monotonic() - t0 < duration:
        r = s.post(url, data=body, headers=headers)
        sent += 1
        failed += r.status_code != 200
        nxt += interval
        time.sleep(max(0, nxt - time.monotonic()))
    c1, t1 = cpu_ticks(pid), time.monotonic()
    cpu = (c1 - c0) / hz / (t1 - t0) * 100
    m = rss(pid)
    print(f"requests={sent} failed={failed} achieved_rate={sent / (t1 - t0):.1f}/s cpu_pct_one_core={cpu:.2f} rss_mib={m['VmRSS']:.1f} peak_rss_mib={m['VmHWM']:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
