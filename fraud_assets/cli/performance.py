"""``fraud performance``: the realised performance of the serving models, day by day.

Reads the documents the ``realized_performance`` asset stores through the IO manager
(``assets/realized_performance/<day>.json`` in the data store of the current environment),
so it needs neither Dagster nor a running instance: what the asset measured is what it shows.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath

import click

ASSET_FOLDER = ("assets", "realized_performance")
# Columns of --json: what a script comparing the roles needs (the table shows the same).
JSON_FIELDS = ("date", "role", "model_version", "rows", "frauds", "auprc", "precision", "recall",
               "alerts", "caught", "missed", "false_alerts", "cost", "threshold", "mature",
               "known_fraud_share")


class IsoDate(click.ParamType):
    """A YYYY-MM-DD date; anything else is a usage error (exit 2), as for any bad option."""

    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


def read_performance(location, first: dt.date | None, last: dt.date | None) -> list[dict]:
    """Every stored figure of the days in [first, last], sorted by day then role."""
    from fraud_assets.core.storage.locations import read_json

    folder = location.path(*ASSET_FOLDER)
    if not location.fs.exists(folder):
        return []
    rows = []
    for path in location.fs.ls(folder, detail=False):
        name = posixpath.basename(str(path))
        if not name.endswith(".json"):
            continue
        try:
            day = dt.date.fromisoformat(name.removesuffix(".json"))
        except ValueError:
            continue  # not a day's document (a temporary file of an atomic write)
        if (first and day < first) or (last and day > last):
            continue
        document = read_json(location.fs, path)
        for figure in document.get("figures", []):
            rows.append({**figure, "date": figure.get("date", day.isoformat()),
                         "mature": bool(figure.get("mature", document.get("mature")))})
    # Production before challenger within a day: the serving model first.
    role_order = {"production": 0, "challenger": 1}
    rows.sort(key=lambda r: (r["date"], role_order.get(r.get("role"), 2), r.get("role", "")))
    return rows


def _figure(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows: list[dict]) -> str:
    header = ("date", "role", "model_version", "rows", "frauds", "auprc", "precision", "recall",
              "alerts", "cost", "status")
    lines = [header]
    for r in rows:
        lines.append((
            r["date"], r.get("role", "?"), r.get("model_version", "?"), str(r.get("rows", 0)),
            str(r.get("frauds", 0)), _figure(r.get("auprc")), _figure(r.get("precision")),
            _figure(r.get("recall")), str(r.get("alerts", 0)), _figure(r.get("cost"), 0),
            "mature" if r["mature"] else "provisional",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


@click.command("performance")
@click.option("--from", "first", type=IsoDate(), default=None, help="First day (inclusive).")
@click.option("--to", "last", type=IsoDate(), default=None, help="Last day (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects instead of a table.")
def performance_command(first, last, as_json):
    """Realised performance per day and model role, from the labels reported so far."""
    from fraud_assets import settings

    if first and last and first > last:
        raise click.BadParameter(f"--from {first} is after --to {last}", param_hint="--from")
    location = settings.store_urls().data()
    rows = read_performance(location, first, last)
    if as_json:
        click.echo(json.dumps([{key: r.get(key) for key in JSON_FIELDS} for r in rows], indent=2))
        return
    if not rows:
        click.echo(f"no realised performance in {location.display(location.path(*ASSET_FOLDER))}"
                   " for these days", err=True)
        return
    click.echo(format_table(rows))
