"""Structural checks of `dashboards/`: the Elasticsearch templates and the Kibana saved objects.

No Elasticsearch or Kibana can run here, so these checks stand in for loading the files: every file
parses; the index template is a composable template (`index_patterns`, `composed_of`, `priority`,
`data_stream`) that names the component template and matches the data stream the README configures;
every saved object has the Kibana 8 shape (`type`, `id`, `attributes`, `references`, migration
versions); every reference and dashboard panel resolves to an object in the file; and every field a
data view, saved search or visualization uses is mapped by the component template.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO_ROOT / "dashboards"
COMPONENT = DASHBOARDS / "elasticsearch" / "component-template-sextant-ecs-access-logs.json"
INDEX_TEMPLATE = DASHBOARDS / "elasticsearch" / "index-template-sextant-access-logs.json"
SAVED_OBJECTS = DASHBOARDS / "kibana" / "sextant-access-logs.ndjson"
MAPPING_TYPES = {"keyword", "long", "ip", "date", "date_nanos", "match_only_text", "wildcard", "flattened", "object", "constant_keyword", "text"}


def mapped_fields(properties: dict, prefix: str = "") -> dict[str, str]:
    """Dotted field path → mapping type, including multi-fields (`user_agent.original.text`)."""
    out = {}
    for name, spec in properties.items():
        path = prefix + name
        if "properties" in spec:
            out.update(mapped_fields(spec["properties"], path + "."))
            continue
        out[path] = spec["type"]
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_spec["type"]
    return out


def load_objects() -> list[dict]:
    text = SAVED_OBJECTS.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.split("\n") if line]


def test_templates_are_composable_and_typed():
    component = json.loads(COMPONENT.read_text())
    index = json.loads(INDEX_TEMPLATE.read_text())
    assert set(component) <= {"template", "_meta", "version"}
    fields = mapped_fields(component["template"]["mappings"]["properties"])
    assert set(fields.values()) <= MAPPING_TYPES, set(fields.values()) - MAPPING_TYPES
    expected = {
        "@timestamp": "date_nanos", "message": "match_only_text", "log.level": "keyword", "trace.id": "keyword", "span.id": "keyword",
        "service.name": "keyword", "http.request.method": "keyword", "http.request.id": "keyword",
        "http.response.status_code": "long", "url.path": "wildcard", "url.domain": "keyword", "user_agent.original": "keyword",
        "source.address": "keyword", "source.ip": "ip", "destination.address": "keyword", "destination.ip": "ip",
        "event.duration": "long", "envoy.response_flags": "keyword", "envoy.upstream_cluster": "keyword", "attributes": "flattened",
    }
    for field, kind in expected.items():
        assert fields.get(field) == kind, (field, fields.get(field))
    for template in component["template"]["mappings"]["dynamic_templates"]:
        (spec,) = template.values()
        assert spec["mapping"]["type"] == "keyword" and spec["path_match"].endswith(".*")

    assert set(index) <= {"index_patterns", "composed_of", "priority", "data_stream", "template", "_meta", "version"}
    assert index["composed_of"] == ["sextant-ecs-access-logs"]
    assert COMPONENT.name == f"component-template-{index['composed_of'][0]}.json"
    assert index["priority"] > 100  # above the built-in logs-*-* template
    assert index["data_stream"] == {}
    # The README's exporter config (`data_stream: {dataset: envoy, namespace: default}`) writes logs-envoy-default.
    assert any(fnmatch.fnmatch("logs-envoy-default", p) for p in index["index_patterns"])
    readme = (DASHBOARDS / "README.md").read_text()
    for name in (COMPONENT.name, INDEX_TEMPLATE.name, SAVED_OBJECTS.name, "_component_template/sextant-ecs-access-logs"):
        assert name in readme


def test_saved_objects_resolve_and_use_mapped_fields():
    fields = mapped_fields(json.loads(COMPONENT.read_text())["template"]["mappings"]["properties"])
    index_patterns = json.loads(INDEX_TEMPLATE.read_text())["index_patterns"]
    objects = load_objects()
    by_id = {(o["type"], o["id"]): o for o in objects}
    assert len(by_id) == len(objects), "duplicate saved-object ids"
    assert {o["type"] for o in objects} == {"index-pattern", "search", "visualization", "dashboard"}
    used: set[str] = set()
    for o in objects:
        assert set(o) >= {"type", "id", "attributes", "references", "coreMigrationVersion", "typeMigrationVersion"}, o["id"]
        assert o["attributes"]["title"]
        for ref in o["references"]:
            assert set(ref) == {"name", "type", "id"}
            assert (ref["type"], ref["id"]) in by_id, f"{o['id']} references missing {ref}"
        source = o["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
        if source is not None:
            search_source = json.loads(source)
            if "indexRefName" in search_source:
                assert search_source["indexRefName"] in {r["name"] for r in o["references"]}
        if o["type"] == "index-pattern":
            assert o["attributes"]["title"] in index_patterns
            assert o["attributes"]["timeFieldName"] == "@timestamp"
            used |= set(json.loads(o["attributes"].get("fieldFormatMap", "{}")))
        elif o["type"] == "search":
            used |= set(o["attributes"]["columns"])
            used |= {field for field, _ in o["attributes"]["sort"]}
        elif o["type"] == "visualization":
            vis = json.loads(o["attributes"]["visState"])
            assert vis["title"] == o["attributes"]["title"]
            assert vis["type"] in {"histogram", "line", "pie", "table"}
            agg_ids = [a["id"] for a in vis["aggs"]]
            assert len(set(agg_ids)) == len(agg_ids)
            for agg in vis["aggs"]:
                assert agg["schema"] in {"metric", "segment", "group", "bucket"}
                if "field" in agg["params"]:
                    used.add(agg["params"]["field"])
                if agg["type"] == "terms":
                    assert agg["params"]["orderBy"] in agg_ids
                    assert fields[agg["params"]["field"]] in {"keyword", "long", "ip"}  # aggregatable
                if agg["type"] == "percentiles":
                    assert fields[agg["params"]["field"]] == "long"
            json.loads(o["attributes"]["uiStateJSON"])
        elif o["type"] == "dashboard":
            panels = json.loads(o["attributes"]["panelsJSON"])
            json.loads(o["attributes"]["optionsJSON"])
            refs = {r["name"]: r for r in o["references"]}
            assert len(panels) == len(refs) >= 5
            for p in panels:
                ref = refs[f"{p['panelIndex']}:{p['panelRefName']}"]
                assert ref["type"] == p["type"]
                assert set(p["gridData"]) == {"x", "y", "w", "h", "i"} and p["gridData"]["i"] == p["panelIndex"]
                assert p["gridData"]["x"] + p["gridData"]["w"] <= 48
            titles = {by_id[(r["type"], r["id"])]["attributes"]["title"] for r in refs.values()}
            assert {"Requests by status code", "Requests by service", "p90 request duration by service", "Top Envoy response flags"} <= titles
    unmapped = {f for f in used if f not in fields}
    assert not unmapped, f"fields used but not mapped by the template: {sorted(unmapped)}"
    assert {"http.response.status_code", "service.name", "event.duration", "envoy.response_flags"} <= used
