"""A real Dask cluster on 127.0.0.1: ``dask scheduler`` and ``dask worker`` subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))


class LocalDaskCluster:
    """A scheduler without a dashboard and ``workers`` one-thread workers with a memory limit;
    started from this environment, so they see the same code and credentials."""

    def __init__(self, folder: Path, *, workers: int = 2, memory_limit: str = "1GB", worker_ttl: str | None = None):
        self.folder, self.memory_limit = folder, memory_limit
        self.scheduler_file = folder / "scheduler.json"
        # How long the scheduler waits for a silent worker's heartbeat before removing it
        # (Dask's default: 5 minutes).
        ttl = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": worker_ttl} if worker_ttl else {}
        self.scheduler = self._spawn("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                                    "--no-dashboard", "--scheduler-file", str(self.scheduler_file)],
                                     ttl)
        self.address = self._wait_for_address()
        self.workers = [self.add_worker(i) for i in range(workers)]
        self.wait_for_workers(workers)

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - kept for the process's life
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False", **(env or {})})

    def add_worker(self, number: int) -> subprocess.Popen:
        return self._spawn(f"worker-{number}", [
            DASK, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
            "--memory-limit", self.memory_limit, "--no-dashboard", "--name", f"worker-{number}",
            "--local-directory", str(self.folder / f"worker-{number}"),
        ])

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.scheduler_file.exists():
                try:
                    return json.loads(self.scheduler_file.read_text())["address"]
                except (ValueError, KeyError):
                    pass
            assert self.scheduler.poll() is None, (self.folder / "scheduler.log").read_text()
            time.sleep(0.2)
        raise TimeoutError("the Dask scheduler did not start")

    def wait_for_workers(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=90)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
