"""`sextant proxy` conformance, modelled on Istio's traffic-management task pages.

Each test writes Istio YAML as `kubectl get -o yaml` would hold it, starts a real `sextant proxy` process
in front of small Python upstream apps (proxy_support.py) and checks the behaviour Istio documents:
request routing, traffic shifting, fault injection, timeouts, retries, circuit breaking, outlier
detection, mirroring, consistent hashing, hot reload; HTTP/2 and gRPC, WebSocket and TCP pass-through
(inbound TCP found by sniffing); Istio's metrics, access logs and traces; malformed-input handling and an
upstream killed mid-request.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import SEXTANT_BIN, free_port
from proxy_support import Proxy, Upstream, mesh_config, service_entry, sidecar_pair, two_sidecars

REVIEWS = "reviews.default.svc.cluster.local:9080"


@pytest.fixture
def upstreams():
    made: list[Upstream] = []

    def make(name: str, **kw) -> Upstream:
        u = Upstream(name, **kw)
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


@pytest.fixture
def proxy(tmp_path):
    started: list[Proxy] = []

    def start(config: str, **kw) -> Proxy:
        p = Proxy(tmp_path, config, **kw).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def reviews_mesh(v1: Upstream, v2: Upstream, v3: Upstream, virtual_service: str, traffic_policy: str = "") -> str:
    return (
        service_entry("reviews", [(v1, {"app": "reviews", "version": "v1"}), (v2, {"app": "reviews", "version": "v2"}),
                                  (v3, {"app": "reviews", "version": "v3"})])
        + f"""---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
{traffic_policy}  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
  - {{name: v3, labels: {{version: v3}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
{virtual_service}"""
    )


def within_binomial(count: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    """Whether `count` successes of `n` trials is within `sigmas` standard deviations of n·p."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_request_routing_by_end_user_header(upstreams, proxy):
    """Istio task "Request Routing": jason goes to v2, everyone else to v1."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    p = proxy(reviews_mesh(v1, v2, v3, """  - match:
    - headers:
        end-user: {exact: jason}
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""))
    conn = p.client()
    for _ in range(20):
        assert p.request(REVIEWS, "/reviews/0", headers={"end-user": "jason"}, conn=conn)[2]["name"] == "v2"
        assert p.request(REVIEWS, "/reviews/0", headers={"end-user": "ana"}, conn=conn)[2]["name"] == "v1"
        assert p.request("reviews:9080", "/reviews/0", conn=conn)[2]["name"] == "v1"
    status, headers, body = p.request("reviews", "/x")
    assert status == 200 and headers["server"] == "istio-envoy" and "x-envoy-upstream-service-time" in headers
    # The proxy adds x-request-id and x-forwarded-proto and strips hop-by-hop headers.
    assert len(body["headers"]["x-request-id"]) == 36 and body["headers"]["x-forwarded-proto"] == "http"
    status, _, _ = p.request("ratings.default.svc.cluster.local:9080", "/")
    assert status == 404


@pytest.mark.parametrize("weights", [(50, 50), (80, 20)])
def test_traffic_shifting(upstreams, proxy, weights):
    """Istio task "Traffic Shifting": weights hold over 1000 requests within 4.5 standard deviations."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    w1, w3 = weights
    p = proxy(reviews_mesh(v1, v2, v3, f"""  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {w1}
    - destination: {{host: reviews, subset: v3}}
      weight: {w3}
"""))
    n = 1000
    conn = p.client()
    names = [p.request(REVIEWS, "/", conn=conn)[2]["name"] for _ in range(n)]
    assert set(names) <= {"v1", "v3"}
    assert within_binomial(names.count("v1"), n, w1 / 100), f"v1 got {names.count('v1')} of {n} at weight {w1}"


def test_fault_injection_delay_and_abort(upstreams, proxy):
    """Istio task "Fault Injection": a fixed delay for jason, an HTTP abort for everyone else."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    p = proxy(reviews_mesh(v1, v2, v3, """  - match: [{headers: {end-user: {exact: jason}}}]
    fault:
      delay: {fixedDelay: 300ms, percentage: {value: 100}}
    route: [{destination: {host: reviews, subset: v1}}]
  - fault:
      abort: {httpStatus: 418, percentage: {value: 100}}
    route: [{destination: {host: reviews, subset: v1}}]
"""))
    t0 = time.monotonic()
    status, _, body = p.request(REVIEWS, "/", headers={"end-user": "jason"})
    assert status == 200 and body["name"] == "v1" and time.monotonic() - t0 >= 0.3
    before = v1.count()
    status, _, body = p.request(REVIEWS, "/")
    assert status == 418 and body == b"fault filter abort"
    assert v1.count() == before, "an aborted request must not reach the upstream"

    # As in Envoy, aborts of requests without a body leave the connection open. A request whose body was
    # not read when the reply went out closes it: the rest of the body cannot be skipped reliably.
    def response(f) -> tuple[bytes, dict[str, str], bytes]:
        status_line = f.readline()
        headers = {}
        while (line := f.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status_line, headers, f.read(int(headers.get("content-length", "0")))

    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s, s.makefile("rb") as f:
        for _ in range(3):
            s.sendall(f"GET / HTTP/1.1\r\nHost: {REVIEWS}\r\n\r\n".encode())
            status_line, headers, body = response(f)
            assert status_line.startswith(b"HTTP/1.1 418") and body == b"fault filter abort" and "connection" not in headers
        s.sendall(f"POST / HTTP/1.1\r\nHost: {REVIEWS}\r\nContent-Length: 5\r\n\r\nhello".encode())
        status_line, headers, body = response(f)
        assert status_line.startswith(b"HTTP/1.1 418") and headers.get("connection") == "close"
        assert f.read() == b"", "the connection closes after the reply"


def test_request_timeout(upstreams, proxy):
    """Istio task "Request Timeouts": 504 after the route timeout, not after the upstream's delay."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    p = proxy(reviews_mesh(v1, v2, v3, """  - route: [{destination: {host: reviews, subset: v1}}]
    timeout: 0.25s
    retries: {attempts: 0}
"""))
    t0 = time.monotonic()
    status, _, body = p.request(REVIEWS, "/delay/2000")
    elapsed = time.monotonic() - t0
    assert status == 504 and body == b"upstream request timeout"
    assert 0.25 <= elapsed < 1.5, elapsed
    assert p.request(REVIEWS, "/delay/10")[0] == 200


def test_retries_against_a_flaky_upstream(upstreams, proxy):
    """Retries: two 503s then 200; attempts 3 hides them, attempts 1 does not (and says URX)."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    p = proxy(reviews_mesh(v1, v2, v3, """  - match: [{uri: {prefix: /flaky/2/a}}]
    route: [{destination: {host: reviews, subset: v1}}]
    retries: {attempts: 3, retryOn: 5xx}
  - route: [{destination: {host: reviews, subset: v1}}]
    retries: {attempts: 1, retryOn: 5xx}
"""))
    status, _, body = p.request(REVIEWS, "/flaky/2/a")
    assert status == 200 and v1.count("/flaky/2/a") == 3
    status, _, _ = p.request(REVIEWS, "/flaky/2/b")
    assert status == 503 and v1.count("/flaky/2/b") == 2
    # Istio's default policy (no `retries`) retries 503 twice on a route without a retry policy.
    p2 = proxy(reviews_mesh(v1, v2, v3, """  - route: [{destination: {host: reviews, subset: v1}}]
"""))
    assert p2.request(REVIEWS, "/flaky/2/c")[0] == 200 and v1.count("/flaky/2/c") == 3
    assert p2.request(REVIEWS, "/status/500")[0] == 500 and v1.count("/status/500") == 1


def test_connect_failure_is_503_uf_and_retried_on_another_endpoint(upstreams, proxy):
    v1 = upstreams("v1")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    mesh = service_entry("reviews", [(v1, {"version": "v1"})]).replace(
        f"  - {{address: 127.0.0.1, ports: {{http: {v1.port}}}",
        f"  - {{address: 127.0.0.1, ports: {{http: {dead_port}}}, labels: {{version: dead}}}}\n  - {{address: 127.0.0.1, ports: {{http: {v1.port}}}")
    p = proxy(mesh)
    # Round trips land on the dead endpoint about half the time; connect-failure retries move them.
    for _ in range(20):
        assert p.request(REVIEWS, "/")[0] == 200
    only_dead = service_entry("reviews", [(v1, {})]).replace(f"http: {v1.port}", f"http: {dead_port}")
    p2 = proxy(only_dead)
    status, _, body = p2.request(REVIEWS, "/")
    assert status == 503 and b"connection failure" in body


def test_circuit_breaking_under_concurrent_load(upstreams, proxy):
    """Istio task "Circuit Breaking": maxConnections 1, 1 pending; concurrent callers see 503 (UO)."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    p = proxy(reviews_mesh(v1, v2, v3, """  - route: [{destination: {host: reviews, subset: v1}}]
    retries: {attempts: 0}
""", traffic_policy="""  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
"""))

    # Like fortio in the task: a few callers in a loop for a while. Overflow answers come back at once,
    # so callers that hit the breaker retry quickly; the single connection serves one 100 ms call at a time.
    def caller(_):
        out, conn = [], p.client()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            out.append(p.request(REVIEWS, "/delay/100", conn=conn))
            if out[-1][0] == 503:
                time.sleep(0.01)
                conn.close()
                conn = p.client()
        return out

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [r for batch in pool.map(caller, range(4)) for r in batch]
    codes = [r[0] for r in results]
    overflow = [r for r in results if r[0] == 503]
    assert codes.count(200) >= 8 and len(overflow) >= 8, codes
    assert all(b"overflow" in r[2] for r in overflow)
    assert set(codes) <= {200, 503}
    dump = p.config_dump()
    cluster = next(c for c in dump["clusters"] if c["name"] == "outbound|9080|v1|reviews.default.svc.cluster.local")
    assert cluster["pending"] == 0 and cluster["active_requests"] == 0


def test_outlier_detection_ejects_and_returns(upstreams, proxy):
    """A 5xx endpoint is ejected after consecutive errors and comes back after baseEjectionTime."""
    good, bad = upstreams("good"), upstreams("bad", default_status=500)
    mesh = service_entry("reviews", [(good, {"version": "v1"}), (bad, {"version": "v1"})]) + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 1s, maxEjectionPercent: 100}
"""
    p = proxy(mesh)
    conn = p.client()
    first = [p.request(REVIEWS, "/", conn=conn)[2]["name"] for _ in range(10)]
    assert first.count("bad") <= 3, first
    after = [p.request(REVIEWS, "/", conn=conn)[2]["name"] for _ in range(10)]
    assert after == ["good"] * 10
    assert next(c for c in p.config_dump()["clusters"] if c["name"].startswith("outbound|9080||"))["ejections"] >= 1
    time.sleep(1.2)
    back = [p.request(REVIEWS, "/", conn=conn)[2]["name"] for _ in range(4)]
    assert "bad" in back, "the ejected endpoint returns after baseEjectionTime"


def test_mirroring(upstreams, proxy):
    """Istio task "Mirroring": v1 answers, v2 gets a copy with `-shadow` appended to the authority."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    p = proxy(reviews_mesh(v1, v2, v3, """  - route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 100}
