"""``fraud score``: kept apart from training's commands so that it starts without their imports."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from fraud_assets import settings
from fraud_assets.cli.paths import LOCAL_FS, input_tables, load_model_dir, output_table
from fraud_assets.cli.progress import Progress, known_rows
from fraud_assets.core.data.features import Preprocessor
from fraud_assets.core.data.inputs import TableSet, distinct_output_names
from fraud_assets.core.data.schema import DataValidationError
from fraud_assets.core.data.tables import DEFAULT_CHUNK_ROWS
from fraud_assets.core.model.scoring import score_file
from fraud_assets.core.storage.locations import remove_abandoned_temporaries, write_json_atomic


@click.command("score")
@click.option("--model-dir", required=True, help="Model folder from `fraud train`, or a registry root.")
@click.option("--input", "input_path", required=True, help="Transactions, .csv or .parquet; or a folder of them or a glob (local or s3://).")
@click.option("--output", "output_path", required=True,
              help="Predictions, .csv or .parquet; a folder when --input names several files.")
@click.option("--preprocessing", type=click.Path(exists=True, dir_okay=False),
              help="Preprocessing JSON to use instead of the model folder's own.")
@click.option("--chunk-rows", type=click.IntRange(min=1000), default=DEFAULT_CHUNK_ROWS, show_default=True)
def score_command(model_dir, input_path, output_path, preprocessing, chunk_rows):
    """Score a batch file, or many into a folder; write predictions and inference_stats.json."""
    tables = input_tables(input_path, "--input")
    single = tables.is_single_file
    if single:
        output_table(output_path)
    else:
        names = _output_names(tables, output_path)
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
    if not single:
        _score_many(model, tables, names, output_path, chunk_rows)
        return
    output = os.path.abspath(output_path)
    if not tables.is_remote and {os.path.realpath(output), output} & {os.path.realpath(tables.paths[0]),
                                                                       os.path.abspath(tables.paths[0])}:
        # The atomic rename would put the predictions in the transactions' place.
        raise click.BadParameter(f"{output_path} is the input: its predictions would replace it; "
                                 "choose another file", param_hint="--output")
    started = time.time()
    total = None if tables.is_remote else known_rows(tables.paths[0])
    with Progress(f"scoring {input_path}", total=total) as progress:
        stats = score_file(model, tables.paths[0], output, input_fs=tables.fs, chunk_rows=chunk_rows,
                           source=input_path, on_rows=progress.add)
    stats_path = os.path.join(os.path.dirname(output), "inference_stats.json")
    write_json_atomic(LOCAL_FS, stats_path, {**stats.to_dict(), "input": input_path, "output": output_path})
    # A SIGKILL skips the cleanup of atomic writes: a re-run leaves no debris of the killed one.
    remove_abandoned_temporaries(LOCAL_FS, os.path.dirname(output), started,
                                 names=[os.path.basename(output), os.path.basename(stats_path)])
    click.echo(json.dumps(stats.to_dict()))


def _output_names(tables: TableSet, output_path: str) -> list[str]:
    if os.path.isfile(output_path):
        raise click.BadParameter(f"{output_path} is a file; a folder or glob input needs a folder",
                                 param_hint="--output")
    try:
        names = distinct_output_names(tables)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--input") from error
    if not tables.is_remote:
        # The atomic rename would put each input's predictions in its place.
        # Compared as given and resolved: a symlinked input is replaced where it is listed.
        inputs = {spelled(path) for path in tables.paths for spelled in (os.path.abspath, os.path.realpath)}
        clobbered = [name for name in names
                     if {os.path.join(spelled(output_path), name) for spelled in (os.path.abspath, os.path.realpath)}
                     & inputs]
        if clobbered:
            raise click.BadParameter(
                f"{output_path} holds the inputs ({', '.join(clobbered[:3])}): their predictions "
                "would replace them; choose another folder", param_hint="--output")
    return names


def _score_many(model, tables: TableSet, names: list[str], output_dir: str, chunk_rows: int) -> None:
    """One predictions file per input, named and formatted as the input, and one
    inference_stats.json listing them; across the Dask cluster when one is configured.

    A file that breaks the schema is refused without stopping the others, whatever their
    order: the stats list it with the reason, and the command exits 2 naming it."""
    directory = os.path.abspath(output_dir)
    os.makedirs(directory, exist_ok=True)
    outputs = [os.path.join(directory, name) for name in names]
    stats_path = os.path.join(directory, "inference_stats.json")
    started = time.time()
    scheduler = settings.dask_scheduler()
    if scheduler:
        from fraud_assets.core.cluster.client import cluster_client
        from fraud_assets.core.cluster.scoring import score_files_on_cluster

        with cluster_client(scheduler) as client:
            results = score_files_on_cluster(client, model, tables, outputs, chunk_rows=chunk_rows)
        # Workers write the outputs where they run: a folder this host does not share with
        # them leaves the predictions on their disks.
        missing = [output for output, outcome in zip(outputs, results, strict=True)
                   if not isinstance(outcome, DataValidationError) and not os.path.exists(output)]
        if missing:
            raise click.ClickException(
                f"the Dask workers wrote {len(missing)} of {len(outputs)} outputs where this host "
                f"cannot see them (first: {missing[0]}): --output must be a folder every worker "
                "and this host share")
    else:
        results = []
        with Progress(f"scoring {len(outputs)} files of {tables.spec}") as progress:
            for path, output in zip(tables.paths, outputs, strict=True):
                try:
                    results.append(score_file(model, path, output, input_fs=tables.fs, chunk_rows=chunk_rows,
                                              source=tables.url(path), on_rows=progress.add))
                except DataValidationError as error:
                    results.append(error)
    files = [
        {"input": tables.url(path), "refused": str(outcome)} if isinstance(outcome, DataValidationError)
        else {**outcome.to_dict(), "input": tables.url(path), "output": output}
        for path, output, outcome in zip(tables.paths, outputs, results, strict=True)
    ]
    write_json_atomic(LOCAL_FS, stats_path, {"files": files})
    # A SIGKILL skips the cleanup of atomic writes: a re-run leaves no debris of the killed one.
    remove_abandoned_temporaries(LOCAL_FS, directory, started, names=[*names, "inference_stats.json"])
    for entry in files:
        click.echo(json.dumps(entry))
    refused = [outcome for outcome in results if isinstance(outcome, DataValidationError)]
    if refused:
        scored = len(results) - len(refused)
        more = f" (and {len(refused) - 1} more file(s) refused)" if len(refused) > 1 else ""
        raise DataValidationError(refused[0].source, [
            *refused[0].problems, f"{scored} of {len(results)} file(s) scored{more}; see {stats_path}"])
