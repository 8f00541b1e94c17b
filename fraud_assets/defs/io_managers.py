"""IO managers: Parquet for tables, JSON for fitted parameters and reports, the registry for
models. Nothing is pickled, and every write is atomic (temporary name, then move)."""

from typing import Any

import dagster as dg
import pandas as pd

from fraud_assets.core.features import Preprocessor
from fraud_assets.core.model import FraudModel
from fraud_assets.core.storage import Location, read_json, write_json_atomic
from fraud_assets.core.tables import write_table
from fraud_assets.defs.resources import FraudStorage

_TABLE, _JSON = ".parquet", ".json"


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as Parquet and Preprocessor/dict values as JSON under ``assets/``.

    ``store`` picks the bucket: ``data`` for tables, ``models`` for fitted parameters.
    """

    storage: dg.ResourceDependency[FraudStorage]
    store: str = "data"
    prefix: str = "assets"

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
        if isinstance(obj, pd.DataFrame):
            path = base + _TABLE
            write_table(obj, path, fs=location.fs)
        elif isinstance(obj, Preprocessor | dict):
            path = base + _JSON
            write_json_atomic(location.fs, path, obj.to_dict() if isinstance(obj, Preprocessor) else obj)
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store {type(obj).__name__}")
        context.add_output_metadata({"uri": dg.MetadataValue.path(location.display(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        location = self._location()
        fs, base = location.fs, self._base(location, context)
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


class ModelRegistryIOManager(dg.ConfigurableIOManager):
    """A trained model is stored as a new version in the registry; loading it returns the
    newest trained version (the candidate), which may or may not be in production."""

    storage: dg.ResourceDependency[FraudStorage]

    def handle_output(self, context: dg.OutputContext, obj: FraudModel) -> None:
        registry = self.storage.registry()
        version = registry.save(obj)
        context.add_output_metadata(
            {"uri": dg.MetadataValue.path(registry.location.url_of(version))}
        )

    def load_input(self, context: dg.InputContext) -> FraudModel:
        return self.storage.registry().load_latest()


