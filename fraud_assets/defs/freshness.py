"""Freshness: by when each daily output must have been refreshed, and a Slack alert when it
was not.

Dagster's freshness daemon (part of every `dagster-daemon`, `dagster dev` included; the
instance setting `freshness: enabled` defaults to true) evaluates each policy every 30 s and
records a state change (PASS, FAIL, ...) in the event log; the UI shows the state. Dagster
itself sends no alert on it, so `freshness_alert_sensor` reads the recorded state and posts
each transition to Slack, once.

A cron policy passes when the asset materialised between ``deadline - lower bound`` and the
deadline of the last completed tick. For a daily partitioned asset Dagster looks at the
latest materialisation of any partition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from fraud_assets import settings
from fraud_assets.defs.automation import LABELS_MATURE_HOUR
from fraud_assets.defs.resources import SlackAlerts
from fraud_assets.defs.schedules import SCORING_HOUR

# Dagster's freshness states by value (its FreshnessState enum is not public API).
STALE, FRESH = "FAIL", "PASS"


@dataclass(frozen=True)
class DailyWindow:
    """Refreshed each day between ``since_hour`` and ``by_hour`` (local to FRAUD_TIMEZONE)."""

    since_hour: int
    by_hour: int

    def policy(self) -> dg.FreshnessPolicy:
        return dg.FreshnessPolicy.cron(
            deadline_cron=f"0 {self.by_hour} * * *",
            lower_bound_delta=timedelta(hours=self.by_hour - self.since_hour),
            timezone=settings.timezone(),
        )

    def describe(self) -> str:
        return f"each day between {self.since_hour:02d}:00 and {self.by_hour:02d}:00 {settings.timezone()}"


WINDOWS = {
    # The 02:00 cut-off run scores yesterday; two hours for files of a busy day.
    "daily_predictions": DailyWindow(since_hour=SCORING_HOUR, by_hour=4),
    # Drift follows the day's predictions within a minute or two (automation condition).
    "drift_statistics": DailyWindow(since_hour=SCORING_HOUR, by_hour=5),
    # Realised figures follow the day's predictions, and the day whose labels mature runs
    # again at 06:00; either refresh counts, the later one must be done by 07:00.
    "realized_performance": DailyWindow(since_hour=SCORING_HOUR, by_hour=LABELS_MATURE_HOUR + 1),
}


def freshness_policy(asset: str) -> dg.FreshnessPolicy:
    return WINDOWS[asset].policy()


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, ZoneInfo(settings.timezone())).strftime("%Y-%m-%d %H:%M %Z")


def transition_message(asset: str, previous: str | None, current: str, last_materialised: float | None) -> str | None:
    """What Slack is told when ``asset`` goes from ``previous`` to ``current``; None: nothing."""
    if current == STALE:
        return (
            f":hourglass: `{asset}` is stale: expected {WINDOWS[asset].describe()}, "
            f"last materialised {_when(last_materialised)}. Check the scoring schedule, the "
            "automation sensor and the day's runs."
        )
    if previous == STALE and current == FRESH:
        return f":white_check_mark: `{asset}` is fresh again (materialised {_when(last_materialised)})."
    return None


def _last_materialised(instance: dg.DagsterInstance, key: dg.AssetKey) -> float | None:
    event = instance.get_latest_materialization_event(key)
    return event.timestamp if event else None


def build_freshness_sensor(*, running: bool) -> dg.SensorDefinition:
    @dg.sensor(
        name="freshness_alert_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        description="Posts to Slack when a daily output turns stale (its freshness policy fails) "
        "and when it is fresh again: once per transition recorded by the freshness daemon.",
    )
    def freshness_alert_sensor(context: dg.SensorEvaluationContext, slack: SlackAlerts) -> dg.SkipReason:
        # Cursor: per asset, the state and time of the last transition already handled, so a
        # state that changed and changed back between two ticks is still a new transition.
        handled: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
        keys = [dg.AssetKey(asset) for asset in WINDOWS]
        records = context.instance.get_freshness_state_records(keys)
        told = []
        for key in keys:
            record = records.get(key)
            if record is None:
                continue  # never evaluated yet: the daemon has not run since the asset appeared
            asset = key.to_user_string()
            seen = {"state": record.freshness_state.value, "at": record.updated_at.timestamp()}
            previous = handled.get(asset)
            if previous == seen:
                continue
            message = transition_message(
                asset,
                previous["state"] if previous else None,
                seen["state"],
                _last_materialised(context.instance, key),
            )
            if message is not None:
                if not slack.post(message) and slack.webhook_url:
                    # Slack did not take it: the transition stays unhandled and is posted on
                    # the next tick. Without a webhook, the log line is the alert.
                    context.log.warning("freshness alert for %s not delivered; retrying next tick", asset)
                    continue
                told.append(asset)
            handled[asset] = seen
        context.update_cursor(json.dumps(handled, sort_keys=True))
        return dg.SkipReason(
            f"alerted on {', '.join(told)}" if told else "no freshness transition to alert on"
        )

    return freshness_alert_sensor
