"""A run whose process was killed is failed at the next monitoring pass, not after 6 h.

The runs execute in real processes against the local instance as `dagster.yaml` configures
it (with a throwaway home), and are killed with SIGKILL, which no Python code can catch.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from fraud_assets.defs.local_run_launcher import (
    LocalRunLauncher,
    check_worker,
    fail_runs_without_worker,
    process_start_time,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# A run that stays STARTED until its process is killed; it prints its run id once started.
_WORKER = """
import sys, time
import dagster as dg
from dagster._core.instance.ref import InstanceRef

@dg.op
def wait_forever(context):
    print(context.run_id, flush=True)
    time.sleep(600)

@dg.job
def waiting_job():
    wait_forever()

instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1], config_dir=sys.argv[2]))
waiting_job.execute_in_process(instance=instance)
"""


def _local_instance(home: Path) -> DagsterInstance:
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(REPO)))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    # dagster.yaml's storage paths are relative to the folder Dagster runs in.
    monkeypatch.chdir(tmp_path)
    home = tmp_path / ".dagster_home"
    home.mkdir()
    return home


def _start_worker(home: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(home), str(REPO)],
        cwd=home.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    run_id = process.stdout.readline().strip()
    assert run_id, f"the worker ended without starting its run (exit {process.wait()})"
    return process, run_id


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_start_time_of_a_live_a_dead_and_a_zombie_process():
    assert process_start_time(os.getpid()) <= time.time()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start_time(zombie.pid)
        assert started is not None and abs(started - time.time()) < 30
        zombie.send_signal(signal.SIGKILL)
        deadline = time.time() + 10
        # Killed but not reaped yet: a zombie, which is no worker.
        while process_start_time(zombie.pid) is not None and time.time() < deadline:
            time.sleep(0.05)
        assert process_start_time(zombie.pid) is None
    finally:
        zombie.wait(timeout=10)
    assert process_start_time(zombie.pid) is None


def test_a_pid_taken_by_a_process_younger_than_the_run_is_a_dead_worker(home, tmp_path):
    instance = _local_instance(home)
    worker, run_id = _start_worker(home)
    try:
        run = instance.get_run_by_id(run_id)
        assert check_worker(instance, run).status == WorkerStatus.RUNNING
        # The same pid, as /proc shows it once a process started an hour after the run.
        proc = tmp_path / "proc"
        (proc / str(worker.pid)).mkdir(parents=True)
        real_stat = Path(f"/proc/{worker.pid}/stat").read_text()
        head, tail = real_stat[: real_stat.rindex(")") + 2], real_stat[real_stat.rindex(")") + 2 :].split()
        tail[19] = str(int(tail[19]) + 3600 * os.sysconf("SC_CLK_TCK"))
        (proc / str(worker.pid) / "stat").write_text(head + " ".join(tail))
        (proc / "stat").write_text(Path("/proc/stat").read_text())
        health = check_worker(instance, run, proc)
        assert health.status == WorkerStatus.NOT_FOUND and "after the run" in health.msg
    finally:
        _kill(worker)
        instance.dispose()


def test_run_monitoring_fails_a_run_whose_worker_was_killed(home):
    instance = _local_instance(home)
    try:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
        worker, run_id = _start_worker(home)
        logger = logging.getLogger("run_monitoring_test")
        # Alive: a monitoring pass leaves it alone.
        monitor_started_run(instance, None, instance.get_run_record_by_id(run_id), logger)
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
        _kill(worker)
        monitor_started_run(instance, None, instance.get_run_record_by_id(run_id), logger)
        run = instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(run_id, limit=1, ascending=False).records[0]
        assert f"run worker process {worker.pid} is gone" in failure.event_log_entry.message
    finally:
        instance.dispose()


def test_fail_runs_without_worker_fails_only_dead_runs(home):
    instance = _local_instance(home)
    killed, killed_id = _start_worker(home)
    alive, alive_id = _start_worker(home)
    try:
        _kill(killed)
        assert fail_runs_without_worker(instance) == [killed_id]
        assert instance.get_run_by_id(killed_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive_id).status == DagsterRunStatus.STARTED
        assert fail_runs_without_worker(instance) == []
    finally:
        _kill(alive)
        instance.dispose()
