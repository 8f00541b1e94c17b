"""Batch-job metrics pushed to a Prometheus Pushgateway.

Scoring, training and drift runs are short-lived processes, so Prometheus cannot scrape
them; each run push-adds its results to the Pushgateway once, at the end, and Prometheus
scrapes the gateway (with ``honor_labels: true`` so the pushed ``job`` label survives).

Rules this module keeps, and why:

* One group per job (grouping key ``{job}`` only). Per-run or per-partition groups would
  live forever in the gateway and grow without bound.
* Push-add (HTTP POST): it replaces only the metric families present in this push and keeps
  the rest of the group. A failed run therefore pushes just
  ``*_last_failure_timestamp_seconds`` and yesterday's good results stay visible, instead of
  being overwritten by freshly registered gauges that default to 0.
* ``*_last_success_timestamp_seconds`` is set only by a successful run: staleness alerts
  compare it with ``time()``.
* Counters are cumulative across runs although every run is a new process: the current
  value is read back from the gateway and the sum pushed. When the gateway has lost it
  (restart without persistence), the counter restarts from this run's count, which
  Prometheus' ``rate``/``increase`` treat as an ordinary counter reset.
* Metrics must never fail a run: every network problem is logged and reported through the
  boolean return value, never raised.

Nothing here imports Dagster: the command line, the service and the Dagster assets share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, pushadd_to_gateway
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

JOB_SCORING = "fraud_scoring"
JOB_TRAINING = "fraud_training"
JOB_DRIFT = "fraud_drift"
JOBS: tuple[str, ...] = (JOB_SCORING, JOB_TRAINING, JOB_DRIFT)

# Scoring
PREDICTIONS_TOTAL = "fraud_predictions_total"
FLAGGED_TOTAL = "fraud_flagged_total"
SCORING_ROWS = "fraud_scoring_rows"
SCORING_FLAGGED = "fraud_scoring_flagged"
SCORING_FLAGGED_RATIO = "fraud_scoring_flagged_ratio"
SCORING_DURATION = "fraud_scoring_duration_seconds"
# Training
MODEL_AUPRC = "fraud_model_auprc"
MODEL_ROC_AUC = "fraud_model_roc_auc"
MODEL_THRESHOLD = "fraud_model_threshold"
TRAINING_DURATION = "fraud_training_duration_seconds"
TRAINING_GATE_PASSED = "fraud_training_gate_passed"
MODEL_INFO = "fraud_model_info"
# Drift
DRIFT_PSI = "fraud_drift_psi"
DRIFT_WASSERSTEIN = "fraud_drift_wasserstein_scaled"
DRIFT_SHARE = "fraud_drift_share"
DRIFT_DETECTED = "fraud_drift_detected"
DRIFT_DURATION = "fraud_drift_duration_seconds"

# Roles of fraud_model_info. "scoring" is pushed by the scoring job so a dashboard can show
# which model actually scored the last batch next to the one training promoted.
ROLE_CANDIDATE = "candidate"
ROLE_PRODUCTION = "production"
ROLE_SCORING = "scoring"


def last_success_metric(job: str) -> str:
    return f"{job}_last_success_timestamp_seconds"


def last_failure_metric(job: str) -> str:
    return f"{job}_last_failure_timestamp_seconds"


METRIC_NAMES: dict[str, frozenset[str]] = {
    JOB_SCORING: frozenset(
        {
            PREDICTIONS_TOTAL,
            FLAGGED_TOTAL,
            SCORING_ROWS,
            SCORING_FLAGGED,
            SCORING_FLAGGED_RATIO,
            SCORING_DURATION,
            MODEL_INFO,
            last_success_metric(JOB_SCORING),
            last_failure_metric(JOB_SCORING),
        }
    ),
    JOB_TRAINING: frozenset(
        {
            MODEL_AUPRC,
            MODEL_ROC_AUC,
            MODEL_THRESHOLD,
            TRAINING_DURATION,
            TRAINING_GATE_PASSED,
            MODEL_INFO,
            last_success_metric(JOB_TRAINING),
            last_failure_metric(JOB_TRAINING),
        }
    ),
    JOB_DRIFT: frozenset(
        {
            DRIFT_PSI,
            DRIFT_WASSERSTEIN,
            DRIFT_SHARE,
            DRIFT_DETECTED,
            DRIFT_DURATION,
            last_success_metric(JOB_DRIFT),
            last_failure_metric(JOB_DRIFT),
        }
    ),
}
ALL_METRIC_NAMES: frozenset[str] = frozenset().union(*METRIC_NAMES.values())
COUNTER_NAMES: frozenset[str] = frozenset({PREDICTIONS_TOTAL, FLAGGED_TOTAL})

# The Pushgateway rejects a push whose HELP for a metric name differs from the HELP already
# stored for that name in another group, so a name shared by several jobs gets one text.
_MODEL_INFO_HELP = "Model version in a given role; the value is always 1."

# A drift push carries one series per feature; beyond this a caller is almost certainly
# passing something other than feature names (row ids, timestamps) and would explode the
# number of series Prometheus stores.
MAX_FEATURE_LABELS = 64


class _FixedCollector(Collector):
    """Hands a fixed list of metric families to a registry.

    Built families are used instead of ``Counter``/``Gauge`` objects because a process-local
    ``Counter`` would also export a ``_created`` series (a new timestamp every run) and could
    not be seeded with the cumulative value read back from the gateway.
    """

    def __init__(self, families: Iterable[Metric]):
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _registry(families: Iterable[Metric]) -> CollectorRegistry:
    # A fresh registry per push: the default registry would drag in process and platform
    # metrics of this short-lived process, which mean nothing once pushed.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FixedCollector(families))
    return registry


def build_failure_registry(job: str, *, now: float | None = None) -> CollectorRegistry:
    """The only thing a failed run pushes: when it failed."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; expected one of {JOBS}")
    stamp = time.time() if now is None else now
    return _registry(
        [
            _gauge(
                last_failure_metric(job),
                f"Unix time of the last failed {job} run.",
                stamp,
            )
        ]
    )


