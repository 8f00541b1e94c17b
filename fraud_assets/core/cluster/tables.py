"""Labelled tables read by the Dask workers, never by the process that asks.

Every file is first checked on a worker by the project's own streaming reader, so a bad file
is refused with the same message (file, column, first bad row) as in a single process; only
then do ``dask.dataframe`` readers cut the files into partitions for training.
"""

from __future__ import annotations

import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
from distributed import Client

from fraud_assets.core.data.inputs import TableSet
from fraud_assets.core.data.schema import LABEL, LABELLED_COLUMNS
from fraud_assets.core.data.splits import DAY_COLUMN
from fraud_assets.core.data.tables import checked_header, iter_transaction_chunks, table_format

# CSV bytes per partition: a few of them fit a worker of a few hundred MB with room to spare
# (a float64 row of the schema is ~250 bytes in memory against ~600 as text).
CSV_BLOCK_BYTES = 16 * 2**20


def check_tables_on_workers(client: Client, tables: TableSet) -> list[tuple[int, int]]:
    """(rows, frauds) of each table, read and validated by the workers in bounded memory;
    raises the first file's :class:`DataValidationError` as it is."""
    futures = client.map(_check_table, tables.urls, storage_options=tables.storage_options, pure=False)
    return client.gather(futures)


def _check_table(url: str, storage_options: dict) -> tuple[int, int]:
    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    rows = frauds = 0
    for chunk in iter_transaction_chunks(path, fs=fs, require_label=True, source=url):
        rows += len(chunk)
        frauds += int(chunk[LABEL].sum())
    return rows, frauds


def labelled_frame(tables: TableSet) -> dd.DataFrame:
    """One lazy frame of the schema's labelled columns (and the day column when a file has
    it), float64, in name order of the files; the workers read it when it is computed."""
    headers = [checked_header(tables.fs, path, tables.url(path), LABELLED_COLUMNS) for path in tables.paths]
    with_day = [DAY_COLUMN in header for header in headers]
    any_day = any(with_day)
    parts = [_read_one(tables, path, header) for path, header in zip(tables.paths, headers, strict=True)]
    if any_day:
        # A file without the day column is base data: its rows sort first, as in one process.
        parts = [part if has_day else part.assign(**{DAY_COLUMN: ""})
                 for part, has_day in zip(parts, with_day, strict=True)]
    return parts[0] if len(parts) == 1 else dd.concat(parts, ignore_index=True)


def _read_one(tables: TableSet, path: str, header: list[str]) -> dd.DataFrame:
    url = tables.url(path)
    has_day = DAY_COLUMN in header
    wanted = [*LABELLED_COLUMNS, *([DAY_COLUMN] if has_day else [])]
    types = {**dict.fromkeys(LABELLED_COLUMNS, "float64"), **({DAY_COLUMN: "string"} if has_day else {})}
    if table_format(path) == "parquet":
        frame = dd.read_parquet(url, columns=wanted, storage_options=tables.storage_options)
    else:
        # The header as the project's rule reads it (spaces and a byte-order mark dropped):
        # pandas would otherwise keep " V1" and miss the column.
        frame = dd.read_csv(url, header=0, names=header, usecols=wanted, dtype=types,
                            blocksize=CSV_BLOCK_BYTES, storage_options=tables.storage_options,
                            keep_default_na=False, na_values=[""])
    frame = frame[wanted].astype(types)
    if has_day:
        frame[DAY_COLUMN] = frame[DAY_COLUMN].fillna("")
    return frame


def empty_like(frame: pd.DataFrame, **columns: np.dtype) -> pd.DataFrame:
    """``frame``'s columns with no rows, plus ``columns``: the shape Dask is told to expect."""
    meta = frame.iloc[:0].copy()
    for name, dtype in columns.items():
        meta[name] = pd.Series(dtype=dtype)
    return meta
