"""Push-add to a Pushgateway without ever failing the caller."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, pushadd_to_gateway

# Callers filter and configure logging by the package's name.
logger = logging.getLogger("fraud_assets.core.monitoring.telemetry")


def gateway_configured(gateway_url: str | None, job: str) -> bool:
    if gateway_url is None or not str(gateway_url).strip():
        logger.info("No Pushgateway URL configured; %s metrics not pushed.", job)
        return False
    return True


def base_url(gateway_url: str) -> str:
    url = gateway_url.strip().rstrip("/")
    # Same rule as prometheus_client: a bare host:port means plain HTTP.
    if "://" not in url:
        url = "http://" + url
    return url


def redacted(gateway_url: str) -> str:
    """The URL without any user:password part, for log lines; never raises."""
    try:
        parts = urllib.parse.urlsplit(base_url(gateway_url))
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:  # bad port or bracket: the push will fail and say so
        return "<malformed Pushgateway URL>"


def push(
    gateway_url: str | None,
    job: str,
    build: Callable[[], CollectorRegistry],
    timeout: float,
    grouping_key: Mapping[str, str] | None = None,
) -> bool:
    """Push-add what ``build`` returns to the group ``{job, **grouping_key}``.

    Push-add (HTTP POST) replaces only the metric families present in this push and keeps
    the rest of the group, so a failure timestamp never wipes the last good figures.
    Building happens here too, so a value the builder refuses is logged like a network
    problem: metrics must never fail the run that pushes them.
    """
    if not gateway_configured(gateway_url, job):
        return False
    assert gateway_url is not None
    try:
        registry = build()
    except (TypeError, ValueError) as exc:
        logger.error("Not pushing %s metrics: %s", job, exc)
        return False
    try:
        pushadd_to_gateway(
            base_url(gateway_url),
            job=job,
            registry=registry,
            grouping_key=dict(grouping_key or {}),
            timeout=timeout,
        )
    except Exception as exc:  # noqa: BLE001 - metrics must never fail the run that pushes them
        logger.warning(
            "Could not push %s metrics to the Pushgateway at %s: %s",
            job,
            redacted(gateway_url),
            exc,
        )
        return False
    logger.info("Pushed %s metrics to the Pushgateway at %s.", job, redacted(gateway_url))
    return True
