"""Storage failures told apart from bad content; temporaries never written for a rejected
file, and removed once a killed run has left them; drift robust to one extreme row."""

from __future__ import annotations

import os
import time

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from fraud_assets.core.data import profile
from fraud_assets.core.data.schema import DataValidationError
from fraud_assets.core.model.scoring import score_file
from fraud_assets.core.monitoring import drift
from fraud_assets.core.storage.failures import failure_kind
from fraud_assets.core.storage.locations import is_temporary_name, remove_stale_temporaries
from fraud_assets_tests.hostile_files import corpus


class FailingReads(LocalFileSystem):
    """A store whose reads fail as s3fs fails on an HTTP 503 past its retries: plain OSError."""

    cachable = False

    def _open(self, path, mode="rb", **kwargs):
        handle = super()._open(path, mode, **kwargs)
        if "r" in mode:
            def read(*_args, **_kwargs):
                raise OSError("An error occurred (SlowDown) when calling GetObject: 503")
            handle.read = read
        return handle


class RecordingWrites(LocalFileSystem):
    cachable = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.written: list[str] = []

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode:
            self.written.append(path)
        return super()._open(path, mode, **kwargs)


def test_a_storage_outage_on_a_good_parquet_file_is_not_taken_for_corruption(tmp_path, batch_frame,
                                                                            trained_model):
    path = tmp_path / "good.parquet"
    batch_frame.to_parquet(path, index=False)
    with pytest.raises(OSError) as raised:
        score_file(trained_model, str(path), str(tmp_path / "out.parquet"), input_fs=FailingReads())
    assert not isinstance(raised.value, DataValidationError)
    assert failure_kind(raised.value) == "storage"
    assert os.listdir(tmp_path) == ["good.parquet"]


@pytest.mark.parametrize("case", [c for c in corpus() if c.refused], ids=lambda c: c.name)
def test_content_faults_are_content_and_write_no_temporary(tmp_path, labelled_frame, trained_model,
                                                           case):
    path = tmp_path / case.name
    path.write_bytes(case.build(labelled_frame.head(500)))
    output_fs = RecordingWrites()
    with pytest.raises(DataValidationError) as raised:
        score_file(trained_model, str(path), str(tmp_path / "out" / "p.parquet"), output_fs=output_fs)
    assert failure_kind(raised.value) == "content"
    assert output_fs.written == []


def test_stale_temporaries_go_and_young_ones_and_other_files_stay(tmp_path):
    fs = fsspec.filesystem("file")
    old, young = tmp_path / ".p.parquet.tmp-0123456789ab", tmp_path / ".q.parquet.tmp-0123456789ac"
    kept = [tmp_path / "p.parquet", tmp_path / ".hidden", tmp_path / "x.tmp-0123456789ab"]
    for path in (old, young, *kept):
        path.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    for path in (old, *kept):
        os.utime(path, (an_hour_ago, an_hour_ago))
    removed = remove_stale_temporaries(fs, str(tmp_path), older_than_seconds=600)
    assert removed == [str(old)]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (young, *kept))
    assert is_temporary_name(young.name) and not is_temporary_name("x.tmp-0123456789ab")


def test_one_extreme_row_does_not_make_a_feature_drift(labelled_frame):
    reference = profile.build_reference(
        {name: labelled_frame[name].to_numpy() for name in profile.DRIFT_FEATURES}
    )
    current = {name: labelled_frame[name].to_numpy()[:5_000].copy() for name in profile.DRIFT_FEATURES}
    current["Amount"][17] = 1e29  # absurd, but inside the readers' limit
    report = drift.compare(reference, current)
    assert not report["features"]["Amount"]["drifted"], report["features"]["Amount"]
    # A real shift of many rows is still seen in full.
    current["Amount"] = current["Amount"] * 5 + 500
    assert drift.compare(reference, current)["features"]["Amount"]["drifted"]


def test_a_bounded_line_read_stops_at_the_newline_or_the_bound(tmp_path):
    from fraud_assets.core.storage.failures import open_guarded

    path = tmp_path / "lines.csv"
    path.write_bytes(b"a,b\n" + b"x" * 100_000 + b"\n1,2\nlast")
    with open_guarded(LocalFileSystem(), str(path)) as handle:
        assert handle.readline(10) == b"a,b\n"
        assert handle.readline(70_000) == b"x" * 70_000  # cut at the bound, mid-row
        assert handle.readline(100_000) == b"x" * 30_000 + b"\n"
        assert handle.readline(100) == b"1,2\n"
        assert handle.readline(100) == b"last"
        assert handle.readline(100) == b""
