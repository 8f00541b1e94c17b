"""IO managers: Parquet for tables, JSON for fitted parameters and reports, the registry for
models. Nothing is pickled, and every write is atomic (temporary name, then move).

A table the Dask workers wrote is a folder of Parquet parts that no earlier materialisation
used (``assets/parts/KEY/TOKEN/``: the one prefix the workers may write) named by a pointer
(``assets/KEY.parts.json``) written once the parts are complete: a reader sees the old table
or the new one, never a mixture.
"""

import contextlib
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from fraud_assets import settings
from fraud_assets.core.data.features import Preprocessor
from fraud_assets.core.data.inputs import TableSet, resolve_tables
from fraud_assets.core.data.tables import write_table
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.storage.locations import Location, read_json, write_json_atomic
from fraud_assets.defs import catalog
from fraud_assets.defs.resources import FraudStorage

_TABLE, _JSON, _PARTS = ".parquet", ".json", ".parts"
# Where the table assets live in the data store, and below it the parts the workers write.
ASSETS_PREFIX, _PARTS_FOLDER = "assets", "parts"


@dataclass(frozen=True)
class TableParts:
    """A table asset's value when the Dask workers wrote it: the folder of its parts, which
    :func:`new_parts_folder` named, and its row count."""

    folder: str
    rows: int


@contextlib.contextmanager
def new_parts_folder(storage: FraudStorage, asset: str) -> Iterator[tuple[Location, str]]:
    """A folder no materialisation has used, where the workers write ``asset``'s parts for the
    default IO manager (the data store's ``assets/``) to publish; removed again when the block
    fails, as nothing will publish it."""
    data = storage.data()
    folder = data.path(ASSETS_PREFIX, _PARTS_FOLDER, asset, uuid.uuid4().hex)
    try:
        yield data, folder
    except BaseException:
        with contextlib.suppress(Exception):
            _remove_folder(data, folder)
        raise


