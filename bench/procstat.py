"""Helpers shared by the Python benchmarks: free ports and a process's CPU time and memory from /proc.

CPU is utime+stime of the whole process (all threads) from /proc/PID/stat; memory is from
/proc/PID/status: VmHWM (peak resident set) and VmRSS (resident now), in MiB.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int) -> float:
    """Peak resident set size (VmHWM) in MiB."""
    return _status_mib(pid, "VmHWM:")


def rss_now_mib(pid: int) -> float:
    """Current resident set size (VmRSS) in MiB."""
    return _status_mib(pid, "VmRSS:")
