"""Promotion and rollback are picked up by the running process, with no failed request."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fraud_assets_tests.service.server import ServiceProcess


class Firing:
    """Client threads posting continuously; records every outcome."""

    def __init__(self, url: str, bodies: list):
        self.url, self.bodies = url, bodies
        self.outcomes: list[tuple[float, int | str, str | None, int]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(body, index))
            for index, body in enumerate(bodies)
        ]

    def _run(self, body, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as http:
            while not self._stop.is_set():
                try:
                    response = http.post("/predict", json=body)
                    answer = response.json()
                    version = (answer[0] if isinstance(answer, list) else answer)["model_version"]
                    self.outcomes.append((time.monotonic(), response.status_code, version, index))
                except Exception as error:  # noqa: BLE001 - every failure is a finding
                    self.outcomes.append((time.monotonic(), repr(error), None, index))

    def wait_for(self, version: str, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            recent = [o[2] for o in self.outcomes[-4:] if o[0] > started]
            if recent and all(v == version for v in recent):
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"still not serving {version} after {timeout} s")

    def served(self, index: int, after: float, before: float = float("inf")) -> list[str | None]:
        """Versions client `index` was answered with, for requests that finished in (after, before)."""
        return [o[2] for o in sorted(list(self.outcomes)) if o[3] == index and after < o[0] < before]

    def wait_for_every_client(self, after: float, timeout: float) -> None:
        """Liveness bound only: every client has finished at least one request since `after`."""
        deadline = time.monotonic() + timeout
        while not all(self.served(index, after) for index in range(len(self.bodies))):
            if time.monotonic() > deadline:
                raise AssertionError(f"a client finished no request within {timeout} s")
            time.sleep(0.05)

    def __enter__(self) -> Firing:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def _reload_failures(http: httpx.Client) -> float:
    for family in text_string_to_metric_families(http.get("/metrics").text):
        if family.name == "fraud_service_model_reload_failures":
            return family.samples[0].value
    raise AssertionError("no reload failure counter")


def test_promotion_broken_model_and_rollback_without_failed_requests(
    models, transactions, reload_service
):
    first, second = models
    service, registry = reload_service
    models_dir = Path(registry.location.root)
    # One single-transaction client (scored on the event loop) and one batch client (scored
    # in a worker thread), so both paths cross the swap.
    bodies = [transactions[0], transactions[:50]]
    with httpx.Client(base_url=service.url, timeout=10.0) as http, \
            Firing(service.url, bodies) as firing:
        started = time.monotonic()
        firing.wait_for_every_client(started, timeout=30.0)
        promoted = time.monotonic()
        registry.promote(second.version, reason="test: promotion")
        firing.wait_for(second.version, timeout=30.0)
        assert http.get("/health").json()["model_version"] == second.version

        # A promoted bundle that cannot load: logged, counted, the current model kept.
        _broken_bundle(models_dir, "broken-1")
        registry.promote("broken-1", reason="test: broken bundle")
        deadline = time.monotonic() + 5.0
        while _reload_failures(http) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _reload_failures(http) >= 2, "the broken bundle is retried, not given up on"
        health = http.get("/health").json()
        assert health["model_version"] == second.version and health["last_reload_error"]
        broken_seen = time.monotonic()
        firing.wait_for_every_client(broken_seen, timeout=30.0)

        rolled_back = time.monotonic()
        registry.promote(first.version, reason="test: rollback")
        firing.wait_for(first.version, timeout=30.0)
        firing.wait_for_every_client(time.monotonic(), timeout=30.0)
    failures = [o for o in firing.outcomes if o[1] != 200]
    assert not failures, failures[:5]
    for index in range(len(bodies)):
        # Every client was answered in every phase, with the model that phase must serve.
        before_promotion = firing.served(index, started, promoted)
        assert before_promotion and set(before_promotion) == {first.version}, before_promotion
        while_broken = firing.served(index, broken_seen, rolled_back)
        assert while_broken and set(while_broken) == {second.version}, while_broken
        versions = [o[2] for o in sorted(firing.outcomes) if o[3] == index]
        # first, then second, then first again: no flapping back and forth during a swap.
        changes = [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]
        assert changes == [first.version, second.version, first.version], changes


def test_serve_refuses_to_start_without_a_production_model(tmp_path):
    service = ServiceProcess(tmp_path)
    try:
        assert service.process.wait(timeout=60) != 0
        assert "no production model" in service.log()
    finally:
        service.stop()


def _broken_bundle(models_dir: Path, version: str) -> None:
    folder = models_dir / version
    folder.mkdir()
    (folder / "manifest.json").write_text(f'{{"version": "{version}", "threshold": 0.5}}')
    (folder / "preprocessing.json").write_text("{}")
    (folder / "model.ubj").write_bytes(b"not a model")


def test_a_failing_reload_logs_its_traceback_once_per_version_and_error(models, tmp_path, caplog):
    from fraud_assets.service.model_holder import ModelHolder
    from fraud_assets_tests.service.conftest import make_registry

    registry = make_registry(tmp_path, models, models[0])
    holder = ModelHolder(registry)
    _broken_bundle(Path(registry.location.root), "broken-1")
    registry.promote("broken-1", reason="test: broken bundle")

    with caplog.at_level(logging.DEBUG, logger="fraud_assets.service.model_holder"):
        assert [holder.refresh() for _ in range(3)] == [False, False, False]
        _broken_bundle(Path(registry.location.root), "broken-2")
        registry.promote("broken-2", reason="test: another broken bundle")
        assert holder.refresh() is False

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info for r in errors)
    assert len([r for r in caplog.records if "still fails to load" in r.message]) == 2
    assert holder.reload_failures == 4 and holder.current.version == models[0].version
    assert holder.last_error
