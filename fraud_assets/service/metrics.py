"""Prometheus metrics of the scoring service, scraped at ``GET /metrics``.

Each app owns its ``CollectorRegistry`` (tests start several apps in one process). A
long-lived process is where counters belong: ``fraud_predictions_total`` and
``fraud_flagged_total`` live here only. The batch scoring job pushes per-run gauges
instead (``fraud_scoring_rows``...), whose totals Prometheus records.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

from fraud_assets.service.model_holder import ModelHolder

# Around the 10 ms target for one transaction; the upper buckets are for batches (50 ms for
# 1,000 transactions) and for trouble.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Fixed set, so the label can never multiply series.
# client_disconnect: the client left before its body arrived (not the service's fault).
ERROR_KINDS = ("malformed_json", "validation", "too_large", "client_disconnect", "internal")
SERVING_ROLE = "serving"


class _ModelCollector:
    """Series read from the holder at scrape time, so a swap needs no bookkeeping."""

    def __init__(self, holder: ModelHolder):
        self.holder = holder

    def collect(self):
        current = self.holder.current
        info = GaugeMetricFamily(
            "fraud_model_info",
            "Model version in a given role; the value is always 1.",
            labels=["model_version", "role"],
        )
        info.add_metric([current.version, SERVING_ROLE], 1.0)
        yield info
        yield GaugeMetricFamily(
            "fraud_service_model_loaded_timestamp_seconds",
            "Unix time at which the model now in service was loaded.",
            value=current.loaded_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "fraud_service_model_threshold",
            "Decision threshold of the model now in service.",
            value=float(current.model.threshold),
        )
        yield CounterMetricFamily(
            "fraud_service_model_reload_failures",
            "Failed attempts to load a newly promoted model (the previous one kept serving).",
            value=self.holder.reload_failures,
        )


class ServiceMetrics:
    def __init__(self, holder: ModelHolder):
        self.registry = CollectorRegistry(auto_describe=True)
        self.predictions = Counter(
            "fraud_predictions", "Transactions scored.", registry=self.registry
        )
        self.flagged = Counter(
            "fraud_flagged", "Transactions scored at or above the fraud threshold.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "fraud_service_request_duration_seconds",
            "Time to answer POST /predict, from the first body byte read to the response built.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "fraud_service_errors",
            "Refused or failed POST /predict requests, by kind.",
            ["kind"],
            registry=self.registry,
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind)  # present at 0, so rate() sees the first error
        self.registry.register(_ModelCollector(holder))
        ProcessCollector(registry=self.registry)
