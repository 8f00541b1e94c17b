"""Latency and throughput of the real-time service, measured from another process.

    .venv/bin/python benchmarks/service_latency.py            # about two minutes
    .venv/bin/python benchmarks/service_latency.py --quick    # smaller, for a smoke run

Trains a model on generated rows (default training config), puts it in a temporary
registry, starts ``fraud serve`` on a free port of 127.0.0.1 and loads it over HTTP with
httpx on asyncio. Every phase is bounded by a request count and a duration. The
fixed-rate phase measures latency from each request's scheduled send time, so a server
that falls behind cannot hide its queue (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

TARGET_SINGLE_P99_MS = 10.0  # single transactions at 200 requests/s
TARGET_BATCH_MS = 50.0  # one batch of 1,000 transactions
REQUEST_TIMEOUT = 10.0  # a request slower than this counts as an error
FRAUD = Path(sys.executable).parent / "fraud"


def train_registry(root: Path, rows: int) -> tuple[str, list[dict]]:
    from fraud_assets.core.data.features import fit_preprocessor
    from fraud_assets.core.data.splits import split_transactions
    from fraud_assets.core.model.registry import ModelRegistry
    from fraud_assets.core.model.training import train_fraud_model
    from fraud_assets.core.storage.locations import Location
    from fraud_assets.synthetic.generate import generate_transactions

    splits = split_transactions(generate_transactions(rows, seed=0))
    model = train_fraud_model(splits, fit_preprocessor(splits.train))
    registry = ModelRegistry(Location(str(root / "models")))
    registry.save(model)
    registry.promote(model.version, reason="benchmark")
    traffic = generate_transactions(5_000, seed=1, start_day=2, n_days=1, labels=False)
    rounds, trees = model.booster.num_boosted_rounds(), len(model.booster.get_dump())
    print(f"model {model.version}: {trees} trees in {rounds} rounds", flush=True)
    return model.version, traffic.to_dict(orient="records")


def start_service(root: Path, serve_args: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FRAUD_ENV": "local", "FRAUD_LOCAL_DIR": str(root)}
    log = open(root / "serve.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [str(FRAUD), "serve", "--port", str(port), *serve_args],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"fraud serve exited:\n{(root / 'serve.log').read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    sys.exit("fraud serve did not become ready")


def server_mean_ms(url: str) -> tuple[float, float]:
    """(sum, count) of the service's own latency histogram."""
    text = httpx.get(url + "/metrics").text
    values = {}
    for line in text.splitlines():
        for name in ("_sum", "_count"):
            if line.startswith(f"fraud_service_request_duration_seconds{name} "):
                values[name] = float(line.split()[1])
    return values["_sum"], values["_count"]


async def _post(client: httpx.AsyncClient, body: bytes, errors: list) -> bool:
    """True on a 200; anything else (status, timeout, reset) is recorded, not raised."""
    try:
        response = await client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
    except httpx.HTTPError as error:
        errors.append(repr(error))
        return False
    if response.status_code != 200:
        errors.append(f"{response.status_code}: {response.text[:200]}")
        return False
    return True


async def closed_loop(url, bodies, concurrency, max_requests, max_seconds) -> dict:
    """``concurrency`` clients, each sending its next request when the last one answered."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT) as client:

        async def worker(offset: int) -> None:
            i = offset
            while len(latencies) + len(errors) < max_requests and time.perf_counter() < deadline:
                started = time.perf_counter()
                if await _post(client, bodies[i % len(bodies)], errors):
                    latencies.append(time.perf_counter() - started)
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return _summary(latencies, errors, elapsed)


async def fixed_rate(url, bodies, rate, seconds, connections=8) -> dict:
    """Open loop: request i is due at i / rate; latency counts from when it was due.

    A few keep-alive connections take the due requests in turn: when all are busy, the
    waiting shows up in the latency, as it would for a real caller.
    """
    latencies: list[float] = []
    errors: list[str] = []
    total, taken = int(rate * seconds), 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT) as client:
        start = time.perf_counter() + 0.05

        async def worker() -> None:
            nonlocal taken
            while taken < total:
                i, taken = taken, taken + 1
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if await _post(client, bodies[i % len(bodies)], errors):
                    latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, elapsed)


async def health_floor(url, max_requests, max_seconds) -> dict:
    """GET /health one at a time: the HTTP stack's own cost, client and server, no model."""
    latencies: list[float] = []
    deadline = time.perf_counter() + max_seconds
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        started = time.perf_counter()
        while len(latencies) < max_requests and time.perf_counter() < deadline:
            begin = time.perf_counter()
            (await client.get("/health")).raise_for_status()
            latencies.append(time.perf_counter() - begin)
        elapsed = time.perf_counter() - started
    return _summary(latencies, [], elapsed)


