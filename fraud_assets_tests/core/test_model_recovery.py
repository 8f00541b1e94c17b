"""Checking a copied model before it serves (core.model.recovery), on a local registry."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from fraud_assets.core.model.bundle import MANIFEST_FILE, MODEL_FILE, PREPROCESSING_FILE
from fraud_assets.core.model.recovery import RecoveryFailed, recover_production, version_problems
from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.storage.locations import Location


@pytest.fixture
def registry(tmp_path, trained_model) -> ModelRegistry:
    registry = ModelRegistry(Location(str(tmp_path / "models")))
    registry.save(trained_model)
    registry.promote(trained_model.version, reason="test")
    return registry


def _manifest_path(registry, version):
    return registry.location.path(version, MANIFEST_FILE)


def test_a_saved_model_records_the_digest_of_every_file(registry, trained_model):
    manifest = json.loads(open(_manifest_path(registry, trained_model.version)).read())
    assert set(manifest["sha256"]) == set(manifest["files"]) >= {MODEL_FILE, PREPROCESSING_FILE}
    model_bytes = open(registry.location.path(trained_model.version, MODEL_FILE), "rb").read()
    assert manifest["sha256"][MODEL_FILE] == hashlib.sha256(model_bytes).hexdigest()
    assert version_problems(registry, trained_model.version) == []


def test_a_changed_preprocessing_file_is_found(registry, trained_model):
    path = registry.location.path(trained_model.version, PREPROCESSING_FILE)
    document = json.loads(open(path).read())
    with open(path, "w") as handle:  # still valid JSON, still loads: only the digest tells
        json.dump(document, handle, indent=1)
    (problem,) = version_problems(registry, trained_model.version)
    assert PREPROCESSING_FILE in problem and "SHA-256" in problem


def test_a_model_saved_without_digests_is_checked_by_its_version(registry, trained_model):
    """Models saved before manifests carried digests: the version names the model file's."""
    version = trained_model.version
    manifest = json.loads(open(_manifest_path(registry, version)).read())
    del manifest["sha256"]
    open(_manifest_path(registry, version), "w").write(json.dumps(manifest))
    assert version_problems(registry, version) == []
    model_path = registry.location.path(version, MODEL_FILE)
    damaged = bytearray(open(model_path, "rb").read())
    damaged[-10] ^= 0x01
    open(model_path, "wb").write(bytes(damaged))
    (problem,) = version_problems(registry, version)
    assert MODEL_FILE in problem and "SHA-256" in problem


def test_an_incomplete_model_names_an_earlier_complete_one(registry, trained_model, tmp_path):
    older = trained_model.version
    newer = dataclasses.replace(trained_model, version="xgb-20990101T000000Z-00000000")
    registry.save(newer)
    registry.promote(newer.version, reason="test")
    (tmp_path / "models" / newer.version / MODEL_FILE).unlink()
    with pytest.raises(RecoveryFailed) as failed:
        recover_production(registry)
    assert f"{MODEL_FILE} missing" in str(failed.value)
    assert f"fraud model promote {older}" in str(failed.value)
