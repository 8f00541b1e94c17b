"""Synthetic card transactions in the schema of the ULB ``creditcard.csv`` file.

The real file cannot be shipped, so tests, demos and drift drills run on rows drawn from a
generative model fitted by hand to its published statistics (``shared/ULB_STATS.md``):

* **Time.** Row times follow an hour-of-day volume profile (quiet from about 01:00 to 07:00).
  Fraud volume is flatter over the day, so a row's fraud probability is the base rate times
  the ratio of fraud to total intensity at its hour: the night-time fraud rate comes out
  higher, while prevalence over whole days stays at ``fraud_rate``. Labels are drawn per row,
  so the fraud count is binomial.
* **Genuine V1..V28.** Class-0 mean plus class-0 std times a standardised Gaussian scale
  mixture: a few percent of rows are "unusual" (moderately wider) and a few per mille are
  "extreme" (far out, skewed the way the real components are). Both kinds are shared across
  a row's features, as odd transactions are odd in many components, yet extremes have mean
  0 per feature, so genuine features stay uncorrelated. This reproduces the large kurtosis of
  the real file, with genuine rows carrying the biggest outliers.
* **Fraud V1..V28.** Every fraud follows one of a few patterns, each moving its own block of
  features and widening its own "variance-only" features (V5, V8, V21, V27, ...). *Hard*
  frauds (about a quarter) are genuine draws with the pattern's variance-only features
  widened and only a few percent of its mean shift: they sit inside the genuine cloud, which
  keeps average precision near the real file's and leaves linear models behind trees.
  The other frauds carry the full pattern offset (times a mildly random severity) plus
  Student-t noise; offsets and noise are solved so that the class-1 mean and std of every
  feature match the published ones.
* **Amount.** Genuine: point masses at 0.00 and 1.00 plus two log-normal bodies (small
  purchases, everyday spending), the latter tied to V2, V5, V7 and V20 as in the real file.
  Fraud: card testing (0.00, exactly 1.00, a few cents) for 30 %, then a small and
  a large log-normal body bent under a ceiling near 2,200.
* **Drift.** ``drift`` moves the genuine population (genuine rows and the hard frauds that
  imitate them): the means of :data:`DRIFT_FEATURES` shift by ``drift`` class-0 stds and
  genuine amounts grow by ``1 + drift``. Patterned frauds do not move.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from fraud_assets.core.data.schema import (
    FEATURE_COLUMNS,
    LABEL,
    PCA_COLUMNS,
    SECONDS_PER_DAY,
)
from fraud_assets.synthetic.amounts import amount_latent, fraud_amounts, genuine_amounts

ULB_FRAUD_RATE = 0.001727

#: Features whose genuine mean moves under ``drift``, with the direction of the move.
DRIFT_FEATURES: dict[str, int] = {"V1": -1, "V2": 1, "V3": 1, "V5": -1, "V6": 1, "V7": 1}

# Published class-conditional moments of V1..V28, in PCA_COLUMNS order.
# fmt: off
_GENUINE_MEAN = np.array([
    0.0083, -0.0063, 0.0122, -0.0079, 0.0055, 0.0024, 0.0096, -0.0010, 0.0045, 0.0098,
    -0.0066, 0.0108, 0.0002, 0.0121, 0.0002, 0.0072, 0.0115, 0.0039, -0.0012, -0.0006,
    -0.0012, -0.0000, 0.0001, 0.0002, -0.0001, -0.0001, -0.0003, -0.0001,
])
_GENUINE_STD = np.array([
    1.930, 1.636, 1.459, 1.399, 1.357, 1.330, 1.179, 1.161, 1.089, 1.044,
    1.003, 0.946, 0.995, 0.897, 0.915, 0.845, 0.749, 0.825, 0.812, 0.769,
    0.717, 0.724, 0.622, 0.606, 0.521, 0.482, 0.400, 0.330,
])
_FRAUD_MEAN = np.array([
    -4.772, 3.624, -7.033, 4.542, -3.151, -1.398, -5.569, 0.571, -2.581, -5.677,
    3.800, -6.259, -0.109, -6.972, -0.093, -4.140, -6.666, -2.246, 0.681, 0.372,
    0.714, 0.014, -0.040, -0.105, 0.041, 0.052, 0.171, 0.076,
])
_FRAUD_STD = np.array([
    6.784, 4.291, 7.111, 2.873, 5.372, 1.858, 7.207, 6.798, 2.501, 4.897,
    2.679, 4.654, 1.105, 4.279, 1.050, 3.865, 6.971, 2.899, 1.540, 1.347,
    3.869, 1.495, 1.580, 0.516, 0.797, 0.472, 1.377, 0.547,
])
# fmt: on
_N_PCA = len(PCA_COLUMNS)
_COLUMN_INDEX = {name: i for i, name in enumerate(PCA_COLUMNS)}

# Relative transaction volume per hour of day, shaped like the real file's two days.
# fmt: off
_HOURLY_VOLUME = np.array([
    7.7, 4.2, 3.3, 3.5, 2.2, 3.0, 4.1, 7.2, 10.3, 15.8, 16.6, 16.9,
    15.4, 15.4, 16.6, 16.5, 16.5, 16.2, 17.0, 15.6, 16.8, 17.7, 15.4, 10.9,
])
# fmt: on
# Share of fraud volume that ignores the daily cycle; the rest follows it like genuine volume.
_FRAUD_FLAT_SHARE = 0.85

# Genuine tails: row shares of the two outlier kinds, and per-feature widths picked so the
# kurtosis roughly follows the real components (V4, V11, V13 near-normal; V5, V7, V28 huge).
_UNUSUAL_ROW_SHARE = 0.05
_EXTREME_ROW_SHARE = 0.003
_UNUSUAL_WIDTH, _LIGHT_UNUSUAL_WIDTH = 2.5, 1.5
_LIGHT_TAILED = ("V4", "V9", "V11", "V13", "V15", "V18", "V19", "V22", "V24", "V25", "V26")
_HEAVY_TAILED = ("V2", "V17")
_VERY_HEAVY_TAILED = ("V5", "V7", "V8", "V20", "V21", "V23", "V27", "V28")
_EXTREME_WIDTH = 9.0
_EXTREME_WIDTHS = ((_LIGHT_TAILED, 3.0), (_HEAVY_TAILED, 13.0), (_VERY_HEAVY_TAILED, 17.0))
# Extremes lean to one side in the real components (V1's minimum is -56, its maximum 2.5):
# the long side is hit less often but further out.
# fmt: off
_EXTREME_SKEW = {
    "V1": -1, "V2": -1, "V3": -1, "V5": -1, "V6": 1, "V7": 1, "V8": -1, "V10": 1,
    "V12": -1, "V14": -1, "V17": -1, "V20": 1, "V21": 1, "V23": -1, "V27": -1, "V28": 1,
}
# fmt: on
_LONG_SIDE_PROBABILITY = 0.3
_LONG_SIDE_SIZE = 1.4


@dataclass(frozen=True)
class _FraudPattern:
    name: str
    weight: float
    shifted: tuple[str, ...]
    widened: tuple[str, ...]


# Fraud schemes move different feature blocks; together with the variance-only features this
# is what lets trees beat linear models on this data. Features outside every ``shifted``
# block still move, by the same amount in every pattern.
_FRAUD_PATTERNS = (
    _FraudPattern(
        "counterfeit",
        0.45,
        shifted=("V1", "V3", "V5", "V6", "V7", "V9", "V10", "V12", "V14", "V16", "V17", "V18"),
        widened=("V8", "V7"),
    ),
    _FraudPattern(
        "card_not_present",
        0.35,
        shifted=("V1", "V2", "V4", "V9", "V10", "V11", "V12", "V14", "V19"),
        widened=("V21", "V27", "V20"),
    ),
    _FraudPattern(
        "account_takeover",
        0.20,
        shifted=("V3", "V4", "V11", "V14", "V17"),
        widened=("V5", "V8", "V21", "V23", "V27", "V28"),
    ),
)
# Hard frauds: share of all frauds; the fraction of their pattern's mean shift they carry;
# how much wider their pattern's variance-only features are than a genuine row's. Tuned so a
# tree model lands near the real file's average precision (about 0.8) and ROC-AUC (0.98).
_HARD_FRAUD_SHARE = 0.25
_HARD_FRAUD_PULL = 0.05
_HARD_FRAUD_WIDENING = 5.0
# Severity multiplies a patterned fraud's offset (Gamma, mean 1). The published stds of V4
# and V14 leave room for only a little spread, so it is mild.
_SEVERITY_SHAPE = 44.0
# Share of a feature's patterned-fraud variance that may come from differences between
# patterns (the rest is within-pattern noise), and the least noise std, in genuine stds.
_PATTERN_SHARE_OF_VARIANCE = 0.6
_NOISE_FLOOR = 0.3
_FRAUD_NOISE_DF = 5.0
# Variance of a patterned fraud's widened features relative to its other features.
_WIDE_VARIANCE_FACTOR = 3.0

# Keeps this generator's random stream apart from any other user of the same seed.
_STREAM_TAG = 0x5EED_F4A0D


def generate_transactions(
    n_samples: int,
    *,
    seed: int = 0,
    start_day: int = 0,
    n_days: float = 2.0,
    labels: bool = True,
    drift: float = 0.0,
    fraud_rate: float = ULB_FRAUD_RATE,
) -> pd.DataFrame:
    """Draw ``n_samples`` transactions in ``[start_day, start_day + n_days)`` days.

    Columns are ``Time, V1..V28, Amount`` (float64; Time in whole seconds since day 0,
    Amount in cents) and, when ``labels`` is true, ``Class`` (int64, 1 = fraud); rows are in
    time order. The result depends only on the arguments, and ``start_day`` is part of the
    seed, so consecutive days of one seed are different draws. ``drift`` >= 0 moves the
    genuine population (see :data:`DRIFT_FEATURES`); ``fraud_rate`` is the expected
    prevalence over whole days.
    """
    _check_arguments(n_samples, start_day, n_days, drift, fraud_rate)
    rng = _rng_for(seed, start_day)

    times = _draw_times(rng, n_samples, start_day, n_days)
    is_fraud = rng.random(n_samples) < _fraud_probability(times, fraud_rate)
    fraud_rows = np.flatnonzero(is_fraud)
    hard = rng.random(len(fraud_rows)) < _HARD_FRAUD_SHARE

    # One (30, n) block whose rows become the frame's float columns without a copy.
    block = np.empty((len(FEATURE_COLUMNS), n_samples))
    block[0] = times
    pca = block[1 : 1 + _N_PCA]
    rng.standard_normal(out=pca)
    latent = amount_latent(rng, pca)
    _apply_heavy_tails(rng, pca)
    _disguise_hard_frauds(rng, pca, fraud_rows[hard])
    _scale_to_genuine(pca, drift)
    pca[:, fraud_rows[~hard]] = _patterned_frauds(rng, int((~hard).sum()))

    amounts = block[1 + _N_PCA]
    amounts[:] = genuine_amounts(rng, latent, drift)
    amounts[fraud_rows] = fraud_amounts(rng, len(fraud_rows))

    frame = pd.DataFrame(block.T, columns=list(FEATURE_COLUMNS), copy=False)
    if labels:
        frame[LABEL] = is_fraud.astype(np.int64)
    return frame


def _check_arguments(
    n_samples: int, start_day: int, n_days: float, drift: float, fraud_rate: float
) -> None:
    for name, value in (("n_samples", n_samples), ("start_day", start_day)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not np.isfinite(n_days) or n_days <= 0:
        raise ValueError(f"n_days must be a positive number, got {n_days}")
    if not np.isfinite(drift) or drift < 0:
        raise ValueError(f"drift must be >= 0, got {drift}")
    if not 0.0 <= fraud_rate <= 1.0:
        raise ValueError(f"fraud_rate must lie in [0, 1], got {fraud_rate}")


def _rng_for(seed: int, start_day: int) -> np.random.Generator:
    # SeedSequence wants non-negative entropy; wrapping keeps negative seeds usable.
    entropy = [int(seed) % 2**64, int(start_day), _STREAM_TAG]
    return np.random.default_rng(np.random.SeedSequence(entropy))


# --------------------------------------------------------------------------- time and labels


def _draw_times(rng: np.random.Generator, n: int, start_day: int, n_days: float) -> np.ndarray:
    """Sorted whole seconds in the window, denser in busy hours."""
    start = float(start_day) * SECONDS_PER_DAY
    end = start + float(n_days) * SECONDS_PER_DAY
    edges = np.append(np.arange(start, end, 3600.0), end)
    lengths = np.diff(edges)
    weights = _HOURLY_VOLUME[_hour_of(edges[:-1])] * lengths
    bins = rng.choice(len(lengths), size=n, p=weights / weights.sum())
    # start is a whole second, so flooring stays inside [start, end).
    times = np.floor(edges[bins] + rng.random(n) * lengths[bins])
    times.sort()
    return times


def _hour_of(seconds: np.ndarray) -> np.ndarray:
    return (np.floor(seconds / 3600.0) % 24).astype(np.intp)


def _fraud_probability(times: np.ndarray, fraud_rate: float) -> np.ndarray:
    """Per-row fraud probability; averages to ``fraud_rate`` over whole days."""
    relative_volume = _HOURLY_VOLUME / _HOURLY_VOLUME.mean()
    fraud_to_total = _FRAUD_FLAT_SHARE / relative_volume + (1.0 - _FRAUD_FLAT_SHARE)
    return np.minimum(fraud_rate * fraud_to_total[_hour_of(times)], 1.0)


# --------------------------------------------------------------------------- genuine V1..V28


@dataclass(frozen=True)
class _TailDesign:
    """Per-feature parameters of the genuine scale mixture."""

    unusual_width: np.ndarray
    long_side_probability: np.ndarray
    long_side: np.ndarray  # signed extreme width on the long side
    short_side: np.ndarray  # signed extreme width on the other side
    std: np.ndarray  # of the mixture, to standardise it


@lru_cache(maxsize=1)
def _tail_design() -> _TailDesign:
    unusual = np.full(_N_PCA, _UNUSUAL_WIDTH)
    unusual[[_COLUMN_INDEX[name] for name in _LIGHT_TAILED]] = _LIGHT_UNUSUAL_WIDTH
    extreme = np.full(_N_PCA, _EXTREME_WIDTH)
    for names, width in _EXTREME_WIDTHS:
        extreme[[_COLUMN_INDEX[name] for name in names]] = width

    # Sizes on the two sides balance (p * long = (1 - p) * short), so extremes have mean 0
    # and shared extreme rows add no correlation between features.
    probability = np.full(_N_PCA, 0.5)
    long_size = np.ones(_N_PCA)
    short_size = -np.ones(_N_PCA)
    for name, side in _EXTREME_SKEW.items():
        index = _COLUMN_INDEX[name]
        probability[index] = _LONG_SIDE_PROBABILITY
        long_size[index] = side * _LONG_SIDE_SIZE
        short_size[index] = (
            -long_size[index] * _LONG_SIDE_PROBABILITY / (1.0 - _LONG_SIDE_PROBABILITY)
        )
    extreme_second_moment = extreme**2 * (
        probability * long_size**2 + (1.0 - probability) * short_size**2
    )
    variance = (
        1.0
        - _UNUSUAL_ROW_SHARE
        - _EXTREME_ROW_SHARE
        + _UNUSUAL_ROW_SHARE * unusual**2
        + _EXTREME_ROW_SHARE * extreme_second_moment
    )
    return _TailDesign(
        unusual_width=unusual,
        long_side_probability=probability,
        long_side=extreme * long_size,
        short_side=extreme * short_size,
        std=np.sqrt(variance),
    )


def _apply_heavy_tails(rng: np.random.Generator, noise: np.ndarray) -> None:
    """Turn (28, n) standard normals, in place, into mean-0 std-1 draws with ULB-like tails."""
    design = _tail_design()
    kind = rng.random(noise.shape[1])
    unusual_rows = np.flatnonzero(kind < _UNUSUAL_ROW_SHARE)
    extreme_rows = np.flatnonzero(kind > 1.0 - _EXTREME_ROW_SHARE)
    noise[:, unusual_rows] *= design.unusual_width[:, None]
    on_long_side = rng.random((_N_PCA, len(extreme_rows))) < design.long_side_probability[:, None]
    width = np.where(on_long_side, design.long_side[:, None], design.short_side[:, None])
    noise[:, extreme_rows] = np.abs(noise[:, extreme_rows]) * width
    noise /= design.std[:, None]


def _scale_to_genuine(noise: np.ndarray, drift: float) -> None:
    """Turn standardised noise, in place, into genuine V values of the drifted population."""
    noise *= _GENUINE_STD[:, None]
    noise += (_GENUINE_MEAN + _drift_shift(drift))[:, None]


def _drift_shift(drift: float) -> np.ndarray:
    shift = np.zeros(_N_PCA)
    for name, side in DRIFT_FEATURES.items():
        index = _COLUMN_INDEX[name]
        shift[index] = side * drift * _GENUINE_STD[index]
    return shift


# --------------------------------------------------------------------------- fraud V1..V28


@dataclass(frozen=True)
class _FraudDesign:
    """Per (pattern, feature) parameters of the fraud model."""

    weights: np.ndarray
    offsets: np.ndarray  # patterned frauds' mean minus the genuine mean, in V units
    noise_std: np.ndarray  # patterned frauds' noise, in V units
    hard_shift: np.ndarray  # hard frauds' mean shift, in genuine stds
    hard_widening: np.ndarray


@lru_cache(maxsize=1)
def _fraud_design() -> _FraudDesign:
    """Solve pattern offsets and noise so that all frauds match the class-1 moments.

    Hard frauds have moments fixed by construction; patterned frauds must supply whatever
    mean and variance bring the class totals to the published values. The published stds
    leave little room on some features (V4 and V14 sit about 6 and 9 stds from genuine in
    nearly every fraud), so how far patterns may differ on a feature is capped by that
    feature's variance budget.
    """
    weights = np.array([p.weight for p in _FRAUD_PATTERNS])
    weights = weights / weights.sum()
    shifted = np.zeros((len(weights), _N_PCA))
    widened = np.zeros((len(weights), _N_PCA), dtype=bool)
    for row, pattern in enumerate(_FRAUD_PATTERNS):
        shifted[row, [_COLUMN_INDEX[name] for name in pattern.shifted]] = 1.0
        widened[row, [_COLUMN_INDEX[name] for name in pattern.widened]] = True
    hard_widening = np.where(widened, _HARD_FRAUD_WIDENING, 1.0)
    noise_widening = np.where(widened, _WIDE_VARIANCE_FACTOR, 1.0)
    noise_widening /= weights @ noise_widening

    h, pull = _HARD_FRAUD_SHARE, _HARD_FRAUD_PULL
    gap = _FRAUD_MEAN - _GENUINE_MEAN
    patterned_gap = gap * (1.0 - h * pull) / (1.0 - h)

    def patterned_variance(hard_variance: np.ndarray) -> np.ndarray:
        between_kinds = h * (1.0 - h) * ((patterned_gap - pull * gap) ** 2)
        return (_FRAUD_STD**2 - h * hard_variance - between_kinds) / (1.0 - h)

    # Pattern directions are gap * (1 + contrast * deviation). Deviations average 0 over
    # patterns, which keeps the class mean; contrast stops where an offset would reach 0.
    deviation = shifted - weights @ shifted
    deviation_variance = weights @ deviation**2
    severity_variance = 1.0 / _SEVERITY_SHAPE
    hard_within = _GENUINE_STD**2 * (weights @ hard_widening**2)
    relative_budget = patterned_variance(hard_within) / np.maximum(patterned_gap**2, 1e-12)
    wanted = np.maximum(_PATTERN_SHARE_OF_VARIANCE * relative_budget - severity_variance, 0.0)
    contrast = np.sqrt(wanted / ((1.0 + severity_variance) * np.maximum(deviation_variance, 1e-12)))
    largest_contrast = 1.0 / np.maximum(np.max(-deviation, axis=0), 1e-12)
    contrast = np.where(deviation_variance > 0, np.minimum(contrast, largest_contrast), 0.0)
    direction = 1.0 + contrast * deviation

    offsets = patterned_gap * direction
    hard_means = pull * gap * direction
    hard_variance = hard_within + weights @ hard_means**2 - (pull * gap) ** 2
    between_patterns = (1.0 + severity_variance) * (weights @ offsets**2) - patterned_gap**2
    floor = (_NOISE_FLOOR * _GENUINE_STD) ** 2
    noise_variance = np.maximum(patterned_variance(hard_variance) - between_patterns, floor)
    return _FraudDesign(
        weights=weights,
        offsets=offsets,
        noise_std=np.sqrt(noise_widening * noise_variance),
        hard_shift=hard_means / _GENUINE_STD,
        hard_widening=hard_widening,
    )


def _disguise_hard_frauds(rng: np.random.Generator, noise: np.ndarray, rows: np.ndarray) -> None:
    """Turn the standardised genuine noise of ``rows``, in place, into hard frauds."""
    design = _fraud_design()
    pattern = rng.choice(len(design.weights), size=len(rows), p=design.weights)
    noise[:, rows] = noise[:, rows] * design.hard_widening[pattern].T + design.hard_shift[pattern].T


def _patterned_frauds(rng: np.random.Generator, n: int) -> np.ndarray:
    """(28, n) V values of frauds that carry their pattern's full offset."""
    design = _fraud_design()
    pattern = rng.choice(len(design.weights), size=n, p=design.weights)
    severity = rng.gamma(_SEVERITY_SHAPE, 1.0 / _SEVERITY_SHAPE, size=n)
    df = _FRAUD_NOISE_DF
    noise = rng.standard_t(df, size=(_N_PCA, n)) / np.sqrt(df / (df - 2.0))
    return (
        _GENUINE_MEAN[:, None]
        + design.offsets[pattern].T * severity
        + design.noise_std[pattern].T * noise
    )


# --------------------------------------------------------------------------- Amount
