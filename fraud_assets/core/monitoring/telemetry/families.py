"""The registries a run pushes: its own figures, checked, as gauges.

A fresh registry per push: the default registry would drag in process and platform
metrics of this short-lived process, which mean nothing once pushed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fraud_assets.core.monitoring.telemetry.names import (
    DRIFT_DETECTED,
    DRIFT_DURATION,
    DRIFT_PSI,
    DRIFT_SHARE,
    DRIFT_WASSERSTEIN,
    JOB_DRIFT,
    JOB_SCORING,
    JOB_TRAINING,
    JOBS,
    MODEL_AUPRC,
    MODEL_INFO,
    MODEL_ROC_AUC,
    MODEL_THRESHOLD,
    ROLE_CANDIDATE,
    ROLE_PRODUCTION,
    ROLE_SCORING,
    SCORING_DURATION,
    SCORING_FLAGGED,
    SCORING_FLAGGED_RATIO,
    SCORING_ROWS,
    TRAINING_DURATION,
    TRAINING_GATE_PASSED,
    last_failure_metric,
    last_success_metric,
)

# The Pushgateway rejects a push whose HELP for a metric name differs from the HELP already
# stored for that name in another group, so a name shared by several jobs gets one text.
MODEL_INFO_HELP = "Model version in a given role; the value is always 1."

# A drift push carries one series per feature; beyond this a caller is almost certainly
# passing something other than feature names (row ids, timestamps) and would explode the
# number of series Prometheus stores.
MAX_FEATURE_LABELS = 64


class FixedCollector(Collector):
    """Hands a fixed list of metric families to a registry.

    Built families rather than ``Gauge`` objects: the values are known once, at the end of
    the run, and a registry of live metric objects would need one object per push anyway.
    """

    def __init__(self, families: Iterable[Metric]):
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def registry_of(families: Iterable[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FixedCollector(families))
    return registry


def check_duration(seconds: float) -> None:
    try:
        valid = math.isfinite(float(seconds)) and float(seconds) >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")


def check_scoring_inputs(rows: int, flagged: int, seconds: float) -> None:
    # Prometheus sums these per run into daily totals: a negative count would subtract.
    if rows < 0 or flagged < 0:
        raise ValueError(f"rows and flagged must be >= 0, got rows={rows}, flagged={flagged}")
    if flagged > rows:
        raise ValueError(f"flagged ({flagged}) cannot exceed rows ({rows})")
    check_duration(seconds)


def build_failure_registry(job: str, *, now: float | None = None) -> CollectorRegistry:
    """The only thing a failed run pushes: when it failed."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; expected one of {JOBS}")
    stamp = time.time() if now is None else now
    return registry_of(
        [gauge(last_failure_metric(job), f"Unix time of the last failed {job} run.", stamp)]
    )


def build_scoring_registry(
    *,
    rows: int,
    flagged: int,
    seconds: float,
    model_version: str,
    now: float | None = None,
) -> CollectorRegistry:
    """Figures of one successful scoring run.

    The success timestamp is what tells Prometheus that a new run arrived: the totals
    rules count ``fraud_scoring_rows`` once per change of it, so it is pushed in the same
    request as the figures it vouches for.
    """
    check_scoring_inputs(rows, flagged, seconds)
    stamp = time.time() if now is None else now
    # An empty batch has no defined ratio; 0 keeps the 7-day average usable (a NaN would
    # poison avg_over_time for a week) and the alert rules ignore runs with no rows.
    ratio = flagged / rows if rows else 0.0
    info = GaugeMetricFamily(MODEL_INFO, MODEL_INFO_HELP, labels=["model_version", "role"])
    info.add_metric([str(model_version), ROLE_SCORING], 1.0)
    return registry_of(
        [
            gauge(SCORING_ROWS, "Rows scored by the last successful scoring run.", rows),
            gauge(
                SCORING_FLAGGED,
                "Rows flagged as fraud by the last successful scoring run.",
                flagged,
            ),
            gauge(
                SCORING_FLAGGED_RATIO,
                "Share of rows flagged as fraud by the last successful scoring run (0-1).",
                ratio,
            ),
            gauge(
                SCORING_DURATION,
                "Wall-clock duration of the last successful scoring run.",
                seconds,
            ),
            info,
            gauge(
                last_success_metric(JOB_SCORING),
                "Unix time of the last successful scoring run.",
                stamp,
            ),
        ]
    )


def build_training_registry(
    *,
    auprc: float,
    roc_auc: float,
    threshold: float,
    seconds: float,
    model_version: str,
    gate_passed: bool,
    production_version: str | None,
    now: float | None = None,
) -> CollectorRegistry:
    """Figures of one successful training run."""
    check_duration(seconds)
    stamp = time.time() if now is None else now
    info = GaugeMetricFamily(MODEL_INFO, MODEL_INFO_HELP, labels=["model_version", "role"])
    info.add_metric([str(model_version), ROLE_CANDIDATE], 1.0)
    if production_version:
        info.add_metric([str(production_version), ROLE_PRODUCTION], 1.0)
    return registry_of(
        [
            gauge(MODEL_AUPRC, "Area under the precision-recall curve of the candidate.", auprc),
            gauge(MODEL_ROC_AUC, "Area under the ROC curve of the candidate.", roc_auc),
            gauge(MODEL_THRESHOLD, "Decision threshold chosen for the candidate.", threshold),
            gauge(
                TRAINING_DURATION,
                "Wall-clock duration of the last successful training run.",
                seconds,
            ),
            gauge(
                TRAINING_GATE_PASSED,
                "1 if the candidate passed the promotion gate, 0 if it did not.",
                1.0 if gate_passed else 0.0,
            ),
            info,
            gauge(
                last_success_metric(JOB_TRAINING),
                "Unix time of the last successful training run.",
                stamp,
            ),
        ]
    )


def _per_feature(name: str, documentation: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["feature"])
    for feature in sorted(values):
        family.add_metric([str(feature)], float(values[feature]))
    return family


def build_drift_registry(
    *,
    psi: Mapping[str, float],
    wasserstein: Mapping[str, float],
    drift_share: float,
    drift_detected: bool,
    seconds: float,
    now: float | None = None,
) -> CollectorRegistry:
    """Figures of one successful drift run."""
    check_duration(seconds)
    for what, values in (("psi", psi), ("wasserstein", wasserstein)):
        if len(values) > MAX_FEATURE_LABELS:
            raise ValueError(
                f"{what} has {len(values)} entries; at most {MAX_FEATURE_LABELS} feature "
                "labels are pushed to keep the number of series bounded"
            )
    stamp = time.time() if now is None else now
    return registry_of(
        [
            _per_feature(
                DRIFT_PSI,
                "Population stability index of a feature, current batch against the reference.",
                psi,
            ),
            _per_feature(
                DRIFT_WASSERSTEIN,
                "Wasserstein distance of a feature, scaled by the reference spread.",
                wasserstein,
            ),
            gauge(DRIFT_SHARE, "Share of features found drifted by the last drift run (0-1).",
                  drift_share),
            gauge(
                DRIFT_DETECTED,
                "1 if the last drift run declared drift, 0 if not.",
                1.0 if drift_detected else 0.0,
            ),
            gauge(DRIFT_DURATION, "Wall-clock duration of the last successful drift run.",
                  seconds),
            gauge(
                last_success_metric(JOB_DRIFT),
                "Unix time of the last successful drift run.",
                stamp,
            ),
        ]
    )
