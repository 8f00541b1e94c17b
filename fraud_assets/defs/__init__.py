"""Dagster definitions: thin wiring over :mod:`fraud_assets.core`, one module per concern."""
