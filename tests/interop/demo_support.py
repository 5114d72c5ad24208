"""A `sextant demo` process for the interop suite: the README's main command on free addresses.

The demo runs on `pipelines/default.yaml` and the mesh in `pipelines/mesh/` with two changes so it can run
beside anything else on this machine: every port of the collector is moved to a free one by an overlay
config, and the mesh gets a free base port and a random `127.x.y` pod network. `Demo.start()` returns once
a request through the gateway crosses every hop and the collector is ready.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SEXTANT_BIN, free_port, free_udp_port

WAIT = 60.0  # seconds any eventual condition may take (debug build, 7 proxies + collector on 2 cores)
WORKLOADS = ["productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1", "ratings-v2", "mongodb-v1"]
def wait_for(what: str, probe, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except (OSError, ValueError, KeyError, AssertionError) as e:
            last = e
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def ports_free(base: int, pod_network: str) -> bool:
    """Whether every address of the demo's plan (`DemoPlan`) can be bound."""
    wanted = [("127.0.0.1", base), ("127.0.0.1", base + 80)]
    for i in range(len(WORKLOADS)):
        ip = f"{pod_network}.{11 + i}"
        wanted += [(ip, base + 100 + 10 * i + k) for k in range(4)] + [(ip, 27017)]
    for addr in wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(addr)
            except OSError:
                return False
    return True


class Demo:
    def __init__(self, tmp: Path, rate: float = 0):
        self.tmp = tmp
        self.rate = rate
        self.out = tmp / "out"
        self.proc: subprocess.Popen | None = None

    def start(self):
        p = {k: free_port() for k in ["grpc", "http", "zipkin", "thrift_http", "rw", "forward", "jaeger", "prom", "telemetry"]}
        u = {k: free_udp_port() for k in ["compact", "binary"]}
        self.ports = p
        overlay = self.tmp / "ports.yaml"
        overlay.write_text(f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{p['grpc']}}}, http: {{endpoint: 127.0.0.1:{p['http']}}}}}}}
  zipkin: {{endpoint: 127.0.0.1:{p['zipkin']}}}
  jaeger:
    protocols:
      thrift_http: {{endpoint: 127.0.0.1:{p['thrift_http']}}}
      thrift_compact: {{endpoint: 127.0.0.1:{u['compact']}}}
      thrift_binary: {{endpoint: 127.0.0.1:{u['binary']}}}
  prometheusremotewrite: {{endpoint: 127.0.0.1:{p['rw']}}}
  fluentforward: {{endpoint: 127.0.0.1:{p['forward']}}}
exporters:
  jaeger_query: {{endpoint: 127.0.0.1:{p['jaeger']}}}
  prometheus: {{endpoint: 127.0.0.1:{p['prom']}}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{p['telemetry']}}}}}
""")
        for _ in range(50):
            base = random.randrange(20000, 60000, 100)
            pod_network = f"127.{random.randrange(1, 255)}.{random.randrange(0, 256)}"
            if ports_free(base, pod_network):
                break
        else:
            pytest.fail("no free block of ports for the mesh")
        self.base = base
        self.gateway = f"http://127.0.0.1:{base + 80}"
        self.pod_network = pod_network
        self.admins = {"istio-ingressgateway": f"127.0.0.1:{base}"} | {
            w: f"{pod_network}.{11 + i}:{base + 100 + 10 * i + 3}" for i, w in enumerate(WORKLOADS)}
        self.log_path = self.tmp / "demo.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(SEXTANT_BIN), "demo", "--collector-config", "pipelines/default.yaml", "--collector-config", str(overlay),
             "--out", str(self.out), "--base-port", str(base), "--pod-network", pod_network, "--rate", str(self.rate),
             "--scrape-interval", "1s"],
            cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            assert self.proc.poll() is None, f"demo exited with {self.proc.returncode}:\n{self.log_text()}"
            status, body = get(f"{self.gateway}/productpage", {"Host": "bookinfo.example.com", "end-user": "jason"})
            return status == 200 and b"reviews-v2" in body and b'"stars":5' in body

        wait_for("the mesh to answer through the gateway", ready)
        wait_for("the collector to be ready", lambda: get(f"http://127.0.0.1:{p['telemetry']}/readyz")[0] == 200)
        return self

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                code = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            code = self.proc.returncode
        self.log.close()
        return code


