"""Slack notifications through an incoming webhook, with the standard library only.

An alert is a side effect of a run, never its purpose: every failure is logged and turned
into ``False``, nothing is raised. The webhook URL is a credential (anyone holding it can
post to the channel), so it is never written to a log line.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

# Statuses worth another try: Slack rate limiting and server-side trouble. Any other 4xx
# (invalid_payload, no_service, channel_is_archived...) will fail the same way again.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Upper bound on any single wait, including a Retry-After header from Slack, so a scoring
# run is never held for minutes by a notification.
_MAX_WAIT_SECONDS = 30.0


def post_slack_message(
    webhook_url: str | None,
    text: str,
    *,
    blocks: Sequence[dict[str, Any]] | None = None,
    timeout: float = 5.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> bool:
    """Post ``text`` (and optional Block Kit ``blocks``) to a Slack incoming webhook.

    ``text`` is always sent: with blocks it is the notification fallback. ``retries`` is the
    number of further attempts after the first one, waiting ``backoff * 2**attempt`` seconds
    (or Slack's Retry-After, capped) between them. Returns True once Slack accepted the
    message.
    """
    if webhook_url is None or not str(webhook_url).strip():
        logger.info("No Slack webhook URL configured; message not sent: %s", _preview(text))
        return False

    payload: dict[str, Any] = {"text": text}
    if blocks:
        payload["blocks"] = list(blocks)
    try:
        body = json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(
            str(webhook_url).strip(),
            data=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
    except (TypeError, ValueError) as exc:
        logger.error("Slack message not sent: cannot build the request (%s).", exc)
        return False

    attempts = max(0, int(retries)) + 1
    for attempt in range(attempts):
        wait = backoff * (2**attempt)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
            return True
        except urllib.error.HTTPError as exc:
            detail = _read_error_body(exc)
            if exc.code not in _RETRY_STATUSES:
                logger.error("Slack rejected the message: HTTP %s %s", exc.code, detail)
                return False
            if exc.code == 429:
                wait = _retry_after(exc, default=wait)
            problem = f"HTTP {exc.code} {detail}".strip()
        except ValueError as exc:
            # urllib raises ValueError for a malformed URL: retrying cannot help.
            logger.error("Slack message not sent: bad webhook URL (%s).", type(exc).__name__)
            return False
        except Exception as exc:  # noqa: BLE001 - connection refused, reset, DNS, timeout
            problem = f"{type(exc).__name__}: {_strip_url(exc)}"
        if attempt + 1 < attempts:
            logger.warning(
                "Slack post failed (%s); attempt %d of %d, retrying in %.1f s.",
                problem, attempt + 1, attempts, wait,
            )
            time.sleep(min(wait, _MAX_WAIT_SECONDS))
        else:
            logger.error("Slack post failed after %d attempt(s): %s", attempts, problem)
    return False


def _preview(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_error_body(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(200).decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001 - the body is only a hint for the log line
        return ""


def _retry_after(exc: urllib.error.HTTPError, *, default: float) -> float:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _strip_url(exc: BaseException) -> str:
    # URLError's reason never carries the URL, but keep only the reason to be sure the
    # webhook path cannot reach the logs through an exception message.
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc)
