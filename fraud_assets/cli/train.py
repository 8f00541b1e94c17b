"""``fraud train``: its own module, as the only command that needs the training libraries."""

from __future__ import annotations

import os

import click

from fraud_assets import settings
from fraud_assets.cli.paths import LOCAL_FS, input_tables
from fraud_assets.cli.progress import Progress, known_rows
from fraud_assets.core.model.search import DEFAULT_MAX_TRIALS  # no Optuna until a search runs
from fraud_assets.core.model.threshold import (  # numpy only
    STRATEGIES,
    ThresholdPolicy,
    strategy_parameters,
)

# What --optimize-threshold can tune; without it the threshold is fixed at 0.5.
_TUNED_STRATEGIES = [strategy for strategy in STRATEGIES if strategy != "fixed"]


@click.command("train")
@click.option("--data", "data_path", required=True, help="Labelled CSV or Parquet file, a folder of them or a glob; local or s3://.")
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
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the split, the booster and the search: the same data and seed give the same model.")
@click.option("--search-budget", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Seconds of hyperparameter search on the validation split; 0 trains the defaults. "
                   "[default: FRAUD_SEARCH_BUDGET_SECONDS, else 60]")
@click.option("--search-trials", type=click.IntRange(min=1), default=DEFAULT_MAX_TRIALS, show_default=True,
              help="Most configurations the search tries (the defaults are the first). A search that "
                   "ends on this count, not the budget, is reproducible from the seed.")
@click.option("--refit/--no-refit", default=None,
              help="Fit the rounds early stopping kept again on train and validation together before "
                   "shipping; --no-refit ships the model trained on train alone. [default: FRAUD_REFIT, else on]")
@click.option("--parallel-trees", type=click.IntRange(min=1), default=None,
              help="Trees grown per boosting round on different row samples and averaged; 1 is plain "
                   "boosting, with a third of the trees to train, score and explain. "
                   "[default: FRAUD_PARALLEL_TREES, else 3]")
def train_command(data_path, output_dir, optimize_threshold, threshold_strategy, missed_fraud_cost,
                  false_alert_cost, alerts_per_day, split_strategy, model_type, seed, search_budget,
                  search_trials, refit, parallel_trees):
    """Train a model; write it with its preprocessing, threshold and metrics.json to DIR."""
    # Imported here: training's libraries (pandas, scikit-learn, xgboost) take seconds, which
    # `fraud --help` and the other commands should not pay.
    from fraud_assets.core.model.training import TrainingConfig
    from fraud_assets.core.storage.locations import write_json_atomic

    _refuse_threshold_options_without_tuning(optimize_threshold)
    _refuse_options_the_strategy_ignores(threshold_strategy)
    tables = input_tables(data_path, "--data")
    if optimize_threshold:
        policy = ThresholdPolicy(threshold_strategy, missed_fraud_cost, false_alert_cost, alerts_per_day)
    else:
        policy = ThresholdPolicy("fixed", threshold=0.5)
    try:
        budget = settings.search_budget_seconds() if search_budget is None else search_budget
        refit = settings.refit_on_validation() if refit is None else refit
        parallel_trees = settings.parallel_trees() if parallel_trees is None else parallel_trees
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    config = TrainingConfig(seed=seed, threshold=policy, search_budget_seconds=budget, search_trials=search_trials,
                            refit_on_validation=refit,
                            parallel_trees=parallel_trees or TrainingConfig.parallel_trees)
    scheduler = settings.dask_scheduler()
    if scheduler:
        model = _train_on_cluster(scheduler, tables, config, split_strategy)
    else:
        model = _train_here(tables, config, split_strategy)
    directory = os.path.abspath(output_dir)
    tracker = settings.tracker()
    if tracker is None:
        model.save(LOCAL_FS, directory)
    else:
        tracker.track_training(model, lambda: model.save(LOCAL_FS, directory))
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
    search = model.manifest.get("search")
    if search:
        click.echo(f"search: trial {search['chosen_trial']} of {len(search['trials'])} chosen in "
                   f"{search['seconds']:.0f} s (manifest.json has every trial)")
    run = model.manifest.get("tracking", {})
    if run.get("run_id"):
        click.echo(f"MLflow run {run['run_id']} in {run['uri']}")
    elif run.get("error"):
        click.echo(f"warning: not tracked in MLflow ({run['error']})", err=True)


def _train_here(tables, config, split_strategy):
    from fraud_assets.core.data.features import fit_preprocessor
    from fraud_assets.core.data.inputs import read_labelled_tables
    from fraud_assets.core.data.splits import require_both_classes, split_transactions
    from fraud_assets.core.model.training import train_fraud_model

    total = known_rows(tables.paths[0]) if tables.is_single_file and not tables.is_remote else None
    with Progress(f"reading {tables.spec}", total=total) as progress:
        frame = read_labelled_tables(tables, on_rows=progress.add)
    splits = split_transactions(frame, strategy=split_strategy, seed=config.seed)
    require_both_classes(splits, tables.spec)
    with Progress("training", unit="boosting round") as progress:
        return train_fraud_model(splits, fit_preprocessor(splits.train), config, on_round=progress.rounds)


def _train_on_cluster(scheduler, tables, config, split_strategy):
    # Dask is imported here only: without a scheduler the command never loads it.
    from fraud_assets.core.cluster.client import cluster_client
    from fraud_assets.core.cluster.training import train_on_cluster

    with cluster_client(scheduler) as client:
        click.echo(f"training on the Dask cluster at {scheduler}", err=True)
        return train_on_cluster(client, tables, config, split_strategy=split_strategy)


_POLICY_OPTIONS = ("missed_fraud_cost", "false_alert_cost", "alerts_per_day")


def _given(names) -> list[str]:
    context = click.get_current_context()
    return [f"--{name.replace('_', '-')}" for name in names
            if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]


def _refuse_options_the_strategy_ignores(strategy: str) -> None:
    # Costs mean nothing to max_f1 or alert_budget, an alert budget nothing to min_cost: a
    # team that passed them would believe its threshold honours them.
    ignored = [name for name in _POLICY_OPTIONS if name not in strategy_parameters(strategy)]
    problems = [f"{option} only applies to --threshold-strategy {_reader_of(option)}, not {strategy}"
                for option in _given(ignored)]
    if problems:
        raise click.UsageError("; ".join(problems))


def _reader_of(option: str) -> str:
    name = option.removeprefix("--").replace("-", "_")
    return " or ".join(s for s in _TUNED_STRATEGIES if name in strategy_parameters(s))


def _refuse_threshold_options_without_tuning(optimize_threshold: bool) -> None:
    # Without --optimize-threshold the threshold is 0.5 whatever the policy says: a strategy
    # or a cost given alone would be silently ignored.
    if optimize_threshold:
        return
    given = _given(("threshold_strategy", *_POLICY_OPTIONS))
    if given:
        raise click.UsageError(f"{', '.join(given)} only apply with --optimize-threshold; add it, or "
                               "leave them out to keep the fixed 0.5 threshold")
