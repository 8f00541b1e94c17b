"""Session fixtures shared by the core and CLI tests: small generated frames, one small model.

Imports of ``fraud_assets`` happen inside the fixtures, so folders that must not import the
package (deployment/) are unaffected by this file.
"""

from __future__ import annotations

import os

import pytest

# Set for the whole session, session fixtures included (they run before any function-scoped
# monkeypatch): MLflow tracking costs ~4 s of SQLite migrations per fresh folder and would
# write an mlflow/ store into the working directory, and the hyperparameter search spends its
# whole budget on every training; the refit on validation is one more fit per training, and
# three trees a round (the shipped default) triple every fit's trees. The tests of each turn
# them on themselves. Steps that fail on storage are retried at once:
# execute_in_process ignores the executor's `retries` config, so the tests of storage outages
# would otherwise wait out the 10 s and 20 s backoffs.
os.environ.setdefault("FRAUD_TRACKING", "off")
os.environ.setdefault("FRAUD_SEARCH_BUDGET_SECONDS", "0")
os.environ.setdefault("FRAUD_REFIT", "off")
os.environ.setdefault("FRAUD_PARALLEL_TREES", "1")
os.environ.setdefault("FRAUD_RETRY_DELAY_SECONDS", "0")

# Service fixtures that several folders share (the local S3 server).
pytest_plugins = ["fraud_assets_tests.services.s3_server"]

# A raised fraud rate gives every split of a small sample enough frauds to train and
# evaluate on, so the whole model is trained in about two seconds.
FRAUD_RATE = 0.01
LABELLED_ROWS = 30_000


@pytest.fixture(scope="session")
def labelled_frame():
    """30k labelled rows over two days, Time in whole seconds like the real file."""
    from fraud_assets.synthetic.generate import generate_transactions
    from fraud_assets_tests.ulb_files import ulb_like

    return ulb_like(generate_transactions(LABELLED_ROWS, seed=11, fraud_rate=FRAUD_RATE))


@pytest.fixture(scope="session")
def batch_frame():
    """An unlabelled day of 5,000 transactions after the training period."""
    from fraud_assets.synthetic.generate import generate_transactions

    return generate_transactions(5_000, seed=5, start_day=2, n_days=1, labels=False)


@pytest.fixture(scope="session")
def time_splits(labelled_frame):
    from fraud_assets.core.data.splits import split_transactions

    return split_transactions(labelled_frame, strategy="time")


@pytest.fixture(scope="session")
def fast_config():
    from fraud_assets.core.model.training import TrainingConfig

    # Fewer, larger steps than the defaults, one tree a round (the shipped three would
    # triple every fit; the forest has tests of its own), and frauds up-weighted so the
    # log-odds correction has something to correct: a model in about two seconds.
    return TrainingConfig(n_estimators=60, early_stopping_rounds=20, learning_rate=0.2, max_depth=4,
                          parallel_trees=1, positive_weighting="sqrt_ratio", eval_metric="aucpr", n_threads=2,
                          seed=0)


@pytest.fixture(scope="session")
def trained_model(time_splits, fast_config):
    """One small model for the whole session; tests must not mutate it."""
    from fraud_assets.core.data.features import fit_preprocessor
    from fraud_assets.core.model.training import train_fraud_model

    return train_fraud_model(time_splits, fit_preprocessor(time_splits.train), fast_config)


@pytest.fixture(scope="session")
def model_dir(trained_model, tmp_path_factory):
    """The session model saved as a bundle folder (model.ubj, preprocessing/manifest.json)."""
    import fsspec

    directory = tmp_path_factory.mktemp("model")
    trained_model.save(fsspec.filesystem("file"), str(directory))
    return directory


@pytest.fixture(autouse=True)
def _tracking_off_unless_asked(monkeypatch):
    """MLflow tracking is on by default, but its SQLite store costs ~4 s of migrations per
    fresh folder: tests that do not test tracking turn it off (fraud_assets_tests/tracking/
    turns it back on)."""
    monkeypatch.setenv("FRAUD_TRACKING", "off")
