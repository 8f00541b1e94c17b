"""What the Dagster catalog says of every asset: owners, stage and domain tags, code versions,
column schemas and locations, from one place so that no asset says it differently.

Code versions are hashes of the source each asset runs (:mod:`fraud_assets.defs.source_version`
says what is hashed and why a hash rather than strings bumped by hand).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from fraud_assets.core.data.labels import (
    BATCH_FILE,
    LABEL_COLUMNS,
    REPORTED_ON,
    SOURCE_FILE,
    TRANSACTION_DATE,
    TRANSACTION_ID,
)
from fraud_assets.core.data.schema import AMOUNT, LABEL, LABELLED_COLUMNS, PCA_COLUMNS, TIME
from fraud_assets.core.data.splits import DAY_COLUMN
from fraud_assets.core.model.scoring import PREDICTION_COLUMNS
from fraud_assets.core.storage.locations import Location
from fraud_assets.defs.source_version import code_version as _source_code_version

OWNERS = ["team:fraud-ml"]

# Tag values a team filters on in the UI (`tag:stage=scoring`): a typo would make an asset
# vanish from its filter, so only these are accepted.
STAGES = frozenset({"ingestion", "training", "deployment", "scoring", "monitoring", "outcomes"})
DOMAINS = frozenset({"transactions", "model", "predictions", "labels", "drift", "performance", "challenger"})

COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"
# Frauds among a labelled table's rows, beside ROW_COUNT (the prevalence check reads both).
FRAUDS = "frauds"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
URI = "dagster/uri"


def tags(stage: str, domain: str) -> dict[str, str]:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: one of {sorted(STAGES)}")
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}: one of {sorted(DOMAINS)}")
    return {"stage": stage, "domain": domain}


def code_version(module: str, function: str) -> str:
    """The code version of the asset computed by ``function`` in ``module``."""
    return _source_code_version(module, function)


def uri(location: Location, *parts: str) -> str:
    """Where ``parts`` under ``location`` live, as a URI: ``s3://bucket/key`` or ``file:///path``."""
    return path_uri(location, location.path(*parts))


def path_uri(location: Location, path: str) -> str:
    """The URI of a filesystem path of ``location`` (what ``Location.path`` returns)."""
    return Path(path).resolve().as_uri() if location.is_local else location.display(path)


def figure(value: float, digits: int = 4) -> dg.MetadataValue:
    """A number for the UI: a float (so it is plotted over time), rounded for reading."""
    return dg.MetadataValue.float(round(float(value), digits))


def _not_null(type_: str, description: str, name: str, **constraints) -> dg.TableColumn:
    return dg.TableColumn(
        name, type_, description,
        constraints=dg.TableColumnConstraints(nullable=False, **constraints),
    )


def _transaction_columns() -> list[dg.TableColumn]:
    # Every value is checked on read (finite, at most 1e30 in magnitude; Time and Amount not
    # negative): see fraud_assets/core/data/schema.py.
    described = {
        TIME: ("double", "Seconds from the first transaction of the file's period.", ["value >= 0"]),
        AMOUNT: ("double", "Transaction amount.", ["value >= 0"]),
        LABEL: ("int", "1 fraud, 0 genuine.", ["value in (0, 1)"]),
        **{
            name: ("double", f"Principal component {name[1:]} of the anonymised card features.", [])
            for name in PCA_COLUMNS
        },
    }
    return [
        _not_null(described[name][0], described[name][1], name, other=described[name][2])
        for name in LABELLED_COLUMNS
    ]


TRANSACTIONS_SCHEMA = dg.TableSchema(columns=_transaction_columns())
TRAINING_SCHEMA = dg.TableSchema(
    columns=[
        *_transaction_columns(),
        dg.TableColumn(
            DAY_COLUMN, "string",
            "Day of the scored batch the row came from; empty for the base labelled file. "
            "Orders rows across sources, whose Time each starts at zero.",
        ),
    ]
)

_PREDICTION_DESCRIPTIONS = {
    "transaction_id": ("string or int", "The batch file's own transaction id, else the row number "
                       "in the file (ids repeat across a day's files)."),
    "fraud_probability": ("float", "Probability that the transaction is fraud (the up-weighting of frauds in training corrected back)."),
    "is_fraud": ("bool", "fraud_probability at or above the model's decision threshold."),
    "model_version": ("string", "Registry version of the model that scored the row."),
}
PREDICTIONS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(name, *_PREDICTION_DESCRIPTIONS[name]) if name == "transaction_id"
        else _not_null(*_PREDICTION_DESCRIPTIONS[name], name)
        for name in PREDICTION_COLUMNS
    ]
)

_LABEL_DESCRIPTIONS = {
    TRANSACTION_DATE: ("string", "Day of the batch that held the transaction (YYYY-MM-DD)."),
    BATCH_FILE: ("string", "Stem of the batch file that held the transaction."),
    TRANSACTION_ID: ("string", "The transaction's id within its batch file, as text."),
    LABEL: ("int", "1 fraud, 0 confirmed genuine; a transaction with no label is genuine once "
                   "its day is mature."),
    REPORTED_ON: ("string", "Day the label was reported (from the label file's name); the latest "
                            "report of a transaction wins."),
    SOURCE_FILE: ("string", "Label file the label came from."),
}
LABELS_SCHEMA = dg.TableSchema(
    columns=[_not_null(*_LABEL_DESCRIPTIONS[name], name) for name in LABEL_COLUMNS]
)


def table(schema: dg.TableSchema) -> dict:
    """Definition metadata of a table asset."""
    return {COLUMN_SCHEMA: schema}
