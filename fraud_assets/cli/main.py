"""Entry point: ``fraud generate | train | score | drift | demo | model ...``."""

from __future__ import annotations

import logging
import sys

import click

from fraud_assets.cli.commands import drift_command, generate_command, score_command, train_command
from fraud_assets.cli.demo import demo_command
from fraud_assets.cli.registry import model_group
from fraud_assets.cli.s3 import s3_group
from fraud_assets.cli.serve import serve_command
from fraud_assets.core.schema import DataValidationError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def cli(verbose: bool) -> None:
    """Card-fraud detection: generate data, train, score, watch drift."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


cli.add_command(generate_command)
cli.add_command(train_command)
cli.add_command(score_command)
cli.add_command(drift_command)
cli.add_command(demo_command)
cli.add_command(model_group)
cli.add_command(s3_group)
cli.add_command(serve_command)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="fraud", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except DataValidationError as error:
        click.echo(f"error: invalid input: {error}", err=True)
        sys.exit(2)
