"""Single-purpose commands over local files: generate, train, drift."""

from __future__ import annotations

import json
import os

import click

from fraud_assets.cli.paths import LOCAL_FS, input_table, load_model_dir, output_table
from fraud_assets.core import drift
from fraud_assets.core.evaluation import classification_report
from fraud_assets.core.features import fit_preprocessor
from fraud_assets.core.generate import generate_transactions
from fraud_assets.core.model import FraudModel
from fraud_assets.core.schema import FEATURE_COLUMNS, LABEL
from fraud_assets.core.splits import split_transactions
from fraud_assets.core.storage import write_json_atomic
from fraud_assets.core.tables import iter_transaction_chunks, read_transactions, write_table
from fraud_assets.core.threshold import ThresholdPolicy
from fraud_assets.core.training import TrainingConfig, train_fraud_model


@click.command("generate")
@click.option("--n-samples", type=click.IntRange(min=1), default=284_807, show_default=True)
@click.option("--output", required=True, help="Output file; .csv or .parquet.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--start-day", type=click.IntRange(min=0), default=0, show_default=True,
              help="First day of the data (Time counts seconds from day 0).")
@click.option("--n-days", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--no-labels", is_flag=True, help="Omit Class, as in an incoming batch.")
@click.option("--drift", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Shift the genuine population (0: none; 0.5: clearly drifted).")
def generate_command(n_samples, output, seed, start_day, n_days, no_labels, drift):
    """Generate realistic transactions in the creditcard.csv schema."""
    output_table(output)
    frame = generate_transactions(
        n_samples, seed=seed, start_day=start_day, n_days=n_days, labels=not no_labels, drift=drift
    )
    write_table(frame, os.path.abspath(output))
    frauds = int(frame["Class"].sum()) if "Class" in frame else None
    click.echo(f"wrote {len(frame)} rows to {output}" + (f" ({frauds} frauds)" if frauds is not None else ""))


@click.command("train")
@click.option("--data", "data_path", required=True, help="Labelled CSV or Parquet file.")
@click.option("--output-dir", required=True, type=click.Path(file_okay=False))
@click.option("--optimize-threshold", is_flag=True,
              help="Tune the threshold on validation data (default policy: max F1) instead of 0.5.")
@click.option("--threshold-strategy", type=click.Choice(["max_f1", "min_cost", "alert_budget"]),
              default="max_f1", show_default=True)
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
    input_table(data_path, "--data")
    frame = read_transactions(os.path.abspath(data_path), source=data_path)
    splits = split_transactions(frame, strategy=split_strategy, seed=seed)
    policy = ThresholdPolicy(threshold_strategy, missed_fraud_cost, false_alert_cost, alerts_per_day)
    model = train_fraud_model(
        splits, fit_preprocessor(splits.train), TrainingConfig(seed=seed, threshold=policy)
    )
    if not optimize_threshold:
        model = _with_fixed_threshold(model, 0.5, splits)
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


def _with_fixed_threshold(model: FraudModel, threshold: float, splits) -> FraudModel:
    model.threshold = threshold
    model.manifest["threshold_policy"] = {"strategy": "fixed", "threshold": threshold}
    for name, part in (("validation", splits.validation), ("test", splits.test)):
        scores = model.predict_proba(part.loc[:, list(FEATURE_COLUMNS)].to_numpy("float32"))
        model.manifest["metrics"][name] = classification_report(part[LABEL].to_numpy(), scores, threshold)
    return model


@click.command("drift")
@click.option("--reference", required=True, help="Reference transactions (e.g. the training data).")
@click.option("--current", required=True, help="Current transactions to compare.")
@click.option("--output", help="Write the JSON report here instead of printing it.")
@click.option("--model-dir", help="Also compare model scores, using this model.")
def drift_command(reference, current, output, model_dir):
    """Compare two transaction files feature by feature (PSI and scaled Wasserstein)."""
    input_table(reference, "--reference")
    input_table(current, "--current")
    model = load_model_dir(model_dir) if model_dir else None
    reference_frame = read_transactions(os.path.abspath(reference), require_label=False, source=reference)
    columns = {name: reference_frame[name].to_numpy() for name in drift.DRIFT_FEATURES}
    if model is not None:
        columns[drift.SCORE] = model.predict_proba(
            reference_frame.loc[:, list(model.preprocessor.input_columns)].to_numpy("float32")
        )
    accumulator = drift.DriftAccumulator(drift.build_reference(columns))
    del reference_frame, columns
    for chunk in iter_transaction_chunks(os.path.abspath(current), source=current):
        values = {name: chunk[name].to_numpy() for name in drift.DRIFT_FEATURES}
        if model is not None:
            values[drift.SCORE] = model.predict_proba(
                chunk.loc[:, list(model.preprocessor.input_columns)].to_numpy("float32")
            )
        accumulator.add(values)
    report = accumulator.report()
    if output:
        write_json_atomic(LOCAL_FS, os.path.abspath(output), report)
        click.echo(f"drift_detected={str(report['drift_detected']).lower()} "
                   f"level={report['drift_level']} report={output}")
    else:
        click.echo(json.dumps(report, indent=2))
