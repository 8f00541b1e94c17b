"""A second family of data with known fraud probability, built the other way round from
`model_quality.py`'s: the class is drawn first and the features from its class's density, so
the true probability is Bayes' rule over the two densities rather than a formula for p(x).

The per-feature shifts and spreads are the published ULB class moments (genuine std, fraud
mean shift in genuine stds, fraud/genuine std ratio), scaled down so the frauds are not
trivially separable. Most frauds are drawn from a wide Gaussian around the shifted means; a
share hides inside the genuine cloud with only a small pull toward the fraud means, as the
hard part of real fraud does. Genuine features are Student-t (heavy tails); genuine volume
follows the day/night cycle while frauds are spread evenly over the hours; fraud amounts are
more dispersed and lower in the median.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from fraud_assets.core.data.schema import LABEL

DAY = 86_400
GENUINE_STD = np.array([1.930, 1.636, 1.459, 1.399, 1.357, 1.330, 1.179, 1.161, 1.089, 1.044, 1.003, 0.946, 0.995,
                        0.897, 0.915, 0.845, 0.749, 0.825, 0.812, 0.769, 0.717, 0.724, 0.622, 0.606, 0.521, 0.482,
                        0.400, 0.330])
FRAUD_SHIFT = np.array([-2.48, 2.22, -4.83, 3.25, -2.33, -1.05, -4.73, 0.49, -2.37, -5.45, 3.79, -6.63, -0.11, -7.79,
                        -0.10, -4.91, -8.91, -2.73, 0.84, 0.48, 1.00, 0.02, -0.06, -0.17, 0.08, 0.11, 0.43, 0.23])
FRAUD_STD_RATIO = np.array([3.52, 2.62, 4.87, 2.05, 3.96, 1.40, 6.11, 5.85, 2.30, 4.69, 2.67, 4.92, 1.11, 4.77, 1.15,
                            4.58, 9.30, 3.51, 1.90, 1.75, 5.40, 2.07, 2.54, 0.85, 1.53, 0.98, 3.44, 1.66])
FEATURES = [f"V{index}" for index in range(1, 29)]


@dataclass(frozen=True)
class MixtureVariant:
    name: str
    fraud_rate: float = 0.0017
    hidden_share: float = 0.25  # frauds drawn from the genuine cloud
    hidden_pull: float = 0.05  # ... moved this share of the fraud mean shift
    visible_scale: float = 0.35  # the visible frauds' shift and spread, as a share of ULB's
    tail_df: float = 4.0  # Student-t degrees of freedom of genuine features

    @property
    def visible_mean(self) -> np.ndarray:
        return FRAUD_SHIFT * GENUINE_STD * self.visible_scale

    @property
    def visible_std(self) -> np.ndarray:
        return GENUINE_STD * np.maximum(1.0, FRAUD_STD_RATIO * self.visible_scale)

    @property
    def hidden_mean(self) -> np.ndarray:
        return FRAUD_SHIFT * GENUINE_STD * self.hidden_pull

    @property
    def tail_scale(self) -> np.ndarray:
        return GENUINE_STD / np.sqrt(self.tail_df / (self.tail_df - 2))


VARIANTS = (
    MixtureVariant("mix"),
    MixtureVariant("mix-hidden-40%", hidden_share=0.4),
    MixtureVariant("mix-rate-0.5%", fraud_rate=0.005),
    MixtureVariant("mix-faint", visible_scale=0.2, hidden_pull=0.08),
    MixtureVariant("mix-tails-t3", tail_df=3.0),
)


def _hour_weights(fraud: bool) -> np.ndarray:
    weights = np.ones(24) if fraud else 1.0 + 0.8 * np.sin((np.arange(24) - 8) / 24 * 2 * np.pi)
    return weights / weights.sum()


def _draw(rng: np.random.Generator, variant: MixtureVariant, rows: int, first_day: int, days: int) -> pd.DataFrame:
    labels = (rng.random(rows) < variant.fraud_rate).astype(np.int64)
    features = rng.standard_t(variant.tail_df, (rows, 28)) * variant.tail_scale
    frauds = np.flatnonzero(labels == 1)
    hidden = rng.random(len(frauds)) < variant.hidden_share
    features[frauds[hidden]] += variant.hidden_mean
    features[frauds[~hidden]] = rng.normal(variant.visible_mean, variant.visible_std, (int((~hidden).sum()), 28))
    hours = np.where(labels == 1, rng.choice(24, rows, p=_hour_weights(True)), rng.choice(24, rows, p=_hour_weights(False)))
    times = rng.integers(first_day, first_day + days, rows) * DAY + hours * 3600 + rng.uniform(0, 3600, rows)
    amounts = np.where(labels == 1, rng.lognormal(2.5, 1.8, rows), rng.lognormal(3.0, 1.4, rows))
    order = np.argsort(times)
    frame = pd.DataFrame(features[order], columns=FEATURES)
    frame.insert(0, "Time", times[order])
    frame["Amount"] = np.round(amounts[order], 2)
    frame[LABEL] = labels[order]
    return frame


def true_probability(variant: MixtureVariant, frame: pd.DataFrame) -> np.ndarray:
    """Bayes' rule over the class densities that drew the rows (the amount's rounding to cents
    is ignored: it moves the densities by far less than a cent's share)."""
    features = frame[FEATURES].to_numpy()
    genuine = stats.t.logpdf(features, variant.tail_df, scale=variant.tail_scale).sum(axis=1)
    hidden = stats.t.logpdf(features - variant.hidden_mean, variant.tail_df, scale=variant.tail_scale).sum(axis=1)
    visible = stats.norm.logpdf(features, variant.visible_mean, variant.visible_std).sum(axis=1)
    fraud = np.logaddexp(np.log(variant.hidden_share) + hidden, np.log1p(-variant.hidden_share) + visible)
    hours = ((frame["Time"].to_numpy() % DAY) // 3600).astype(int)
    genuine += np.log(_hour_weights(False)[hours])
    fraud += np.log(_hour_weights(True)[hours])
    amounts = np.maximum(frame["Amount"].to_numpy(), 0.005)
    genuine += stats.lognorm.logpdf(amounts, 1.4, scale=np.exp(3.0))
    fraud += stats.lognorm.logpdf(amounts, 1.8, scale=np.exp(2.5))
    log_odds = np.log(variant.fraud_rate) - np.log1p(-variant.fraud_rate) + fraud - genuine
    return 1.0 / (1.0 + np.exp(-log_odds))


def generate(variant: MixtureVariant, rows_per_day: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Two labelled days to train on, the next day to test on, and its true probabilities."""
    rng = np.random.default_rng(seed)
    train = _draw(rng, variant, 2 * rows_per_day, 0, 2)
    test = _draw(rng, variant, rows_per_day, 2, 1)
    return train, test, true_probability(variant, test)
