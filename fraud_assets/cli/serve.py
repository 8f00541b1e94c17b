"""``fraud serve``: the real-time scoring service on 127.0.0.1:8000."""

from __future__ import annotations

import logging

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; keep loopback unless a proxy or container network needs more.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--reload-interval", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds between checks of the production pointer.")
@click.option("--batch-threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="XGBoost threads for a body over 16 KiB (about 20 transactions; 0: all "
                   "cores); smaller requests use one.")
@click.option("--contributions", type=click.Choice(["exact", "approx"]), default="exact",
              show_default=True,
              help="exact: XGBoost's TreeSHAP values. approx: its path-based (Saabas) "
                   "attribution: same sum, another split of credit.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (costs latency at high request rates).")
def serve_command(
    host: str, port: int, reload_interval: float, batch_threads: int, contributions: str,
    access_log: bool,
) -> None:
    """Serve POST /predict, GET /health and GET /metrics with the production model."""
    import uvicorn

    from fraud_assets import settings
    from fraud_assets.service import NoProductionModel, create_app

    # Model swaps and reload failures are INFO/ERROR records an operator must see.
    logging.getLogger("fraud_assets.service").setLevel(logging.INFO)
    try:
        registry = settings.store_urls().registry()
        app = create_app(
            registry, reload_interval=reload_interval, batch_threads=batch_threads,
            contributions=contributions,
        )
    except NoProductionModel as error:
        raise click.ClickException(f"not starting: {error}") from error
    except Exception as error:  # noqa: BLE001 - unreachable store, broken bundle, bad FRAUD_ENV
        raise click.ClickException(
            f"not starting: cannot load the production model: {type(error).__name__}: {error}"
        ) from error
    click.echo(
        f"serving model {app.state.holder.current.version} on http://{host}:{port}", err=True
    )
    uvicorn.run(
        app, host=host, port=port, access_log=access_log, server_header=False,
        timeout_graceful_shutdown=10, log_level="info",
    )