def build_scoring_registry(
    *,
    rows: int,
    flagged: int,
    seconds: float,
    model_version: str,
    predictions_total: float | None = None,
    flagged_total: float | None = None,
    now: float | None = None,
) -> CollectorRegistry:
    """Metrics of a successful scoring run.

    ``predictions_total``/``flagged_total`` are the cumulative counter values to expose;
    they default to this run's counts (a counter that starts now).
    """
    _check_scoring_inputs(rows, flagged, seconds)
    stamp = time.time() if now is None else now
    # An empty batch has no defined ratio; 0 keeps the 7-day average usable (a NaN would
    # poison avg_over_time for a week) and the alert rules ignore runs with no rows.
    ratio = flagged / rows if rows else 0.0
    info = GaugeMetricFamily(MODEL_INFO, _MODEL_INFO_HELP, labels=["model_version", "role"])
    info.add_metric([str(model_version), ROLE_SCORING], 1.0)
    return _registry(
        [
            CounterMetricFamily(
                PREDICTIONS_TOTAL,
                "Transactions scored, cumulative over all scoring runs.",
                value=float(rows if predictions_total is None else predictions_total),
            ),
            CounterMetricFamily(
                FLAGGED_TOTAL,
                "Transactions flagged as fraud, cumulative over all scoring runs.",
                value=float(flagged if flagged_total is None else flagged_total),
            ),
            _gauge(SCORING_ROWS, "Rows scored by the last successful scoring run.", rows),
            _gauge(
                SCORING_FLAGGED,
                "Rows flagged as fraud by the last successful scoring run.",
                flagged,
            ),
            _gauge(
                SCORING_FLAGGED_RATIO,
                "Share of rows flagged as fraud by the last successful scoring run (0-1).",
                ratio,
            ),
            _gauge(
                SCORING_DURATION,
                "Wall-clock duration of the last successful scoring run.",
                seconds,
            ),
            info,
            _gauge(
                last_success_metric(JOB_SCORING),
                "Unix time of the last successful scoring run.",
                stamp,
            ),
        ]
    )


