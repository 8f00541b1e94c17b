"""Batch-job metrics pushed to a Prometheus Pushgateway.

Scoring, training and drift runs are short-lived processes, so Prometheus cannot scrape
them; each run push-adds its results to the Pushgateway once, at the end, and Prometheus
scrapes the gateway (with ``honor_labels: true`` so the pushed ``job`` label survives).

Rules this package keeps, and why:

* Every pushed family is a gauge of this run alone: rows scored and flagged by it, its
  duration, the model it used, when it succeeded or failed. Nothing is read back from the
  gateway, so runs on several hosts or at the same time cannot lose each other's figures
  and need no lock. Totals across runs are Prometheus' job: the recording rules in
  ``monitoring/rules/fraud_run_totals.yml`` count each run once, when its success
  timestamp changes.
* One group per job (grouping key ``{job}``; realised performance adds ``role``). Per-run,
  per-partition or per-day groups would live forever in the gateway and grow without bound.
* Push-add (HTTP POST) replaces only the families in this push. A failed run therefore
  pushes just ``*_last_failure_timestamp_seconds``, and the last good results stay visible
  instead of being overwritten by freshly registered gauges that default to 0.
* ``*_last_success_timestamp_seconds`` is set only by a successful run: staleness alerts
  compare it with ``time()``, and the totals rules use its changes to spot a new run.
* Metrics must never fail a run: every problem is logged and reported through the boolean
  return value, never raised.

Nothing here imports Dagster: the command line, the service and the Dagster assets share it.
"""

from __future__ import annotations

from collections.abc import Mapping

from fraud_assets.core.monitoring.telemetry.families import (
    build_drift_registry,
    build_failure_registry,
    build_scoring_registry,
    build_training_registry,
)
from fraud_assets.core.monitoring.telemetry.gateway import push
from fraud_assets.core.monitoring.telemetry.names import (
    JOB_DRIFT,
    JOB_REALIZED,
    JOB_SCORING,
    JOB_TRAINING,
    JOBS,
)
from fraud_assets.core.monitoring.telemetry.realized import (
    RealizedPerformance,
    build_realized_registry,
)

__all__ = [
    "JOBS",
    "JOB_DRIFT",
    "JOB_REALIZED",
    "JOB_SCORING",
    "JOB_TRAINING",
    "push_drift_metrics",
    "push_realized_performance",
    "push_run_failure",
    "push_scoring_metrics",
    "push_training_metrics",
]


def push_scoring_metrics(
    gateway_url: str | None,
    *,
    rows: int,
    flagged: int,
    seconds: float,
    model_version: str,
    succeeded: bool = True,
    timeout: float = 5.0,
) -> bool:
    """Push-add the figures of one scoring run; True if the gateway accepted them.

    A failed run pushes only its failure time.
    """
    if not succeeded:
        return push_run_failure(gateway_url, JOB_SCORING, timeout=timeout)
    return push(
        gateway_url,
        JOB_SCORING,
        lambda: build_scoring_registry(
            rows=rows, flagged=flagged, seconds=seconds, model_version=model_version
        ),
        timeout,
    )


def push_training_metrics(
    gateway_url: str | None,
    *,
    auprc: float,
    roc_auc: float,
    threshold: float,
    seconds: float,
    model_version: str,
    gate_passed: bool,
    production_version: str | None,
    succeeded: bool = True,
    timeout: float = 5.0,
) -> bool:
    """Push-add the results of one training run; True if the gateway accepted them."""
    if not succeeded:
        return push_run_failure(gateway_url, JOB_TRAINING, timeout=timeout)
    return push(
        gateway_url,
        JOB_TRAINING,
        lambda: build_training_registry(
            auprc=auprc,
            roc_auc=roc_auc,
            threshold=threshold,
            seconds=seconds,
            model_version=model_version,
            gate_passed=gate_passed,
            production_version=production_version,
        ),
        timeout,
    )


def push_drift_metrics(
    gateway_url: str | None,
    *,
    psi: Mapping[str, float],
    wasserstein: Mapping[str, float],
    drift_share: float,
    drift_detected: bool,
    seconds: float,
    succeeded: bool = True,
    timeout: float = 5.0,
) -> bool:
    """Push-add the results of one drift run; True if the gateway accepted them.

    Push-add replaces whole metric families, so a feature missing from this run's ``psi``
    disappears from the gateway instead of keeping an old value.
    """
    if not succeeded:
        return push_run_failure(gateway_url, JOB_DRIFT, timeout=timeout)
    return push(
        gateway_url,
        JOB_DRIFT,
        lambda: build_drift_registry(
            psi=psi,
            wasserstein=wasserstein,
            drift_share=drift_share,
            drift_detected=drift_detected,
            seconds=seconds,
        ),
        timeout,
    )


def push_realized_performance(
    gateway_url: str | None,
    *,
    role: str,
    model_version: str,
    day: str,
    mature: bool,
    rows: int,
    frauds: int,
    alerts: int,
    auprc: float,
    precision: float,
    recall: float,
    cost: float,
    known_fraud_share: float,
    timeout: float = 5.0,
) -> bool:
    """Push-add the realised figures of one transaction ``day`` (YYYY-MM-DD) for ``role``.

    The group is ``{job="fraud_realized_performance", role}``: each push replaces the
    previous day of that role, so push days oldest first.
    """

    def build():
        figures = RealizedPerformance(
            role=role, model_version=model_version, day=day, mature=mature, rows=rows,
            frauds=frauds, alerts=alerts, auprc=auprc, precision=precision, recall=recall,
            cost=cost, known_fraud_share=known_fraud_share,
        )
        return build_realized_registry(figures)

    # push() builds before it sends, so an unknown role is refused before it can name a
    # group that would live in the gateway for ever.
    return push(gateway_url, JOB_REALIZED, build, timeout, grouping_key={"role": str(role)})


def push_run_failure(gateway_url: str | None, job: str, *, timeout: float = 5.0) -> bool:
    """Record that a run of ``job`` failed, without touching its last good results."""
    return push(gateway_url, job, lambda: build_failure_registry(job), timeout)
