"""`challenger_predictions`: the challenger's shadow scores, over a day or a backfill's range,
and what a file the challenger cannot read does."""

import shutil

import dagster as dg
import pandas as pd
import pytest

from fraud_assets.definitions import build_definitions
from fraud_assets.defs import catalog
from fraud_assets.synthetic.generate import generate_transactions

from .conftest import DAY, run_pipeline, write_batch
from .test_catalog_metadata import NEXT_DAY, local_path, metadata


@pytest.fixture
def pipeline(project, instance):
    assert run_pipeline(instance).success
    return project


def _serving_model_as_challenger(defs) -> None:
    # The challenger is the serving model itself, so its shadow scores must be production's.
    registry = defs.resources["storage"].registry()
    registry.set_challenger(registry.production_version(), reason="test")


def test_a_shadow_backfill_is_one_run_with_each_days_own_figures(pipeline, instance):
    write_batch(pipeline, f"{NEXT_DAY}_a.csv", rows=500, seed=7)
    write_batch(pipeline, f"{NEXT_DAY}_b.csv", rows=700, seed=8)
    defs = build_definitions("local")
    assert dg.materialize([defs.get_assets_def("daily_predictions")], instance=instance, partition_key=NEXT_DAY,
                          resources=defs.resources).success
    _serving_model_as_challenger(defs)
    shadow = defs.get_assets_def("challenger_predictions")
    assert shadow.backfill_policy == dg.BackfillPolicy.single_run()
    the_range = {"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": NEXT_DAY}
    for newly_scored in ({DAY: 1, NEXT_DAY: 2}, {DAY: 0, NEXT_DAY: 0}):
        result = dg.materialize([shadow], instance=instance, resources=defs.resources, tags=the_range)
        assert result.success
        assert sorted(m.partition for m in result.asset_materializations_for_node("challenger_predictions")) == [
            DAY, NEXT_DAY]
        for day, rows in ((DAY, 3_000), (NEXT_DAY, 1_200)):
            day_metadata = metadata(instance, "challenger_predictions", day)
            assert day_metadata["newly_scored_files"] == newly_scored[day]
            assert day_metadata[catalog.PARTITION_ROW_COUNT] == rows
            served = sorted(local_path(metadata(instance, "daily_predictions", day)[catalog.URI]).glob("*.parquet"))
            shadowed = sorted(local_path(day_metadata[catalog.URI]).glob("*.parquet"))
            assert [path.name for path in shadowed] == [path.name for path in served]
            for ours, theirs in zip(shadowed, served, strict=True):
                pd.testing.assert_frame_equal(pd.read_parquet(ours), pd.read_parquet(theirs))


def test_a_file_the_challenger_cannot_read_fails_only_when_production_validated_it(pipeline, instance):
    defs = build_definitions("local")
    _serving_model_as_challenger(defs)
    bad = generate_transactions(400, seed=9, start_day=3, n_days=1, labels=False)
    bad["V4"] = bad["V4"].astype(object)
    bad.loc[123, "V4"] = "oops"
    incoming = pipeline / "data" / "incoming" / f"{DAY}_late.csv"
    bad.to_csv(incoming, index=False)
    [validated] = sorted((pipeline / "data" / "processed" / DAY).glob("*.*"))
    kept = validated.with_name("kept")
    shutil.copy(validated, kept)
    validated.write_text("Time,V1\nnot,a batch\n")
    shadow = [defs.get_assets_def("challenger_predictions")]

    # A file production validated and scored: the challenger is at fault, and the run says so.
    failed = dg.materialize(shadow, instance=instance, partition_key=DAY, resources=defs.resources,
                            raise_on_error=False)
    assert not failed.success
    [failure] = failed.get_step_failure_events()
    assert validated.name in str(failure.event_specific_data.error)

    # A file still in incoming/: quarantine is daily_predictions' call; the shadow names it.
    shutil.move(kept, validated)
    assert dg.materialize(shadow, instance=instance, partition_key=DAY, resources=defs.resources).success
    day_metadata = metadata(instance, "challenger_predictions", DAY)
    assert day_metadata["newly_scored_files"] == 1 and day_metadata[catalog.PARTITION_ROW_COUNT] == 3_000
    [reason] = day_metadata["unreadable_files"]
    assert incoming.name in reason and "V4" in reason
    assert incoming.exists()


def test_a_range_the_challenger_fails_on_one_day_of_still_records_its_other_days(pipeline, instance):
    defs = build_definitions("local")
    write_batch(pipeline, f"{NEXT_DAY}_a.csv", rows=600, seed=7)
    assert dg.materialize([defs.get_assets_def("daily_predictions")], instance=instance, partition_key=NEXT_DAY,
                          resources=defs.resources).success
    _serving_model_as_challenger(defs)
    [validated] = sorted((pipeline / "data" / "processed" / DAY).glob("*.*"))
    validated.write_text("Time,V1\nnot,a batch\n")

    failed = dg.materialize([defs.get_assets_def("challenger_predictions")], instance=instance,
                            resources=defs.resources, raise_on_error=False,
                            tags={"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": NEXT_DAY})
    assert not failed.success
    # The pipeline recorded DAY before (no challenger then); this run records NEXT_DAY only.
    recorded = instance.fetch_materializations(dg.AssetKey("challenger_predictions"), limit=10).records
    assert {r.partition_key for r in recorded if r.run_id == failed.run_id} == {NEXT_DAY}
    assert metadata(instance, "challenger_predictions", NEXT_DAY)[catalog.PARTITION_ROW_COUNT] == 600


def test_the_challenge_is_judged_on_the_current_challengers_shadow_scores_only(pipeline, instance):
    from fraud_assets.defs.assets.challenger import side_by_side

    defs = build_definitions("local")
    _serving_model_as_challenger(defs)
    assert dg.materialize([defs.get_assets_def("challenger_predictions")], instance=instance, partition_key=DAY,
                          resources=defs.resources).success
    storage = defs.resources["storage"]
    current = storage.registry().challenger_version()
    # Shadow scores an earlier challenger left behind are not this challenger's evidence.
    assert side_by_side(storage, [DAY], "an-earlier-challenger")[1] == []
    evidence, used = side_by_side(storage, [DAY], current)
    assert used == [DAY] and len(evidence.labels) == 3_000
