"""Fixtures for the interop suite: run a real `sextant collector` process on free loopback ports.

Every collector is started with a config written into the test's tmp dir, waited on through /readyz
(bounded), stopped with SIGTERM (it must exit 0 within STOP_TIMEOUT) and, whatever happens, killed
in a finalizer.

The default config is an `otlp` receiver (HTTP, and gRPC when asked) → batch → one `file` exporter per
signal. A test that needs other components passes a `config_template` instead: YAML with `$http_port`,
`$grpc_port`, `$telemetry_port` and `$out` placeholders (string.Template), filled with fresh ports on
every start attempt; `udp_port_names` adds placeholders filled with free UDP ports the same way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SEXTANT_BIN = Path(os.environ.get("SEXTANT_BIN", REPO_ROOT / ".build" / "debug" / "sextant"))

READY_TIMEOUT = 20.0  # seconds until /readyz must answer 200
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and a clean exit

SIGNALS = ("traces", "metrics", "logs")
START_ATTEMPTS = 3  # a port picked by free_port() can be taken by someone else before the collector binds it

# The SDK reads OTEL_* variables (endpoints, headers, temporality, disabling); keep the suite independent of them.
for _name in [n for n in os.environ if n.startswith("OTEL_")]:
    del os.environ[_name]


_handed_out: set[int] = set()


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (bound to port 0, then released), and not handed out
    before in this run: a port chosen for a process not started yet (a sidecar's inbound listener) must not
    be chosen again for another one meanwhile, which the kernel's own choice does not ensure."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_until(condition, what: str, timeout: float, detail=lambda: "", interval: float = 0.25) -> None:
    """Polls `condition` until it holds; fails the test after `timeout` seconds with `what` and `detail()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{detail()}")


def free_udp_port() -> int:
    """A UDP port the kernel just handed out on 127.0.0.1 (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_length_prefixed(path: Path) -> list[bytes]:
    """Splits a `format: proto` file into its records (each prefixed by a 4-byte big-endian length)."""
    data = path.read_bytes() if path.exists() else b""
    records, offset = [], 0
    while offset < len(data):
        assert offset + 4 <= len(data), f"{path}: truncated length prefix at byte {offset}"
        (n,) = struct.unpack_from(">I", data, offset)
        offset += 4
        assert offset + n <= len(data), f"{path}: record at byte {offset} claims {n} bytes, file ends at {len(data)}"
        records.append(data[offset : offset + n])
        offset += n
    return records


def read_json_lines(path: Path) -> list[dict]:
    """Parses a `format: json` file: one OTLP/JSON object per line.

    Split on "\\n" only: JSON strings may hold U+2028 and friends unescaped, which str.splitlines() would cut.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.split("\n") if line.strip()]


@dataclass
class Collector:
    """One running `sextant collector` and the files it writes."""

    workdir: Path
    file_format: str = "proto"
    max_request_body_size: int | None = None
    grpc: bool = False  # also enable `protocols.grpc` on the default config's receiver
    max_recv_msg_size_mib: int | None = None
    config_template: str | None = None
    otlp_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    telemetry_port: int = field(default_factory=free_port)
    udp_port_names: tuple[str, ...] = ()  # extra `config_template` placeholders, each a free UDP port
    udp_ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    exit_code: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def telemetry_url(self) -> str:
        return f"http://127.0.0.1:{self.telemetry_port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "collector.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "collector.log"

    def output_path(self, signal_name: str) -> Path:
        return self.workdir / "out" / f"{signal_name}.{'bin' if self.file_format == 'proto' else 'jsonl'}"

    def write_config(self) -> None:
        if self.config_template is not None:
            self.config_path.write_text(
                Template(self.config_template).substitute(
                    http_port=self.otlp_port, grpc_port=self.grpc_port, telemetry_port=self.telemetry_port, out=self.workdir / "out",
                    **self.udp_ports,
                )
            )
            return
        grpc = ""
        if self.grpc:
            msg_limit = f"\n        max_recv_msg_size_mib: {self.max_recv_msg_size_mib}" if self.max_recv_msg_size_mib else ""
            grpc = f"      grpc:\n        endpoint: 127.0.0.1:{self.grpc_port}{msg_limit}\n"
        body_limit = f"\n        max_request_body_size: {self.max_request_body_size}" if self.max_request_body_size else ""
        exporters = "".join(
            f"  file/{s}:\n    path: {self.output_path(s)}\n    format: {self.file_format}\n" for s in SIGNALS
        )
        pipelines = "".join(
            f"    {s}:\n      receivers: [otlp]\n      processors: [batch]\n      exporters: [file/{s}]\n" for s in SIGNALS
        )
        self.config_path.write_text(
            "receivers:\n"
            "  otlp:\n"
            "    protocols:\n"
            f"{grpc}"
            "      http:\n"
            f"        endpoint: 127.0.0.1:{self.otlp_port}{body_limit}\n"
            "processors:\n"
            "  batch:\n"
            "    send_batch_size: 512\n"
            "    timeout: 100ms\n"
            "exporters:\n"
            f"{exporters}"
            "service:\n"
            "  telemetry:\n"
            "    metrics:\n"
            f"      address: 127.0.0.1:{self.telemetry_port}\n"
            "  pipelines:\n"
            f"{pipelines}"
        )

    def start(self) -> None:
        assert SEXTANT_BIN.is_file(), f"collector binary not found at {SEXTANT_BIN} (build it or set SEXTANT_BIN)"
        (self.workdir / "out").mkdir(parents=True, exist_ok=True)
        for attempt in range(START_ATTEMPTS):
            if attempt:
                self.otlp_port, self.grpc_port, self.telemetry_port = free_port(), free_port(), free_port()
            if attempt or set(self.udp_ports) != set(self.udp_port_names):
                self.udp_ports = {name: free_udp_port() for name in self.udp_port_names}
            self.write_config()
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    [str(SEXTANT_BIN), "collector", "--config", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                )
            if self.wait_ready():
                return
        pytest.fail(f"collector could not bind free ports in {START_ATTEMPTS} attempts:\n{self.log_tail()}")

    def wait_ready(self) -> bool:
        """True once /readyz answers 200; False if the collector lost a port race; fails otherwise."""
        deadline = time.monotonic() + READY_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "Address already in use" in self.log_tail():
                    return False
                pytest.fail(f"collector exited with {self.process.returncode} before ready:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.telemetry_url}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return True
                    last_error = f"status {r.status}"
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                last_error = str(e)
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"collector not ready within {READY_TIMEOUT}s ({last_error}):\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM, then wait (bounded) for the drain to finish; returns the exit code."""
        if self.exit_code is not None:
            return self.exit_code
        self.process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"collector did not exit within {STOP_TIMEOUT}s of SIGTERM:\n{self.log_tail()}")
        return self.exit_code

    def stop_cleanly(self) -> None:
        code = self.stop()
        assert code == 0, f"collector exited with {code} after SIGTERM:\n{self.log_tail()}"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def proc_status(self, key: str) -> int:
        """A `/proc/PID/status` memory figure (e.g. VmRSS, VmHWM) in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                value, unit = line.split()[1:3]
                assert unit == "kB"
                return int(value) * 1024
        raise KeyError(key)

    def records(self, signal_name: str) -> list[bytes] | list[dict]:
        """What the file exporter wrote for a signal: raw protobuf records or parsed JSON lines."""
        path = self.output_path(signal_name)
        return read_length_prefixed(path) if self.file_format == "proto" else read_json_lines(path)


@pytest.fixture
def start_collector(tmp_path_factory):
    """Starts collectors on demand: `start_collector(file_format="proto", max_request_body_size=None)`, or
    with any other `Collector` field as a keyword (`grpc=True`, `config_template=...`).

    Every collector started through this fixture is killed when the test ends, pass or fail.
    """
    started: list[Collector] = []

    def start(file_format: str = "proto", max_request_body_size: int | None = None, **options) -> Collector:
        collector = Collector(tmp_path_factory.mktemp("sextant"), file_format, max_request_body_size, **options)
        started.append(collector)
        collector.start()
        return collector

    yield start
    for collector in started:
        collector.kill()
