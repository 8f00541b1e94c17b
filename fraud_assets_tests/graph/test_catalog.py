"""The catalog every asset shows in the UI: owners, code version, description, stage and domain
tags, column schemas of tables, and freshness policies that match the schedule."""

from datetime import timedelta

import dagster as dg
import pytest

from fraud_assets.definitions import build_definitions
from fraud_assets.defs import catalog
from fraud_assets.defs.automation import LABELS_MATURE_HOUR
from fraud_assets.defs.freshness import WINDOWS
from fraud_assets.defs.schedules import SCORING_HOUR

TABLE_ASSETS = {
    "raw_transactions": catalog.TRANSACTIONS_SCHEMA,
    "training_dataset": catalog.TRAINING_SCHEMA,
    "train_split": catalog.TRAINING_SCHEMA,
    "validation_split": catalog.TRAINING_SCHEMA,
    "test_split": catalog.TRAINING_SCHEMA,
    "daily_predictions": catalog.PREDICTIONS_SCHEMA,
    "challenger_predictions": catalog.PREDICTIONS_SCHEMA,
    "transaction_labels": catalog.LABELS_SCHEMA,
}


@pytest.fixture(scope="module")
def defs():
    return build_definitions("local")


def _specs(defs):
    """Every asset spec, those of multi-assets one by one."""
    return [spec for assets_def in defs.resolve_asset_graph().assets_defs for spec in assets_def.specs]


def test_every_asset_and_every_spec_is_catalogued(defs):
    specs = _specs(defs)
    assert len(specs) == len(defs.resolve_asset_graph().get_all_asset_keys())
    for spec in specs:
        name = spec.key.to_user_string()
        assert spec.owners == catalog.OWNERS, name
        assert spec.code_version, name
        assert spec.description and len(spec.description) > 40, name
        assert spec.tags.get("stage") in catalog.STAGES, name
        assert spec.tags.get("domain") in catalog.DOMAINS, name


def test_table_assets_have_their_column_schema(defs):
    specs = {spec.key.to_user_string(): spec for spec in _specs(defs)}
    for name, schema in TABLE_ASSETS.items():
        declared = specs[name].metadata.get(catalog.COLUMN_SCHEMA)
        assert declared == schema, name
        assert all(column.description and column.type for column in declared.columns), name
    # Only tables claim a schema.
    assert {name for name, spec in specs.items() if catalog.COLUMN_SCHEMA in spec.metadata} == set(TABLE_ASSETS)


def test_column_schemas_come_from_the_core_columns():
    from fraud_assets.core.data.labels import LABEL_COLUMNS
    from fraud_assets.core.data.schema import LABELLED_COLUMNS
    from fraud_assets.core.data.splits import DAY_COLUMN
    from fraud_assets.core.model.scoring import PREDICTION_COLUMNS

    def names(schema):
        return tuple(column.name for column in schema.columns)

    assert names(catalog.TRANSACTIONS_SCHEMA) == LABELLED_COLUMNS
    assert names(catalog.TRAINING_SCHEMA) == (*LABELLED_COLUMNS, DAY_COLUMN)
    assert names(catalog.PREDICTIONS_SCHEMA) == PREDICTION_COLUMNS
    assert names(catalog.LABELS_SCHEMA) == LABEL_COLUMNS


def test_code_versions_differ_between_assets_of_different_logic(defs):
    versions = {spec.key.to_user_string(): spec.code_version for spec in _specs(defs)}
    # One function computes the three splits, another the two serving pointers.
    assert versions["train_split"] == versions["validation_split"] == versions["test_split"]
    assert versions["production_model"] == versions["challenger_model"]
    distinct = {versions[name] for name in versions if name not in (
        "validation_split", "test_split", "challenger_model")}
    assert len(distinct) == len(versions) - 3


def test_tags_refuse_values_no_filter_would_find():
    assert catalog.tags("scoring", "predictions") == {"stage": "scoring", "domain": "predictions"}
    with pytest.raises(ValueError, match="stage"):
        catalog.tags("score", "predictions")
    with pytest.raises(ValueError, match="domain"):
        catalog.tags("scoring", "prediction")


def test_freshness_policies_follow_the_schedule(defs):
    graph = defs.resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).freshness_policy
        for key in graph.get_all_asset_keys()
        if graph.get(key).freshness_policy is not None
    }
    assert set(policies) == {"daily_predictions", "drift_statistics", "realized_performance"}
    scoring_cron = defs.get_schedule_def("daily_scoring_schedule").cron_schedule
    assert scoring_cron == f"0 {SCORING_HOUR} * * *"
    deadlines = {"daily_predictions": 4, "drift_statistics": 5, "realized_performance": LABELS_MATURE_HOUR + 1}
    for name, policy in policies.items():
        assert isinstance(policy, dg.FreshnessPolicy)
        assert policy.deadline_cron == f"0 {deadlines[name]} * * *"
        # The window opens at the scoring cut-off: an earlier refresh is yesterday's.
        assert policy.lower_bound_delta == timedelta(hours=deadlines[name] - SCORING_HOUR)
        assert WINDOWS[name].describe().startswith(f"each day between 02:00 and {deadlines[name]:02d}:00")


@pytest.mark.parametrize("env", ["local", "production"])
def test_definitions_validate_in_both_wirings(env):
    dg.Definitions.validate_loadable(build_definitions(env))
