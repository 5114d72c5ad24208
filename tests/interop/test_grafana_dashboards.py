"""Grafana dashboards in `dashboards/grafana/` checked structurally and against a real Prometheus.

No Grafana server runs here, so the test does what Grafana would do with the files and checks the result
with real peers:

1. Structure: every dashboard parses, has a stable unique `uid`, `schemaVersion` >= 36, a `datasource`
   template variable of type `prometheus`, no hard-coded data source uid anywhere, every panel (and each of
   its targets) reads `${datasource}` or the Jaeger variable `${jaeger}`, and every `$variable` a query,
   legend or title uses is defined (or is one of Grafana's built-ins). The provisioning YAML files parse
   and point at Prometheus (127.0.0.1:9090) and Sextant's Jaeger query API (127.0.0.1:16686).
2. Live queries: `sextant demo` runs (the README's main command, on free addresses: `demo_support.py`) —
   the Bookinfo mesh behind its ingress gateway, eight sidecars, the collector on `pipelines/default.yaml`
   with 100 % of the requests traced, and its traffic generator at 10 requests/s: 200s, 404s from the product
   API, 500s from the fault injected on ratings, and plain TCP from ratings v2 to MongoDB — and Debian's
   `prometheus` (1 s scrape interval, temp TSDB) scrapes every proxy's `/stats/prometheus` and the
   collector's self-telemetry `/metrics`. Then, per dashboard, the template variables are resolved the way
   Grafana does (`label_values(...)` through Prometheus's label-values API, custom variables from their
   options, `All` as the `allValue`), and every PromQL target is run through `/api/v1/query` for every
   combination of variable values (with `$__rate_interval` = 1m, `$__interval` = 15s): each must succeed for
   every combination and return data for at least one — as a user picking from the drop-downs would see.
   Jaeger targets are run as Grafana's Jaeger data source runs a search (`/api/traces?service=&limit=&start=
   &end=`) against the demo collector's Jaeger query API and must find traces.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, free_port
from demo_support import Demo

GRAFANA = REPO_ROOT / "dashboards" / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))
PROMETHEUS = shutil.which("prometheus")
WAIT = 60.0  # seconds any eventual condition may take (the demo runs nine proxies on 2 cores)
PROM_DS = {"type": "prometheus", "uid": "${datasource}"}
JAEGER_DS = {"type": "jaeger", "uid": "${jaeger}"}
# Grafana's global variables, with the values the queries are evaluated with (1 s scrapes: 1m holds ~60 samples).
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "30m", "__range_s": "1800"}
VAR_REF = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$")
MAX_COMBINATIONS = 64

# Targets allowed to return nothing in this tiny mesh, keyed by (dashboard file, panel title, refId), each
# with the reason. Kept empty on purpose: the traffic below exercises every panel; add an entry only with
# a reason that holds for any small test mesh.
ALLOWED_EMPTY: dict[tuple[str, str, str], str] = {}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict) -> list[dict]:
    """Every non-row panel, including those nested in collapsed rows."""
    out = []
    for p in dashboard["panels"]:
        out.extend(p.get("panels", []) if p["type"] == "row" else [p])
    return out


def variables(dashboard: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def refs(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VAR_REF.finditer(text)}


def substitute(text: str, values: dict[str, str]) -> str:
    def one(m):
        name = next(g for g in m.groups() if g)
        return values[name] if name in values else m.group(0)
    return VAR_REF.sub(one, text)


def datasource_dicts(node, path="$"):
    """(json path, value) of every `datasource` key in the document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                yield f"{path}.{k}", v
            yield from datasource_dicts(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from datasource_dicts(v, f"{path}[{i}]")


# ---------------------------------------------------------------------------------------------- structure


def test_dashboards_are_well_formed():
    assert {p.name for p in DASHBOARDS} >= {"istio-mesh.json", "istio-service.json", "istio-workload.json", "sextant-collector.json"}
    uids = {}
    for path in DASHBOARDS:
        d = load(path)
        where = path.name
        assert isinstance(d.get("uid"), str) and re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", d["uid"]), f"{where}: uid {d.get('uid')!r}"
        assert d["uid"] not in uids, f"{where}: uid {d['uid']} also used by {uids.get(d['uid'])}"
        uids[d["uid"]] = where
        assert d.get("id") is None, f"{where}: a numeric id would clash on import"
        assert d["schemaVersion"] >= 36 and d["title"], f"{where}: schemaVersion {d['schemaVersion']} (Grafana 9+ needs >= 36)"
        vs = variables(d)
        assert len(vs) == len(d["templating"]["list"]), f"{where}: duplicate variable names"
        assert "datasource" in vs, f"{where}: no `datasource` template variable"
        assert vs["datasource"]["type"] == "datasource" and vs["datasource"]["query"] == "prometheus", where
        if "jaeger" in vs:
            assert vs["jaeger"]["type"] == "datasource" and vs["jaeger"]["query"] == "jaeger", where
        # No hard-coded data source: every reference is one of the two variables (or Grafana's built-in annotations).
        for jpath, ds in datasource_dicts(d):
            assert isinstance(ds, dict), f"{where} {jpath}: datasource must be an object, found {ds!r}"
            if ds == {"type": "grafana", "uid": "-- Grafana --"}:
                continue
            assert ds in (PROM_DS, JAEGER_DS), f"{where} {jpath}: datasource {ds}"
            if ds == JAEGER_DS:
                assert "jaeger" in vs, f"{where} {jpath}: uses ${{jaeger}} without defining it"
        for name, v in vs.items():
            if v["type"] == "query":
                assert v["datasource"] == PROM_DS and LABEL_VALUES.match(v["definition"]), f"{where}: variable {name}"
                assert v["query"]["query"] == v["definition"], f"{where}: variable {name}"
                for r in refs(v["definition"]):
                    assert r in vs and list(vs).index(r) < list(vs).index(name), f"{where}: {name} uses ${r} before it is defined"
            elif v["type"] == "custom":
                assert v["current"]["value"] in v["query"].split(","), f"{where}: variable {name}"
        ids = [p["id"] for p in d["panels"]] + [q["id"] for p in d["panels"] if p["type"] == "row" for q in p.get("panels", [])]
        assert len(ids) == len(set(ids)), f"{where}: duplicate panel ids"
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"{where}: panel {p['title']} gridPos {g}"
        for p in panels(d):
            title = f"{where}: panel {p['title']!r}"
            assert p["datasource"] in (PROM_DS, JAEGER_DS), title
            assert p["targets"], f"{title} has no query"
            assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), f"{title}: duplicate refIds"
            for t in p["targets"]:
                assert t.get("datasource", p["datasource"]) == p["datasource"], f"{title}: target {t['refId']} reads another data source"
                if p["datasource"] == PROM_DS:
                    assert t["expr"].strip(), f"{title}: target {t['refId']} has no expression"
                texts = [t.get("expr", ""), t.get("legendFormat", ""), t.get("service", ""), p["title"]]
                for r in set().union(*(refs(x) for x in texts)):
                    assert r in vs or r in BUILTINS, f"{title}: ${r} is not a template variable"


