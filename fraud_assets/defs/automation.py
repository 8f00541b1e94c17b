"""When each asset should run, said by the asset itself (Dagster's declarative automation).

The automation sensor evaluates these conditions: running in production, stopped on the
embedded default like the schedules. What the conditions cannot see stays with a sensor or a
schedule: files landing in `incoming/` and `labels/` (outside Dagster: sensors), and scoring
yesterday at the cut-off (a schedule: the daily partitions include today, so "the latest time
window" is today, while the cut-off concerns the day before).
"""

from datetime import timedelta

import dagster as dg

from fraud_assets import settings

WEEKLY_TRAINING_CRON = "0 3 * * 0"
# Partitions the conditions look at. Scores and drift concern the last few days (a late file
# re-scores its day); labels keep arriving for weeks, and a late report still updates its day.
RECENT_LOOKBACK = timedelta(days=7)
LABELS_LOOKBACK = timedelta(days=settings.label_maturity_days() + 60)
# The hour a day whose labels just matured is measured again (after the 02:00 scoring).
LABELS_MATURE_HOUR = 6


def after_inputs_update(lookback: timedelta) -> dg.AutomationCondition:
    """Run a day again whenever one of its inputs for that day updated (late files, late
    labels included), once nothing it reads is still running."""
    return (
        dg.AutomationCondition.in_latest_time_window(lookback)
        & dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"after its inputs update (last {lookback.days} days)")


def when_labels_mature(cron: str = f"0 {LABELS_MATURE_HOUR} * * *") -> dg.AutomationCondition:
    """Once a day, the day whose labels have just matured: its figures stop being provisional
    although no input changed (no fraud reported is, from that day on, a genuine outcome)."""
    maturity = settings.label_maturity_days()
    just_matured = dg.AutomationCondition.in_latest_time_window(
        timedelta(days=maturity + 2)
    ) & ~dg.AutomationCondition.in_latest_time_window(timedelta(days=maturity + 1))
    return (
        just_matured
        & dg.AutomationCondition.cron_tick_passed(cron, settings.timezone()).since_last_handled()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"when its labels mature ({maturity} days)")


def weekly() -> dg.AutomationCondition:
    """Once a week at the training time: re-read the sources, whatever else happened."""
    return (
        dg.AutomationCondition.cron_tick_passed(WEEKLY_TRAINING_CRON, settings.timezone()).since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("weekly, Sunday 03:00")


def when_training_data_changes() -> dg.AutomationCondition:
    """Retrain only when the training dataset's content changed (new mature days or new
    labels): its data version is a fingerprint of that content, so an unchanged week is
    skipped, and the evaluation in the UI says why."""
    return (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("when the training dataset changed")


def after_upstream() -> dg.AutomationCondition:
    """Unpartitioned steps after their inputs: the rest of the training chain."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("after its inputs update")


def build_automation_sensor(*, running: bool) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "fraud_automation_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=60,
        description="Evaluates every asset's automation condition: drift, realised performance "
        "and challenger scores after their inputs, retraining weekly when the data changed.",
    )
