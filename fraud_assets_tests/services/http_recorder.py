"""A loopback HTTP server that records requests and answers from a script.

Stands in for Slack's incoming webhooks (and any other HTTP endpoint a test needs to
observe): each request is recorded, and the answer is the next entry of ``responses``,
falling back to ``200 ok`` once they run out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingServer:
    def __init__(self, responses: Iterable[Response | int] = ()):
        self.requests: list[RecordedRequest] = []
        self._responses: list[Response] = [
            r if isinstance(r, Response) else Response(status=r, body=b"ok" if r < 400 else b"error")
            for r in responses
        ]
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with recorder._lock:
                    recorder.requests.append(
                        RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
                    )
                    answer = recorder._responses.pop(0) if recorder._responses else Response()
                    recorder._changed.notify_all()
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_GET = do_PUT = _handle  # noqa: N815 - http.server naming

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll keeps shutdown() quick at teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, *responses: Response | int) -> None:
        with self._lock:
            for r in responses:
                self._responses.append(
                    r if isinstance(r, Response) else Response(status=r, body=b"ok" if r < 400 else b"error")
                )

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} request(s) within {timeout} s, got {len(self.requests)}"
                    )
                self._changed.wait(left)
            return list(self.requests)

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def slack_server() -> Iterator[RecordingServer]:
    """A stand-in for Slack's webhook endpoint on 127.0.0.1."""
    with RecordingServer() as server:
        yield server
