"""`fraud serve` as a real process on a free port of 127.0.0.1, for tests and the benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FRAUD = Path(sys.executable).parent / "fraud"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """Starts ``fraud serve`` with ``FRAUD_LOCAL_DIR=root`` (registry in ``root/models``,
    unless ``env`` says otherwise)."""

    def __init__(self, root: Path, *, reload_interval: float = 0.5, extra_args: tuple = (),
                 env: dict[str, str] | None = None):
        self.root, self.port = Path(root), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / f"serve-{self.port}.log"
        command = [str(FRAUD), "serve", "--port", str(self.port),
                   "--reload-interval", str(reload_interval), *extra_args]
        # `env` overrides the local defaults (a production registry on S3, for instance).
        env = {**os.environ, "FRAUD_ENV": "local", "FRAUD_LOCAL_DIR": str(self.root), **(env or {})}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> ServiceProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fraud serve exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"fraud serve not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> ServiceProcess:
        return self.wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()
