"""Tables the Dask workers write are published as a folder of Parquet parts behind a pointer:
readers see the old table or the new one, the formats replace each other, and a superseded or
abandoned folder is removed."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from fraud_assets.core.data.tables import write_table
from fraud_assets.definitions import build_resources
from fraud_assets.defs.io_managers import (
    ArtifactIOManager,
    StoredTable,
    StoredTableLoader,
    TableParts,
    new_parts_folder,
)

KEY = dg.AssetKey("training_dataset")


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUD_ENV", "local")
    return build_resources("local")["storage"]


def _frame(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"Time": range(start, start + rows), "Class": [0] * rows})


def _published_parts(storage, manager, *frames: pd.DataFrame) -> str:
    with new_parts_folder(storage, KEY.path[-1]) as (location, folder):
        for number, frame in enumerate(frames):
            write_table(frame, f"{folder}/part-{number:05d}.parquet", fs=location.fs)
        manager.handle_output(dg.build_output_context(asset_key=KEY), TableParts(folder, sum(map(len, frames))))
    return folder


def _load(manager):
    return manager.load_input(dg.build_input_context(asset_key=KEY))


def test_parts_and_a_single_table_replace_each_other(storage):
    manager, loader = ArtifactIOManager(storage=storage), StoredTableLoader(storage=storage)
    data = storage.data()
    manager.handle_output(dg.build_output_context(asset_key=KEY), _frame(0, 3))
    single = data.path("assets", "training_dataset.parquet")
    assert data.fs.exists(single)

    first = _published_parts(storage, manager, _frame(10, 2), _frame(12, 3))
    assert not data.fs.exists(single)
    assert _load(manager)["Time"].tolist() == [10, 11, 12, 13, 14]  # parts in name order
    stored = _load(loader)
    assert isinstance(stored, StoredTable) and stored.is_parts and len(stored.tables().paths) == 2
    assert stored.load()["Time"].tolist() == [10, 11, 12, 13, 14]

    # A newer publication replaces the pointer and removes the folder it superseded.
    second = _published_parts(storage, manager, _frame(20, 1))
    assert not data.fs.exists(first) and data.fs.exists(second)
    assert _load(manager)["Time"].tolist() == [20]

    # A table written in one process retires the parts.
    manager.handle_output(dg.build_output_context(asset_key=KEY), _frame(30, 2))
    assert not data.fs.exists(second)
    assert not data.fs.exists(data.path("assets", "training_dataset.parts.json"))
    assert _load(manager)["Time"].tolist() == [30, 31]
    assert not _load(loader).is_parts


def test_a_failed_write_leaves_the_published_table_and_no_folder(storage):
    manager = ArtifactIOManager(storage=storage)
    published = _published_parts(storage, manager, _frame(0, 2))
    with pytest.raises(RuntimeError), new_parts_folder(storage, KEY.path[-1]) as (location, folder):
        write_table(_frame(5, 1), f"{folder}/part-00000.parquet", fs=location.fs)
        raise RuntimeError("a worker died")
    assert not storage.data().fs.exists(folder)
    assert storage.data().fs.exists(published)
    assert _load(manager)["Time"].tolist() == [0, 1]


def test_only_a_folder_named_for_the_asset_is_published(storage, tmp_path):
    manager = ArtifactIOManager(storage=storage)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ValueError, match="not a parts folder"):
        manager.handle_output(dg.build_output_context(asset_key=KEY), TableParts(str(elsewhere), 0))


def test_a_failed_publication_or_write_keeps_the_table_that_was_there(storage, monkeypatch):
    from fraud_assets.defs import io_managers

    manager = ArtifactIOManager(storage=storage)
    published = _published_parts(storage, manager, _frame(0, 2))

    def storage_down(*args, **kwargs):
        raise OSError("storage down")

    with new_parts_folder(storage, KEY.path[-1]) as (location, folder):
        write_table(_frame(5, 1), f"{folder}/part-00000.parquet", fs=location.fs)
    # The step succeeded; publishing its parts (after the step's block) fails.
    monkeypatch.setattr(io_managers, "write_json_atomic", storage_down)
    with pytest.raises(OSError):
        manager.handle_output(dg.build_output_context(asset_key=KEY), TableParts(folder, 1))
    assert not storage.data().fs.exists(folder)
    monkeypatch.setattr(io_managers, "write_table", storage_down)
    with pytest.raises(OSError):
        manager.handle_output(dg.build_output_context(asset_key=KEY), _frame(9, 1))
    monkeypatch.undo()
    assert storage.data().fs.exists(published)
    assert _load(manager)["Time"].tolist() == [0, 1]
