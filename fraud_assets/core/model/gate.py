"""The promotion gate: a new model serves only if it is good enough and not worse than the
model already serving. Both directions are easy to get backwards, so the rule lives here once."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.metrics import average_precision_score

from fraud_assets.core.data.schema import LABEL, feature_matrix
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.calibration import expected_calibration_error
from fraud_assets.core.model.scored_rows import ScoredRows


@dataclass(frozen=True)
class GateResult:
    passed: bool
    candidate_version: str
    candidate_auprc: float
    production_version: str | None
    production_auprc: float | None
    auprc_floor: float
    max_regression: float
    reasons: tuple[str, ...]
    candidate_calibration_error: float | None = None
    max_calibration_error: float | None = None

    def describe(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return f"quality gate {verdict} for {self.candidate_version}: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class HeldOutScores:
    """The test split's rows as each model scores them: all the gate needs, however the rows
    were scored (here, row by row, or by Dask workers, as counts per score bin)."""

    candidate: ScoredRows
    production: ScoredRows | None = None


def score_test_split(candidate: FraudModel, production: FraudModel | None, test: pd.DataFrame) -> HeldOutScores:
    features = feature_matrix(test)
    labels = test[LABEL].to_numpy()
    return HeldOutScores(
        candidate=ScoredRows(labels, candidate.predict_proba(features)),
        production=ScoredRows(labels, production.predict_proba(features)) if production is not None else None,
    )


def _auprc(scored: ScoredRows) -> float:
    if scored.frauds == 0:
        raise ValueError("the test split has no frauds: AUPRC is undefined")
    return float(average_precision_score(scored.labels, scored.scores, sample_weight=scored.weights))


def evaluate_gate(
    candidate: FraudModel,
    production: FraudModel | None,
    test: pd.DataFrame | HeldOutScores,
    *,
    auprc_floor: float,
    max_regression: float,
    max_calibration_error: float | None = None,
) -> GateResult:
    """Pass when candidate AUPRC >= floor and >= production AUPRC - max_regression,
    both measured on the same test split, and (when a limit is given) the candidate's
    test calibration error is at most ``max_calibration_error``: alert budgets, costs and
    anyone reading a probability rely on it meaning the fraud rate.

    ``test`` is the test split, or its rows already scored by both models."""
    scores = test if isinstance(test, HeldOutScores) else score_test_split(candidate, production, test)
    if (production is None) != (scores.production is None):
        raise ValueError("the production model's scores must come with the production model")
    candidate_auprc = _auprc(scores.candidate)
    reasons = []
    passed = candidate_auprc >= auprc_floor
    reasons.append(
        f"test AUPRC {candidate_auprc:.4f} {'>=' if passed else '<'} floor {auprc_floor:.4f}"
    )
    production_auprc = None
    if production is not None:
        production_auprc = _auprc(scores.production)
        not_worse = candidate_auprc >= production_auprc - max_regression
        passed = passed and not_worse
        reasons.append(
            f"{'within' if not_worse else 'more than'} {max_regression:.4f} of production "
            f"{production.version} (AUPRC {production_auprc:.4f})"
        )
    else:
        reasons.append("no production model yet")
    calibration_error = None
    if max_calibration_error is not None:
        calibration_error = expected_calibration_error(scores.candidate.labels, scores.candidate.scores,
                                                       scores.candidate.weights)
        calibrated = calibration_error <= max_calibration_error
        passed = passed and calibrated
        reasons.append(f"test calibration error {calibration_error:.4f} "
                       f"{'<=' if calibrated else '>'} limit {max_calibration_error:.4f}")
    return GateResult(
        passed=passed,
        candidate_version=candidate.version,
        candidate_auprc=candidate_auprc,
        production_version=production.version if production else None,
        production_auprc=production_auprc,
        auprc_floor=auprc_floor,
        max_regression=max_regression,
        reasons=tuple(reasons),
        candidate_calibration_error=calibration_error,
        max_calibration_error=max_calibration_error,
    )
