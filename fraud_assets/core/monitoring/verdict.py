"""One drift verdict for a day: ``none``, ``moderate`` or ``major``, and the reasons for it.

Everything that reports drift (the drift asset and its check, the demo, Slack, the
``fraud_drift_detected`` gauge, ``fraud drift --fail-on``) reads this verdict and nothing else;
``drift_detected`` is true exactly when the level is not ``none``.

A feature drifts when its change is both real and material:
- real: the Kolmogorov-Smirnov distance on the reference grid is significant at ``alpha``,
  Bonferroni-corrected over the features compared, so sampling noise in a small batch is not
  taken for drift;
- material: PSI (less what sampling alone adds to it) or the Wasserstein distance in
  reference standard deviations passes the moderate bound (PSI 0.1, W 0.1) or the major one
  (PSI 0.25, W 0.25), so a tiny but significant change in a large batch is not either.

The day's level then weighs the features by what the model makes of them and watches the
model's own score:
- each feature's weight is half its share of the model's gain and half an equal share, so a
  drift in what the model leans on counts most, and one in what it ignores still counts;
- ``major``: the score's distribution drifted to the major level, or features holding at least
  ``major_share`` of the weight drifted to the major level;
- ``moderate``: the score drifted, or features holding at least ``moderate_share`` of the
  weight drifted, or any one feature drifted to the major level;
- ``none`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

LEVELS = ("none", "moderate", "major")


@dataclass(frozen=True)
class DriftThresholds:
    psi_moderate: float = 0.1
    psi_major: float = 0.25
    wasserstein: float = 0.1  # in reference standard deviations: the moderate bound
    wasserstein_major: float = 0.25
    moderate_share: float = 0.1
    major_share: float = 0.3
    alpha: float = 0.05  # family-wise, over all features compared

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_THRESHOLDS = DriftThresholds()


def ks_p_value(distance: float, reference_rows: int, current_rows: int) -> float:
    """Asymptotic two-sample KS p-value for a distance between two empirical CDFs."""
    if reference_rows <= 0 or current_rows <= 0:
        return 1.0
    # SciPy is imported here: `fraud --help` reaches this module and must stay light.
    from scipy.special import kolmogorov

    effective = reference_rows * current_rows / (reference_rows + current_rows)
    return float(kolmogorov(distance * effective**0.5))


def feature_level(psi: float, wasserstein: float, significant: bool, thresholds: DriftThresholds) -> str:
    if not significant:
        return "none"
    if psi >= thresholds.psi_major or wasserstein >= thresholds.wasserstein_major:
        return "major"
    if psi >= thresholds.psi_moderate or wasserstein >= thresholds.wasserstein:
        return "moderate"
    return "none"


def feature_weights(names: list[str], importance: Mapping[str, float] | None) -> dict[str, float]:
    """Half the model's share of gain, half an equal share; equal shares without a model."""
    if not names:
        return {}
    equal = 1.0 / len(names)
    gains = {name: max(float((importance or {}).get(name, 0.0)), 0.0) for name in names}
    total = sum(gains.values())
    if total <= 0:
        return dict.fromkeys(names, equal)
    return {name: 0.5 * gains[name] / total + 0.5 * equal for name in names}


def dataset_verdict(
    features: Mapping[str, Mapping],
    weights: Mapping[str, float],
    score: Mapping | None,
    thresholds: DriftThresholds,
) -> dict:
    """The day's level from per-feature levels (``features[name]["level"]``), their weights,
    and the score's own level; with the shares and the reasons behind it."""
    drifted = [name for name, stats in features.items() if stats["level"] != "none"]
    major = [name for name in drifted if features[name]["level"] == "major"]
    share = sum(weights[name] for name in drifted)
    major_share = sum(weights[name] for name in major)
    score_level = score["level"] if score is not None else "none"

    reasons = []
    if score_level != "none":
        reasons.append(f"model score drifted ({score_level}: PSI {score['psi']:.3f})")
    if major_share >= thresholds.major_share:
        reasons.append(f"features with {major_share:.0%} of the weight drifted to the major level")
    elif share >= thresholds.moderate_share:
        reasons.append(f"features with {share:.0%} of the weight drifted")
    elif major:
        reasons.append(f"{', '.join(major)} drifted to the major level")

    if score_level == "major" or major_share >= thresholds.major_share:
        level = "major"
    elif score_level == "moderate" or share >= thresholds.moderate_share or major:
        level = "moderate"
    else:
        level = "none"
    return {
        "drift_level": level,
        "drift_detected": level != "none",
        "drift_share": round(share, 6),
        "major_drift_share": round(major_share, 6),
        "score_drift_level": score_level if score is not None else None,
        "reasons": reasons,
    }


def at_least(level: str, bar: str) -> bool:
    """Whether ``level`` reaches ``bar`` (both in :data:`LEVELS`)."""
    return LEVELS.index(level) >= LEVELS.index(bar)
