"""Alerts on failures: a run-failure sensor that tells Slack and the Pushgateway."""

import dagster as dg

from fraud_assets.core.monitoring import telemetry
from fraud_assets.defs.resources import MetricsPusher, SlackAlerts

# The `fraud/job` tag of a run -> the Pushgateway jobs whose failure time it should set.
FAILED_JOBS = {
    "scoring": (telemetry.JOB_SCORING,),
    "training": (telemetry.JOB_TRAINING,),
    "drift": (telemetry.JOB_DRIFT,),
    "pipeline": (telemetry.JOB_TRAINING, telemetry.JOB_SCORING, telemetry.JOB_DRIFT),
}
# In the pipeline job, which stage a failed step belongs to; every other step trains.
PIPELINE_STAGE_OF_STEP = {
    "daily_predictions": telemetry.JOB_SCORING,
    "drift_statistics": telemetry.JOB_DRIFT,
}


def jobs_to_mark_failed(job_tag: str, failed_steps: list[str]) -> tuple[str, ...]:
    """The Pushgateway jobs whose failure time a failed run sets.

    A pipeline run stamps only the stages whose steps failed (a drift failure says nothing
    about training); all three when the run failed outside any step.
    """
    if job_tag != "pipeline" or not failed_steps:
        return FAILED_JOBS.get(job_tag, ())
    stages = {PIPELINE_STAGE_OF_STEP.get(step, telemetry.JOB_TRAINING) for step in failed_steps}
    return tuple(job for job in FAILED_JOBS["pipeline"] if job in stages)


# Blocking checks that alert on their own when they fail (Slack, and a metric): a run stopped
# only by them needs no second alert. raw_transactions_quality does not, so it alerts here.
SELF_ALERTING_CHECKS = frozenset({"fraud_model_quality_gate"})


def failure_message(run: dg.DagsterRun, step_failures: list, run_failure_message: str | None) -> str:
    partition = run.tags.get("dagster/partition")
    where = f" for {partition}" if partition else ""
    if step_failures:
        # The step's own error says what to fix; the run-level message only lists steps.
        first = step_failures[0]
        error = first.step_failure_data.error
        reason = f"{first.step_key}: {error.message.strip() if error else 'no message'}"
    else:
        reason = run_failure_message or "no message"
    if len(reason) > 500:
        reason = reason[:500] + "..."
    return f":rotating_light: Dagster run `{run.run_id[:8]}` of `{run.job_name}`{where} failed: {reason}"


def _stopped_only_by_self_alerting_checks(
    context: dg.RunFailureSensorContext, step_failures: list
) -> bool:
    if not step_failures or not all(
        event.step_failure_data.error is not None
        and event.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
        for event in step_failures
    ):
        return False
    evaluations = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    failed = {
        evaluation.check_name
        for evaluation in (r.event_log_entry.dagster_event.event_specific_data for r in evaluations)
        if not evaluation.passed
    }
    return bool(failed) and failed <= SELF_ALERTING_CHECKS


def build_run_failure_sensor(*, running: bool) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="run_failure_alert_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        description="Posts every failed run to Slack and records the failure time for Prometheus.",
    )
    def run_failure_alert_sensor(
        context: dg.RunFailureSensorContext, slack: SlackAlerts, metrics: MetricsPusher
    ) -> None:
        step_failures = context.get_step_failure_events()  # one query of the run's events
        if _stopped_only_by_self_alerting_checks(context, step_failures):
            # The quality gate said why, in Slack and in its own metric, when it failed: a
            # second alert for the same event would only be noise.
            context.log.info("run failed on a blocking asset check, which has alerted already")
            return
        slack.post(failure_message(context.dagster_run, step_failures, context.failure_event.message))
        failed_steps = [event.step_key for event in step_failures if event.step_key]
        for job in jobs_to_mark_failed(context.dagster_run.tags.get("fraud/job", ""), failed_steps):
            metrics.run_failed(job)

    return run_failure_alert_sensor
