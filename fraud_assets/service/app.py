"""HTTP routes: ``POST /predict``, ``GET /health``, ``GET /metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.service import schemas
from fraud_assets.service.metrics import ServiceMetrics
from fraud_assets.service.model_holder import ModelHolder
from fraud_assets.service.predict import CONTRIBUTION_METHODS, score

log = logging.getLogger(__name__)

# A body this small (about 20 transactions) is parsed and scored on the event loop, with one
# XGBoost thread: a thread hop would cost more than it saves, and one thread never waits on
# OpenMP peers that a busy host has descheduled (docs/performance.md). Larger bodies go to a
# worker thread, so they do not hold up the small requests queued behind them.
INLINE_MAX_BYTES = 16 * 1024
# A declared or streamed body beyond the limit is still read (and dropped) up to this size,
# so the client gets its 413 instead of a reset connection; beyond it the connection goes.
_DRAIN_LIMIT = 16 * 1024 * 1024


def create_app(
    registry: ModelRegistry,
    *,
    reload_interval: float = 10.0,
    model: FraudModel | None = None,
    max_body_bytes: int = schemas.MAX_BODY_BYTES,
    max_transactions: int = schemas.MAX_TRANSACTIONS,
    batch_threads: int = 0,
    contributions: str = "exact",
) -> FastAPI:
    """The service over ``registry``'s production model (``NoProductionModel`` if none).

    ``batch_threads``: XGBoost threads for a body over ``INLINE_MAX_BYTES`` (0: all cores);
    smaller ones use one.
    ``contributions``: ``exact`` (TreeSHAP) or ``approx`` (see ``predict.contributions``).
    """
    if contributions not in CONTRIBUTION_METHODS:
        raise ValueError(f"contributions must be one of {CONTRIBUTION_METHODS}")
    holder = ModelHolder(registry, model)
    metrics = ServiceMetrics(holder)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # The ~150k objects alive by now (modules, the model) live as long as the process.
        # Left to the collector, each full collection walked them all: a 70 ms pause every
        # few large batches (docs/performance.md). Frozen, they are never walked again.
        gc.collect()
        gc.freeze()
        watcher = asyncio.create_task(holder.watch(reload_interval)) if reload_interval else None
        yield
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = FastAPI(
        title="card-fraud scoring",
        description=(
            f"POST /predict takes one transaction (an object with Time, V1..V28, Amount and an "
            f"optional transaction_id or id) or a list of up to {max_transactions}; bodies "
            f"over {max_body_bytes} bytes are refused with 413."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.holder, app.state.metrics = holder, metrics

    def answer(body: bytes, threads: int) -> tuple[bytes, int, int]:
        parsed = schemas.parse_request(body, max_transactions=max_transactions)
        serving = holder.current  # this request's model, whatever a reload does meanwhile
        payload, flagged = score(serving, parsed, threads=threads, method=contributions)
        return payload, len(parsed.features), flagged

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request, max_body_bytes)
            if len(body) <= INLINE_MAX_BYTES:
                payload, rows, flagged = answer(body, 1)
            else:
                payload, rows, flagged = await run_in_threadpool(answer, body, batch_threads)
        except schemas.RequestError as error:
            metrics.errors.labels(error.kind).inc()
            metrics.latency.observe(time.perf_counter() - started)
            return _json(error.body(), error.status)
        except ClientDisconnect:
            # Nobody reads this answer; counted apart so that internal errors mean bugs.
            metrics.errors.labels("client_disconnect").inc()
            return Response(status_code=400)
        except Exception:  # noqa: BLE001 - a bug must still answer, and be counted
            log.exception("POST /predict failed")
            metrics.errors.labels("internal").inc()
            metrics.latency.observe(time.perf_counter() - started)
            return _json({"detail": [{"loc": [], "msg": "internal error", "type": "internal"}]}, 500)
        metrics.predictions.inc(rows)
        if flagged:
            metrics.flagged.inc(flagged)
        metrics.latency.observe(time.perf_counter() - started)
        return Response(payload, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        current = holder.current
        return _json(
            {
                "status": "ok",
                "model_loaded": True,
                "model_version": current.version,
                "loaded_since": current.loaded_at.isoformat(),
                "threshold": current.model.threshold,
                "last_reload_check": holder.last_check.isoformat() if holder.last_check else None,
                "last_reload_error": holder.last_error,
            },
            200,
        )

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _json(document, status: int) -> Response:
    return Response(
        json.dumps(document, separators=(",", ":")), status_code=status,
        media_type="application/json",
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await _drain(request)
        raise schemas.too_large(f"body of {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            await _drain(request)
            raise schemas.too_large(f"body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(request: Request) -> None:
    drained = 0
    with contextlib.suppress(Exception):
        async for chunk in request.stream():
            drained += len(chunk)
            if drained > _DRAIN_LIMIT:
                break
