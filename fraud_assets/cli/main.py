"""Entry point: ``fraud generate | train | score | drift | demo | performance | model ...``."""

from __future__ import annotations

import importlib
import sys

import click

from fraud_assets.cli.progress import configure_logging
from fraud_assets.core.cluster.errors import ClusterUnavailable
from fraud_assets.core.data.schema import DataValidationError

# Each command's module is imported only when that command runs. Training and the demo need
# pandas, scikit-learn and Dagster, which take seconds to import; `fraud score` needs none of
# them, and on a million rows those seconds were a third of its run time.
SUBCOMMANDS = {
    "generate": "fraud_assets.cli.commands:generate_command",
    "train": "fraud_assets.cli.train:train_command",
    "score": "fraud_assets.cli.score:score_command",
    "drift": "fraud_assets.cli.commands:drift_command",
    "demo": "fraud_assets.cli.demo:demo_command",
    "performance": "fraud_assets.cli.performance:performance_command",
    "model": "fraud_assets.cli.registry:model_group",
    "s3": "fraud_assets.cli.s3:s3_group",
    "serve": "fraud_assets.cli.serve:serve_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are named in :data:`SUBCOMMANDS` and imported on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, attribute = SUBCOMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True,
              help="Log what the work does to stderr; -vv also each chunk and boosting round.")
def cli(verbose: int) -> None:
    """Card-fraud detection: generate data, train, score, watch drift.

    Long work shows its progress on stderr when stderr is a terminal."""
    configure_logging(verbose)



def main(argv: list[str] | None = None) -> None:
    try:
        # Without standalone mode click returns a command's Exit code instead of exiting.
        code = cli.main(args=argv, prog_name="fraud", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
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
    except ClusterUnavailable as error:
        click.echo(f"error: {error} (FRAUD_DASK_SCHEDULER)", err=True)
        sys.exit(1)
