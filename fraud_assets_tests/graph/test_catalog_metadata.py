"""What each materialisation tells the catalog: row counts (per partition where partitioned),
where the asset lives, and tables whose stored columns are the ones their schema declares."""

from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import pandas as pd
import pytest

from fraud_assets.definitions import build_definitions
from fraud_assets.defs import catalog

from .conftest import DAY, check_results, run_pipeline, write_batch
from .test_loop import write_labels

NEXT_DAY = "2025-03-05"


def metadata(instance, asset: str, partition: str | None = None) -> dict:
    key = dg.AssetKey(asset)
    if partition is None:
        event = instance.get_latest_materialization_event(key)
    else:
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        event = record.event_log_entry
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(unquote(parsed.path))


def schema_names(schema: dg.TableSchema) -> list[str]:
    return [column.name for column in schema.columns]


@pytest.fixture
def pipeline(project, instance):
    assert run_pipeline(instance).success
    return project


def test_unpartitioned_tables_report_rows_and_location(pipeline, instance):
    raw = metadata(instance, "raw_transactions")
    assert raw[catalog.ROW_COUNT] == len(pd.read_csv(pipeline / "data" / "raw" / "creditcard.csv"))
    stored = pd.read_parquet(local_path(raw[catalog.URI]))
    assert list(stored.columns) == schema_names(catalog.TRANSACTIONS_SCHEMA)

    training = metadata(instance, "training_dataset")
    split_rows = 0
    for split in ("train_split", "validation_split", "test_split"):
        split_metadata = metadata(instance, split)
        frame = pd.read_parquet(local_path(split_metadata[catalog.URI]))
        assert split_metadata[catalog.ROW_COUNT] == len(frame) > 0
        assert list(frame.columns) == schema_names(catalog.TRAINING_SCHEMA)
        split_rows += len(frame)
    assert training[catalog.ROW_COUNT] == split_rows
    assert list(pd.read_parquet(local_path(training[catalog.URI])).columns) == schema_names(catalog.TRAINING_SCHEMA)


def test_every_check_figure_is_a_rounded_number(project, instance):
    result = run_pipeline(instance)
    assert result.success
    checks = check_results(result)
    figures = {
        "raw_transactions_quality": {"prevalence": 6},
        "fraud_model_quality_gate": {"candidate_auprc": 4, "auprc_floor": 4, "max_auprc_regression": 4},
        "drift_within_bounds": {"drift_share": 4, "largest_psi": 4, "score_psi": 4},
        "batch_files_valid": {"rejected_share": 4},
    }
    for check, expected in figures.items():
        for name, digits in expected.items():
            value = checks[check].metadata[name]
            assert isinstance(value, dg.FloatMetadataValue), (check, name)
            assert value.value == round(value.value, digits), (check, name)
    assert isinstance(checks["raw_transactions_quality"].metadata["rows"], dg.IntMetadataValue)
    assert isinstance(checks["batch_files_valid"].metadata["rejected_files"], dg.IntMetadataValue)
    assert checks["batch_files_valid"].metadata["scored"].value == 1


def test_models_and_reports_say_where_they_live(pipeline, instance):
    model = metadata(instance, "fraud_model")
    assert local_path(model[catalog.URI]).name == model["model_version"]
    assert (local_path(model[catalog.URI]) / "model.ubj").exists()
    production = local_path(metadata(instance, "production_model")[catalog.URI])
    assert production.name == "production.json" and production.exists()
    assert local_path(metadata(instance, "drift_statistics", DAY)[catalog.URI]).name == f"{DAY}.json"
    assert local_path(metadata(instance, "preprocessing_pipeline")[catalog.URI]).exists()
    assert local_path(metadata(instance, "challenger_model")[catalog.URI]).name == "challenger.json"
    defs = build_definitions("local")
    evaluation = [defs.get_assets_def("challenger_evaluation")]
    assert dg.materialize(evaluation, instance=instance, resources=defs.resources).success
    # Where a decision would be recorded, though no challenge runs yet.
    assert local_path(metadata(instance, "challenger_evaluation")[catalog.URI]).name == "challenger.json"


def test_predictions_report_the_rows_of_their_day(pipeline, instance):
    write_batch(pipeline, f"{NEXT_DAY}_a.csv", rows=1_200, seed=5)
    write_batch(pipeline, f"{NEXT_DAY}_b.csv", rows=800, seed=6)
    defs = build_definitions("local")
    assert dg.materialize(
        [defs.get_assets_def("daily_predictions")], instance=instance, partition_key=NEXT_DAY,
        resources=defs.resources,
    ).success
    for day, rows in ((DAY, 3_000), (NEXT_DAY, 2_000)):
        day_metadata = metadata(instance, "daily_predictions", day)
        assert day_metadata[catalog.PARTITION_ROW_COUNT] == rows
        # The whole table's rows are not known to one day's run, so none is claimed.
        assert catalog.ROW_COUNT not in day_metadata
        folder = local_path(day_metadata[catalog.URI])
        assert folder.name == f"date={day}"
        frames = [pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))]
        assert sum(len(frame) for frame in frames) == rows
        assert all(list(frame.columns) == schema_names(catalog.PREDICTIONS_SCHEMA) for frame in frames)


def test_shadow_scores_count_the_whole_day_when_nothing_new_was_scored(pipeline, instance):
    defs = build_definitions("local")
    registry = defs.resources["storage"].registry()
    registry.set_challenger(registry.production_version(), reason="test")
    shadow = [defs.get_assets_def("challenger_predictions")]
    for newly_scored in (1, 0):
        result = dg.materialize(shadow, instance=instance, partition_key=DAY, resources=defs.resources)
        day_metadata = metadata(instance, "challenger_predictions", DAY)
        assert result.success and day_metadata["newly_scored_files"] == newly_scored
        assert day_metadata[catalog.PARTITION_ROW_COUNT] == 3_000
        assert local_path(day_metadata[catalog.URI]).name == f"date={DAY}"


def test_labels_count_rows_per_day_in_a_run_over_several_days(pipeline, instance):
    write_batch(pipeline, f"{NEXT_DAY}_a.csv", rows=500, seed=7)
    defs = build_definitions("local")
    assert dg.materialize(
        [defs.get_assets_def("daily_predictions")], instance=instance, partition_key=NEXT_DAY,
        resources=defs.resources,
    ).success
    # Row numbers are the ids of a file without its own: 3 labels for DAY, 1 for NEXT_DAY.
    write_labels(pipeline, "2025-03-06_reports.csv",
                 [(5, DAY, 1), (50, DAY, 0), (500, DAY, 1), (7, NEXT_DAY, 1)])
    result = dg.materialize(
        [defs.get_assets_def("transaction_labels")],
        instance=instance,
        resources=defs.resources,
        run_config={"ops": {"transaction_labels": {"config": {"files": ["2025-03-06_reports.csv"]}}}},
        tags={"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": NEXT_DAY},
    )
    assert result.success
    for day, rows, frauds in ((DAY, 3, 2), (NEXT_DAY, 1, 1)):
        day_metadata = metadata(instance, "transaction_labels", day)
        assert day_metadata[catalog.PARTITION_ROW_COUNT] == rows
        assert day_metadata["frauds_in_day"] == frauds
        stored = pd.read_parquet(local_path(day_metadata[catalog.URI]))
        assert len(stored) == rows
        assert list(stored.columns) == schema_names(catalog.LABELS_SCHEMA)
