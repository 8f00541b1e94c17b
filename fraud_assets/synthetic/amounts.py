"""Transaction amounts of the synthetic data: genuine spending and fraud (card testing, then a
long tail), fitted to the published quartiles, mean and std of each class of the ULB file.

Genuine log-amount is partly driven by a few PCA components, as in the real file.
"""

from __future__ import annotations

import numpy as np

from fraud_assets.core.data.schema import PCA_COLUMNS

# Amount mixtures, fitted to the published quartiles, mean and std of each class.
_GENUINE_ZERO_SHARE = 0.0064
_GENUINE_ONE_SHARE = 0.048
_GENUINE_SMALL_SHARE = 0.247
_GENUINE_SMALL_LOG = (np.log(4.51), 0.8)
_GENUINE_MAIN_LOG = (np.log(46.4), 1.393)
_GENUINE_AMOUNT_CEILING = 26_000.0
# Genuine log-amount correlates with these components in the real file.
_AMOUNT_COUPLING = {"V2": -0.53, "V5": -0.39, "V7": 0.40, "V20": 0.34}
_AMOUNT_COUPLING_STRENGTH = 0.6
# Card testing is 30 % so that, on a few hundred frauds, the first quartile reliably sits
# on the mass at exactly 1.00 as in the real file.
_FRAUD_ZERO_SHARE = 0.06
_FRAUD_ONE_SHARE = 0.22
_FRAUD_CENTS_SHARE = 0.02
_FRAUD_SMALL_SHARE = 0.269
_FRAUD_SMALL_LOG = (np.log(6.18), 0.7)
_FRAUD_MAIN_LOG = (np.log(137.3), 1.259)
_FRAUD_AMOUNT_CEILING = 2_200.0


def amount_latent(rng: np.random.Generator, normals: np.ndarray) -> np.ndarray:
    """Standard-normal driver of genuine log-amount, partly shared with a few components.

    Built from the components' Gaussian cores (before tails are applied), so it is exactly
    standard normal and an extreme V row cannot produce an absurd amount.
    """
    names = list(_AMOUNT_COUPLING)
    coefficients = np.array([_AMOUNT_COUPLING[name] for name in names])
    coefficients /= np.linalg.norm(coefficients)
    shared = coefficients @ normals[[PCA_COLUMNS.index(name) for name in names]]
    strength = _AMOUNT_COUPLING_STRENGTH
    own = rng.standard_normal(normals.shape[1])
    return strength * shared + np.sqrt(1.0 - strength**2) * own


def genuine_amounts(rng: np.random.Generator, latent: np.ndarray, drift: float) -> np.ndarray:
    n = len(latent)
    kind = rng.random(n)
    small_mu, small_sigma = _GENUINE_SMALL_LOG
    main_mu, main_sigma = _GENUINE_MAIN_LOG
    small = np.exp(small_mu + small_sigma * rng.standard_normal(n))
    main = _soft_ceiling(np.exp(main_mu + main_sigma * latent), _GENUINE_AMOUNT_CEILING)
    zero_end = _GENUINE_ZERO_SHARE
    one_end = zero_end + _GENUINE_ONE_SHARE
    amounts = np.where(kind < one_end + _GENUINE_SMALL_SHARE, small, main)
    amounts[kind < one_end] = 1.0
    amounts[kind < zero_end] = 0.0
    return np.round(amounts * (1.0 + drift), 2)


def fraud_amounts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Card testing (0.00, 1.00, cents) for 30 % of frauds, then a long tail."""
    kind = rng.random(n)
    small_mu, small_sigma = _FRAUD_SMALL_LOG
    main_mu, main_sigma = _FRAUD_MAIN_LOG
    bounds = np.cumsum(
        [_FRAUD_ZERO_SHARE, _FRAUD_ONE_SHARE, _FRAUD_CENTS_SHARE, _FRAUD_SMALL_SHARE]
    )
    choices = [
        np.zeros(n),
        np.ones(n),
        rng.uniform(0.01, 0.99, n),
        np.exp(small_mu + small_sigma * rng.standard_normal(n)),
    ]
    main = _soft_ceiling(
        np.exp(main_mu + main_sigma * rng.standard_normal(n)), _FRAUD_AMOUNT_CEILING
    )
    amounts = np.select([kind < bound for bound in bounds], choices, main)
    return np.round(amounts, 2)


def _soft_ceiling(amounts: np.ndarray, ceiling: float) -> np.ndarray:
    # tanh bends the top of the tail under the ceiling instead of piling rows onto it.
    return ceiling * np.tanh(amounts / ceiling)
