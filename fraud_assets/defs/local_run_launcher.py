"""The local instance's run launcher: Dagster's default one, plus a worker health check.

Dagster's ``DefaultRunLauncher`` cannot say whether a run's worker is alive, so run
monitoring only failed a killed run once it outlived ``max_runtime_seconds`` (6 h): until
then the run stayed STARTED, held the instance's one run slot and hid the failure. Every
run records the pid of the process that executes it in its event log (Dagster's engine
event "Started process for run (pid: N)" for launched runs, "Executing steps in process
(pid: N)" for runs executed in process such as ``fraud demo``'s). This launcher checks that
that process still lives.

The local instance keeps its storage on this host's disk (SQLite), so its runs run here and
their pids are this host's. A pid is reused once its process is gone: a process at that pid
that started after the run did is another one, and the worker is dead.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter

PROC = Path("/proc")
# /proc/stat's boot time is whole seconds and moves with clock adjustments: a process that
# started within this margin after the run is still taken for the worker.
START_TIME_SLACK_SECONDS = 5.0
# The worker's pid event is among the run's first engine events; steps log theirs later.
_ENGINE_EVENTS_SEARCHED = 20


def process_start_time(pid: int, proc: Path = PROC) -> float | None:
    """When process ``pid`` started (Unix time), or None when no live process has that pid.

    A zombie has exited (its parent has not reaped it yet) and counts as gone.
    """
    try:
        stat = (proc / str(pid) / "stat").read_text()
        boot_time = next(
            float(line.split()[1])
            for line in (proc / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], int(fields[19])
    if state in ("Z", "X"):
        return None
    return boot_time + start_ticks / os.sysconf("SC_CLK_TCK")


def run_worker_pid(instance, run: DagsterRun) -> tuple[int, float] | None:
    """The pid of the process executing ``run`` and when it was recorded, from the run's
    event log; None when no worker has recorded itself yet."""
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=_ENGINE_EVENTS_SEARCHED
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        pid = metadata.get("pid")
        if pid is not None:
            return int(pid.value), record.event_log_entry.timestamp
    return None


def check_worker(instance, run: DagsterRun, proc: Path = PROC) -> CheckRunHealthResult:
    """RUNNING while the process that executes ``run`` lives, NOT_FOUND once it is gone."""
    worker = run_worker_pid(instance, run)
    if worker is None:
        # Between RUN_START and the worker's pid event: nothing to check yet, and run
        # monitoring's max runtime still bounds the run.
        return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker recorded yet")
    pid, recorded_at = worker
    record = instance.get_run_record_by_id(run.run_id)
    started_at = record.start_time if record is not None and record.start_time else recorded_at
    process_started = process_start_time(pid, proc)
    worker_id = f"{os.uname().nodename}:{pid}"
    if process_started is None:
        return CheckRunHealthResult(
            WorkerStatus.NOT_FOUND, f"run worker process {pid} is gone", run_worker_id=worker_id
        )
    if process_started > max(started_at, recorded_at) + START_TIME_SLACK_SECONDS:
        return CheckRunHealthResult(
            WorkerStatus.NOT_FOUND,
            f"run worker process {pid} is gone (pid {pid} now belongs to a process started "
            f"{process_started - started_at:.0f} s after the run)",
            run_worker_id=worker_id,
        )
    return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=worker_id)


def fail_runs_without_worker(instance, proc: Path = PROC) -> list[str]:
    """Mark FAILED every STARTED run whose worker is dead; return their run ids.

    For callers that execute runs without the daemon (``fraud demo``): a run whose process
    was killed would otherwise stay STARTED until a daemon looks at it.
    """
    if not proc.joinpath("self").exists():
        return []
    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        health = check_worker(instance, run, proc)
        if health.status == WorkerStatus.NOT_FOUND:
            instance.report_run_failed(run, f"Run worker died without ending the run: {health.msg}.")
            failed.append(run.run_id)
    return failed


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose runs run monitoring can health-check on this host."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        # Without /proc (macOS) there is no way to tell a reused pid: runs fall back to the
        # max runtime.
        return PROC.joinpath("self").exists()

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        return check_worker(self._instance, run)