"""))
    for i in range(5):
        status, _, body = p.request(REVIEWS, f"/mirror/{i}", method="POST", body=b"payload")
        assert status == 200 and body["name"] == "v1"
    deadline = time.monotonic() + 5
    while v2.count("/mirror/") < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    shadows = [r for r in v2.requests if r["path"].startswith("/mirror/")]
    assert len(shadows) == 5
    assert all(r["headers"]["host"] == "reviews.default.svc.cluster.local-shadow:9080" and r["body"] == b"payload" for r in shadows)


def test_consistent_hash_is_sticky(upstreams, proxy):
    a, b, c = upstreams("a"), upstreams("b"), upstreams("c")
    mesh = service_entry("reviews", [(a, {}), (b, {}), (c, {})]) + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
"""
    p = proxy(mesh)
    conn = p.client()
    chosen = {}
    for user in range(30):
        names = {p.request(REVIEWS, "/", headers={"x-user": f"user-{user}"}, conn=conn)[2]["name"] for _ in range(5)}
        assert len(names) == 1, f"user-{user} moved between {names}"
        chosen[user] = names.pop()
    assert len(set(chosen.values())) == 3, "keys spread over every endpoint"


def test_hot_reload_under_load_loses_nothing(upstreams, proxy, tmp_path):
    """Changing the config file under load: the new route takes over and no request fails."""
    v1, v2, v3 = upstreams("v1"), upstreams("v2"), upstreams("v3")
    to_v1 = """  - route: [{destination: {host: reviews, subset: v1}}]
"""
    p = proxy(reviews_mesh(v1, v2, v3, to_v1))
    failures, seen, stop = [], [], threading.Event()

    def load():
        conn = p.client()
        while not stop.is_set():
            try:
                status, _, body = p.request(REVIEWS, "/", conn=conn)
                seen.append(body["name"])
                if status != 200:
                    failures.append(status)
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(repr(e))
                conn = p.client()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    p.config_path.write_text(reviews_mesh(v1, v2, v3, """  - route: [{destination: {host: reviews, subset: v3}}]
"""))
    deadline = time.monotonic() + 10
    while (not seen or seen[-1] != "v3") and time.monotonic() < deadline:
        time.sleep(0.05)
    # A broken config is rejected and the running one kept.
    p.config_path.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hostz: []}\n")
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert "v1" in seen and seen[-1] == "v3"
    dump = p.config_dump()
    assert dump["version"] == 2 and dump["reloads_rejected"] >= 1


def test_one_connection_follows_each_requests_authority_and_a_reload(upstreams, proxy):
    """A keep-alive connection whose requests name different services reaches each one (the proxy keeps the
    last service route per connection), and after a reload adds a VirtualService the same connection takes
    the new route."""
    a, b, b2 = upstreams("a"), upstreams("b"), upstreams("b2")
    mesh = service_entry("alpha", [(a, {"app": "alpha"})]) + service_entry("beta", [(b, {"version": "v1"}), (b2, {"version": "v2"})])
    p = proxy(mesh)
    conn = p.client()
    hosts = ["alpha:9080", "alpha:9080", "beta.default.svc.cluster.local:9080", "alpha:9080", "beta:9080", "beta:9080",
             "gamma:9080", "alpha:9080"]
    names = []
    for host in hosts:
        status, _, body = p.request(host, "/", conn=conn)
        names.append(body["name"] if status == 200 else status)
    assert names[:3] == ["a", "a", names[2]] and names[2] in ("b", "b2")
    assert names[3] == "a" and names[4] in ("b", "b2") and names[5] in ("b", "b2")
    assert names[6] == 404 and names[7] == "a"
    p.config_path.write_text(mesh + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: beta, namespace: default}
