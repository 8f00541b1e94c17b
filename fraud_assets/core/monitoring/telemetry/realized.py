"""Realised model performance: the figures of one transaction day once its labels arrived.

Labels come days after scoring, so these are pushed by whatever evaluates a past day, per
model role. The group is keyed by role and never by day: a group per day would live in the
gateway for ever. The day evaluated travels as a gauge instead, and whether it is mature
(its labels are as complete as they will get) as another, so alerts can judge only final
figures.
"""

from __future__ import annotations

import math
import operator
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily

from fraud_assets.core.monitoring.telemetry.families import gauge, registry_of
from fraud_assets.core.monitoring.telemetry.names import (
    JOB_REALIZED,
    REALIZED_ALERTS,
    REALIZED_AUPRC,
    REALIZED_COST,
    REALIZED_DAY,
    REALIZED_FRAUDS,
    REALIZED_KNOWN_FRAUD_SHARE,
    REALIZED_MATURE,
    REALIZED_MODEL_INFO,
    REALIZED_PRECISION,
    REALIZED_RECALL,
    REALIZED_ROLES,
    REALIZED_ROWS,
    last_success_metric,
)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class RealizedPerformance:
    """One day's realised figures for one model role, checked on construction.

    Shares may be NaN where they are undefined (precision of a day without alerts, recall
    and AUPRC of a day without known frauds): Prometheus keeps NaN, and a NaN never
    compares below a floor, so an undefined figure cannot raise an alert.
    """

    role: str
    model_version: str
    day: str
    mature: bool
    rows: int
    frauds: int
    alerts: int
    auprc: float
    precision: float
    recall: float
    cost: float
    known_fraud_share: float

    def __post_init__(self) -> None:
        if self.role not in REALIZED_ROLES:
            raise ValueError(f"role must be one of {REALIZED_ROLES}, got {self.role!r}")
        if not str(self.model_version).strip():
            raise ValueError("model_version must not be empty")
        day_timestamp(self.day)
        counts = {name: _count(name, getattr(self, name)) for name in ("rows", "frauds", "alerts")}
        for part in ("frauds", "alerts"):
            if counts[part] > counts["rows"]:
                raise ValueError(f"{part} ({counts[part]}) cannot exceed rows ({counts['rows']})")
        for name in ("auprc", "precision", "recall", "known_fraud_share"):
            _share(name, getattr(self, name))
        if not _is_finite(self.cost):
            raise ValueError(f"cost must be a finite number, got {self.cost!r}")


def day_timestamp(day: str) -> float:
    """Unix time of midnight UTC starting ``day`` (YYYY-MM-DD, nothing else)."""
    if not isinstance(day, str) or not _DAY.fullmatch(day):
        raise ValueError(f"day must be a date written YYYY-MM-DD, got {day!r}")
    parsed = date.fromisoformat(day)
    return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC).timestamp()


def build_realized_registry(
    figures: RealizedPerformance, *, now: float | None = None
) -> CollectorRegistry:
    stamp = time.time() if now is None else now
    info = GaugeMetricFamily(
        REALIZED_MODEL_INFO,
        "Model version whose realised performance is pushed for this role; always 1.",
        labels=["model_version"],
    )
    info.add_metric([str(figures.model_version)], 1.0)
    return registry_of(
        [
            gauge(REALIZED_DAY, "Unix time of the start (UTC) of the transaction day evaluated.",
                  day_timestamp(figures.day)),
            gauge(REALIZED_MATURE,
                  "1 if the day's labels are complete enough for its figures to be final.",
                  1.0 if figures.mature else 0.0),
            gauge(REALIZED_ROWS, "Transactions scored on the day evaluated.", figures.rows),
            gauge(REALIZED_FRAUDS, "Known frauds among the day's transactions.", figures.frauds),
            gauge(REALIZED_ALERTS, "Transactions the model flagged on the day.", figures.alerts),
            gauge(REALIZED_AUPRC, "Realised area under the precision-recall curve of the day.",
                  figures.auprc),
            gauge(REALIZED_PRECISION, "Realised precision of the day's alerts (0-1).",
                  figures.precision),
            gauge(REALIZED_RECALL, "Share of the day's known frauds that were flagged (0-1).",
                  figures.recall),
            gauge(REALIZED_COST, "Realised cost of the day's missed frauds and false alerts.",
                  figures.cost),
            gauge(REALIZED_KNOWN_FRAUD_SHARE,
                  "Share of the day's eventual frauds already labelled (0-1).",
                  figures.known_fraud_share),
            info,
            gauge(last_success_metric(JOB_REALIZED),
                  "Unix time of the last realised-performance push for this role.", stamp),
        ]
    )


def _count(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a count, got {value!r}")
    try:
        count = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if count < 0:
        raise ValueError(f"{name} must be >= 0, got {count}")
    return count


def _is_finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _share(name: str, value: object) -> None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1] or NaN, got {value!r}") from None
    if not (math.isnan(number) or 0.0 <= number <= 1.0):
        raise ValueError(f"{name} must be in [0, 1] or NaN, got {value!r}")