def build_training_registry(
    *,
    auprc: float,
    roc_auc: float,
    threshold: float,
    seconds: float,
    model_version: str,
    gate_passed: bool,
    production_version: str | None,
    now: float | None = None,
) -> CollectorRegistry:
    """Metrics of a successful training run."""
    _check_duration(seconds)
    stamp = time.time() if now is None else now
    info = GaugeMetricFamily(MODEL_INFO, _MODEL_INFO_HELP, labels=["model_version", "role"])
    info.add_metric([str(model_version), ROLE_CANDIDATE], 1.0)
    if production_version:
        info.add_metric([str(production_version), ROLE_PRODUCTION], 1.0)
    return _registry(
        [
            _gauge(MODEL_AUPRC, "Area under the precision-recall curve of the candidate.", auprc),
            _gauge(MODEL_ROC_AUC, "Area under the ROC curve of the candidate.", roc_auc),
            _gauge(MODEL_THRESHOLD, "Decision threshold chosen for the candidate.", threshold),
            _gauge(
                TRAINING_DURATION,
                "Wall-clock duration of the last successful training run.",
                seconds,
            ),
            _gauge(
                TRAINING_GATE_PASSED,
                "1 if the candidate passed the promotion gate, 0 if it did not.",
                1.0 if gate_passed else 0.0,
            ),
            info,
            _gauge(
                last_success_metric(JOB_TRAINING),
                "Unix time of the last successful training run.",
                stamp,
            ),
        ]
    )


def build_drift_registry(
    *,
    psi: Mapping[str, float],
    wasserstein: Mapping[str, float],
    drift_share: float,
    drift_detected: bool,
    seconds: float,
    now: float | None = None,
) -> CollectorRegistry:
    """Metrics of a successful drift run."""
    _check_duration(seconds)
    for what, values in (("psi", psi), ("wasserstein", wasserstein)):
        if len(values) > MAX_FEATURE_LABELS:
            raise ValueError(
                f"{what} has {len(values)} entries; at most {MAX_FEATURE_LABELS} feature "
                "labels are pushed to keep the number of series bounded"
            )
    stamp = time.time() if now is None else now
    psi_family = GaugeMetricFamily(
        DRIFT_PSI,
        "Population stability index of a feature, current batch against the reference.",
        labels=["feature"],
    )
    for feature in sorted(psi):
        psi_family.add_metric([str(feature)], float(psi[feature]))
    wasserstein_family = GaugeMetricFamily(
        DRIFT_WASSERSTEIN,
        "Wasserstein distance of a feature, scaled by the reference spread.",
        labels=["feature"],
    )
    for feature in sorted(wasserstein):
        wasserstein_family.add_metric([str(feature)], float(wasserstein[feature]))
    return _registry(
        [
            psi_family,
            wasserstein_family,
            _gauge(DRIFT_SHARE, "Share of features found drifted by the last drift run (0-1).",
                   drift_share),
            _gauge(
                DRIFT_DETECTED,
                "1 if the last drift run declared drift, 0 if not.",
                1.0 if drift_detected else 0.0,
            ),
            _gauge(DRIFT_DURATION, "Wall-clock duration of the last successful drift run.",
                   seconds),
            _gauge(
                last_success_metric(JOB_DRIFT),
                "Unix time of the last successful drift run.",
                stamp,
            ),
        ]
    )