def test_provisioning_files():
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "sextant.yaml").read_text())
    assert sources["apiVersion"] == 1
    by_type = {s["type"]: s for s in sources["datasources"]}
    assert by_type["prometheus"]["url"] == "http://127.0.0.1:9090"
    assert by_type["jaeger"]["url"] == "http://127.0.0.1:16686"
    assert len({s["uid"] for s in sources["datasources"]}) == len(sources["datasources"])
    assert [s for s in sources["datasources"] if s.get("isDefault")] == [by_type["prometheus"]]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sextant.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# ---------------------------------------------------------------------------------------------- live mesh


def get_json(url: str, timeout: float = 5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Mesh:
    """A running `sextant demo` (with traffic) and a Prometheus scraping its proxies and its collector."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.demo = Demo(tmp / "demo", rate=10)
        self.prom_port = free_port()
        self.prometheus: subprocess.Popen | None = None

    @property
    def prom(self) -> str:
        return f"http://127.0.0.1:{self.prom_port}"

    @property
    def jaeger_port(self) -> int:
        return self.demo.ports["jaeger"]

    def start(self):
        (self.tmp / "demo").mkdir()
        self.demo.start()
        config = self.tmp / "prometheus.yml"
        targets = ", ".join(f'"{a}"' for a in self.demo.admins.values())
        config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: istio-proxies
    metrics_path: /stats/prometheus
    static_configs: [{{targets: [{targets}]}}]
  - job_name: sextant
    static_configs: [{{targets: ["127.0.0.1:{self.demo.ports['telemetry']}"]}}]
""")
        with open(self.tmp / "prometheus.log", "wb") as log:
            self.prometheus = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.prom_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        self.wait_for("Prometheus ready", lambda: urllib.request.urlopen(f"{self.prom}/-/ready", timeout=1).status == 200)

    def query(self, promql: str) -> dict:
        """The raw `/api/v1/query` answer (status, data or error)."""
        url = f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            return get_json(url)
        except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON
            return json.loads(e.read())

    def value(self, promql: str) -> float:
        result = self.query(promql)["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def label_values(self, definition: str) -> list[str]:
        """Grafana's `label_values([selector,] label)` through Prometheus's label-values API."""
        selector, label = LABEL_VALUES.match(definition).groups()
        params = {"match[]": selector} if selector else {}
        body = get_json(f"{self.prom}/api/v1/label/{label}/values?" + urllib.parse.urlencode(params))
        assert body["status"] == "success", body
        return body["data"]

    def jaeger_search(self, service: str, limit: int) -> list[dict]:
        """A search as Grafana's Jaeger data source sends it (start/end in microseconds)."""
        now = int(time.time() * 1e6)
        q = urllib.parse.urlencode({"service": service, "limit": limit, "start": now - 30 * 60 * 10**6, "end": now})
        return get_json(f"http://127.0.0.1:{self.jaeger_port}/api/traces?{q}")["data"]

    @staticmethod
    def wait_for(what: str, probe, timeout: float = WAIT):
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                last = probe()
                if last:
                    return last
            except (OSError, ValueError, KeyError) as e:
                last = e
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}: last {last!r}")

    def stop(self):
        if self.prometheus is not None and self.prometheus.poll() is None:
            self.prometheus.terminate()
            try:
                self.prometheus.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()
                self.prometheus.wait(timeout=10)
        self.demo.stop()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    assert PROMETHEUS, "prometheus missing: scripts/system-deps.sh installs Debian's prometheus package"
    m = Mesh(tmp_path_factory.mktemp("grafana"))
    try:
        m.start()
        # The demo's traffic runs all along; wait until Prometheus has seen enough of it that rates over
        # the 1m window are above zero for every kind of series the dashboards read.
        for metric in ("istio_requests_total", "istio_tcp_sent_bytes_total", "sextant_exporter_sent_items_total"):
            m.wait_for(f"{metric} scraped", lambda metric=metric: m.query(f"sum({metric})")["data"]["result"])
        for expr in ('sum(increase(istio_requests_total{reporter="destination"}[1m]))', 'sum(increase(istio_requests_total{reporter="source"}[1m]))',
                     'sum(increase(istio_requests_total{response_code=~"4.."}[1m]))', 'sum(increase(istio_requests_total{response_code=~"5.."}[1m]))',
                     "sum(increase(istio_tcp_sent_bytes_total[1m]))", 'sum(increase(sextant_receiver_accepted_items_total{signal="traces"}[1m]))',
                     "min(count_over_time(up[1m])) >= 2"):
            m.wait_for(expr, lambda expr=expr: m.value(expr) > 0)
        yield m
    finally:
        m.stop()


