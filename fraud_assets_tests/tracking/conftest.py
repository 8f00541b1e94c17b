"""Tracking tests: MLflow on, in an embedded SQLite store under a throwaway local folder."""

import copy

import pytest


@pytest.fixture
def tracked_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_TRACKING", "on")
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUD_ENV", "local")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def model_copy(model, version: str, **manifest):
    """The session model under another version, its manifest extended (the original untouched)."""
    copied = copy.copy(model)
    copied.version = version
    copied.manifest = {**copy.deepcopy(model.manifest), **manifest}
    return copied
