"""Hostile label files through the label sensor and labels_job: each quarantined with a reason
naming the problem and nothing of it applied, the good files of the same tick applied; a
storage failure quarantines nothing and the file is tried again."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from .conftest import DAY, LABELS_DAY, apply, sensor_requests

HEADER = "transaction_id,transaction_date,Class"


def _csv(rows: list[str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _parquet(columns: dict) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def corpus(ids: list[str]) -> dict[str, tuple[Callable[[], bytes], str]]:
    """name -> (contents, regex the quarantine reason must match); ``ids`` are scored ids."""
    a, b = ids[0], ids[1]
    good = _csv([f"{a},{DAY},1", f"{b},{DAY},0"])
    return {
        "gzip.csv": (lambda: gzip.compress(good), r"gzip-compressed"),
        "binary.csv": (lambda: bytes(range(256)) * 4, r"binary file"),
        "semicolons.csv": (lambda: good.replace(b",", b";"), r"wrong delimiter.*';'"),
        "cr_only.csv": (lambda: good.replace(b"\n", b"\r"), r"CR only"),
        "latin1.csv": (
            lambda: _csv([f"{a},{DAY},1,{DAY}_morning.csv", f"{b},{DAY},1,caf\xe9.csv"],
                         header=HEADER + ",batch_file").decode().encode("latin-1"),
            r"column 'batch_file': byte 0xe9 is not UTF-8.*data row 2",
        ),
        "utf16.csv": (lambda: good.decode().encode("utf-16"), r"UTF-16"),
        "parquet_named_csv.csv": (
            lambda: _parquet({"transaction_id": [a], "transaction_date": [DAY]}), r"Parquet file: name it \.parquet"
        ),
        "duplicate_column.csv": (lambda: _csv([f"{a},{DAY},1,1"], header=HEADER + ",Class"),
                                 r"duplicate column name.*'Class'"),
        "missing_column.csv": (lambda: _csv([f"{a},1"], header="transaction_id,Class"),
                               r"missing column.*transaction_date"),
        "ragged.csv": (lambda: _csv([f"{a},{DAY},1", f"{b},{DAY},1,extra"]),
                       r"wrong number of fields, expected 3 \(first at data row 2\)"),
        "bad_date.csv": (lambda: _csv([f"{a},{DAY},1", f"{b},2025-02-30,1"]),
                         r"'transaction_date'.*not a date.*data row 2"),
        "future_date.csv": (lambda: _csv([f"{a},2025-03-09,1"]), r"after the report date 2025-03-06"),
        "class_2.csv": (lambda: _csv([f"{a},{DAY},2"]), r"'Class'.*not 0 or 1.*data row 1"),
        "class_empty.csv": (lambda: _csv([f"{a},{DAY},1", f"{b},{DAY},"]), r"'Class'.*not 0 or 1.*data row 2"),
        "class_fraud.csv": (lambda: _csv([f"{a},{DAY},fraud"]), r"'Class'.*not 0 or 1.*data row 1"),
        "class_true.csv": (lambda: _csv([f"{a},{DAY},True"]), r"'Class'.*not 0 or 1.*data row 1"),
        "unknown_id.csv": (lambda: _csv([f"{a},{DAY},1", f"999999999,{DAY},1"]),
                           r"name no scored transaction \(first at data row 2: '999999999'"),
        "duplicate_id.csv": (lambda: _csv([f"{a},{DAY},1", f"{a},{DAY},0"]),
                             r"'transaction_id'.*already labelled in this file.*data row 2"),
        "empty.csv": (lambda: b"", r"empty file"),
        # Read as an unknown column, "class" of 0 meant "no Class, so fraud".
        "class_lowercase.csv": (lambda: _csv([f"{a},{DAY},0"], header="transaction_id,transaction_date,class"),
                                r"column 'class' should be named 'Class'"),
        "class_lowercase.parquet": (
            lambda: _parquet({"transaction_id": [a], "transaction_date": [DAY], "CLASS": [0]}),
            r"column 'CLASS' should be named 'Class'",
        ),
        "wrong_types.parquet": (
            lambda: _parquet({"transaction_id": [a, b], "transaction_date": [20250304, 20250304],
                              "Class": ["yes", "1"]}),
            r"'transaction_date'.*not a date.*data row 1.*'Class'.*not 0 or 1.*data row 1",
        ),
        "nested.parquet": (
            lambda: _parquet({"transaction_id": [[1, 2]], "transaction_date": [DAY], "Class": [1]}),
            r"'transaction_id': Parquet type list",
        ),
        "truncated.parquet": (
            lambda: _parquet({"transaction_id": [a], "transaction_date": [DAY]})[:-40], r"unreadable file"
        ),
    }


def _write(project, name: str, contents: bytes) -> None:
    folder = project / "data" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(contents)


def _stored(project) -> pd.DataFrame:
    return pd.read_parquet(project / "data" / "assets" / "transaction_labels" / f"{DAY}.parquet")


def test_hostile_label_files_are_quarantined_and_good_ones_of_the_tick_applied(project, instance, scored):
    ids = scored["transaction_id"].astype(str).tolist()
    # Written first, so the first tick looks at it with the hostile files.
    _write(project, f"{LABELS_DAY}_good.csv", _csv([f"{ids[10]},{DAY},1", f"{ids[11]},{DAY},0"]))
    _write(project, f"{LABELS_DAY}_spaces_after_commas.csv",
           f"transaction_id, transaction_date, Class\n{ids[12]}, {DAY}, 1\n".encode())
    _write(project, f"{LABELS_DAY}_header_only.csv", _csv([]))
    cases = corpus(ids)
    assert len(cases) >= 15
    for kind, (build, _) in cases.items():
        _write(project, f"{LABELS_DAY}_{kind}", build())
    old = os.path.getmtime(project / "data" / "labels" / f"{LABELS_DAY}_good.csv") - 10
    os.utime(project / "data" / "labels" / f"{LABELS_DAY}_good.csv", (old, old))

    first_tick, cursor = sensor_requests(instance)
    assert f"{LABELS_DAY}_good.csv" in {r.tags["fraud/label_file"] for r in first_tick}
    requests = list(first_tick)
    for _ in range(3):  # a tick looks at 20 files at most
        more, cursor = sensor_requests(instance, cursor)
        requests += more
    names = [r.tags["fraud/label_file"] for r in requests]
    assert len(names) == len(set(names))
    results = {r.tags["fraud/label_file"]: apply(instance, r).success for r in requests}
    assert results == {
        f"{LABELS_DAY}_good.csv": True,
        f"{LABELS_DAY}_spaces_after_commas.csv": True,
        f"{LABELS_DAY}_unknown_id.csv": False,
    }

    quarantine = project / "data" / "quarantine"
    for kind, (_, expect) in cases.items():
        name = f"{LABELS_DAY}_{kind}"
        assert (quarantine / name).exists(), name
        reason = json.loads((quarantine / f"{name}.reason.json").read_text())["reason"]
        assert re.search(expect, reason), (kind, reason)
        assert "Traceback" not in reason and 'File "' not in reason, (kind, reason)
    processed = project / "data" / "labels" / "processed"
    assert sorted(os.listdir(processed)) == sorted(
        f"{LABELS_DAY}_{kind}" for kind in ("good.csv", "spaces_after_commas.csv", "header_only.csv")
    )
    assert not [p for p in (project / "data" / "labels").iterdir() if p.is_file()]
    # Only the good files' labels: nothing of a quarantined file.
    stored = _stored(project).sort_values("transaction_id")
    assert sorted(stored["transaction_id"]) == sorted(ids[10:13])
    assert dict(zip(stored["transaction_id"], stored["Class"], strict=True)) == {
        ids[10]: 1, ids[11]: 0, ids[12]: 1
    }


def test_a_storage_failure_skips_the_label_file_until_the_next_tick(project, instance, scored, monkeypatch):
    ids = scored["transaction_id"].astype(str).tolist()
    name = f"{LABELS_DAY}_good.csv"
    _write(project, name, _csv([f"{ids[3]},{DAY},1"]))
    original_open = LocalFileSystem._open

    def failing_open(self, path, mode="rb", **kwargs):
        if "r" in mode and path.endswith(name):
            raise ConnectionResetError("Connection reset by peer (the S3 endpoint restarting)")
        return original_open(self, path, mode, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "_open", failing_open)
    requests, cursor = sensor_requests(instance)
    assert requests == []
    assert (project / "data" / "labels" / name).exists()
    assert not (project / "data" / "quarantine").exists()

    monkeypatch.setattr(LocalFileSystem, "_open", original_open)
    (request,), _ = sensor_requests(instance, cursor)
    assert apply(instance, request).success
    assert _stored(project)["transaction_id"].tolist() == [ids[3]]


@pytest.mark.parametrize("where", ["reading the label file", "writing the day's labels"])
def test_a_storage_outage_during_a_labels_run_quarantines_nothing(project, instance, scored, monkeypatch, where):
    ids = scored["transaction_id"].astype(str).tolist()
    name = f"{LABELS_DAY}_good.csv"
    _write(project, name, _csv([f"{ids[4]},{DAY},1", f"{ids[5]},{DAY},0"]))
    (request,), _ = sensor_requests(instance)
    original_open = LocalFileSystem._open

    def failing_open(self, path, mode="rb", **kwargs):
        reading = "r" in mode and path.endswith(name)
        writing = "w" in mode and "transaction_labels" in path
        if reading if where == "reading the label file" else writing:
            raise TimeoutError("Connect timeout on endpoint URL")
        return original_open(self, path, mode, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "_open", failing_open)
    failed = apply(instance, request)  # after its retries, at once in the tests
    assert not failed.success
    assert (project / "data" / "labels" / name).exists()
    assert not (project / "data" / "quarantine").exists()
    assert not (project / "data" / "assets" / "transaction_labels" / f"{DAY}.parquet").exists()

    monkeypatch.setattr(LocalFileSystem, "_open", original_open)
    assert apply(instance, request).success
    assert sorted(_stored(project)["transaction_id"]) == sorted(ids[4:6])
    assert (project / "data" / "labels" / "processed" / name).exists()