def _read_parts(location: Location, folder: str) -> pd.DataFrame:
    try:
        paths = sorted(p for p in location.fs.ls(folder, detail=False) if p.endswith(_TABLE))
    except FileNotFoundError:
        paths = []
    if not paths:
        # Runs go one at a time (dagster.yaml), so a publication cannot remove what one reads.
        raise FileNotFoundError(f"{location.display(folder)}: the table's parts are gone; materialise it again")
    frames = []
    for path in paths:
        with location.fs.open(path, "rb") as handle:
            frames.append(pd.read_parquet(handle))
    return pd.concat(frames, ignore_index=True)


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as Parquet and Preprocessor/dict values as JSON under ``assets/``.

    ``store`` picks the bucket: ``data`` for tables, ``models`` for fitted parameters.
    """

    storage: dg.ResourceDependency[FraudStorage]
    store: str = "data"
    prefix: str = ASSETS_PREFIX

    def _location(self) -> Location:
        return {"data": self.storage.data, "models": self.storage.models}[self.store]()

    def _base(self, location: Location, context: dg.OutputContext | dg.InputContext) -> str:
        parts = list(context.asset_key.path)
        if context.has_asset_partitions:
            parts.append(context.asset_partition_key)
        return location.path(self.prefix, *parts)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        location = self._location()
        base = self._base(location, context)
        if isinstance(obj, TableParts):
            path = self._publish_parts(location, context, obj)
        elif isinstance(obj, pd.DataFrame):
            path = base + _TABLE
            write_table(obj, path, fs=location.fs)
            # Then the parts an earlier run published, whose pointer would win on reading.
            self._retire_parts(location, context)
        elif isinstance(obj, Preprocessor | dict):
            path = base + _JSON
            write_json_atomic(location.fs, path, obj.to_dict() if isinstance(obj, Preprocessor) else obj)
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store {type(obj).__name__}")
        context.add_output_metadata({catalog.URI: catalog.path_uri(location, path)})

    def _parts_parent(self, location: Location, context: dg.OutputContext | dg.InputContext) -> str:
        return location.path(self.prefix, _PARTS_FOLDER, *context.asset_key.path)

    def _pointer(self, location: Location, context: dg.OutputContext | dg.InputContext) -> str:
        return self._base(location, context) + _PARTS + _JSON

    def published_folder(self, location: Location, context: dg.OutputContext | dg.InputContext) -> str | None:
        """The folder of the parts the pointer names, or None when the table is not in parts."""
        pointer = self._pointer(location, context)
        if not location.fs.exists(pointer):
            return None
        # The pointer names the folder by its token, so moving the store keeps it valid.
        return posixpath.join(self._parts_parent(location, context), read_json(location.fs, pointer)["token"])

    def _publish_parts(self, location: Location, context: dg.OutputContext, parts: TableParts) -> str:
        fs, base = location.fs, self._base(location, context)
        if posixpath.dirname(parts.folder) != self._parts_parent(location, context) or not fs.exists(parts.folder):
            raise ValueError(f"{parts.folder}: not a parts folder new_parts_folder named for {base}")
        try:
            previous = self.published_folder(location, context)
            write_json_atomic(fs, self._pointer(location, context),
                              {"token": posixpath.basename(parts.folder), "rows": parts.rows})
        except BaseException:
            # Unpublished, nothing would ever name or remove it.
            with contextlib.suppress(Exception):
                _remove_folder(location, parts.folder)
            raise
        with contextlib.suppress(FileNotFoundError):
            fs.rm(base + _TABLE)
        if previous and previous != parts.folder:
            _remove_folder(location, previous)
        return parts.folder

    def _retire_parts(self, location: Location, context: dg.OutputContext) -> None:
        previous = self.published_folder(location, context)
        if previous is None:
            return
        location.fs.rm(self._pointer(location, context))
        _remove_folder(location, previous)

    def load_input(self, context: dg.InputContext) -> Any:
        location = self._location()
        fs, base = location.fs, self._base(location, context)
        folder = self.published_folder(location, context)
        if folder is not None:
            return _read_parts(location, folder)
        if fs.exists(base + _TABLE):
            with fs.open(base + _TABLE, "rb") as handle:
                return pd.read_parquet(handle)
        if not fs.exists(base + _JSON):
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()} has not been materialised "
                f"(nothing at {location.display(base)}.*)"
            )
        document = read_json(fs, base + _JSON)
        if context.dagster_type.typing_type is Preprocessor or document.get("kind", "").startswith(
            "standardize"
        ):
            return Preprocessor.from_dict(document)
        return document


def _remove_folder(location: Location, folder: str) -> None:
    # A superseded table: the pointer no longer names it.
    with contextlib.suppress(FileNotFoundError):
        location.fs.rm(folder, recursive=True)


@dataclass(frozen=True)
class StoredTable:
    """Where an upstream table asset is stored, not its rows: the step decides whether to read
    it here or hand the address to the Dask workers."""

    location: Location
    path: str  # a Parquet file, or the folder of a table's parts

    @property
    def is_parts(self) -> bool:
        return not self.path.endswith(_TABLE)

    def load(self) -> pd.DataFrame:
        if self.is_parts:
            return _read_parts(self.location, self.path)
        with self.location.fs.open(self.path, "rb") as handle:
            return pd.read_parquet(handle)

    def tables(self) -> TableSet:
        return resolve_tables(self.location.display(self.path), self.location.storage_options)


class StoredTableLoader(ArtifactIOManager):
    """Stores tables as :class:`ArtifactIOManager` does; loads a :class:`StoredTable`, so a
    large table reaches the step only if the step reads it."""

    def load_input(self, context: dg.InputContext) -> StoredTable:
        location = self._location()
        base = self._base(location, context)
        folder = self.published_folder(location, context)
        if folder is not None:
            return StoredTable(location, folder)
        path = base + _TABLE
        if not location.fs.exists(path):
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()} has not been materialised "
                f"(nothing at {location.display(path)})"
            )
        return StoredTable(location, path)


# Metadata on each fraud_model materialisation: the registry version it saved.
MODEL_VERSION_KEY = "model_version"


class ModelRegistryIOManager(dg.ConfigurableIOManager):
    """A trained model is stored as a new version in the registry; loading it returns the
    version that the upstream materialisation saved (the candidate), which may or may not be
    in production."""

    storage: dg.ResourceDependency[FraudStorage]

    def handle_output(self, context: dg.OutputContext, obj: FraudModel) -> None:
        registry = self.storage.registry()
        tracker = settings.tracker()
        version = tracker.track_training(obj, lambda: registry.save(obj)) if tracker else registry.save(obj)
        tracking = obj.manifest.get("tracking", {})
        context.add_output_metadata(
            {
                MODEL_VERSION_KEY: version,
                catalog.URI: catalog.uri(registry.location, version),
                **({"mlflow_run_id": tracking["run_id"]} if tracking.get("run_id") else {}),
                **({"mlflow_error": tracking["error"]} if tracking.get("error") else {}),
            }
        )

    def load_input(self, context: dg.InputContext) -> FraudModel:
        registry = self.storage.registry()
        version = _recorded_model_version(context)
        return registry.load(version) if version else registry.load_latest()


def _recorded_model_version(context: dg.InputContext) -> str | None:
    """The version the upstream materialisation recorded: this run's own, if the run made one,
    else the latest on record. None when there is no record (a context built outside a run).

    Not simply the registry's newest: a training run started meanwhile (from the UI, say)
    would otherwise swap its model under this run's gate and promotion.
    """
    try:
        run_id, instance = context.step_context.run_id, context.instance
    except dg.DagsterInvariantViolationError:
        return None
    key = context.asset_key
    entries = [
        record.event_log_entry
        for record in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        if record.event_log_entry.dagster_event.asset_key == key
    ]
    entry = entries[-1] if entries else instance.get_latest_materialization_event(key)
    if entry is None or entry.asset_materialization is None:
        return None
    recorded = entry.asset_materialization.metadata.get(MODEL_VERSION_KEY)
    return recorded.value if recorded is not None else None
