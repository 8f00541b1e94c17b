"""What ``--data`` and ``--input`` name: one table, a folder of tables or a glob, local or S3.

Kept free of pandas and Dask: scoring resolves its inputs here and must start quickly.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

import fsspec

from fraud_assets.core.data.tables import is_table_file, table_format

_GLOB_CHARACTERS = frozenset("*?[")


class NoTablesFound(ValueError):
    """The argument names no CSV or Parquet file: a usage error, not bad data."""


@dataclass(frozen=True)
class TableSet:
    """The tables one argument names, in name order, with the file system that reaches them."""

    spec: str
    paths: tuple[str, ...]
    fs: fsspec.AbstractFileSystem = field(compare=False)
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False)
    # The argument named a file outright (not a folder that happens to hold one table).
    names_one_file: bool = False

    @property
    def is_remote(self) -> bool:
        return "file" not in _protocols(self.fs)

    def url(self, path: str) -> str:
        """How a person (an error message, a manifest) and a Dask worker name ``path``."""
        return path if not self.is_remote else f"{_protocols(self.fs)[0]}://{path}"

    @property
    def urls(self) -> list[str]:
        return [self.url(path) for path in self.paths]

    @property
    def is_single_file(self) -> bool:
        return self.names_one_file


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def is_pattern(spec: str) -> bool:
    return any(character in _GLOB_CHARACTERS for character in spec)


def resolve_tables(spec: str, storage_options: dict[str, Any] | None = None) -> TableSet:
    """The tables ``spec`` names: itself when it is a file; the CSV and Parquet files directly
    in it when it is a folder (hidden files and temporaries skipped); the tables a glob
    matches. Raises :class:`NoTablesFound` when there are none, and ``ValueError`` when a file
    named outright is neither CSV nor Parquet."""
    options = dict(storage_options or {}) if spec.startswith("s3://") else {}
    fs, path = fsspec.core.url_to_fs(spec, **options)
    if is_pattern(spec):
        paths = sorted(found for found in fs.glob(path) if is_table_file(found) and fs.isfile(found))
    elif fs.isdir(path):
        # fsspec lists a local symlink as "other": it counts when it leads to a file, as a
        # glob over the same folder counts it.
        paths = sorted(
            entry["name"] for entry in fs.ls(path, detail=True)
            if is_table_file(entry["name"])
            and (entry.get("type") == "file" or (entry.get("islink") and fs.isfile(entry["name"])))
        )
    elif fs.isfile(path):
        table_format(path)  # a single file must say what it is by its extension
        paths = [path]
    else:
        raise NoTablesFound(f"{spec}: no such file or folder")
    if not paths:
        raise NoTablesFound(f"{spec}: no .csv or .parquet file there")
    return TableSet(spec=spec, paths=tuple(paths), fs=fs, storage_options=options,
                    names_one_file=not is_pattern(spec) and fs.isfile(path))


def distinct_output_names(tables: TableSet) -> list[str]:
    """One output name per input (its own file name); refused when two inputs share a name,
    as a glob across folders can, since one output would overwrite the other."""
    names = [posixpath.basename(path) for path in tables.paths]
    seen: dict[str, str] = {}
    for name, url in zip(names, tables.urls, strict=True):
        if name in seen:
            raise NoTablesFound(f"{seen[name]} and {url} would both be written as {name}")
        seen[name] = url
    return names


def read_labelled_tables(tables: TableSet, on_rows=None):
    """Every table read and validated in this process, one frame in name order (each file's
    errors name that file)."""
    import pandas as pd

    from fraud_assets.core.data.tables import read_transactions

    frames = [
        read_transactions(path, fs=tables.fs, source=tables.url(path), on_rows=on_rows)
        for path in tables.paths
    ]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
