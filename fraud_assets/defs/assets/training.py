"""Training: fitted preprocessing, the trained model, and the production pointer."""

import dagster as dg

from fraud_assets import settings
from fraud_assets.core.data.features import Preprocessor, fit_preprocessor
from fraud_assets.core.data.splits import Splits
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.threshold import ThresholdPolicy, strategy_parameters
from fraud_assets.core.model.training import TrainingConfig, train_fraud_model
from fraud_assets.defs import catalog
from fraud_assets.defs.automation import after_upstream
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure, retry_only_transient
from fraud_assets.defs.gate_evidence import scored_test_split
from fraud_assets.defs.io_managers import StoredTable
from fraud_assets.defs.presentation import (
    confusion_matrix_markdown,
    markdown_table,
    precision_recall_chart,
)
from fraud_assets.defs.resources import DaskCluster, FraudStorage, MetricsPusher, QualityGate

GROUP = "training"


@dg.asset(
    group_name=GROUP,
    io_manager_key="model_artifact_io_manager",
    ins={"train_split": dg.AssetIn(input_manager_key="stored_table_loader")},
    kinds={"json"},
    retry_policy=TRANSIENT_RETRY,
    owners=catalog.OWNERS,
    tags=catalog.tags("training", "model"),
    code_version=catalog.code_version(__name__, "preprocessing_pipeline"),
)
@retry_only_transient
def preprocessing_pipeline(
    context: dg.AssetExecutionContext, train_split: StoredTable, dask: DaskCluster
) -> dg.MaterializeResult[Preprocessor]:
    """Feature standardisation fitted on the training split only, stored as JSON parameters
    (loaded back without executing code). With a Dask scheduler configured it is fitted from
    sums the workers compute over their partitions."""
    if dask.configured:
        from fraud_assets.core.cluster.datasets import fit_preprocessor_on_cluster

        with dask.client() as client:
            context.log.info("fitting preprocessing on the Dask cluster at %s", dask.scheduler)
            preprocessor, rows = fit_preprocessor_on_cluster(client, train_split.tables())
    else:
        frame = train_split.load()
        preprocessor, rows = fit_preprocessor(frame), len(frame)
    return dg.MaterializeResult(
        value=preprocessor,
        metadata={
            "features": dg.MetadataValue.json(list(preprocessor.feature_names)),
            "fitted_on_rows": rows,
        },
    )


class ModelTrainingConfig(dg.Config):
    # Defaults come from the core's own config, so the UI and the CLI cannot disagree.
    n_estimators: int = TrainingConfig.n_estimators
    learning_rate: float = TrainingConfig.learning_rate
    max_depth: int = TrainingConfig.max_depth
    # Trees grown per boosting round on different row samples and averaged; 1 is plain
    # boosting (a third of the trees to train, score and explain, a little less accurate).
    # None: FRAUD_PARALLEL_TREES (default 3).
    parallel_trees: int | None = None
    early_stopping_rounds: int = TrainingConfig.early_stopping_rounds
    positive_weighting: str = TrainingConfig.positive_weighting
    scale_pos_weight: float | None = TrainingConfig.scale_pos_weight
    seed: int = TrainingConfig.seed
    # None: FRAUD_SEARCH_BUDGET_SECONDS (default 60); 0 trains the settings above as they are.
    search_budget_seconds: float | None = None
    search_trials: int = TrainingConfig.search_trials
    # Fit the rounds early stopping kept again on train and validation before shipping.
    # None: FRAUD_REFIT (default on).
    refit_on_validation: bool | None = None
    threshold_strategy: str = ThresholdPolicy.strategy
    missed_fraud_cost: float = ThresholdPolicy.missed_fraud_cost
    false_alert_cost: float = ThresholdPolicy.false_alert_cost
    alerts_per_day: float = ThresholdPolicy.alerts_per_day

    def _refuse_policy_fields_the_strategy_ignores(self) -> None:
        # A cost set beside max_f1, or an alert budget beside min_cost, would do nothing while
        # the run's config says it was asked for.
        defaults, read = ThresholdPolicy(), strategy_parameters(self.threshold_strategy)
        ignored = [name for name in ("missed_fraud_cost", "false_alert_cost", "alerts_per_day")
                   if name not in read and getattr(self, name) != getattr(defaults, name)]
        if ignored:
            raise ValueError(f"{', '.join(ignored)} set, but threshold_strategy {self.threshold_strategy!r} "
                             "does not read it: min_cost reads the two costs, alert_budget alerts_per_day")

    def _parallel_trees(self) -> int:
        trees = settings.parallel_trees() if self.parallel_trees is None else self.parallel_trees
        return TrainingConfig.parallel_trees if trees is None else trees

    def to_core(self) -> TrainingConfig:
        self._refuse_policy_fields_the_strategy_ignores()
        return TrainingConfig(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            parallel_trees=self._parallel_trees(),
            early_stopping_rounds=self.early_stopping_rounds,
            positive_weighting=self.positive_weighting,
            scale_pos_weight=self.scale_pos_weight,
            seed=self.seed,
            search_budget_seconds=(settings.search_budget_seconds() if self.search_budget_seconds is None
                                   else self.search_budget_seconds),
            search_trials=self.search_trials,
            refit_on_validation=(settings.refit_on_validation() if self.refit_on_validation is None
                                 else self.refit_on_validation),
            threshold=ThresholdPolicy(
                strategy=self.threshold_strategy,
                missed_fraud_cost=self.missed_fraud_cost,
                false_alert_cost=self.false_alert_cost,
                alerts_per_day=self.alerts_per_day,
            ),
        )


