"""Peers for bench/prometheus_agent.sh: scrape targets and a remote-write receiver.

  targets  PORT[,PORT...] SERIES_PER_TARGET
      One HTTP server per port serving a text-format 0.0.4 exposition of SERIES_PER_TARGET series
      (about half counters with three labels, 30 % gauges, the rest 12-bucket histograms). Values grow
      with every scrape, so each scrape yields new samples. `GET /stats` → {"scrapes": N, "series": S}.
  receiver PORT
      Remote write 1.0 receiver: `POST /api/v1/write`, Snappy block format (cramjam), answers 204.
      Walks the protobuf WriteRequest (timeseries = field 1, TimeSeries.samples = field 2) to count
      series and samples. `GET /stats` → {"requests", "bytes", "series", "samples", "bad"}.
"""

from __future__ import annotations

import http.server
import json
import sys
import threading

import cramjam


class Stats:
    def __init__(self, **fields: int) -> None:
        self.lock = threading.Lock()
        self.fields = dict(fields)

    def add(self, **delta: int) -> None:
        with self.lock:
            for k, v in delta.items():
                self.fields[k] += v

    def json(self) -> bytes:
        with self.lock:
            return json.dumps(self.fields).encode()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def reply(self, code: int, body: bytes = b"", ctype: str = "text/plain") -> None:
        self.send_response(code)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


# ---- targets ----------------------------------------------------------------------------------------

def families(series: int) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """One target's exposition: [(HELP/TYPE header, [(series prefix, base, increment per scrape)])]."""
    out: list[tuple[str, list[tuple[str, int, int]]]] = []

    def family(name: str, kind: str, help_text: str) -> list[tuple[str, int, int]]:
        lines: list[tuple[str, int, int]] = []
        out.append((f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n", lines))
        return lines

    n_counter, n_gauge = series // 2, series * 3 // 10
    fam = 0
    while n_counter > 0:  # counters: families of 12 series with three labels
        lines = family(f"bench_component{fam}_requests_total", "counter", "Requests handled.")
        for m in ("GET", "POST", "PUT", "DELETE"):
            for c in ("200", "404", "500"):
                if n_counter > 0:
                    lines.append((f'bench_component{fam}_requests_total{{method="{m}",code="{c}",handler="/api/v1/items/{fam}"}} ',
                                  (fam * 7919 + len(lines) * 31) % 100003, 1 + (fam + len(lines)) % 17))
                    n_counter -= 1
        fam += 1
    fam = 0
    while n_gauge > 0:  # gauges: families of 10 series
        lines = family(f"bench_pool{fam}_in_use_bytes", "gauge", "Bytes in use.")
        for p in range(min(10, n_gauge)):
            lines.append((f'bench_pool{fam}_in_use_bytes{{pool="p{p}",area="heap"}} ', 1_000_000 + p * 4096, (fam + p) % 5 + 1))
            n_gauge -= 1
        fam += 1
    remaining = series - sum(len(f[1]) for f in out)
    bounds = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
    fam = 0
    while remaining >= 14:  # histograms: 12 cumulative buckets + _sum + _count
        name = f"bench_op{fam}_duration_seconds"
        lines = family(name, "histogram", "Operation latency.")
        lines.extend((f'{name}_bucket{{op="o{fam}",le="{le}"}} ', 0, i + 1) for i, le in enumerate(bounds))
        lines.append((f'{name}_sum{{op="o{fam}"}} ', 0, 3))
        lines.append((f'{name}_count{{op="o{fam}"}} ', 0, len(bounds)))
        remaining -= 14
        fam += 1
    if remaining > 0:
        lines = family("bench_extra_value", "gauge", "Filler.")
        lines.extend((f'bench_extra_value{{i="{i}"}} ', i, 1) for i in range(remaining))
    return out


class Target:
    """One exposition endpoint; the n-th scrape renders base + n × increment for every series."""

    def __init__(self, series: int) -> None:
        self.families = families(series)
        self.series = sum(len(f[1]) for f in self.families)
        self.scrapes = 0
        self.lock = threading.Lock()

    def render(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        parts: list[str] = []
        for header, lines in self.families:
            parts.append(header)
            parts.extend([f"{p}{b + n * k}\n" for p, b, k in lines])
        return "".join(parts).encode()


def run_targets(ports: list[int], series: int) -> None:
    servers = []
    for port in ports:
        target = Target(series)

        class H(Handler):
            t = target

            def do_GET(self) -> None:
                if self.path == "/stats":
                    self.reply(200, json.dumps({"scrapes": self.t.scrapes, "series": self.t.series}).encode(), "application/json")
                else:
                    self.reply(200, self.t.render(), "text/plain; version=0.0.4; charset=utf-8")

        srv = Server(("127.0.0.1", port), H)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"targets ready: {len(ports)} × {servers and servers[0].RequestHandlerClass.t.series} series", flush=True)
    threading.Event().wait()


# ---- receiver ---------------------------------------------------------------------------------------

def varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def skip(buf: bytes, i: int, wire: int) -> int:
    if wire == 0:
        return varint(buf, i)[1]
    if wire == 1:
        return i + 8
    if wire == 2:
        n, i = varint(buf, i)
        return i + n
    if wire == 5:
        return i + 4
    raise ValueError(f"wire type {wire}")


def count_write_request(buf: bytes) -> tuple[int, int]:
    """(series, samples) in a remote write 1.0 WriteRequest."""
    series = samples = 0
    i, end = 0, len(buf)
    while i < end:
        tag, i = varint(buf, i)
        if tag == 0x0A:  # field 1, LEN: TimeSeries
            n, i = varint(buf, i)
            stop = i + n
            series += 1
            j = i
            while j < stop:
                t, j = varint(buf, j)
                if t == 0x12:  # field 2, LEN: Sample
                    samples += 1
                j = skip(buf, j, t & 7)
            i = stop
        else:
            i = skip(buf, i, tag & 7)
    return series, samples


def run_receiver(port: int) -> None:
    stats = Stats(requests=0, bytes=0, series=0, samples=0, bad=0)

    class H(Handler):
        def do_GET(self) -> None:
            self.reply(200, stats.json(), "application/json")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                raw = bytes(cramjam.snappy.decompress_raw(body))
                series, samples = count_write_request(raw)
            except Exception as e:  # count and reject malformed bodies, as Prometheus would (400)
                stats.add(bad=1)
                self.reply(400, str(e).encode())
                return
            stats.add(requests=1, bytes=len(body), series=series, samples=samples)
            self.reply(204)

    srv = Server(("127.0.0.1", port), H)
    print("receiver ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "targets":
        run_targets([int(p) for p in sys.argv[2].split(",")], int(sys.argv[3]))
    elif sys.argv[1] == "receiver":
        run_receiver(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
