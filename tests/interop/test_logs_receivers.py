"""Interop tests for the `syslog` and `filelog` receivers, with real peers.

- syslog: Python's standard `logging.handlers.SysLogHandler` (RFC 3164-style lines over UDP, and over TCP
  where it ends each message with NUL) and util-linux `logger` (RFC 5424 over TCP with octet counting and
  with LF framing, over UDP; RFC 3164 over UDP). The collector writes OTLP JSON through the `file` exporter,
  checked field by field.
- filelog: a Python writer using `logging.handlers.RotatingFileHandler` (rotation by rename + create) while
  the collector tails the file; every line must arrive exactly once.
"""

from __future__ import annotations

import calendar
import logging
import logging.handlers
import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import Collector, read_json_lines

TIMEOUT = 15  # seconds: every wait in this module is bounded by it

SYSLOG_CONFIG = """\
receivers:
  syslog/5424:
    protocol: rfc5424
    tcp: {listen_address: "127.0.0.1:$http_port"}
    udp: {listen_address: "127.0.0.1:$udp5424"}
  syslog/3164:
    protocol: rfc3164
    location: UTC
    tcp: {listen_address: "127.0.0.1:$grpc_port"}
    udp: {listen_address: "127.0.0.1:$udp3164"}
exporters:
  file:
    path: $out/logs.jsonl
    format: json
service:
  telemetry:
    metrics:
      address: 127.0.0.1:$telemetry_port
  pipelines:
    logs:
      receivers: [syslog/5424, syslog/3164]
      exporters: [file]
"""

FILELOG_CONFIG = """\
receivers:
  filelog:
    include: ["$out/../applogs/$glob"]
    start_at: beginning
    poll_interval: 50ms
    include_file_path: true
    storage: $out/../storage
exporters:
  file:
    path: $out/logs.jsonl
    format: json
service:
  telemetry:
    metrics:
      address: 127.0.0.1:$telemetry_port
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [file]
"""


def log_records(collector: Collector) -> list[dict]:
    path = collector.workdir / "out" / "logs.jsonl"
    return [
        r
        for batch in read_json_lines(path)
        for rl in batch.get("resourceLogs", [])
        for sl in rl.get("scopeLogs", [])
        for r in sl.get("logRecords", [])
    ]


def wait_records(collector: Collector, count: int) -> list[dict]:
    deadline = time.monotonic() + TIMEOUT
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = log_records(collector)
        if len(records) >= count:
            return records
        time.sleep(0.05)
    pytest.fail(f"expected {count} log records, got {len(records)}:\n{records[-5:]}\n{collector.log_tail()}")


def attrs(record: dict) -> dict:
    """OTLP/JSON attributes as plain Python values (intValue is a decimal string in OTLP/JSON)."""

    def value(v: dict):
        if "stringValue" in v:
            return v["stringValue"]
        if "intValue" in v:
            return int(v["intValue"])
        if "kvlistValue" in v:
            return {kv["key"]: value(kv["value"]) for kv in v["kvlistValue"].get("values", [])}
        raise AssertionError(f"unexpected value {v}")

    return {kv["key"]: value(kv["value"]) for kv in record.get("attributes", [])}


def body(record: dict) -> str:
    return record["body"]["stringValue"]


@pytest.fixture
def syslog_collector(start_collector) -> Collector:
    return start_collector(config_template=SYSLOG_CONFIG, udp_port_names=("udp5424", "udp3164"))


