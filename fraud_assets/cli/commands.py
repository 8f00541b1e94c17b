"""Single-purpose commands over local files: generate and drift."""

from __future__ import annotations

import json
import os

import click

from fraud_assets.cli.paths import LOCAL_FS, input_table, load_model_dir, output_table
from fraud_assets.cli.progress import Progress, known_rows
from fraud_assets.core.data import profile
from fraud_assets.core.data.schema import feature_matrix
from fraud_assets.core.data.tables import iter_transaction_chunks, read_transactions, write_table
from fraud_assets.core.model import pictures
from fraud_assets.core.monitoring import drift, verdict
from fraud_assets.core.storage.locations import write_bytes_atomic, write_json_atomic


@click.command("generate")
@click.option("--n-samples", type=click.IntRange(min=1), default=284_807, show_default=True)
@click.option("--output", required=True, help="Output file; .csv or .parquet.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--start-day", type=click.IntRange(min=0), default=0, show_default=True,
              help="First day of the data (Time counts seconds from day 0).")
@click.option("--n-days", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--no-labels", is_flag=True, help="Omit Class, as in an incoming batch.")
@click.option("--drift", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Shift the genuine population (0: none; 0.5: clearly drifted).")
def generate_command(n_samples, output, seed, start_day, n_days, no_labels, drift):
    """Generate realistic transactions in the creditcard.csv schema."""
    from fraud_assets.synthetic.generate import generate_transactions  # pandas: not for `fraud --help`

    output_table(output)
    with Progress(f"generating {n_samples:,} transactions", total=n_samples) as progress:
        frame = generate_transactions(
            n_samples, seed=seed, start_day=start_day, n_days=n_days, labels=not no_labels, drift=drift
        )
        progress.update(len(frame))  # drawn at once, in one piece: nothing to count meanwhile
    with Progress(f"writing {output}", total=len(frame)) as progress:
        write_table(frame, os.path.abspath(output), on_rows=progress.add)
    frauds = int(frame["Class"].sum()) if "Class" in frame else None
    click.echo(f"wrote {len(frame)} rows to {output}" + (f" ({frauds} frauds)" if frauds is not None else ""))


# Exit code of `fraud drift --fail-on LEVEL` when the verdict reaches LEVEL; 1 is any other
# failure and 2 a usage error or invalid input, as for every command.
DRIFT_EXIT_CODE = 3


@click.command("drift")
@click.option("--reference", required=True, help="Reference transactions (e.g. the training data).")
@click.option("--current", required=True, help="Current transactions to compare.")
@click.option("--output", help="Write the JSON report here instead of printing it.")
@click.option("--model-dir", help="Also compare model scores, and weigh features by the model's gain.")
@click.option("--chart", help="Write an SVG chart of the most drifted features here.")
@click.option("--fail-on", type=click.Choice(["moderate", "major"]),
              help=f"Exit with code {DRIFT_EXIT_CODE} when the verdict is at this level or above "
              "(2 stays for usage errors and invalid input).")
def drift_command(reference, current, output, model_dir, chart, fail_on):
    """Compare two transaction files feature by feature (PSI, scaled Wasserstein, KS) and
    give one verdict: drift_level none, moderate or major."""
    input_table(reference, "--reference")
    input_table(current, "--current")
    model = load_model_dir(model_dir) if model_dir else None
    with Progress(f"reading {reference}", total=known_rows(reference)) as progress:
        reference_frame = read_transactions(os.path.abspath(reference), require_label=False,
                                            source=reference, on_rows=progress.add)
    columns = {name: reference_frame[name].to_numpy() for name in profile.DRIFT_FEATURES}
    if model is not None:
        columns[profile.SCORE] = model.predict_proba(
            feature_matrix(reference_frame)
        )
    accumulator = drift.DriftAccumulator(profile.build_reference(columns))
    del reference_frame, columns
    with Progress(f"comparing {current}", total=known_rows(current)) as progress:
        chunks = iter_transaction_chunks(os.path.abspath(current), source=current, on_rows=progress.add)
        for chunk in chunks:
            values = {name: chunk[name].to_numpy() for name in profile.DRIFT_FEATURES}
            if model is not None:
                values[profile.SCORE] = model.predict_proba(
                    feature_matrix(chunk)
                )
            accumulator.add(values)
    report = accumulator.report(importance=model.manifest.get("feature_importance") if model else None)
    if chart:
        svg = pictures.drift_svg(report["features"], report["thresholds"]["psi_moderate"],
                                 report["thresholds"]["psi_major"], f"Drift: {report['drift_level']}")
        write_bytes_atomic(LOCAL_FS, os.path.abspath(chart), svg.encode())
    if output:
        write_json_atomic(LOCAL_FS, os.path.abspath(output), report)
        click.echo(f"drift_detected={str(report['drift_detected']).lower()} "
                   f"level={report['drift_level']} report={output}")
    else:
        click.echo(json.dumps(report, indent=2))
    if fail_on and verdict.at_least(report["drift_level"], fail_on):
        raise click.exceptions.Exit(DRIFT_EXIT_CODE)