def _summary(latencies: list[float], errors: list[str], elapsed: float) -> dict:
    ms = np.asarray(latencies or [float("nan")]) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "rps": len(ms) / elapsed,
    }


def run(coroutine):
    """asyncio.run on uvloop when installed (uvicorn[standard] brings it): less client CPU
    taken from the two processes' shared cores."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor() or "unknown CPU",
    )
    pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{os.cpu_count()} CPUs ({cpu}), {pages / 2**30:.0f} GiB RAM, Python {platform.python_version()}"


def run_phases(url: str, records: list[dict], quick: bool) -> list[tuple[str, dict]]:
    singles = [json.dumps(r).encode() for r in records]
    batches = [json.dumps(records[i:i + 1000]).encode() for i in range(0, 4000, 1000)]
    scale = 0.2 if quick else 1.0
    run(closed_loop(url, singles, 4, 300, 10))  # warm-up: connections, caches
    phases = [
        ("GET /health, concurrency 1", lambda: health_floor(url, int(2000 * scale), 10 * scale)),
        ("single, concurrency 1", lambda: closed_loop(url, singles, 1, int(3000 * scale), 20 * scale)),
        ("single, concurrency 16", lambda: closed_loop(url, singles, 16, int(6000 * scale), 20 * scale)),
        ("single, fixed 200 req/s", lambda: fixed_rate(url, singles, 200, max(10 * scale, 3))),
        ("batch of 1,000, concurrency 1", lambda: closed_loop(url, batches, 1, int(150 * scale), 30 * scale)),
    ]
    results = []
    for name, phase in phases:
        before = server_mean_ms(url)
        if name.startswith("GET"):
            results.append((name, {**run(phase()), "server_mean_ms": float("nan")}))
            continue
        result = run(phase())
        after = server_mean_ms(url)
        count = after[1] - before[1]
        result["server_mean_ms"] = 1000 * (after[0] - before[0]) / count if count else float("nan")
        results.append((name, result))
        print(f"  done: {name}", flush=True)
    return results


def report(results: list[tuple[str, dict]]) -> None:
    print(f"\n{'phase':32} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'req/s':>8} {'server mean ms':>15}")
    for name, r in results:
        print(f"{name:32} {r['requests']:8d} {r['errors']:6d} {r['p50_ms']:8.2f} "
              f"{r['p99_ms']:8.2f} {r['max_ms']:8.1f} {r['rps']:8.1f} {r['server_mean_ms']:15.2f}")
        if r["first_error"]:
            print(f"    first error: {r['first_error']}")
    by_name = dict(results)
    rate = by_name["single, fixed 200 req/s"]
    batch = by_name["batch of 1,000, concurrency 1"]
    print("\ntargets (ratio < 1 meets the target):")
    print(f"  single p99 at 200 req/s: {rate['p99_ms']:.2f} ms / {TARGET_SINGLE_P99_MS:.0f} ms"
          f" = {rate['p99_ms'] / TARGET_SINGLE_P99_MS:.2f}")
    for key in ("p50_ms", "p99_ms"):
        print(f"  batch of 1,000 {key[:3]}: {batch[key]:.2f} ms / {TARGET_BATCH_MS:.0f} ms"
              f" = {batch[key] / TARGET_BATCH_MS:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="training rows")
    parser.add_argument("--quick", action="store_true", help="fewer requests per phase")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("serve_args", nargs="*", help="extra `fraud serve` options, after --")
    args = parser.parse_args()
    print(machine(), flush=True)
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="fraud-bench-") as tmp:
        root = Path(tmp)
        _, records = train_registry(root, args.rows)
        process, url = start_service(root, args.serve_args)
        try:
            results = run_phases(url, records, args.quick)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    report(results)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": dict(results)}, indent=2))


if __name__ == "__main__":
    main()
