"""Fixtures: two small models, a registry with the first in production, a running service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fraud_assets_tests.service.server import ServiceProcess

RELOAD_INTERVAL = 0.5


def _train(seed: int):
    from fraud_assets.core.data.features import fit_preprocessor
    from fraud_assets.core.data.splits import split_transactions
    from fraud_assets.core.model.training import TrainingConfig, train_fraud_model
    from fraud_assets.synthetic.generate import generate_transactions

    splits = split_transactions(generate_transactions(20_000, seed=seed, fraud_rate=0.01))
    config = TrainingConfig(n_estimators=40, n_threads=2, seed=seed)
    return train_fraud_model(splits, fit_preprocessor(splits.train), config)


@pytest.fixture(scope="session")
def models():
    """Two different small models (different data, so different versions)."""
    first, second = _train(1), _train(2)
    assert first.version != second.version
    return first, second


def make_registry(root: Path, models, production):
    from fraud_assets.core.model.registry import ModelRegistry
    from fraud_assets.core.storage.locations import Location

    registry = ModelRegistry(Location(str(root / "models")))
    for model in models:
        registry.save(model)
    registry.promote(production.version, reason="test setup")
    return registry


@pytest.fixture(scope="session")
def _services(models, tmp_path_factory) -> Iterator[dict]:
    """Both services start together: most of their start-up is imports, which overlap."""
    processes = {}
    try:
        for name in ("shared", "reload"):
            root = tmp_path_factory.mktemp(name)
            registry = make_registry(root, models, production=models[0])
            processes[name] = (ServiceProcess(root, reload_interval=RELOAD_INTERVAL), registry)
        for process, _ in processes.values():
            process.wait_ready()
        yield processes
    finally:
        for process, _ in processes.values():
            process.stop()


@pytest.fixture(scope="session")
def service(_services) -> ServiceProcess:
    """The service of the read-only tests: its production model stays ``models[0]``."""
    return _services["shared"][0]


@pytest.fixture
def reload_service(_services):
    """(service, registry) for the one test that promotes models."""
    return _services["reload"]


@pytest.fixture
def client(service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30.0) as http:
        yield http


@pytest.fixture(scope="session")
def transactions():
    """Unlabelled transactions after the training period, as JSON-ready dicts."""
    from fraud_assets.synthetic.generate import generate_transactions

    # A raised fraud rate, so some transactions are flagged.
    frame = generate_transactions(400, seed=7, start_day=2, n_days=1, labels=False, fraud_rate=0.05)
    return frame.to_dict(orient="records")