spec:
  host: beta
  subsets: [{name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: beta, namespace: default}
spec:
  hosts: [beta]
  http: [{route: [{destination: {host: beta, subset: v2}}]}]
""")
    deadline = time.monotonic() + 10
    while p.config_dump()["version"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = [p.request("beta:9080", "/", conn=conn)[2]["name"] for _ in range(6)]
    assert after == ["b2"] * 6
    assert p.request("alpha:9080", "/", conn=conn)[2]["name"] == "a"


def test_malformed_http_gets_400_and_others_are_unaffected(upstreams, proxy):
    v1 = upstreams("v1")
    p = proxy(service_entry("reviews", [(v1, {})]))
    good = p.client()
    assert p.request(REVIEWS, "/", conn=good)[0] == 200
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: reviews\r\nBad Header Without Colon\r\n\r\n")
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert s.recv(4096) == b"", "the connection is closed after a protocol error"
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: " + REVIEWS.encode() + b"\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert p.request(REVIEWS, "/", conn=good)[0] == 200


def test_validate_reports_every_error_with_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    timout: 1s
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: FASTEST}}
""")
    r = subprocess.run([str(SEXTANT_BIN), "validate", "--proxy-config", str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"{bad}:8:5: error: unknown key 'timout'" in r.stderr and "did you mean 'timeout'" in r.stderr
    assert f"{bad}:15:" in r.stderr and "'FASTEST' is not one of" in r.stderr
    assert "2 error(s)" in r.stderr
    ok = tmp_path / "ok.yaml"
    ok.write_text("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec:\n  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: DNS\n")
    r = subprocess.run([str(SEXTANT_BIN), "validate", "--proxy-config", str(ok)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "1 ServiceEntry(s)" in r.stdout


@pytest.mark.parametrize("count", [3, 70])
def test_request_fields_go_upstream_in_order_without_hop_by_hop_ones(upstreams, proxy, count):
    """The fields sent upstream are the received ones in their order, less the hop-by-hop ones (and those the
    `Connection` field names), plus the proxy's: the same for a short head, whose forwarded fields the proxy
    keeps as a mask over the received ones (up to 64), and a long one, whose list it builds."""
    v1 = upstreams("v1")
    p = proxy(service_entry("reviews", [(v1, {})]))
    names = [f"x-field-{i:02d}" for i in range(count)]
    headers = {"Connection": "keep-alive, x-hop", "X-Hop": "gone", "Keep-Alive": "timeout=5", "TE": "trailers"}
    headers.update({n: f"v{i}" for i, n in enumerate(names)})
    headers["X-Forwarded-Proto"] = "https"
    conn = p.client()
    for _ in range(2):  # the second on the same connections, both sides
        status, _, body = p.request(REVIEWS, "/fields", headers=headers, conn=conn)
        assert status == 200
        got = v1.requests[-1]["headers"]
        assert [k for k in got if k.startswith("x-field-")] == names
        assert all(got[n] == f"v{i}" for i, n in enumerate(names))
        assert "x-hop" not in got and "keep-alive" not in got and "connection" not in got
        assert got["te"] == "trailers"
        # The client's x-forwarded-proto goes on; the proxy adds one only when there is none.
        assert got["x-forwarded-proto"] == "https"
        assert len(got["x-request-id"]) == 36
    conn.close()


def test_large_bodies_stream_through_both_ways(upstreams, proxy):
    """A 5 MiB chunked upload reaches the upstream whole (streamed, past the 64 KiB retry buffer)."""
    v1 = upstreams("v1")
    p = proxy(service_entry("reviews", [(v1, {})]))
    payload = bytes(range(256)) * (5 * 4096)

    def chunks():
        for i in range(0, len(payload), 100_000):
            yield payload[i : i + 100_000]

    conn = p.client()
    conn.request("POST", "/upload", body=chunks(), headers={"Host": REVIEWS, "Transfer-Encoding": "chunked"}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200
    r.read()
    assert v1.requests[-1]["body"] == payload


def test_large_and_slow_responses_stream_through(upstreams, proxy):
    """Responses are passed on as they arrive, not when they end: a 5 MiB download (far past the downstream
    connection's write buffer, so the proxy must flush and wait for the client to read) arrives whole, and
    the first chunk of a slow chunked response (server-sent events) reaches the client while the upstream
    still holds the second."""
    v1 = upstreams("v1")
    p = proxy(service_entry("reviews", [(v1, {})]))
    n = 5 * 1024 * 1024
    conn = p.client()
    conn.request("GET", f"/download/{n}", headers={"Host": REVIEWS})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and len(body) == n
    assert body == (bytes(range(256)) * (n // 256))
    # The same connection carries on after the download.
    conn.request("GET", "/after", headers={"Host": REVIEWS})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["path"] == "/after"

    s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    try:
        start = time.monotonic()
        s.sendall(f"GET /stream/3000 HTTP/1.1\r\nHost: {REVIEWS}\r\n\r\n".encode())
        got = b""
        while b"first" not in got:
            chunk = s.recv(65536)
            assert chunk, "the proxy closed before the first chunk"
            got += chunk
        first_after = time.monotonic() - start
        while not got.endswith(b"0\r\n\r\n"):
            chunk = s.recv(65536)
            assert chunk, "the proxy closed before the end"
            got += chunk
        assert first_after < 2.0, f"the first chunk waited for the whole response ({first_after:.2f} s)"
        assert b"second" in got
    finally:
        s.close()


def test_expect_100_continue_is_answered_by_the_proxy(upstreams, proxy):
    v1 = upstreams("v1")
    p = proxy(service_entry("reviews", [(v1, {})]))
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(f"POST /e HTTP/1.1\r\nHost: {REVIEWS}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"hello")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
    assert v1.requests[-1]["body"] == b"hello" and "expect" not in v1.requests[-1]["headers"]


def test_head_responses_carry_no_body(upstreams, proxy):
    """A response to HEAD is headers only (RFC 9110 §9.3.2), whatever its framing headers say. This holds for an
    upstream's chunked HEAD answer, for a plain one, and for the proxy's own replies with a body (a
    `directResponse`, a 404 for no route). Nothing follows the head: no body, no last chunk. On a connection
    kept alive, the next request gets a well-formed response."""
    v1 = upstreams("v1")
    p = proxy(service_entry("reviews", [(v1, {})]) + """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /teapot}}]
    directResponse: {status: 418, body: {string: teapot}}
  - route: [{destination: {host: reviews}}]
""")

    def read_head(s: socket.socket) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    cases = [("/chunked", REVIEWS, 200, b"transfer-encoding: chunked"), ("/plain", REVIEWS, 200, b"content-length: 42"),
             ("/teapot", REVIEWS, 418, b"content-length: 6"), ("/", "nowhere.example:80", 404, b"content-length:")]
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    try:
        for path, host, status, framing in cases:
            s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head, rest = read_head(s)
            assert head.startswith(f"HTTP/1.1 {status}".encode()), head
            assert framing in head.lower(), head
            closing = b"connection: close" in head.lower()
            s.settimeout(0.3)
            try:
                while chunk := s.recv(65536):
                    rest += chunk
            except socket.timeout:
                assert not closing, head
            s.settimeout(5)
            assert rest == b"", (head, rest)
            if closing:
                # The proxy closes after a local reply sent before the request's end; that is allowed.
                s.close()
                s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
            s.sendall(f"GET /after{path} HTTP/1.1\r\nHost: {REVIEWS}\r\n\r\n".encode())
            head, body = read_head(s)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += s.recv(65536)
            assert json.loads(body)["path"] == f"/after{path}"
    finally:
        s.close()
    assert [r["method"] for r in v1.requests] == ["HEAD", "GET", "HEAD", "GET", "GET", "GET"]


def test_inbound_listener_forwards_to_the_local_app(upstreams, tmp_path):
    """Sidecar mode: the inbound listener (Istio's 15006) hands calls to the workload's app port."""
    app = upstreams("reviews-app")
    from conftest import free_port  # noqa: PLC0415

    p = Proxy(tmp_path, service_entry("ratings", [(app, {})]))
    inbound = free_port()
    p.extra_args = ["--inbound", f"127.0.0.1:{inbound}", "--app", f"127.0.0.1:{app.port}"]
    p.start()
    try:
        import http.client  # noqa: PLC0415

        c = http.client.HTTPConnection("127.0.0.1", inbound, timeout=5)
        c.request("GET", "/reviews/1", headers={"Host": "reviews:9080", "x-request-id": "abc-123"})
        r = c.getresponse()
        body = r.read()
        assert r.status == 200 and b"reviews-app" in body
        assert app.requests[-1]["headers"]["x-request-id"] == "abc-123"
    finally:
        p.stop()


def test_gateway_mode_applies_only_virtual_services_bound_to_its_gateway(upstreams, tmp_path):
    v1, other = upstreams("productpage"), upstreams("mesh-only")
    mesh = service_entry("productpage", [(v1, {})]) + service_entry("details", [(other, {})]) + """---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["default/*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static}}]
    route: [{destination: {host: productpage, port: {number: 9080}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: default}
spec:
  hosts: [details]
  http:
  - route: [{destination: {host: details}}]
"""
    p = Proxy(tmp_path, mesh, extra_args=["--mode", "gateway", "--label", "istio=ingressgateway"]).start()
    try:
        status, _, body = p.request("bookinfo.example.com", "/productpage")
        assert status == 200 and body["name"] == "productpage"
        assert p.request("bookinfo.example.com", "/static/app.css")[2]["name"] == "productpage"
        assert p.request("bookinfo.example.com", "/other")[0] == 404
        # A host no Gateway server exposes is not routed, even though the VirtualService says `*`.
        assert p.request("bookinfo.example.org", "/productpage")[0] == 404
    finally:
        p.stop()


def greeter_server():
    """A grpcio server for `demo.Greeter` (raw bytes): `Echo` answers `echo:<request>` with trailer
    `x-served-by: greeter-v1` (FAILED_PRECONDITION for `fail`), `Count` streams `0`..`n-1`. Returns (server, port)."""
    import grpc  # noqa: PLC0415
    from concurrent import futures  # noqa: PLC0415

    def echo(request: bytes, context):
        context.set_trailing_metadata((("x-served-by", "greeter-v1"),))
        if request == b"fail":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "asked to fail")
        return b"echo:" + request

    def count(request: bytes, context):
        for i in range(int(request)):
            yield str(i).encode()

    handler = grpc.method_handlers_generic_handler("demo.Greeter", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Count": grpc.unary_stream_rpc_method_handler(count),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_grpc_passes_through_over_http2_with_trailers(tmp_path):
    """A real grpcio client → sextant proxy (HTTP/2 prior knowledge) → a real grpcio server: unary and
    streaming calls, metadata, and non-OK statuses carried in trailers."""
    import grpc  # noqa: PLC0415

    server, port = greeter_server()
    mesh = service_entry("greeter", [(port, {})], port=50051, port_name="grpc-demo", protocol=None)
    p = Proxy(tmp_path, mesh).start()
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{p.port}", options=[("grpc.default_authority", "greeter:50051")])
        call = channel.unary_unary("/demo.Greeter/Echo")
        reply, state = call.with_call(b"hello", timeout=10)
        assert reply == b"echo:hello"
        assert ("x-served-by", "greeter-v1") in state.trailing_metadata()
        with pytest.raises(grpc.RpcError) as failure:
            call(b"fail", timeout=10)
        assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION and failure.value.details() == "asked to fail"
        stream = channel.unary_stream("/demo.Greeter/Count")
        assert [m for m in stream(b"50", timeout=10)] == [str(i).encode() for i in range(50)]
        # Many concurrent calls share one HTTP/2 connection upstream.
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda i: call(str(i).encode(), timeout=10), range(100)))
        assert replies == [b"echo:" + str(i).encode() for i in range(100)]
        channel.close()
        # Istio's gRPC message counters: 103 requests of one message each; 1 + 0 (the abort) + 50 + 100 replies.
        import urllib.request  # noqa: PLC0415

        with urllib.request.urlopen(f"http://127.0.0.1:{p.admin_port}/stats/prometheus", timeout=5) as r:
            exposition = r.read().decode()

        def total(name):
            return sum(int(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith(name + "{"))

        assert total("istio_request_messages_total") == 103 and total("istio_response_messages_total") == 151
        assert 'request_protocol="grpc"' in exposition and 'grpc_response_status="9"' in exposition
        # A gRPC fault abort answers with the configured status, in trailers.
        p.config_path.write_text(mesh + """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter]
  http:
  - fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
    route: [{destination: {host: greeter}}]
""")
        deadline = time.monotonic() + 10
        while p.config_dump()["version"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        channel = grpc.insecure_channel(f"127.0.0.1:{p.port}", options=[("grpc.default_authority", "greeter:50051")])
        with pytest.raises(grpc.RpcError) as aborted:
            channel.unary_unary("/demo.Greeter/Echo")(b"x", timeout=10)
        assert aborted.value.code() == grpc.StatusCode.UNAVAILABLE and aborted.value.details() == "fault filter abort"
        channel.close()
    finally:
        p.stop()
        server.stop(0)


def test_websocket_upgrade_passes_through(tmp_path):
    """A real `websockets` client ↔ sextant proxy ↔ a real `websockets` server: the handshake is
    forwarded, then frames flow both ways unchanged (text, binary, a 1 MiB message) until the close."""
    import asyncio  # noqa: PLC0415

    from websockets.asyncio.client import connect  # noqa: PLC0415
    from websockets.asyncio.server import serve  # noqa: PLC0415

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def scenario():
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            mesh = service_entry("chat", [(type("U", (), {"port": port})(), {})])
            p = Proxy(tmp_path, mesh).start()
            try:
                # The URI names the service (it becomes the Host header); the socket goes to the proxy.
                async with connect("ws://chat:9080/ws", host="127.0.0.1", port=p.port, max_size=2**21) as ws:
                    await ws.send("hello")
                    assert await ws.recv() == "hello"
                    await ws.send(b"\x00\x01binary")
                    assert await ws.recv() == b"\x00\x01binary"
                    big = bytes(range(256)) * 4096
                    await ws.send(big)
                    assert await ws.recv() == big
                # After the relay ends, plain HTTP through the proxy still works.
                assert p.config_dump()["version"] == 1
            finally:
                p.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_plain_tcp_is_routed_by_port(tmp_path):
    """A service port declared TCP gets its own listener (Istio's per-port outbound listener); bytes are
    relayed to the endpoint chosen by `VirtualService.tcp` weights; a dead endpoint closes the connection."""
    import socketserver  # noqa: PLC0415

    from conftest import free_port  # noqa: PLC0415

    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(self.server.prefix)
            while data := self.request.recv(65536):
                self.request.sendall(data)

    servers = []
    for prefix in (b"v1:", b"v2:"):
        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
        srv.daemon_threads = True
        srv.prefix = prefix
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    tcp_port, dead_port = free_port(), free_port()
    mesh = (service_entry("db", [(servers[0].server_address[1], {"version": "v1"}), (servers[1].server_address[1], {"version": "v2"})],
                          port=tcp_port, port_name="tcp-db", protocol="TCP")
            + service_entry("gone", [(1, {})], port=dead_port, port_name="tcp", protocol="TCP", location=None) + f"""---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: db, namespace: default}}
spec:
  host: db
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: db, namespace: default}}
spec:
  hosts: [db]
  tcp:
  - match: [{{port: {tcp_port}}}]
    route:
    - {{destination: {{host: db, subset: v2, port: {{number: {tcp_port}}}}}, weight: 100}}
""")
    p = Proxy(tmp_path, mesh).start()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", tcp_port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "no TCP listener on the service port"
                time.sleep(0.05)
        with s:
            payload = bytes(range(256)) * 1024
            s.sendall(payload)
            got = b""
            while len(got) < len(payload) + 3:
                chunk = s.recv(65536)
                assert chunk, "closed early"
                got += chunk
            assert got.startswith(b"v2:") and got[3:] == payload
        with socket.create_connection(("127.0.0.1", dead_port), timeout=5) as s:
            assert s.recv(10) == b"", "a connect failure upstream closes the downstream connection"
    finally:
        p.stop()
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def test_istio_metrics_from_both_reporters(upstreams, tmp_path):
    """productpage's sidecar → reviews' sidecar (inbound) → the reviews app: both proxies count the call
    with Istio's metric names and full label set, each side knowing the other from the exchanged peer
    metadata; promtool reads the exposition; the identity header never reaches the app."""
    app = upstreams("reviews-app")
    client, server = two_sidecars(tmp_path, app)
    try:
        conn = client.client()
        for _ in range(3):
            status, headers, body = client.request(REVIEWS, "/reviews/1", conn=conn)
            assert status == 200 and body["name"] == "reviews-app"
            assert "x-sextant-peer-metadata" not in body["headers"] and "x-sextant-peer-metadata" not in headers
        assert client.request(REVIEWS, "/status/503", headers={"x-skip": "1"}, conn=conn)[0] == 503

        def scrape(p):
            import urllib.request  # noqa: PLC0415

            with urllib.request.urlopen(f"http://127.0.0.1:{p.admin_port}/stats/prometheus", timeout=5) as r:
                return r.read().decode()

        source, destination = scrape(client), scrape(server)
        ok = ('reporter="source",source_workload="productpage-v1",source_workload_namespace="default",'
              'source_principal="unknown",source_app="productpage",source_version="v1",source_canonical_service="productpage",'
              'source_canonical_revision="v1",source_cluster="unknown",destination_workload="reviews-v2",'
              'destination_workload_namespace="default",destination_principal="unknown",destination_app="reviews",'
              'destination_version="v2",destination_service="reviews.default.svc.cluster.local",'
              'destination_service_name="reviews",destination_service_namespace="default",destination_canonical_service="reviews",'
              'destination_canonical_revision="v2",destination_cluster="unknown",request_protocol="http",response_flags="-",'
              'connection_security_policy="unknown",response_code="200",grpc_response_status=""')
        assert f"istio_requests_total{{{ok}}} 3" in source, source
        # The client side gave up after Istio's default retries: Envoy's `URX` flag.
        failed = ok.replace('response_code="200"', 'response_code="503"').replace('response_flags="-"', 'response_flags="URX"')
        assert f"istio_requests_total{{{failed}}} 1" in source
        # Istio's default retry policy retried the 503 twice: the server side saw three requests.
        dest = ok.replace('reporter="source"', 'reporter="destination"').replace(
            'connection_security_policy="unknown"', 'connection_security_policy="none"')
        assert f"istio_requests_total{{{dest}}} 3" in destination, destination
        dest_failed = dest.replace('response_code="200"', 'response_code="503"')
        assert f"istio_requests_total{{{dest_failed}}} 3" in destination
        assert 'istio_request_duration_milliseconds_bucket{' in source and 'le="0.5"' in source and 'le="3600000"' in source
        assert 'istio_build{component="proxy"' in source
        lint = subprocess.run(["promtool", "check", "metrics"], input=source, capture_output=True, text=True, timeout=30)
        findings = [line for line in (lint.stdout + lint.stderr).splitlines() if line.strip()]
        # Istio's own name keeps milliseconds, which promtool lints; nothing else may be reported.
        assert all("istio_request_duration_milliseconds" in f and "base unit" in f for f in findings), findings
    finally:
        client.stop()
        server.stop()


@pytest.mark.parametrize("encoding", ["TEXT", "JSON"])
def test_access_log_in_istio_formats(upstreams, tmp_path, encoding):
    """`meshConfig.accessLogFile` with Istio's default TEXT format (field by field, `-` for empty values)
    and its JSON field set; one line per request, the same x-request-id the app saw."""
    import json as jsonlib  # noqa: PLC0415
    import re  # noqa: PLC0415

    v1 = upstreams("v1")
    log = tmp_path / "access.log"
    mesh = service_entry("reviews", [(v1, {"version": "v1"})]) + mesh_config(f"""
accessLogFile: {log}
accessLogEncoding: {encoding}
""")
    p = Proxy(tmp_path, mesh).start()
    try:
        status, sent, body = p.request(REVIEWS, "/reviews/7?x=1", headers={"User-Agent": "conformance/1.0", "X-Forwarded-For": "10.1.2.3"})
        assert status == 200
        request_id = body["headers"]["x-request-id"]
        # `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` is the value the client received.
        service_time = sent["x-envoy-upstream-service-time"]
        assert service_time.isdigit()
        assert p.request("nowhere", "/")[0] == 404
        deadline = time.monotonic() + 5
        while (not log.exists() or log.read_text().count("\n") < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = log.read_text().splitlines()
        assert len(lines) == 2, lines
    finally:
        p.stop()
    if encoding == "TEXT":
        istio = re.compile(
            r'^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "(\S+) (\S+) (\S+)" (\d+) (\S+) (\S+) (\S+) "([^"]*)" '
            r'(\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$')
        m = istio.match(lines[0])
        assert m, lines[0]
        g = m.groups()
        assert g[1:8] == ("GET", "/reviews/7?x=1", "HTTP/1.1", "200", "-", "via_upstream", "-")
        assert g[8] == "-" and int(g[10]) > 0 and g[12] == service_time and g[13] == "10.1.2.3" and g[14] == "conformance/1.0" and g[15] == request_id
        assert g[16] == REVIEWS and g[17] == f"127.0.0.1:{v1.port}"
        assert g[18] == "outbound|9080||reviews.default.svc.cluster.local" and g[19].startswith("127.0.0.1:")
        assert g[20] == f"127.0.0.1:{p.port}" and g[22] == "-" and g[23] == "default"
        nr = istio.match(lines[1]).groups()
        assert nr[4:6] == ("404", "NR") and nr[6] == "route_not_found" and nr[17] == "-" and nr[18] == "-"
    else:
        first, second = (jsonlib.loads(line) for line in lines)
        assert list(first) == sorted(first) and len(first) == 24
        assert first["method"] == "GET" and first["path"] == "/reviews/7?x=1" and first["response_code"] == 200
        assert first["request_id"] == request_id and first["upstream_cluster"] == "outbound|9080||reviews.default.svc.cluster.local"
        assert first["user_agent"] == "conformance/1.0" and first["x_forwarded_for"] == "10.1.2.3"
        assert first["upstream_service_time"] == service_time and second["upstream_service_time"] == "-"
        assert isinstance(first["bytes_sent"], int) and isinstance(first["duration"], int)
        assert first["requested_server_name"] == "-" and first["route_name"] == "default"
        assert second["response_code"] == 404 and second["response_flags"] == "NR" and second["upstream_host"] == "-"


def test_access_log_to_fluentd_forward(upstreams, tmp_path):
    """`envoyFluentdAccessLog`, Sextant's provider for Envoy's Fluentd access logger. No Fluentd runs here: the
    peer is the strict Forward protocol double (forward_double.py, frames decoded with `msgpack`). Requests made
    while nothing listens on the forward port are answered at once; once a forward input listens, every later
    request's record arrives, tagged as configured: by default the same fields and values as Istio's JSON
    access-log line for that request (numbers as integers), with its start time as EventTime; a provider's own
    `logFormat.labels` make its record. A provider whose `retryOptions.maxConnectAttempts` were spent while
    nothing listened sends nothing later and counts every record as dropped (Envoy's `max_connect_attempts`).
    Nothing the proxy sends is malformed."""
    import datetime  # noqa: PLC0415

    from forward_double import StrictForwardServer  # noqa: PLC0415

    v1 = upstreams("v1")
    log = tmp_path / "access.log"
    forward_port = free_port()
    mesh = service_entry("reviews", [(v1, {"version": "v1"})]) + mesh_config(f"""
accessLogFile: {log}
accessLogEncoding: JSON
extensionProviders:
- name: fluentd
  envoyFluentdAccessLog: {{service: 127.0.0.1, port: {forward_port}, tag: istio.access, bufferFlushInterval: 200ms}}
- name: fluentd-custom
  envoyFluentdAccessLog:
    service: 127.0.0.1
    port: {forward_port}
    tag: mesh.custom
    bufferSizeBytes: 1
    logFormat:
      labels: {{code: "%RESPONSE_CODE%", id: "%REQ(X-REQUEST-ID)%", route: "%ROUTE_NAME%"}}
- name: fluentd-once
  envoyFluentdAccessLog:
    service: 127.0.0.1
    port: {forward_port}
    tag: mesh.once
    bufferSizeBytes: 1
    retryOptions: {{maxConnectAttempts: 1, backoffOptions: {{baseInterval: 50ms}}}}
defaultProviders: {{accessLogging: [envoy, fluentd, fluentd-custom, fluentd-once]}}
""")
    p = Proxy(tmp_path, mesh).start()
    server = None
    try:
        started = time.monotonic()
        for i in range(3):
            assert p.request(REVIEWS, f"/down/{i}")[0] == 200
        assert time.monotonic() - started < 2, "a missing forward input must not delay requests"
        time.sleep(0.6)  # the flushes find nothing listening
        server = StrictForwardServer(port=forward_port)
        ids = []
        for i in range(5):
            status, _, body = p.request(REVIEWS, f"/reviews/{i}")
            assert status == 200
            ids.append(body["headers"]["x-request-id"])

        def records(tag: str) -> dict[str, tuple]:
            with server.lock:
                return {r.get("request_id", r.get("id")): (t, r) for c in server.chunks if c["tag"] == tag for t, r in c["events"]}

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (set(ids) <= records("istio.access").keys() and set(ids) <= records("mesh.custom").keys()):
            time.sleep(0.05)
        assert not server.errors, (server.errors, [(c["tag"], len(c["events"])) for c in server.chunks], server.connections)
        default, custom = records("istio.access"), records("mesh.custom")
        assert set(ids) <= default.keys() and set(ids) <= custom.keys(), f"{len(default)} {len(custom)}\n{p.log_path.read_text()[-3000:]}"
        with server.lock:
            assert all("chunk" not in c["option"] for c in server.chunks), "Envoy's Fluentd logger asks for no acks"
            assert all(len(c["events"]) == 1 for c in server.chunks if c["tag"] == "mesh.custom"), "bufferSizeBytes: 1"

        def counts(provider: str) -> tuple[int, int]:
            with urllib.request.urlopen(f"http://127.0.0.1:{p.admin_port}/stats/prometheus", timeout=5) as r:
                text = r.read().decode()
            found = {}
            for outcome in ("sent", "dropped"):
                m = re.search(rf'^sextant_proxy_exporter_{outcome}_items_total{{provider="{provider}",signal="logs"}} (\d+)$', text, re.M)
                found[outcome] = int(m.group(1)) if m else -1
            return found["sent"], found["dropped"]

        # Every record is accounted for: delivered, or dropped while nothing listened.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(sum(counts(x)) == 8 for x in ("fluentd", "fluentd-custom", "fluentd-once")):
            time.sleep(0.05)
        for provider, tag in (("fluentd", "istio.access"), ("fluentd-custom", "mesh.custom")):
            sent, dropped = counts(provider)
            assert sent + dropped == 8 and sent == len(records(tag)) >= 5, (provider, sent, dropped)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and counts("fluentd-once") != (0, 8):
            time.sleep(0.05)
        assert counts("fluentd-once") == (0, 8) and not records("mesh.once"), "its one connection attempt failed: it gave up"
        with urllib.request.urlopen(f"http://127.0.0.1:{p.admin_port}/stats/prometheus", timeout=5) as r:
            exposition = r.read().decode()
        lint = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30)
        findings = [line for line in (lint.stdout + lint.stderr).splitlines() if line.strip()]
        assert all("istio_request_duration_milliseconds" in f and "base unit" in f for f in findings), findings
    finally:
        p.stop()
        if server:
            server.stop()
    lines = {line["request_id"]: line for line in map(json.loads, log.read_text().splitlines())}
    for rid in ids:
        (seconds, nanos), record = default[rid]
        assert record == lines[rid], (record, lines[rid])
        assert isinstance(record["response_code"], int) and isinstance(record["duration"], int)
        start = datetime.datetime.strptime(record["start_time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        assert seconds == int(start.timestamp()) and nanos // 1_000_000 == start.microsecond // 1000
        assert custom[rid][1] == {"code": 200, "id": rid, "route": "default"}


def test_trace_propagation_and_spans_across_two_hops(upstreams, tmp_path):
    """Client sidecar → server sidecar → app with tracing on (Zipkin provider, 100 % sampling): the app
    receives W3C and B3 headers (parsed by the OpenTelemetry SDK's W3C propagator) naming the server span as
    parent; a caller's sampled `traceparent` is continued; the two spans arrive at a Zipkin collector double
    (it accepts `POST /api/v2/spans` JSON, as Zipkin does) with Istio's names, kinds and Envoy's tags."""
    import json as jsonlib  # noqa: PLC0415
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415
    from opentelemetry import trace as otel_trace  # noqa: PLC0415

    spans: list[dict] = []

    class Zipkin(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            assert self.path == "/api/v2/spans" and self.headers["content-type"] == "application/json"
            spans.extend(jsonlib.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()

    zipkin = ThreadingHTTPServer(("127.0.0.1", 0), Zipkin)
    threading.Thread(target=zipkin.serve_forever, daemon=True).start()
    app = upstreams("reviews-app")
    client, server = two_sidecars(tmp_path, app, f"""---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {{name: mesh, namespace: istio-system}}
spec:
  meshConfig:
    enableTracing: true
    defaultConfig: {{tracing: {{sampling: 100.0}}}}
    extensionProviders:
    - name: zipkin
      zipkin: {{service: 127.0.0.1, port: {zipkin.server_address[1]}}}
    defaultProviders: {{tracing: [zipkin]}}
""")
    try:
        status, _, body = client.request(REVIEWS, "/reviews/1")
        assert status == 200
        seen = body["headers"]
        ctx = TraceContextTextMapPropagator().extract(carrier=seen)
        parent = otel_trace.get_current_span(ctx).get_span_context()
        assert parent.is_valid and parent.trace_flags.sampled
        assert seen["x-b3-traceid"] == format(parent.trace_id, "032x") and seen["x-b3-sampled"] == "1"
        deadline = time.monotonic() + 10
        while len(spans) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(spans) == 2, spans
        by_kind = {s["kind"]: s for s in spans}
        c, s = by_kind["CLIENT"], by_kind["SERVER"]
        assert c["traceId"] == s["traceId"] == format(parent.trace_id, "032x")
        assert s["parentId"] == c["id"] and "parentId" not in c
        assert s["id"] == format(parent.span_id, "016x"), "the app's parent is the server-side span"
        assert c["name"] == s["name"] == "reviews.default.svc.cluster.local:9080/*"
        assert c["localEndpoint"]["serviceName"] == "productpage.default" and s["localEndpoint"]["serviceName"] == "reviews.default"
        assert c["tags"]["http.status_code"] == "200" and c["tags"]["component"] == "proxy"
        assert c["tags"]["upstream_cluster"] == "outbound|9080||reviews.default.svc.cluster.local"
        assert c["tags"]["guid:x-request-id"] == seen["x-request-id"] == s["tags"]["guid:x-request-id"]

        # A caller's decision wins: an unsampled traceparent stays unsampled, a sampled one is continued.
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        _, _, body = client.request(REVIEWS, "/x", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"})
        assert body["headers"]["traceparent"].startswith(f"00-{trace_id}-") and body["headers"]["traceparent"].endswith("-00")
        _, _, body = client.request(REVIEWS, "/y", headers={"b3": f"{trace_id}-00f067aa0ba902b7-1"})
        assert body["headers"]["x-b3-traceid"] == trace_id and body["headers"]["traceparent"].endswith("-01")
        deadline = time.monotonic() + 10
        while len(spans) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        continued = [x for x in spans if x["traceId"] == trace_id]
        assert len(continued) == 2 and {x["kind"] for x in continued} == {"CLIENT", "SERVER"}
        assert next(x for x in continued if x["kind"] == "CLIENT")["parentId"] == "00f067aa0ba902b7"
    finally:
        client.stop()
        server.stop()
        zipkin.shutdown()


UPSTREAM_SCRIPT = """
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/slow":
            open(sys.argv[2], "w").close()  # tell the test the request arrived
            time.sleep(60)
        body = b"ok"
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_upstream_killed_mid_request_gets_503_uc_then_uf_and_the_proxy_lives(tmp_path):
    """Fault test 6 of the reliability issue: `kill -9` of the upstream process while a request waits for
    its answer. The client gets 503 with `UC` (upstream connection termination) or, when the reset is taken
    for a stale keep-alive connection and the request resent once, `UF` (the resend cannot connect); the
    next request gets 503 `UF` (connect failure, after Istio's default retries); the proxy keeps serving
    (`/ready`), and once an upstream is back on the port requests succeed again."""
    port = free_port()
    script = tmp_path / "upstream.py"
    script.write_text(UPSTREAM_SCRIPT)
    arrived = tmp_path / "arrived"
    log = tmp_path / "access.log"

    def start_upstream() -> subprocess.Popen:
        p = subprocess.Popen(["python3", str(script), str(port), str(arrived)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return p
            except OSError:
                time.sleep(0.05)
        p.kill()
        raise AssertionError("upstream did not start")

    upstream = start_upstream()
    p = None
    try:
        p = Proxy(tmp_path, f"""---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {{name: mesh, namespace: istio-system}}
spec:
  meshConfig: {{accessLogFile: {log}, accessLogEncoding: JSON}}
""" + service_entry("fragile", [(port, {})])).start()
        host = "fragile.default.svc.cluster.local:9080"
        assert p.request(host, "/")[0] == 200
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(answer=p.request(host, "/slow")))
        t.start()
        deadline = time.monotonic() + 10
        while not arrived.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert arrived.exists(), "the request never reached the upstream"
        os.kill(upstream.pid, signal.SIGKILL)
        upstream.wait(timeout=10)
        t.join(timeout=15)
        assert result["answer"][0] == 503
        status, _, _ = p.request(host, "/after")
        assert status == 503
        with urllib.request.urlopen(f"http://127.0.0.1:{p.admin_port}/ready", timeout=5) as r:
            assert r.status == 200
        deadline = time.monotonic() + 10
        lines: list[dict] = []
        while time.monotonic() < deadline:
            lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
            if len(lines) >= 3:
                break
            time.sleep(0.1)
        by_path = {e["path"]: e for e in lines}
        assert {"UC", "UF"} & set(by_path["/slow"]["response_flags"].split(",")), by_path["/slow"]
        assert by_path["/slow"]["response_code"] == 503
        assert "UF" in by_path["/after"]["response_flags"].split(","), by_path["/after"]
        upstream = start_upstream()
        assert p.request(host, "/")[0] == 200, "the proxy did not recover once the upstream was back"
    finally:
        upstream.kill()
        upstream.wait()
        if p:
            p.stop()


# --- Proxy-to-proxy mTLS (DestinationRule ISTIO_MUTUAL, PeerAuthentication) -------------------------------

PRODUCTPAGE_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
REVIEWS_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"

PEER_AUTHENTICATION = """---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: %s}
"""
MTLS_MESH = """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
""" + PEER_AUTHENTICATION


def mesh_certs(tmp_path) -> Path:
    """A mesh root and productpage/reviews workload certificates from `sextant ca`."""
    out = tmp_path / "certs"
    subprocess.run([str(SEXTANT_BIN), "ca", "--out", str(out), "--identity", PRODUCTPAGE_ID, "--identity", REVIEWS_ID],
                   check=True, capture_output=True, timeout=30)
    return out


def cert_args(certs: Path, sa: str) -> list[str]:
    return ["--cert", str(certs / sa / "cert-chain.pem"), "--key", str(certs / sa / "key.pem"), "--ca", str(certs / "root-cert.pem"),
            "--service-account", sa]


def mtls_sidecars(tmp_path, app, mode: str = "STRICT", mesh: str = MTLS_MESH):
    certs = mesh_certs(tmp_path)
    client, server = two_sidecars(tmp_path, app, extra_mesh=mesh % mode, client_args=cert_args(certs, "bookinfo-productpage"),
                                  server_args=cert_args(certs, "bookinfo-reviews"))
    return certs, client, server


def scrape(p) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{p.admin_port}/stats/prometheus", timeout=5) as r:
        return r.read().decode()


def tls_client(certs: Path, cert: Path | None, key: Path | None):
    """A Python TLS client context trusting the mesh root (no host name check: SPIFFE IDs are URIs)."""
    import ssl  # noqa: PLC0415

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(str(certs / "root-cert.pem"))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def foreign_certificate(tmp_path, identity: str) -> tuple[Path, Path]:
    """A workload certificate with a mesh-looking SPIFFE ID, issued by a CA the mesh does not trust
    (made with Python's `cryptography`, independently of `sextant ca`)."""
    import datetime  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH, x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "foreign-cert.pem", tmp_path / "foreign-key.pem"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def refused(do) -> bool:
    """Whether the server refused: the connection closed or the TLS handshake failed, no HTTP answer."""
    import ssl  # noqa: PLC0415

    try:
        do()
    except (ConnectionError, ssl.SSLError, http.client.RemoteDisconnected, http.client.BadStatusLine, socket.timeout, OSError):
        return True
    return False


def test_mtls_istio_mutual_and_strict_fill_principals(upstreams, tmp_path):
    app = upstreams("reviews-app")
    _, client, server = mtls_sidecars(tmp_path, app)
    try:
        conn = client.client()
        for _ in range(3):
            status, _, body = client.request(REVIEWS, "/reviews/1", conn=conn)
            assert status == 200 and body["name"] == "reviews-app"
        # The app behind the inbound sidecar still sees plain HTTP.
        assert app.count("/reviews/1") == 3
        source, destination = scrape(client), scrape(server)
        ok = ('reporter="source",source_workload="productpage-v1",source_workload_namespace="default",'
              f'source_principal="{PRODUCTPAGE_ID}",source_app="productpage",source_version="v1",source_canonical_service="productpage",'
              'source_canonical_revision="v1",source_cluster="unknown",destination_workload="reviews-v2",'
              f'destination_workload_namespace="default",destination_principal="{REVIEWS_ID}",destination_app="reviews",'
              'destination_version="v2",destination_service="reviews.default.svc.cluster.local",'
              'destination_service_name="reviews",destination_service_namespace="default",destination_canonical_service="reviews",'
              'destination_canonical_revision="v2",destination_cluster="unknown",request_protocol="http",response_flags="-",'
              'connection_security_policy="unknown",response_code="200",grpc_response_status=""')
        assert f"istio_requests_total{{{ok}}} 3" in source, source
        dest = ok.replace('reporter="source"', 'reporter="destination"').replace(
            'connection_security_policy="unknown"', 'connection_security_policy="mutual_tls"')
        assert f"istio_requests_total{{{dest}}} 3" in destination, destination
        dump = server.config_dump()["identity"]
        assert dump["principal"] == REVIEWS_ID and dump["inbound_peer_authentication"] == "STRICT", dump
        assert {c["name"]: c["tls_mode"] for c in client.config_dump()["clusters"]}["outbound|9080||reviews.default.svc.cluster.local"] == "ISTIO_MUTUAL"
    finally:
        client.stop()
        server.stop()


def test_mtls_strict_inbound_refuses_plain_text_and_foreign_certificates(upstreams, tmp_path):
    app = upstreams("reviews-app")
    certs, client, server = mtls_sidecars(tmp_path, app)
    try:
        def plain():
            c = http.client.HTTPConnection("127.0.0.1", server.inbound_port, timeout=5)
            try:
                c.request("GET", "/reviews/1", headers={"Host": REVIEWS})
                c.getresponse().read()
            finally:
                c.close()
        assert refused(plain)

        foreign_cert, foreign_key = foreign_certificate(tmp_path, PRODUCTPAGE_ID)

        def with_cert(cert, key):
            def go():
                ctx = tls_client(certs, cert, key)
                with socket.create_connection(("127.0.0.1", server.inbound_port), timeout=5) as raw:
                    with ctx.wrap_socket(raw) as s:
                        s.sendall(f"GET /reviews/1 HTTP/1.1\r\nHost: {REVIEWS}\r\nConnection: close\r\n\r\n".encode())
                        data = s.recv(65536)
                        if not data:
                            raise ConnectionError("closed without an answer")
                        return data
            return go
        # A SPIFFE certificate from a CA the mesh does not trust, and no client certificate at all.
        assert refused(with_cert(foreign_cert, foreign_key))
        assert refused(with_cert(None, None))
        assert app.count("/reviews/1") == 0
        # A client holding a mesh certificate gets through, and the inbound proxy presents its SPIFFE ID.
        ctx = tls_client(certs, certs / "bookinfo-productpage" / "cert-chain.pem", certs / "bookinfo-productpage" / "key.pem")
        with socket.create_connection(("127.0.0.1", server.inbound_port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                assert ("URI", REVIEWS_ID) in s.getpeercert()["subjectAltName"]
                s.sendall(f"GET /reviews/1 HTTP/1.1\r\nHost: {REVIEWS}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
        assert app.count("/reviews/1") == 1
        assert f'source_principal="{PRODUCTPAGE_ID}"' in scrape(server)
    finally:
        client.stop()
        server.stop()


def test_mtls_client_refuses_a_server_outside_the_mesh(upstreams, tmp_path):
    """ISTIO_MUTUAL toward an endpoint whose certificate is not from the mesh CA: 503 UF, nothing sent."""
    app = upstreams("reviews-app")
    certs = mesh_certs(tmp_path)
    other = tmp_path / "other"
    subprocess.run([str(SEXTANT_BIN), "ca", "--out", str(other), "--identity", REVIEWS_ID], check=True, capture_output=True, timeout=30)
    client, server = two_sidecars(tmp_path, app, extra_mesh=MTLS_MESH % "STRICT", client_args=cert_args(certs, "bookinfo-productpage"),
                                  server_args=["--cert", str(other / "bookinfo-reviews" / "cert-chain.pem"),
                                               "--key", str(other / "bookinfo-reviews" / "key.pem"),
                                               "--ca", str(other / "root-cert.pem"), "--service-account", "bookinfo-reviews"])
    try:
        status, headers, _ = client.request(REVIEWS, "/reviews/1")
        assert status == 503
        assert app.count("/reviews/1") == 0
        source = scrape(client)
        assert re.search(r'destination_principal="unknown".*response_flags="[A-Z,]*UF[A-Z,]*",connection_security_policy="unknown",'
                         r'response_code="503"', source), source
    finally:
        client.stop()
        server.stop()


def test_mtls_permissive_accepts_both(upstreams, tmp_path):
    app = upstreams("reviews-app")
    _, client, server = mtls_sidecars(tmp_path, app, mode="PERMISSIVE")
    try:
        assert client.request(REVIEWS, "/reviews/1")[0] == 200
        c = http.client.HTTPConnection("127.0.0.1", server.inbound_port, timeout=5)
        c.request("GET", "/reviews/2", headers={"Host": REVIEWS})
        assert c.getresponse().status == 200
        c.close()
        destination = scrape(server)
        assert 'connection_security_policy="mutual_tls",response_code="200"' in destination, destination
        assert 'source_principal="unknown"' in destination and 'connection_security_policy="none",response_code="200"' in destination
    finally:
        client.stop()
        server.stop()


def test_mtls_grpc_over_http2_between_sidecars(tmp_path):
    """grpcio → client sidecar → HTTP/2 over mesh mTLS (ALPN h2) → server sidecar → grpcio server: unary and
    streaming calls with trailers, and the gRPC series carry both principals."""
    import grpc  # noqa: PLC0415

    app, app_port = greeter_server()
    certs = mesh_certs(tmp_path)
    inbound = free_port()
    mesh = service_entry("greeter", [(inbound, {"app": "greeter"})], port=50051, port_name="grpc-demo", protocol=None) + f"""---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: default}}
spec:
  host: greeter
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL, subjectAltNames: ["{REVIEWS_ID}"]}}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: greeter, namespace: default}}
spec:
  selector: {{matchLabels: {{app: greeter}}}}
  mtls: {{mode: STRICT}}
"""
    client = server = None
    try:
        client, server = sidecar_pair(tmp_path, mesh, inbound, app_port, client_args=cert_args(certs, "bookinfo-productpage"),
                                      server_args=["--workload", "greeter-v1", "--label", "app=greeter", *cert_args(certs, "bookinfo-reviews")])
        channel = grpc.insecure_channel(f"127.0.0.1:{client.port}", options=[("grpc.default_authority", "greeter:50051")])
        reply, state = channel.unary_unary("/demo.Greeter/Echo").with_call(b"hello", timeout=10)
        assert reply == b"echo:hello" and ("x-served-by", "greeter-v1") in state.trailing_metadata()
        assert list(channel.unary_stream("/demo.Greeter/Count")(b"20", timeout=10)) == [str(i).encode() for i in range(20)]
        channel.close()
        source, destination = scrape(client), scrape(server)
        both = f'source_principal="{PRODUCTPAGE_ID}",'
        assert re.search(f'reporter="source",[^}}]*{both}[^}}]*destination_principal="{REVIEWS_ID}"[^}}]*request_protocol="grpc"',
                         source), source
        assert re.search(f'reporter="destination",[^}}]*{both}[^}}]*destination_principal="{REVIEWS_ID}"[^}}]*request_protocol="grpc"'
                         f'[^}}]*connection_security_policy="mutual_tls"', destination), destination
    finally:
        for p in (client, server):
            if p:
                p.stop()
        app.stop(0)


def test_mtls_plain_tcp_between_sidecars(tmp_path):
    """A TCP service port with ISTIO_MUTUAL: the client sidecar's per-port listener relays over mesh mTLS,
    the STRICT inbound decrypts, sniffs TCP and relays to the app; istio_tcp_* name both principals."""
    import socketserver  # noqa: PLC0415

    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while data := self.request.recv(65536):
                self.request.sendall(b"db:" + data)

    app = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    app.daemon_threads = True
    threading.Thread(target=app.serve_forever, daemon=True).start()
    certs = mesh_certs(tmp_path)
    tcp_port, inbound = free_port(), free_port()
    mesh = service_entry("db", [(inbound, {"app": "db"})], port=tcp_port, port_name="tcp-db", protocol="TCP") + MTLS_MESH.replace("reviews", "db") % "STRICT"
    client = server = None
    try:
        client, server = sidecar_pair(tmp_path, mesh, inbound, app.server_address[1], client_args=cert_args(certs, "bookinfo-productpage"),
                                      server_args=["--workload", "db-v1", "--label", "app=db", *cert_args(certs, "bookinfo-reviews")])
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as s:
            s.sendall(b"hello\n")
            assert s.recv(100) == b"db:hello\n"
        # Records are finished when the connection closes on both proxies.
        deadline = time.monotonic() + 10
        pattern = (f'istio_tcp_connections_closed_total{{reporter="destination",[^}}]*source_principal="{PRODUCTPAGE_ID}"'
                   f'[^}}]*destination_principal="{REVIEWS_ID}"[^}}]*connection_security_policy="mutual_tls"')
        source_pattern = f'istio_tcp_connections_closed_total{{reporter="source",[^}}]*destination_principal="{REVIEWS_ID}"'
        while time.monotonic() < deadline:
            destination, source = scrape(server), scrape(client)
            if re.search(pattern, destination) and re.search(source_pattern, source):
                break
            time.sleep(0.1)
        assert re.search(pattern, destination), destination
        assert re.search(source_pattern, source), source
    finally:
        for p in (client, server):
            if p:
                p.stop()
        app.shutdown()
        app.server_close()


def test_mtls_certificates_rotate_without_restart(upstreams, tmp_path):
    """New certificate files (another root, as after a CA rotation) are picked up by both proxies: the
    inbound then presents the new chain, and calls through the sidecars keep working."""
    import shutil  # noqa: PLC0415
    import ssl  # noqa: PLC0415

    app = upstreams("reviews-app")
    # One request per upstream connection, so that calls after the rotation need new handshakes.
    one_per_connection = MTLS_MESH.replace("{tls: {mode: ISTIO_MUTUAL}}",
                                           "{tls: {mode: ISTIO_MUTUAL}, connectionPool: {http: {maxRequestsPerConnection: 1}}}")
    certs, client, server = mtls_sidecars(tmp_path, app, mesh=one_per_connection)
    try:
        assert client.request(REVIEWS, "/before")[0] == 200
        fresh = tmp_path / "fresh"
        subprocess.run([str(SEXTANT_BIN), "ca", "--out", str(fresh), "--identity", PRODUCTPAGE_ID, "--identity", REVIEWS_ID],
                       check=True, capture_output=True, timeout=30)
        for rel in ("root-cert.pem", "bookinfo-productpage/cert-chain.pem", "bookinfo-productpage/key.pem",
                    "bookinfo-reviews/cert-chain.pem", "bookinfo-reviews/key.pem"):
            shutil.copy(fresh / rel, certs / (rel + ".new"))
            os.replace(certs / (rel + ".new"), certs / rel)
        ctx = tls_client(fresh, fresh / "bookinfo-productpage" / "cert-chain.pem", fresh / "bookinfo-productpage" / "key.pem")
        deadline, presented = time.monotonic() + 15, None
        while time.monotonic() < deadline and presented is None:
            try:
                with socket.create_connection(("127.0.0.1", server.inbound_port), timeout=5) as raw, ctx.wrap_socket(raw) as s:
                    presented = s.getpeercert()["subjectAltName"]
            except (ssl.SSLError, OSError):
                time.sleep(0.2)
        assert presented is not None and ("URI", REVIEWS_ID) in presented
        # The client sidecar picks the new files up too (within its 1 s poll): it must then offer the new
        # chain and trust the new root, or no new connection to the rotated server could succeed.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and client.request(REVIEWS, "/settle")[0] != 200:
            time.sleep(0.2)
        for i in range(3):
            assert client.request(REVIEWS, f"/after/{i}")[0] == 200
        assert app.count("/after/") == 3
    finally:
        client.stop()
        server.stop()


@pytest.mark.parametrize("auto", [True, False])
def test_mtls_auto_mtls_to_sidecar_endpoints(upstreams, tmp_path, auto):
    """No DestinationRule tls: Istio's auto mTLS uses mesh mTLS toward endpoints labelled
    `security.istio.io/tlsMode: istio`, so a STRICT server accepts; with `enableAutoMtls: false` the client
    speaks plain text and the STRICT server refuses (503)."""
    app = upstreams("reviews-app")
    certs = mesh_certs(tmp_path)
    mesh = PEER_AUTHENTICATION % "STRICT"
    if not auto:
        mesh += """---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: mesh}
spec:
  meshConfig: {enableAutoMtls: false}
"""
    client, server = two_sidecars(tmp_path, app, extra_mesh=mesh, client_args=cert_args(certs, "bookinfo-productpage"),
                                  server_args=cert_args(certs, "bookinfo-reviews"),
                                  endpoint_labels={"app": "reviews", "version": "v2", "security.istio.io/tlsMode": "istio"})
    try:
        status = client.request(REVIEWS, "/reviews/1")[0]
        if auto:
            assert status == 200
            assert f'source_principal="{PRODUCTPAGE_ID}"' in scrape(server) and 'connection_security_policy="mutual_tls"' in scrape(server)
        else:
            assert status == 503 and app.count("/reviews/1") == 0
    finally:
        client.stop()
        server.stop()


def test_mtls_handshake_counts_against_the_connect_timeout(tmp_path):
    """An ISTIO_MUTUAL endpoint that accepts TCP but never answers the ClientHello: 503 UF after the
    connect timeout (with Istio's default retries), not a hung request."""
    certs = mesh_certs(tmp_path)
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes handshakes; nothing ever reads or answers
    mesh = service_entry("reviews", [(silent.getsockname()[1], {})]) + f"""---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}, connectionPool: {{tcp: {{connectTimeout: 0.3s}}}}}}
"""
    p = Proxy(tmp_path, mesh, extra_args=cert_args(certs, "bookinfo-productpage")).start()
    try:
        started = time.monotonic()
        status, _, body = p.request(REVIEWS, "/reviews/1")
        assert status == 503 and b"connection failure" in body, body
        assert time.monotonic() - started < 5
    finally:
        p.stop()
        silent.close()


# ---------------------------------------------------------------------------------------------------
# TLS origination: DestinationRule `tls.mode: SIMPLE` / `MUTUAL` toward Python `ssl` upstreams, with a
# throwaway PKI from the `openssl` CLI (the one test_tls.py makes).

SECURE = "secure.default.svc.cluster.local:9080"


@pytest.fixture(scope="module")
def origination_pki(tmp_path_factory):
    from test_tls import PKI  # noqa: PLC0415

    return PKI(tmp_path_factory.mktemp("origination-pki"))


def https_upstream(upstreams, pki, name: str, require_client_certificate: bool) -> Upstream:
    import ssl  # noqa: PLC0415

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.path("server.crt"), pki.path("server.key"))
    if require_client_certificate:
        ctx.load_verify_locations(pki.path("ca.crt"))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return upstreams(name, ssl_context=ctx)


def origination_mesh(upstream: Upstream, tls: str) -> str:
    return service_entry("secure", [(upstream, {})]) + f"""---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure, namespace: default}}
spec:
  host: secure.default.svc.cluster.local
  trafficPolicy:
    connectionPool: {{tcp: {{connectTimeout: 2s}}}}
    tls: {tls}
"""


def uf_count(p) -> int:
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in scrape(p).splitlines()
               if line.startswith("istio_requests_total{") and 'response_flags="UF"' in line)


def test_tls_origination_simple_and_mutual(upstreams, proxy, origination_pki):
    pki = origination_pki
    plain_https = https_upstream(upstreams, pki, "https", require_client_certificate=False)
    p = proxy(origination_mesh(plain_https, f"{{mode: SIMPLE, caCertificates: {pki.path('ca.crt')}, sni: localhost}}"))
    status, _, body = p.request(SECURE, "/hello")
    assert status == 200 and body["name"] == "https" and body["path"] == "/hello", body
    assert plain_https.requests[0]["headers"]["host"] == SECURE
    dump = {c["name"]: c for c in p.config_dump()["clusters"]}
    assert dump["outbound|9080||secure.default.svc.cluster.local"]["tls_mode"] == "SIMPLE"

    # MUTUAL: the upstream requires a client certificate signed by its CA and sees the proxy's.
    mutual = https_upstream(upstreams, pki, "mutual", require_client_certificate=True)
    p2 = proxy(origination_mesh(mutual, (
        f"{{mode: MUTUAL, caCertificates: {pki.path('ca.crt')}, clientCertificate: {pki.path('client.crt')}, "
        f"privateKey: {pki.path('client.key')}, subjectAltNames: [localhost]}}")))
    for _ in range(3):  # pooled connections are reused
        status, _, body = p2.request(SECURE, "/mutual")
        assert status == 200 and body["name"] == "mutual", body
    subject = dict(x[0] for x in mutual.requests[0]["peer_cert"]["subject"])
    assert subject["commonName"] == "interop client"
    # The admin dump names the mode, never key material.
    dump = json.dumps(p2.config_dump())
    assert '"tls_mode": "MUTUAL"' in dump.replace('":"', '": "') and "PRIVATE KEY" not in dump
    assert pki.read("client.key").decode().splitlines()[1] not in dump

    # The same upstream with SIMPLE (no client certificate to present) does not answer.
    p3 = proxy(origination_mesh(mutual, f"{{mode: SIMPLE, caCertificates: {pki.path('ca.crt')}, sni: localhost}}"))
    assert p3.request(SECURE, "/no-cert")[0] == 503
    assert all(r["path"] != "/no-cert" for r in mutual.requests)


@pytest.mark.parametrize("tls", ["wrong_ca", "wrong_san", "system_roots"])
def test_tls_origination_verification_failures_are_503_uf(upstreams, proxy, origination_pki, tls):
    pki = origination_pki
    up = https_upstream(upstreams, pki, "https", require_client_certificate=False)
    settings = {
        "wrong_ca": f"{{mode: SIMPLE, caCertificates: {pki.path('other-ca.crt')}, sni: localhost}}",
        "wrong_san": f"{{mode: SIMPLE, caCertificates: {pki.path('ca.crt')}, subjectAltNames: [api.example.com]}}",
        "system_roots": "{mode: SIMPLE, sni: localhost}",  # the test CA is not a system root
    }[tls]
    p = proxy(origination_mesh(up, settings))
    status, headers, body = p.request(SECURE, "/x")
    assert status == 503, body
    assert b"connection failure" in body and b"TLS_error:CERTIFICATE_VERIFY_FAILED" in body, body
    assert up.requests == []
    deadline = time.monotonic() + 5
    while uf_count(p) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uf_count(p) >= 1
    # insecureSkipVerify encrypts without checking: the same upstream then answers.
    if tls == "wrong_ca":
        p2 = proxy(origination_mesh(up, f"{{mode: SIMPLE, caCertificates: {pki.path('other-ca.crt')}, insecureSkipVerify: true}}"))
        assert p2.request(SECURE, "/skip")[0] == 200


def test_tls_origination_config_errors(tmp_path, origination_pki):
    """A MUTUAL rule without its key and a `credentialName` are config errors, with positions."""
    pki = origination_pki
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text(f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: a, namespace: default}}
spec:
  host: a.example.com
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: {pki.path('client.crt')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: b, namespace: default}}
spec:
  host: b.example.com
  trafficPolicy:
    tls: {{mode: SIMPLE, credentialName: b-cred}}
""")
    r = subprocess.run([str(SEXTANT_BIN), "validate", "--proxy-config", str(mesh)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{mesh}:8:" in r.stderr and "MUTUAL requires privateKey" in r.stderr, r.stderr
    assert f"{mesh}:17:" in r.stderr and "credentialName is not supported: needs Kubernetes secrets; use file paths" in r.stderr, r.stderr