def push_scoring_metrics(
    gateway_url: str | None,
    *,
    rows: int,
    flagged: int,
    seconds: float,
    model_version: str,
    succeeded: bool = True,
    timeout: float = 5.0,
) -> bool:
    """Push-add the results of one scoring run; True if the gateway accepted them.

    ``fraud_predictions_total``/``fraud_flagged_total`` continue from the values the
    gateway holds for the scoring group. A failed run pushes only its failure time.
    """
    if not _gateway_configured(gateway_url, JOB_SCORING):
        return False
    assert gateway_url is not None
    if not succeeded:
        return _push(gateway_url, JOB_SCORING, lambda: build_failure_registry(JOB_SCORING),
                     timeout)
    try:
        _check_scoring_inputs(rows, flagged, seconds)
    except (TypeError, ValueError) as exc:
        logger.error("Not pushing %s metrics: %s", JOB_SCORING, exc)
        return False

    # Read-modify-write of the counters: serialise it between runs on this host, or two
    # overlapping runs (a backfill) would both read N and one increment would be lost.
    with _host_lock(gateway_url, JOB_SCORING, wait=2 * timeout + 1):
        current = _read_counters(gateway_url, JOB_SCORING, COUNTER_NAMES, timeout)
        if current is None:
            return False
        predictions_total = current.get(PREDICTIONS_TOTAL, 0.0) + rows
        flagged_total = current.get(FLAGGED_TOTAL, 0.0) + flagged
        return _push(
            gateway_url,
            JOB_SCORING,
            lambda: build_scoring_registry(
                rows=rows,
                flagged=flagged,
                seconds=seconds,
                model_version=model_version,
                predictions_total=predictions_total,
                flagged_total=flagged_total,
            ),
            timeout,
        )


def push_training_metrics(
    gateway_url: str | None,
    *,
    auprc: float,
    roc_auc: float,
    threshold: float,
    seconds: float,
    model_version: str,
    gate_passed: bool,
    production_version: str | None,
    succeeded: bool = True,
    timeout: float = 5.0,
) -> bool:
    """Push-add the results of one training run; True if the gateway accepted them."""
    if not _gateway_configured(gateway_url, JOB_TRAINING):
        return False
    assert gateway_url is not None
    if not succeeded:
        return _push(gateway_url, JOB_TRAINING, lambda: build_failure_registry(JOB_TRAINING),
                     timeout)
    return _push(
        gateway_url,
        JOB_TRAINING,
        lambda: build_training_registry(
            auprc=auprc,
            roc_auc=roc_auc,
            threshold=threshold,
            seconds=seconds,
            model_version=model_version,
            gate_passed=gate_passed,
            production_version=production_version,
        ),
        timeout,
    )


def push_drift_metrics(
    gateway_url: str | None,
    *,
    psi: dict[str, float],
    wasserstein: dict[str, float],
    drift_share: float,
    drift_detected: bool,
    seconds: float,
    succeeded: bool = True,
    timeout: float = 5.0,
) -> bool:
    """Push-add the results of one drift run; True if the gateway accepted them.

    Push-add replaces whole metric families, so a feature missing from this run's ``psi``
    disappears from the gateway instead of keeping an old value.
    """
    if not _gateway_configured(gateway_url, JOB_DRIFT):
        return False
    assert gateway_url is not None
    if not succeeded:
        return _push(gateway_url, JOB_DRIFT, lambda: build_failure_registry(JOB_DRIFT), timeout)
    return _push(
        gateway_url,
        JOB_DRIFT,
        lambda: build_drift_registry(
            psi=psi,
            wasserstein=wasserstein,
            drift_share=drift_share,
            drift_detected=drift_detected,
            seconds=seconds,
        ),
        timeout,
    )


def push_run_failure(gateway_url: str | None, job: str, *, timeout: float = 5.0) -> bool:
    """Record that a run of ``job`` failed, without touching its last good results."""
    if not _gateway_configured(gateway_url, job):
        return False
    assert gateway_url is not None
    return _push(gateway_url, job, lambda: build_failure_registry(job), timeout)


# --------------------------------------------------------------------------- internals


def _check_duration(seconds: float) -> None:
    try:
        valid = math.isfinite(float(seconds)) and float(seconds) >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")


def _check_scoring_inputs(rows: int, flagged: int, seconds: float) -> None:
    # A counter can only grow: a negative increment would corrupt every rate() over it.
    if rows < 0 or flagged < 0:
        raise ValueError(f"rows and flagged must be >= 0, got rows={rows}, flagged={flagged}")
    if flagged > rows:
        raise ValueError(f"flagged ({flagged}) cannot exceed rows ({rows})")
    _check_duration(seconds)


