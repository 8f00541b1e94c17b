"""Files dated after today: a producer whose clock runs ahead keeps its file, which waits for
its day's partition; a date far ahead is a wrong name and is quarantined."""

import datetime as dt
from zoneinfo import ZoneInfo

from fraud_assets import settings
from fraud_assets.defs.partitions import MAX_DAYS_EARLY, is_early_day

from .conftest import write_batch
from .test_local_sensor import tick
from .test_loop import sensor_requests, write_labels


def _days_from_today(days: int) -> str:
    # The partitions' own clock: their days end at midnight in FRAUD_TIMEZONE.
    today = dt.datetime.now(ZoneInfo(settings.timezone())).date()
    return (today + dt.timedelta(days=days)).isoformat()


def test_only_the_days_just_after_the_last_partition_are_early():
    assert is_early_day(_days_from_today(1))
    assert is_early_day(_days_from_today(MAX_DAYS_EARLY))
    assert not is_early_day(_days_from_today(MAX_DAYS_EARLY + 1))
    assert not is_early_day(_days_from_today(0))  # its partition exists
    assert not is_early_day("2000-01-01")


def test_a_batch_dated_tomorrow_waits_and_one_far_ahead_is_quarantined(project, instance):
    tomorrow, far = _days_from_today(1), _days_from_today(MAX_DAYS_EARLY + 3)
    write_batch(project, f"{tomorrow}_ahead.csv", rows=20)
    write_batch(project, f"{far}_misdated.csv", rows=20)
    incoming, quarantine = project / "data" / "incoming", project / "data" / "quarantine"

    first = tick(instance)
    assert [r.partition_key for r in first.run_requests] == ["2025-03-04"]
    assert (incoming / f"{tomorrow}_ahead.csv").exists()
    assert not (quarantine / f"{tomorrow}_ahead.csv").exists()
    reason = (quarantine / f"{far}_misdated.csv.reason.json").read_text()
    assert f"{MAX_DAYS_EARLY} days after today" in reason

    # Still waiting on the next tick, and not remembered as requested: once its partition
    # exists, the same tick logic asks for it.
    again = tick(instance, first.cursor)
    assert again.run_requests == [] and (incoming / f"{tomorrow}_ahead.csv").exists()
    assert f"{tomorrow}_ahead.csv" not in again.cursor


def test_labels_for_tomorrow_wait_and_labels_far_ahead_are_quarantined(project, instance):
    tomorrow, far = _days_from_today(1), _days_from_today(MAX_DAYS_EARLY + 3)
    labels, quarantine = project / "data" / "labels", project / "data" / "quarantine"
    write_labels(project, f"{tomorrow}_ahead.csv", [("5", tomorrow, 1)])
    write_labels(project, f"{far}_misdated.csv", [("5", far, 1)])

    requests, _ = sensor_requests(instance)
    assert requests == []
    assert (labels / f"{tomorrow}_ahead.csv").exists()
    assert not (quarantine / f"{tomorrow}_ahead.csv").exists()
    assert (quarantine / f"{far}_misdated.csv").exists()
