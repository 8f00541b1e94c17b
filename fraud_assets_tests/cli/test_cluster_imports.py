"""Without ``FRAUD_DASK_SCHEDULER`` the single-process path stays as it was: no Dask import."""

from __future__ import annotations

from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.import_probe import CLUSTER_LIBRARIES, loaded_after, run_fraud, without_cluster


def test_cli_definitions_training_and_scoring_modules_import_no_dask():
    loaded = loaded_after(
        "import fraud_assets.cli, fraud_assets.definitions\n"
        "import fraud_assets.core.model.training, fraud_assets.core.model.scoring\n"
        "import fraud_assets.cli.train, fraud_assets.cli.score\n"
        "import fraud_assets.defs.resources, fraud_assets.defs.assets.training\n",
        env=without_cluster(),
    )
    assert "dagster" in loaded and "xgboost" in loaded  # the probe sees what was imported
    assert not set(CLUSTER_LIBRARIES) & set(loaded)


def test_train_and_score_without_a_scheduler_import_no_dask(tmp_path):
    data = tmp_path / "train.csv"
    generate_transactions(20_000, seed=5).to_csv(data, index=False)
    _, loaded = run_fraud(["train", "--data", str(data), "--output-dir", str(tmp_path / "model")],
                          env=without_cluster())
    assert "xgboost" in loaded
    assert not set(CLUSTER_LIBRARIES) & set(loaded)
    _, loaded = run_fraud(["score", "--model-dir", str(tmp_path / "model"), "--input", str(data),
                           "--output", str(tmp_path / "scored.csv")], env=without_cluster())
    assert not set(CLUSTER_LIBRARIES) & set(loaded)
