"""Self-telemetry checked by an independent parser: Prometheus's own `promtool check metrics` reads the
collector's /metrics (text format 0.0.4) and must find nothing to complain about."""
import shutil
import subprocess
import urllib.request



def test_self_telemetry_passes_promtool(start_collector):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/system-deps.sh installs Debian's prometheus package"
    collector = start_collector()
    with urllib.request.urlopen(f"http://127.0.0.1:{collector.telemetry_port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read()
    assert b"sextant_receiver_accepted_items_total" in text and b"sextant_exporter_queue_capacity" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    collector.stop_cleanly()