# The splits reach fraud_model as addresses: read here in one process, or by the Dask workers.
_STORED_SPLITS = {
    name: dg.AssetIn(input_manager_key="stored_table_loader")
    for name in ("train_split", "validation_split", "test_split")
}


@dg.asset(
    group_name=GROUP,
    io_manager_key="model_io_manager",
    ins=_STORED_SPLITS,
    kinds={"xgboost"},
    retry_policy=TRANSIENT_RETRY,
    owners=catalog.OWNERS,
    tags=catalog.tags("training", "model"),
    code_version=catalog.code_version(__name__, "fraud_model"),
)
@retry_only_transient
def fraud_model(
    context: dg.AssetExecutionContext,
    config: ModelTrainingConfig,
    preprocessing_pipeline: Preprocessor,
    train_split: StoredTable,
    validation_split: StoredTable,
    test_split: StoredTable,
    dask: DaskCluster,
) -> dg.MaterializeResult[FraudModel]:
    """XGBoost classifier whose configuration is searched on the validation split within a
    time budget (Optuna; the trials are in the manifest and in MLflow), with early stopping,
    probabilities calibrated on validation and a decision threshold chosen there.

    Saved in XGBoost's native format as a new registry version; it serves only after
    the quality gate passes and `production_model` promotes it. With a Dask scheduler
    configured (`FRAUD_DASK_SCHEDULER`) the workers read the stored splits and train in
    XGBoost's distributed engine, each streaming its share through external memory; this
    process never holds their rows.
    """
    stored = {"train": train_split, "validation": validation_split, "test": test_split}
    if dask.configured:
        model = _train_on_cluster(context, dask, stored, preprocessing_pipeline, config.to_core())
    else:
        splits = Splits(**{name: table.load() for name, table in stored.items()})
        model = train_fraud_model(splits, preprocessing_pipeline, config.to_core(), run_id=context.run_id)
    test = model.metrics["test"]
    training = model.manifest["training"]
    calibration = model.manifest["calibration"]
    context.log.info("trained %s: test AUPRC %.4f", model.version, test["auprc"])
    return dg.MaterializeResult(
        value=model,
        # The registry IO manager adds model_version: the version it saved.
        metadata={
            "test_auprc": catalog.figure(test["auprc"]),
            "test_roc_auc": catalog.figure(test["roc_auc"]),
            "validation_auprc": catalog.figure(model.metrics["validation"]["auprc"]),
            # Rounded for reading; the exact value that decides is in threshold.json.
            "threshold": catalog.figure(model.threshold, digits=6),
            "threshold_strategy": config.threshold_strategy,
            "precision_at_threshold": catalog.figure(test["precision"]),
            "recall_at_threshold": catalog.figure(test["recall"]),
            "f1_at_threshold": catalog.figure(test["f1"]),
            "confusion_matrix": confusion_matrix_markdown(test["confusion_matrix"]),
            "top_features": markdown_table(
                ["feature", "share of gain"],
                [(f["feature"], f["gain_share"]) for f in model.manifest["top_features"]],
            ),
            "best_iteration": training["best_iteration"],
            # Rows the shipped booster was refitted on (train and validation), or none.
            "refit_rows": (training.get("refit") or {}).get("rows", 0),
            "training_seconds": training.get("total_seconds", training["training_seconds"]),
            **_search_metadata(model.manifest.get("search")),
            "precision_recall_curve": precision_recall_chart(
                model.manifest["pr_curve_test"], (test["recall"], test["precision"])
            ),
            # Whether a probability means the fraud rate; reliability.svg in the bundle draws it.
            "calibration_method": calibration["method"],
            "test_log_loss": catalog.figure(test["log_loss"], digits=6),
            "test_brier": catalog.figure(test["brier"], digits=6),
            "test_calibration_error": catalog.figure(test["calibration_error"], digits=6),
            "reliability_test": markdown_table(
                ["score bin", "rows", "frauds", "mean predicted", "observed rate"],
                [(f"{b['low']:g}-{b['high']:g}", b["rows"], b["frauds"], b["mean_predicted"], b["observed_rate"])
                 for b in calibration["reliability_test"]],
            ),
        },
    )


