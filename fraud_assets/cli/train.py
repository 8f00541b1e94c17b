"""``fraud train``: its own module, as the only command that needs the training libraries."""

from __future__ import annotations

import os

import click

from fraud_assets.cli.paths import LOCAL_FS, input_table
from fraud_assets.cli.progress import Progress, known_rows
from fraud_assets.core.model.threshold import STRATEGIES, ThresholdPolicy  # numpy only

# What --optimize-threshold can tune; without it the threshold is fixed at 0.5.
_TUNED_STRATEGIES = [strategy for strategy in STRATEGIES if strategy != "fixed"]


@click.command("train")
@click.option("--data", "data_path", required=True, help="Labelled CSV or Parquet file.")
@click.option("--output-dir", required=True, type=click.Path(file_okay=False))
@click.option("--optimize-threshold", is_flag=True,
              help="Tune the threshold on validation data (default policy: max F1) instead of 0.5.")
@click.option("--threshold-strategy", type=click.Choice(_TUNED_STRATEGIES),
              default="max_f1", show_default=True, help="With --optimize-threshold.")
@click.option("--missed-fraud-cost", type=float, default=100.0, show_default=True)
@click.option("--false-alert-cost", type=float, default=1.0, show_default=True)
@click.option("--alerts-per-day", type=float, default=50.0, show_default=True)
@click.option("--split", "split_strategy", type=click.Choice(["time", "stratified"]), default="time",
              show_default=True)
@click.option("--model-type", type=click.Choice(["xgboost"]), default="xgboost", hidden=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_command(data_path, output_dir, optimize_threshold, threshold_strategy, missed_fraud_cost,
                  false_alert_cost, alerts_per_day, split_strategy, model_type, seed):
    """Train a model; write it with its preprocessing, threshold and metrics.json to DIR."""
    # Imported here: training's libraries (pandas, scikit-learn, xgboost) take seconds, which
    # `fraud --help` and the other commands should not pay.
    from fraud_assets.core.data.features import fit_preprocessor
    from fraud_assets.core.data.splits import require_both_classes, split_transactions
    from fraud_assets.core.data.tables import read_transactions
    from fraud_assets.core.model.training import TrainingConfig, train_fraud_model
    from fraud_assets.core.storage.locations import write_json_atomic

    input_table(data_path, "--data")
    with Progress(f"reading {data_path}", total=known_rows(data_path)) as progress:
        frame = read_transactions(os.path.abspath(data_path), source=data_path, on_rows=progress.add)
    splits = split_transactions(frame, strategy=split_strategy, seed=seed)
    require_both_classes(splits, data_path)
    if optimize_threshold:
        policy = ThresholdPolicy(threshold_strategy, missed_fraud_cost, false_alert_cost, alerts_per_day)
    else:
        policy = ThresholdPolicy("fixed", threshold=0.5)
    with Progress("training", unit="boosting round") as progress:
        model = train_fraud_model(
            splits, fit_preprocessor(splits.train), TrainingConfig(seed=seed, threshold=policy),
            on_round=progress.rounds,
        )
    directory = os.path.abspath(output_dir)
    model.save(LOCAL_FS, directory)
    write_json_atomic(LOCAL_FS, os.path.join(directory, "metrics.json"), model.metrics)
    write_json_atomic(
        LOCAL_FS, os.path.join(directory, "threshold.json"),
        {"threshold": model.threshold, "policy": model.manifest["threshold_policy"]},
    )
    test = model.metrics["test"]
    click.echo(
        f"model {model.version} in {output_dir}: test AUPRC {test['auprc']:.4f}, "
        f"ROC-AUC {test['roc_auc']:.4f}, threshold {model.threshold:.4f}"
    )
