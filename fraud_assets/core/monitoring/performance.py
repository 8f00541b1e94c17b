"""Realised performance: what a model's scores of one day were worth once its labels came in.

A transaction with no fraud report counts as genuine. Once its day is *mature* (older than
the label maturity period) that is final; before, the day is *provisional* and its figures
can still move as late reports arrive. The share of a day's frauds known so far is estimated
from how long reports took on mature days (the empirical report-delay distribution).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass

import numpy as np

from fraud_assets.core.monitoring.ranking import average_precision

ROLES = ("production", "challenger")


@dataclass(frozen=True)
class RealizedFigures:
    """One day, one model role."""

    date: str
    role: str
    model_version: str
    threshold: float
    rows: int
    frauds: int
    alerts: int
    caught: int
    missed: int
    false_alerts: int
    auprc: float | None
    precision: float | None
    recall: float | None
    cost: float
    mature: bool
    known_fraud_share: float | None

    def to_dict(self) -> dict:
        return {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in asdict(self).items()
        }


def is_mature(day: str, today: dt.date, maturity_days: int) -> bool:
    """True once every fraud of ``day`` should have been reported."""
    return dt.date.fromisoformat(day) + dt.timedelta(days=maturity_days) <= today


def realized_figures(
    *,
    date: str,
    role: str,
    model_version: str,
    threshold: float,
    scores: np.ndarray,
    labels: np.ndarray,
    mature: bool,
    missed_fraud_cost: float,
    false_alert_cost: float,
    known_fraud_share: float | None = None,
) -> RealizedFigures:
    """Figures of one day's scores against the labels known for it (1 = reported fraud)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int8)
    flagged = scores >= threshold
    frauds = int(labels.sum())
    caught = int(np.count_nonzero(flagged & (labels == 1)))
    alerts = int(np.count_nonzero(flagged))
    false_alerts = alerts - caught
    missed = frauds - caught
    return RealizedFigures(
        date=date,
        role=role,
        model_version=model_version,
        threshold=float(threshold),
        rows=int(len(scores)),
        frauds=frauds,
        alerts=alerts,
        caught=caught,
        missed=missed,
        false_alerts=false_alerts,
        auprc=average_precision(labels, scores) if 0 < frauds < len(labels) else None,
        precision=caught / alerts if alerts else None,
        recall=caught / frauds if frauds else None,
        cost=float(missed * missed_fraud_cost + false_alerts * false_alert_cost),
        mature=mature,
        known_fraud_share=1.0 if mature else known_fraud_share,
    )


def report_delay_days(transaction_dates, reported_on) -> np.ndarray:
    """Days between a transaction and the report of its fraud, per label."""
    transactions = np.asarray(transaction_dates, dtype="datetime64[D]")
    reports = np.asarray(reported_on, dtype="datetime64[D]")
    return (reports - transactions).astype(np.int64)


def known_share_at_age(delays: np.ndarray, age_days: int) -> float | None:
    """Share of frauds reported within ``age_days``, from delays seen on mature days; None
    with too few reports to say (under 20)."""
    delays = np.asarray(delays)
    if len(delays) < 20:
        return None
    return float(np.mean(delays <= age_days))
