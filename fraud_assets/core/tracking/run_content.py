"""What a training run logs, read from a model's manifest: pure dictionaries, no MLflow.

Keys the manifest does not hold yet (a search's trials, log-loss, Brier) are simply left
out, so a manifest that gains them is logged in full without changes here.
"""

from __future__ import annotations

import json
import math

# Logged as <split>_<key> when present in manifest["metrics"][split].
METRIC_KEYS = ("auprc", "roc_auc", "log_loss", "brier", "precision", "recall", "f1")
SPLITS = ("validation", "test")
PICTURE_FILES = ("pr_curve.svg", "reliability.svg")
_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value


def flat_params(section: dict, prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow parameters (``threshold_policy.strategy``); values as text."""
    params = {}
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            params.update(flat_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            params[name] = text[:_MAX_PARAM_LENGTH]
    return params


def training_params(manifest: dict) -> dict[str, str]:
    params = flat_params(manifest.get("training", {}))
    params.update(flat_params(manifest.get("threshold_policy", {}), "threshold_policy."))
    params["threshold"] = str(manifest.get("threshold"))
    return params


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def training_metrics(manifest: dict) -> dict[str, float]:
    metrics = {}
    for split in SPLITS:
        report = manifest.get("metrics", {}).get(split, {})
        for key in METRIC_KEYS:
            if _finite(report.get(key)):
                metrics[f"{split}_{key}"] = float(report[key])
    return metrics


def data_tags(manifest: dict) -> dict[str, str]:
    """The training data's content hash and the code version, as run tags (searchable)."""
    provenance = manifest.get("provenance", {})
    data = provenance.get("training_data", {})
    code = provenance.get("code", {})
    tags = {
        "fraud.model_version": manifest.get("version"),
        "fraud.data_sha256": data.get("sha256"),
        "fraud.data_rows": data.get("rows"),
        "fraud.git_commit": code.get("git_commit"),
        "fraud.dagster_run_id": provenance.get("dagster_run_id"),
    }
    return {key: str(value) for key, value in tags.items() if value is not None}


def search_trials(manifest: dict) -> list[dict]:
    """The hyperparameter search's trials (``number``, ``params``, ``value``, ``state``,
    ``seconds``); empty when the model was trained without a search."""
    trials = (manifest.get("search") or {}).get("trials") or []
    return [trial for trial in trials if isinstance(trial, dict)]