def combinations(dashboard: dict, mesh: Mesh) -> list[dict[str, str]]:
    """Every assignment of the dashboard's variables a user could pick, resolved as Grafana does: in
    order, later queries seeing earlier choices; `includeAll` variables take their `allValue`."""
    assignments: list[dict[str, str]] = [dict(BUILTINS)]
    for name, v in variables(dashboard).items():
        if v["type"] == "datasource":
            continue
        grown = []
        for a in assignments:
            if v.get("includeAll"):
                options = [v["allValue"]]
            elif v["type"] == "custom":
                options = v["query"].split(",")
            else:
                options = mesh.label_values(substitute(v["definition"], a))
            grown.extend({**a, name: o} for o in options)
        assert grown, f"{dashboard['uid']}: variable {name} has no value in the test mesh"
        assignments = grown[:MAX_COMBINATIONS]
    return assignments


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_returns_data(mesh, path):
    dashboard = load(path)
    assignments = combinations(dashboard, mesh)
    empty, checked = [], 0
    for p in panels(dashboard):
        for t in p["targets"]:
            key = (path.name, p["title"], t["refId"])
            found = False
            for a in assignments:
                if p["datasource"] == JAEGER_DS:
                    assert t["queryType"] == "search", key
                    found = found or bool(mesh.jaeger_search(substitute(t["service"], a), t.get("limit", 20)))
                    continue
                expr = substitute(t["expr"], a)
                answer = mesh.query(expr)
                assert answer["status"] == "success", f"{key}: {expr}\n{answer}"
                result = answer["data"]["result"]
                found = found or bool(result)
                # A legend `{{label}}` must name a label the series carry, else Grafana prints it empty.
                for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                    assert all(label in r["metric"] for r in result), f"{key}: legend {{{{{label}}}}} not a label of {expr}"
            checked += 1
            if not found and key not in ALLOWED_EMPTY:
                empty.append(f"{key}: {t.get('expr') or t.get('service')}")
    assert checked >= 5, f"{path.name}: only {checked} targets"
    assert not empty, f"{path.name}: queries with no data for any variable value:\n" + "\n".join(empty)
    unused = [k for k in ALLOWED_EMPTY if k[0] == path.name and not any(
        p["title"] == k[1] and any(t["refId"] == k[2] for t in p["targets"]) for p in panels(dashboard))]
    assert not unused, f"stale ALLOWED_EMPTY entries: {unused}"