def python_handler(address, socktype) -> logging.Logger:
    handler = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_LOCAL3, socktype=socktype)
    formatter = logging.Formatter("%(asctime)s testhost pyapp[%(process)d]: %(message)s", datefmt="%b %d %H:%M:%S")
    formatter.converter = time.gmtime  # the receiver reads RFC 3164 times in its `location`, UTC here
    handler.setFormatter(formatter)
    log = logging.getLogger(f"interop-{socktype}-{address[1]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    return log


def test_python_sysloghandler_udp_and_tcp(syslog_collector: Collector):
    udp = python_handler(("127.0.0.1", syslog_collector.udp_ports["udp3164"]), socket.SOCK_DGRAM)
    tcp = python_handler(("127.0.0.1", syslog_collector.grpc_port), socket.SOCK_STREAM)
    before = int(time.time())
    udp.warning("over udp")
    tcp.error("over tcp 1")
    tcp.info("over tcp 2 with ünïcode")
    after = int(time.time()) + 1
    for log in (udp, tcp):
        for h in log.handlers:
            h.close()
    records = wait_records(syslog_collector, 3)
    syslog_collector.stop_cleanly()
    by_body = {body(r): r for r in log_records(syslog_collector)}
    assert set(by_body) == {"over udp", "over tcp 1", "over tcp 2 with ünïcode"}, records
    expected = {"over udp": (4, "warning", 13), "over tcp 1": (3, "err", 17), "over tcp 2 with ünïcode": (6, "info", 9)}
    for text, (severity, severity_text, number) in expected.items():
        r = by_body[text]
        a = attrs(r)
        assert a == {
            "appname": "pyapp",
            "facility": 19,  # local3
            "hostname": "testhost",
            "priority": 19 * 8 + severity,
            "proc_id": str(os.getpid()),
        }, r
        assert r["severityText"] == severity_text and r["severityNumber"] == number
        ts = int(r["timeUnixNano"]) // 1_000_000_000
        assert before <= ts <= after, (ts, before, after)
        assert int(r["observedTimeUnixNano"]) > 0


def run_logger(*args: str) -> None:
    logger_bin = shutil.which("logger")
    assert logger_bin, "util-linux logger is required (scripts/system-deps.sh installs bsdutils)"
    subprocess.run([logger_bin, *args], check=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def test_logger_rfc5424_tcp_octet_counting_lf_framing_and_udp(syslog_collector: Collector):
    port = str(syslog_collector.otlp_port)
    common = ["--rfc5424", "-n", "127.0.0.1", "-t", "myapp", "--id=4242", "--msgid", "MID42",
              "--sd-id", "custom@32473", "--sd-param", 'key="va\\"l\\]ue"']
    start = time.time()
    run_logger(*common, "-P", port, "-T", "--octet-count", "-p", "local0.err", "octet counted")
    run_logger(*common, "-P", port, "-T", "-p", "user.notice", "newline framed")
    run_logger(*common, "-P", str(syslog_collector.udp_ports["udp5424"]), "-d", "-p", "daemon.debug", "over udp")
    wait_records(syslog_collector, 3)
    syslog_collector.stop_cleanly()
    by_body = {body(r): r for r in log_records(syslog_collector)}
    assert set(by_body) == {"octet counted", "newline framed", "over udp"}
    for text, facility, severity, number, sev_text in [
        ("octet counted", 16, 3, 17, "err"),
        ("newline framed", 1, 5, 10, "notice"),
        ("over udp", 3, 7, 5, "debug"),
    ]:
        r = by_body[text]
        a = attrs(r)
        assert a["appname"] == "myapp" and a["proc_id"] == "4242" and a["msg_id"] == "MID42"
        assert a["facility"] == facility and a["priority"] == facility * 8 + severity and a["version"] == 1
        assert a["hostname"] == socket.gethostname()
        sd = a["structured_data"]
        assert sd["custom@32473"] == {"key": 'va"l]ue'}  # logger escapes '"' and ']'; the receiver unescapes
        assert sd["timeQuality"]["tzKnown"] == "1"
        assert r["severityNumber"] == number and r["severityText"] == sev_text
        # logger sends microsecond RFC 3339 times
        assert abs(int(r["timeUnixNano"]) / 1e9 - start) < 10


def test_logger_rfc3164_udp(syslog_collector: Collector):
    run_logger("--rfc3164", "-n", "127.0.0.1", "-P", str(syslog_collector.udp_ports["udp3164"]), "-d",
               "-t", "bsdapp", "-p", "mail.warning", "bsd style")
    [r] = wait_records(syslog_collector, 1)
    syslog_collector.stop_cleanly()
    a = attrs(r)
    assert body(r) == "bsd style"
    assert a["appname"] == "bsdapp" and a["facility"] == 2 and a["priority"] == 2 * 8 + 4
    assert a["hostname"] == socket.gethostname().split(".")[0]  # logger sends the short name in RFC 3164
    assert "version" not in a and "msg_id" not in a
    assert r["severityText"] == "warning"
    now = time.time()
    assert abs(int(r["timeUnixNano"]) / 1e9 - now) < 60  # second precision, current year


def test_syslog_bad_messages_do_not_stop_the_listener(syslog_collector: Collector):
    with socket.create_connection(("127.0.0.1", syslog_collector.otlp_port), timeout=TIMEOUT) as s:
        s.sendall(b"not syslog at all\n<13>1 - - - - - - good after bad\n")
        with socket.create_connection(("127.0.0.1", syslog_collector.otlp_port), timeout=TIMEOUT) as bad:
            bad.sendall(b"12x <13>1 - - -")
            assert bad.recv(16) == b""  # a malformed octet count closes that connection only
        s.sendall(b"<13>1 - - - - - - still served\n")
        records = wait_records(syslog_collector, 2)
    # Two reads become two batches; the exporter's queue consumers may write them in either order.
    assert sorted(body(r) for r in records) == ["good after bad", "still served"]
    syslog_collector.stop_cleanly()
    assert "closing syslog TCP connection" in syslog_collector.log_path.read_text()


@pytest.mark.parametrize("glob", ["app.log", "app.log*"])
def test_filelog_rotating_file_handler(start_collector, tmp_path_factory, glob):
    """RotatingFileHandler renames app.log → app.log.1 (… .N) and creates a new app.log while the collector
    tails it: each of the lines arrives exactly once, whether the glob follows only app.log (the renamed
    file is finished from its open handle) or also matches the rotated files (recognised by inode)."""
    collector = start_collector(config_template=FILELOG_CONFIG.replace("$glob", glob))
    logs = collector.workdir / "applogs"
    logs.mkdir()
    handler = logging.handlers.RotatingFileHandler(logs / "app.log", maxBytes=8000, backupCount=50)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(f"rotating-{glob}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    total = 2000
    for i in range(total):
        log.info("line %05d %s", i, "x" * 20)
        if i % 100 == 99:
            time.sleep(0.1)  # ~2.5 rotations per second, each file lives for several polls
    handler.close()
    assert len(list(logs.glob("app.log.*"))) >= 5, "the writer should have rotated several times"
    wait_records(collector, total)
    time.sleep(0.5)  # a few more polls: anything read twice would show up now
    collector.stop_cleanly()
    records = log_records(collector)
    lines = [body(r) for r in records]
    counts = Counter(lines)
    duplicates = {line: n for line, n in counts.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} lines delivered more than once, e.g. {list(duplicates)[:3]}"
    assert sorted(lines) == [f"line {i:05d} {'x' * 20}" for i in range(total)], "lines lost"
    names = {attrs(r)["log.file.name"] for r in records}
    assert "app.log" in names or "app.log.1" in names
    assert all(os.path.normpath(attrs(r)["log.file.path"]).startswith(str(logs)) for r in records)


def test_filelog_restart_resumes_from_checkpoint(start_collector):
    """SIGTERM the collector, write more (and rotate by rename) while it is down, start it again on the same
    `storage`: every line arrives exactly once across both runs."""
    config = FILELOG_CONFIG.replace("$glob", "app.log*").replace("format: json", "format: json\n    append: true")
    collector = start_collector(config_template=config)
    logs = collector.workdir / "applogs"
    logs.mkdir()
    app = logs / "app.log"
    with app.open("a") as f:
        f.writelines(f"first run {i}\n" for i in range(500))
    wait_records(collector, 500)
    collector.stop_cleanly()
    with app.open("a") as f:
        f.writelines(f"while down {i}\n" for i in range(300))
    app.rename(logs / "app.log.1")
    with app.open("a") as f:
        f.writelines(f"new file {i}\n" for i in range(200))
    collector.start()
    wait_records(collector, 1000)
    time.sleep(0.5)
    collector.stop_cleanly()
    lines = [body(r) for r in log_records(collector)]
    expected = [f"first run {i}" for i in range(500)] + [f"while down {i}" for i in range(300)] + [f"new file {i}" for i in range(200)]
    assert Counter(lines) == Counter(expected), f"{len(lines)} lines; duplicates: {[l for l, n in Counter(lines).items() if n > 1][:3]}"
