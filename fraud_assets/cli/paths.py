"""Command-line arguments that name local files: tables to read or write, model folders."""

from __future__ import annotations

import os

import click

from fraud_assets import settings
from fraud_assets.core.data.inputs import NoTablesFound, TableSet, resolve_tables
from fraud_assets.core.data.tables import table_format
from fraud_assets.core.model.bundle import MANIFEST_FILE, FraudModel
from fraud_assets.core.model.registry import PRODUCTION_POINTER, ModelRegistry, UnknownModelVersion
from fraud_assets.core.model.xgboost_runtime import XGBoostRuntimeError
from fraud_assets.core.storage.locations import Location

LOCAL_FS = Location("/").fs


def output_table(value: str) -> str:
    try:
        table_format(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    return value


def input_table(value: str, hint: str) -> str:
    """An input table: a missing file or a .txt used to end in a traceback (exit 1)."""
    try:
        table_format(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=hint) from error
    if not os.path.isfile(value):
        raise click.BadParameter(f"{value}: no such file", param_hint=hint)
    return value


def input_tables(value: str, hint: str) -> TableSet:
    """A file, a folder of tables or a glob, local or ``s3://``."""
    try:
        return resolve_tables(value, settings.input_storage_options())
    except (NoTablesFound, ValueError, OSError) as error:
        raise click.BadParameter(str(error), param_hint=hint) from error


def load_model_dir(model_dir: str) -> FraudModel:
    """A model folder, or a registry root (then its production model)."""
    path = os.path.abspath(model_dir)
    try:
        if os.path.exists(os.path.join(path, PRODUCTION_POINTER)):
            model = ModelRegistry(Location(path)).load_production()
            if model is None:
                raise ValueError(f"{PRODUCTION_POINTER} names no version")
            return model
        if not os.path.exists(os.path.join(path, MANIFEST_FILE)):
            raise click.BadParameter(
                f"{model_dir} holds no model ({MANIFEST_FILE}) or registry", param_hint="--model-dir"
            )
        return FraudModel.load(LOCAL_FS, path)
    except (UnknownModelVersion, OSError, ValueError, KeyError, XGBoostRuntimeError) as error:
        # A pointer to a missing version, a missing or damaged file: a usage error (exit 2).
        # XGBoost appends its C++ stack trace to the message: the first part says it all.
        message = str(error).split("\nStack trace:")[0].strip()
        raise click.BadParameter(f"{model_dir}: {message}", param_hint="--model-dir") from error