def _gateway_configured(gateway_url: str | None, job: str) -> bool:
    if gateway_url is None or not str(gateway_url).strip():
        logger.info("No Pushgateway URL configured; %s metrics not pushed.", job)
        return False
    return True


def _base_url(gateway_url: str) -> str:
    url = gateway_url.strip().rstrip("/")
    # Same rule as prometheus_client: a bare host:port means plain HTTP.
    if "://" not in url:
        url = "http://" + url
    return url


def _redacted(gateway_url: str) -> str:
    """The URL without any user:password part, for log lines; never raises."""
    try:
        parts = urllib.parse.urlsplit(_base_url(gateway_url))
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:  # bad port or bracket: the push will fail and say so
        return "<malformed Pushgateway URL>"


def _push(
    gateway_url: str, job: str, build: Callable[[], CollectorRegistry], timeout: float
) -> bool:
    try:
        registry = build()
    except (TypeError, ValueError) as exc:
        logger.error("Not pushing %s metrics: %s", job, exc)
        return False
    try:
        pushadd_to_gateway(_base_url(gateway_url), job=job, registry=registry, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - metrics must never fail the run that pushes them
        logger.warning(
            "Could not push %s metrics to the Pushgateway at %s: %s",
            job,
            _redacted(gateway_url),
            exc,
        )
        return False
    logger.info("Pushed %s metrics to the Pushgateway at %s.", job, _redacted(gateway_url))
    return True


def _read_counters(
    gateway_url: str, job: str, names: Iterable[str], timeout: float
) -> dict[str, float] | None:
    """Current values of ``names`` in the group ``{job}``.

    Returns an empty dict when the gateway answers but does not have them (first run, or a
    gateway that lost its state): the counters then restart. Returns None when the gateway
    cannot be reached at all, since the push that follows would fail the same way.
    """
    url = _base_url(gateway_url) + "/api/v1/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        logger.warning(
            "Pushgateway at %s answered HTTP %s to /api/v1/metrics; %s counters restart "
            "from this run.",
            _redacted(gateway_url), exc.code, job,
        )
        return {}
    except Exception as exc:  # noqa: BLE001 - connection refused, DNS, timeout, bad URL
        logger.warning(
            "Could not reach the Pushgateway at %s: %s; %s metrics not pushed.",
            _redacted(gateway_url), exc, job,
        )
        return None
    try:
        return _counters_from_payload(json.loads(raw), job, names)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning(
            "Unexpected /api/v1/metrics answer from %s (%s); %s counters restart.",
            _redacted(gateway_url), exc, job,
        )
        return {}


def _counters_from_payload(payload: Any, job: str, names: Iterable[str]) -> dict[str, float]:
    wanted = set(names)
    found: dict[str, float] = {}
    for group in payload.get("data") or []:
        if group.get("labels") != {"job": job}:
            continue
        for name in wanted:
            family = group.get(name)
            if not isinstance(family, dict) or family.get("type") != "COUNTER":
                continue
            for metric in family.get("metrics") or []:
                labels = {
                    k: v for k, v in (metric.get("labels") or {}).items()
                    if k not in ("job", "instance") and v != ""
                }
                if labels:
                    continue
                value = float(metric["value"])
                if math.isfinite(value) and value >= 0:
                    found[name] = value
    return found


@contextlib.contextmanager
def _host_lock(gateway_url: str, job: str, *, wait: float) -> Iterator[None]:
    """An advisory lock shared by every process on this host pushing ``job`` to one gateway.

    Gives up after ``wait`` seconds and goes on unlocked: a stuck lock holder must not stall
    a scoring run, and the worst case is one lost increment.
    """
    key = hashlib.sha256(f"{_redacted(gateway_url)}|{job}".encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"fraud-telemetry-{key}.lock")
    try:
        handle = open(path, "a+")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        logger.debug("No telemetry lock file (%s); pushing without it.", exc)
        yield
        return
    locked = False
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    logger.warning("Telemetry lock %s still held; pushing without it.", path)
                    break
                time.sleep(0.05)
        yield
    finally:
        if locked:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
