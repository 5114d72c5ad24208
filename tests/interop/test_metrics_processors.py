"""Interop tests for the stateful metrics processors: `cumulativetodelta`, `deltatocumulative` and
`cardinalityguard`, fed by the real OpenTelemetry Python SDK over OTLP/HTTP.

The SDK's own aggregation is the reference: it exports the same instruments twice (cumulative or delta,
as the test asks), a `sextant collector` process converts them, and the file exporter's output is
decoded with the `opentelemetry-proto` classes and compared with what the SDK's numbers imply.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, MetricsData
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality as SDKTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from otlp_assertions import attributes_of, decode_output, prometheus_samples, wait_for_accepted

EXPORT_TIMEOUT_MS = 10_000
HTTP_TIMEOUT = 10

CONFIG = """
receivers:
  otlp:
    protocols:
      http: {endpoint: 127.0.0.1:$http_port}
processors:
  PROCESSORS
exporters:
  file/metrics: {path: $out/metrics.bin, format: proto}
service:
  telemetry:
    metrics: {address: 127.0.0.1:$telemetry_port}
  pipelines:
    metrics: {receivers: [otlp], processors: [NAMES], exporters: [file/metrics]}
"""


def start(start_collector, processors: str, names: str):
    return start_collector(config_template=CONFIG.replace("PROCESSORS", processors).replace("NAMES", names))


class Sdk:
    """A meter provider exporting to the collector only when `export()` is called."""

    def __init__(self, collector, temporality):
        self.exporter = OTLPMetricExporter(
            endpoint=f"{collector.base_url}/v1/metrics", timeout=HTTP_TIMEOUT,
            preferred_temporality={Counter: temporality, Histogram: temporality},
        )
        self.provider = MeterProvider(
            resource=Resource({"service.name": "checkout"}),
            metric_readers=[PeriodicExportingMetricReader(self.exporter, export_interval_millis=3_600_000)],
            views=[View(instrument_name="latency", aggregation=ExplicitBucketHistogramAggregation([10, 100]))],
        )
        self.meter = self.provider.get_meter("shop", "1.0")
        self.points = 0

    def export(self):
        assert self.provider.force_flush(timeout_millis=EXPORT_TIMEOUT_MS)

    def close(self):
        """Shuts the SDK down; its reader exports once more (cumulative: the same totals again)."""
        self.provider.shutdown()


def written(collector):
    """Metric name → list of (attributes, temporality, point) in the order of the points' times.

    The file exporter's sending queue has several workers (`num_consumers`, as in the OTel Collector), so two
    batches may be written in either order; the points' `time_unix_nano` orders them.
    """
    out: dict[str, list] = {}
    for batch in decode_output(collector, "metrics", MetricsData):
        for rm in batch.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for p in data.data_points:
                        out.setdefault(m.name, []).append((attributes_of(p.attributes), data.aggregation_temporality, p))
    for points in out.values():
        points.sort(key=lambda entry: entry[2].time_unix_nano)
    return out


def test_cumulative_sdk_counters_and_histograms_become_deltas(start_collector):
    collector = start(start_collector, "cumulativetodelta: {initial_value: auto}", "cumulativetodelta")
    sdk = Sdk(collector, SDKTemporality.CUMULATIVE)  # created after the collector: auto keeps first points
    orders = sdk.meter.create_counter("orders")
    latency = sdk.meter.create_histogram("latency", unit="ms")
    orders.add(3, {"region": "eu"})
    latency.record(5)
    latency.record(50)
    sdk.export()
    orders.add(4, {"region": "eu"})
    orders.add(5, {"region": "us"})
    latency.record(500)
    sdk.export()
    sdk.close()
    assert wait_for_accepted(collector, {"metrics": 8}) == {"metrics": 8}  # 2, 3, and 3 again at shutdown
    collector.stop_cleanly()

    out = written(collector)
    eu = [(p.as_int, p.start_time_unix_nano, p.time_unix_nano) for a, t, p in out["orders"] if a == {"region": "eu"}]
    us = [p.as_int for a, _, p in out["orders"] if a == {"region": "us"}]
    assert [v for v, _, _ in eu] == [3, 4, 0] and us == [5, 0]
    # Each delta starts where the previous point of its stream ended.
    assert eu[1][1] == eu[0][2]
    assert {t for _, t, _ in out["orders"]} == {AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA}
    hist = [(p.count, p.sum, list(p.bucket_counts), p.HasField("min")) for _, _, p in out["latency"]]
    assert hist == [(2, 55, [1, 1, 0], False), (1, 500, [0, 0, 1], False), (0, 0, [0, 0, 0], False)]
    assert {t for _, t, _ in out["latency"]} == {AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA}


def test_delta_sdk_counters_and_histograms_become_cumulative(start_collector):
    collector = start(start_collector, "deltatocumulative: {max_stale: 5m}", "deltatocumulative")
    sdk = Sdk(collector, SDKTemporality.DELTA)
    orders = sdk.meter.create_counter("orders")
    latency = sdk.meter.create_histogram("latency", unit="ms")
    orders.add(3, {"region": "eu"})
    latency.record(5)
    sdk.export()
    orders.add(4, {"region": "eu"})
    latency.record(50)
    latency.record(500)
    sdk.export()
    sdk.close()
    assert wait_for_accepted(collector, {"metrics": 4}) == {"metrics": 4}
    collector.stop_cleanly()

    out = written(collector)
    eu = [(p.as_int, p.start_time_unix_nano) for _, _, p in out["orders"]]
    assert [v for v, _ in eu] == [3, 7]
    assert eu[0][1] == eu[1][1]  # one cumulative stream: the first delta's start
    assert {t for _, t, _ in out["orders"]} == {AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE}
    hist = [(p.count, p.sum, list(p.bucket_counts), p.min, p.max) for _, _, p in out["latency"]]
    assert hist == [(1, 5, [1, 0, 0], 5, 5), (3, 555, [1, 1, 1], 5, 500)]


def test_cardinality_guard_folds_excess_sdk_series_into_one_overflow_series(start_collector):
    collector = start(start_collector, "cardinalityguard: {max_series_per_metric: 2}", "cardinalityguard")
    sdk = Sdk(collector, SDKTemporality.CUMULATIVE)
    logins = sdk.meter.create_counter("logins")
    users = ["ann", "bob", "cid", "dan", "eve"]
    for u in users:
        logins.add(1, {"user": u})
    sdk.export()
    for u in users:
        logins.add(2, {"user": u})
    sdk.export()
    sdk.close()
    assert wait_for_accepted(collector, {"metrics": 15}) == {"metrics": 15}  # the last export repeats the totals
    collector.stop_cleanly()

    out = written(collector)["logins"]
    regular = [(a["user"], p.as_int) for a, _, p in out if "user" in a]
    overflow = [p.as_int for a, _, p in out if a == {"otel_metric_overflow": True}]
    assert len({u for u, _ in regular}) == 2 and sorted(v for _, v in regular) == [1, 1, 3, 3, 3, 3]
    # Three users folded: the overflow counter is what they added: 3 × 1, then 3 × 2 more, then nothing new.
    assert overflow == [3, 9, 9]
    assert len(out) == len(regular) + len(overflow)


def test_cardinality_guard_counts_folded_points_in_self_telemetry(start_collector):
    collector = start(start_collector, "cardinalityguard: {max_series_per_metric: 1}", "cardinalityguard")
    sdk = Sdk(collector, SDKTemporality.DELTA)
    hits = sdk.meter.create_counter("hits")
    for path in ("/a", "/b", "/c", "/d"):
        hits.add(1, {"path": path})
    sdk.export()
    sdk.close()
    assert wait_for_accepted(collector, {"metrics": 4}) == {"metrics": 4}
    samples = prometheus_samples(collector, "sextant_processor_cardinalityguard_overflow_points_total")
    assert [v for labels, v in samples if labels.get("processor") == "cardinalityguard"] == [3.0]
    collector.stop_cleanly()
    out = written(collector)["hits"]
    assert sorted(p.as_int for _, _, p in out) == [1, 3]
