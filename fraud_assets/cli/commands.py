"""Single-purpose commands over local files: generate, train, score, drift."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from fraud_assets.core import drift
from fraud_assets.core.evaluation import classification_report
from fraud_assets.core.features import Preprocessor, fit_preprocessor
from fraud_assets.core.generate import generate_transactions
from fraud_assets.core.model import FraudModel
from fraud_assets.core.registry import PRODUCTION_POINTER, ModelRegistry
from fraud_assets.core.schema import FEATURE_COLUMNS, LABEL
from fraud_assets.core.scoring import score_file
from fraud_assets.core.splits import split_transactions
from fraud_assets.core.storage import Location, write_json_atomic
from fraud_assets.core.tables import iter_transaction_chunks, read_transactions, table_format, write_table
from fraud_assets.core.threshold import ThresholdPolicy
from fraud_assets.core.training import TrainingConfig, train_fraud_model

_LOCAL = Location("/").fs


def _table_path(value: str) -> str:
    try:
        table_format(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    return value


def _input_table(value: str, hint: str) -> str:
    """An input table: a missing file or a .txt used to end in a traceback (exit 1)."""
    try:
        table_format(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=hint) from error
    if not os.path.isfile(value):
        raise click.BadParameter(f"{value}: no such file", param_hint=hint)
    return value


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
    _table_path(output)
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
    _input_table(data_path, "--data")
    frame = read_transactions(os.path.abspath(data_path), source=data_path)
    splits = split_transactions(frame, strategy=split_strategy, seed=seed)
    policy = ThresholdPolicy(threshold_strategy, missed_fraud_cost, false_alert_cost, alerts_per_day)
    model = train_fraud_model(
        splits, fit_preprocessor(splits.train), TrainingConfig(seed=seed, threshold=policy)
    )
    if not optimize_threshold:
        model = _with_fixed_threshold(model, 0.5, splits)
    directory = os.path.abspath(output_dir)
    model.save(_LOCAL, directory)
    write_json_atomic(_LOCAL, os.path.join(directory, "metrics.json"), model.metrics)
    write_json_atomic(
        _LOCAL, os.path.join(directory, "threshold.json"),
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


def load_model_dir(model_dir: str) -> FraudModel:
    """A model folder, or a registry root (then its production model)."""
    path = os.path.abspath(model_dir)
    if os.path.exists(os.path.join(path, PRODUCTION_POINTER)):
        model = ModelRegistry(Location(path)).load_production()
        assert model is not None
        return model
    if not os.path.exists(os.path.join(path, "manifest.json")):
        raise click.BadParameter(f"{model_dir} holds no model (manifest.json) or registry", param_hint="--model-dir")
    return FraudModel.load(_LOCAL, path)


@click.command("score")
@click.option("--model-dir", required=True, help="Model folder from `fraud train`, or a registry root.")
@click.option("--input", "input_path", required=True, help="Transactions, .csv or .parquet.")
@click.option("--output", "output_path", required=True, help="Predictions, .csv or .parquet.")
@click.option("--preprocessing", type=click.Path(exists=True, dir_okay=False),
              help="Preprocessing JSON to use instead of the model folder's own.")
@click.option("--chunk-rows", type=click.IntRange(min=1000), default=262_144, show_default=True)
def score_command(model_dir, input_path, output_path, preprocessing, chunk_rows):
    """Score a batch file; write predictions and inference_stats.json beside them."""
    _table_path(output_path)
    _input_table(input_path, "--input")
    model = load_model_dir(model_dir)
    if preprocessing:
        if not preprocessing.endswith(".json"):
            raise click.BadParameter("only JSON preprocessing parameters are loaded (no pickles)",
                                     param_hint="--preprocessing")
        try:
            model.preprocessor = Preprocessor.from_json(Path(preprocessing).read_text())
        except (ValueError, KeyError, TypeError) as error:
            # Not JSON, or an unknown kind: a usage error (exit 2), not a traceback.
            raise click.BadParameter(f"{preprocessing}: {error}", param_hint="--preprocessing") from error
    output = os.path.abspath(output_path)
    stats = score_file(model, os.path.abspath(input_path), output, chunk_rows=chunk_rows, source=input_path)
    stats_path = os.path.join(os.path.dirname(output), "inference_stats.json")
    write_json_atomic(_LOCAL, stats_path, {**stats.to_dict(), "input": input_path, "output": output_path})
    click.echo(json.dumps(stats.to_dict()))


@click.command("drift")
@click.option("--reference", required=True, help="Reference transactions (e.g. the training data).")
@click.option("--current", required=True, help="Current transactions to compare.")
@click.option("--output", help="Write the JSON report here instead of printing it.")
@click.option("--model-dir", help="Also compare model scores, using this model.")
def drift_command(reference, current, output, model_dir):
    """Compare two transaction files feature by feature (PSI and scaled Wasserstein)."""
    _input_table(reference, "--reference")
    _input_table(current, "--current")
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
        write_json_atomic(_LOCAL, os.path.abspath(output), report)
        click.echo(f"drift_detected={str(report['drift_detected']).lower()} "
                   f"level={report['drift_level']} report={output}")
    else:
        click.echo(json.dumps(report, indent=2))
