"""A real S3 HTTP endpoint on 127.0.0.1 for the test session (moto's server mode)."""

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

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
