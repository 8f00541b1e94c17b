"""A real S3 HTTP endpoint on 127.0.0.1 for the test session (moto's server mode)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    # One log line per request drowns every test report.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    # Bind loopback explicitly: moto's default is every interface.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One local S3 server for the session, with dummy credentials so nothing reaches AWS."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.delenv("AWS_PROFILE", raising=False)
        with running_s3_server() as endpoint:
            yield endpoint


@contextmanager
def s3_server_process(log_path) -> Iterator[StandaloneS3Server]:
    """A local S3 server in its own process. moto keeps its state per process, so two
    servers started in one process would share every bucket; two of these do not, and can
    stand for two regions. Killing one is losing its region."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"moto_server exited {process.returncode}: see {log_path}")
                try:
                    httpx.get(url + "/moto-api/", timeout=1.0)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"moto_server not answering on {url}") from None
                    time.sleep(0.1)
            yield StandaloneS3Server(url, process)
        finally:
            StandaloneS3Server(url, process).stop()


@dataclass
class StandaloneS3Server:
    url: str
    process: object

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
