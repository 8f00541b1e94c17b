"""Jobs: what the schedules, the sensor and `fraud demo` run."""

import dagster as dg

from fraud_assets.defs.partitions import daily_partitions

# Run tags, read by the run queue's limits (deployment/dagster.yaml) and the failure sensor.
# `fraud/trains` marks every job that trains, so that one training runs at a time whichever
# job carries it.
TRAINS = {"fraud/trains": "true"}

TRAINING_ASSETS = dg.AssetSelection.groups("ingestion", "training")

training_job = dg.define_asset_job(
    "training_job",
    selection=TRAINING_ASSETS,
    tags={"fraud/job": "training", **TRAINS},
    description="Validate the dataset, split it, train, gate and promote a model.",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.assets("daily_predictions"),
    partitions_def=daily_partitions,
    tags={"fraud/job": "scoring"},
    description="Score one day's batch files with the production model.",
)

drift_job = dg.define_asset_job(
    "drift_job",
    selection=dg.AssetSelection.assets("drift_statistics"),
    partitions_def=daily_partitions,
    tags={"fraud/job": "drift"},
    description="Compare one day's transactions and scores with the training reference.",
)

# What arrives later (labels) and what is judged on it run from their own triggers.
LATER_OUTCOMES = dg.AssetSelection.assets("transaction_labels", "realized_performance", "challenger_evaluation")

fraud_pipeline_job = dg.define_asset_job(
    "fraud_pipeline_job",
    selection=dg.AssetSelection.all() - LATER_OUTCOMES,
    partitions_def=daily_partitions,
    tags={"fraud/job": "pipeline", **TRAINS},
    description="The whole graph for one day: train, gate, roll out, score (and shadow-score) "
    "and check drift. "
    "This is what `fraud demo` runs.",
)
