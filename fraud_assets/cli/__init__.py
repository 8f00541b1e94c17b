"""The ``fraud`` command: the same core code as the Dagster assets, for people and scripts."""

from fraud_assets.cli.main import main

__all__ = ["main"]
