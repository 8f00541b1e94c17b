"""``fraud score``: kept apart from training's commands so that it starts without their imports."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from fraud_assets.cli.paths import LOCAL_FS, input_table, load_model_dir, output_table
from fraud_assets.cli.progress import Progress, known_rows
from fraud_assets.core.data.features import Preprocessor
from fraud_assets.core.data.tables import DEFAULT_CHUNK_ROWS
from fraud_assets.core.model.scoring import score_file
from fraud_assets.core.storage.locations import remove_abandoned_temporaries, write_json_atomic


@click.command("score")
@click.option("--model-dir", required=True, help="Model folder from `fraud train`, or a registry root.")
@click.option("--input", "input_path", required=True, help="Transactions, .csv or .parquet.")
@click.option("--output", "output_path", required=True, help="Predictions, .csv or .parquet.")
@click.option("--preprocessing", type=click.Path(exists=True, dir_okay=False),
              help="Preprocessing JSON to use instead of the model folder's own.")
@click.option("--chunk-rows", type=click.IntRange(min=1000), default=DEFAULT_CHUNK_ROWS, show_default=True)
def score_command(model_dir, input_path, output_path, preprocessing, chunk_rows):
    """Score a batch file; write predictions and inference_stats.json beside them."""
    output_table(output_path)
    input_table(input_path, "--input")
    model = load_model_dir(model_dir)
    if preprocessing:
        if not preprocessing.endswith(".json"):
            raise click.BadParameter("only JSON preprocessing parameters are loaded (no pickles)",
                                     param_hint="--preprocessing")
        try:
            model.preprocessor = Preprocessor.from_json(Path(preprocessing).read_text())
        except (ValueError, KeyError, TypeError) as error:
            # Not JSON, or an unknown kind: a usage error (exit 2), not a traceback.
            raise click.BadParameter(f"{preprocessing}: {error}", param_hint="--preprocessing") from error
    output = os.path.abspath(output_path)
    started = time.time()
    with Progress(f"scoring {input_path}", total=known_rows(input_path)) as progress:
        stats = score_file(model, os.path.abspath(input_path), output, chunk_rows=chunk_rows,
                           source=input_path, on_rows=progress.add)
    stats_path = os.path.join(os.path.dirname(output), "inference_stats.json")
    write_json_atomic(LOCAL_FS, stats_path, {**stats.to_dict(), "input": input_path, "output": output_path})
    # A SIGKILL skips the cleanup of atomic writes: a re-run leaves no debris of the killed one.
    for path in (output, stats_path):
        remove_abandoned_temporaries(LOCAL_FS, path, started)
    click.echo(json.dumps(stats.to_dict()))