def _search_metadata(search: dict | None) -> dict:
    if not search:
        return {"search": "none (the configuration as given)"}
    trials = search["trials"]
    return {
        "search_trials": len(trials),
        "search_chosen_trial": search["chosen_trial"],
        "search_chosen": dg.MetadataValue.json(search["chosen"]),
        "search_seconds": search["seconds"],
    }


def _train_on_cluster(context, dask: DaskCluster, stored: dict, preprocessor, config) -> FraudModel:
    # Imported only on this path: without a scheduler no Dask module is loaded.
    from fraud_assets.core.cluster.training import train_split_tables_on_cluster

    with dask.client() as client:
        context.log.info("training on the Dask cluster at %s", dask.scheduler)
        # The splits are this graph's own tables, validated when the workers wrote them.
        return train_split_tables_on_cluster(
            client, {name: table.tables() for name, table in stored.items()}, config,
            preprocessor=preprocessor, run_id=context.run_id, validated=True,
        )


def serving_versions(registry) -> dict[str, str]:
    """The version each role serves now ("none" when the role is empty): the data version of
    `production_model` and `challenger_model`."""
    return {
        "production_model": registry.production_version() or "none",
        "challenger_model": registry.challenger_version() or "none",
    }


# The registry document that says which model each serving asset is.
SERVING_POINTERS = {"production_model": "production.json", "challenger_model": "challenger.json"}


def serving_uri(registry, asset: str) -> str:
    return catalog.uri(registry.location, SERVING_POINTERS[asset])


def serving_result(asset: str, version: str, **metadata) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key=asset,
        data_version=dg.DataVersion(version),
        metadata={"model_version": version, **metadata},
    )


@dg.multi_asset(
    group_name=GROUP,
    ins={"fraud_model": dg.AssetIn(), "test_split": dg.AssetIn(input_manager_key="stored_table_loader")},
    specs=[
        dg.AssetSpec(
            "production_model",
            deps=["fraud_model", "test_split"],
            description="The model that serves; its data version is the model version. The first "
            "model that passes the quality gate serves at once; a later one becomes the challenger "
            "and replaces production only once it beats it on realised labels "
            "(`challenger_evaluation`). `fraud model promote VERSION` overrides (and rolls back); "
            "the serving-model sensor records such changes here.",
            kinds={"xgboost"},
            owners=catalog.OWNERS,
            tags=catalog.tags("deployment", "model"),
            code_version=catalog.code_version(__name__, "model_rollout"),
            automation_condition=after_upstream(),
        ),
        dg.AssetSpec(
            "challenger_model",
            deps=["fraud_model", "test_split"],
            description="The model scored in shadow beside production (`none` while no challenge "
            "runs); its data version is the model version.",
            kinds={"xgboost"},
            owners=catalog.OWNERS,
            tags=catalog.tags("deployment", "model"),
            code_version=catalog.code_version(__name__, "model_rollout"),
            automation_condition=after_upstream(),
        ),
    ],
    retry_policy=TRANSIENT_RETRY,
)
@retry_only_transient
def model_rollout(
    context: dg.AssetExecutionContext,
    fraud_model: FraudModel,
    test_split: StoredTable,
    storage: FraudStorage,
    quality_gate: QualityGate,
    metrics: MetricsPusher,
    dask: DaskCluster,
):
    """Puts the model this run trained where it belongs once it passed the quality gate: in
    production when nothing serves yet, else in shadow as the challenger.

    Runs only when the blocking gate check on `fraud_model` passed; it evaluates the same gate
    again so that materialising it on its own can never put a failing model anywhere.
    """
    registry = storage.registry()
    previous = registry.load_production()
    scores, last_day = scored_test_split(test_split, fraud_model, previous, dask)
    gate = quality_gate.evaluate(fraud_model, previous, scores)
    if not gate.passed:
        raise permanent_failure(gate.describe())
    if previous is None:
        registry.promote(fraud_model.version, reason=gate.describe())
        context.log.info("promoted %s: no model served before", fraud_model.version)
    elif previous.version != fraud_model.version:
        registry.set_challenger(
            fraud_model.version,
            reason=gate.describe(),
            since=settings.today().isoformat(),
            trained_through=last_day,
        )
        context.log.info("%s scores in shadow beside %s", fraud_model.version, previous.version)
    serving = serving_versions(registry)
    metrics.training_outcome(fraud_model, gate, serving_version=registry.production_version())
    yield serving_result(
        "production_model",
        serving["production_model"],
        previous_version=previous.version if previous else "none",
        test_auprc=catalog.figure(gate.candidate_auprc),
        gate=gate.describe(),
        registry=dg.MetadataValue.path(registry.location.url_of("production.json")),
        **{catalog.URI: serving_uri(registry, "production_model")},
    )
    yield serving_result(
        "challenger_model",
        serving["challenger_model"],
        **{catalog.URI: serving_uri(registry, "challenger_model")},
    )
