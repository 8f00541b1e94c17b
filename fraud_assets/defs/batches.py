"""Finding a day's batch files: names start with their date (``YYYY-MM-DD...csv|parquet``)."""

import contextlib
import itertools
import json
import os
import posixpath
import re
from datetime import UTC, datetime

from fsspec.implementations.local import LocalFileSystem

from fraud_assets.core.data.tables import TABLE_SUFFIXES, is_table_file
from fraud_assets.core.storage.failures import storage_operation
from fraud_assets.core.storage.locations import Location, read_json, write_json_atomic

_DATED_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})")
# Beside each quarantined file: why it was refused.
REASON_SUFFIX = ".reason.json"


def batch_date(name: str) -> str | None:
    match = _DATED_NAME.match(posixpath.basename(name))
    return match.group(1) if match else None


def processed_folder(processed_prefix: str, date: str) -> str:
    """Scored files are kept per day, so finding one day's files never lists the history."""
    return posixpath.join(processed_prefix, date)


def list_batch_files(data: Location, date: str, prefixes: tuple[str, ...]) -> list[str]:
    """Paths of the batch files for ``date`` under each prefix, sorted by name.

    Pass the day's processed folder too: a file the sensor already scored still belongs to
    its day, so re-running the day finds them all.
    """
    fs = data.fs
    found: dict[str, str] = {}
    for prefix in prefixes:
        directory = data.path(prefix)
        if not fs.exists(directory):
            continue
        for entry in fs.ls(directory, detail=True):
            name = posixpath.basename(entry["name"])
            # A folder or a dangling symlink named like a batch file holds no rows; opening it
            # raised FileNotFoundError, a storage failure, and so failed the whole day.
            if entry.get("type") != "file":
                continue
            if is_table_file(name) and batch_date(name) == date and name not in found:
                found[name] = entry["name"]
    return [found[name] for name in sorted(found)]


def batch_stem(batch_path: str) -> str:
    stem = posixpath.basename(batch_path)
    for suffix in TABLE_SUFFIXES:
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def name_clashes(batch_files: list[str], processed_dir: str) -> dict[str, str]:
    """Files whose predictions would land on another file's of the day (``a.csv`` and
    ``a.parquet`` both become ``a.parquet``): path -> the file that keeps the name.

    The one already scored keeps it, else the first by name (the order files are scored in).
    Without this the second file looked scored already and stayed in incoming/ for ever.
    """
    by_stem: dict[str, list[str]] = {}
    for path in batch_files:
        by_stem.setdefault(batch_stem(path), []).append(path)
    clashes = {}
    for paths in by_stem.values():
        keeper = next((p for p in paths if posixpath.dirname(p) == processed_dir), paths[0])
        clashes.update({path: keeper for path in paths if path != keeper})
    return clashes


def prediction_name(batch_path: str) -> str:
    return f"{batch_stem(batch_path)}.parquet"


def stats_name(batch_path: str) -> str:
    """The scoring summary beside a predictions file (the guide's inference_stats.json);
    written last, so its presence means the file was scored completely."""
    return f"{batch_stem(batch_path)}.stats.json"


def move_to(data: Location, path: str, prefix: str, name: str | None = None) -> str:
    """Move a batch file into ``prefix`` (e.g. processed/), under its own name unless given
    another, and return its new path."""
    target = data.path(prefix, name or posixpath.basename(path))
    if path == target:
        return path
    if isinstance(data.fs, LocalFileSystem):
        data.fs.makedirs(posixpath.dirname(target), exist_ok=True)
    data.fs.mv(path, target)
    return target


def quarantine(data: Location, path: str, quarantine_prefix: str, reason: str) -> str:
    """Move a rejected batch file aside with a reason object beside it; return its new path.

    The file is kept, not deleted: someone has to look at it, fix it and put it back. A file
    of the same name quarantined before stays too: this one takes the next free name
    (``day_name~2.csv``), claimed so that two runs rejecting files of one name at once cannot
    both take it.
    """
    source = data.display(path)

    def reason_document(name: str) -> dict:
        return {"file": name, "source": source, "reason": reason, "quarantined_at": datetime.now(UTC).isoformat()}

    def write_reason(name: str) -> None:
        write_json_atomic(data.fs, data.path(quarantine_prefix, name) + REASON_SUFFIX, reason_document(name))

    with storage_operation(f"quarantining {source}"):
        if isinstance(data.fs, LocalFileSystem):
            with contextlib.suppress(_NoHardLinks):
                return _quarantine_locally(data, path, quarantine_prefix, write_reason)
        elif "s3" in _protocols(data.fs):
            return _quarantine_on_s3(data, path, quarantine_prefix, reason_document)
        # Other stores (and local folders on other devices): the name is probed, then the file
        # moved there; two runs rejecting files of one name in the same moment could pick the
        # same name.
        name = next(candidate for candidate in _names(posixpath.basename(path))
                    if not data.fs.exists(data.path(quarantine_prefix, candidate)))
        write_reason(name)
        return move_to(data, path, quarantine_prefix, name)


def _protocols(fs) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _quarantine_on_s3(data: Location, path: str, prefix: str, reason_document) -> str:
    # The reason object, put only if no object has its key (S3's conditional write), claims
    # the name. A claim whose reason names this very file while no file sits there yet is this
    # quarantine, interrupted before the move: it is finished, not claimed again.
    source = data.display(path)
    for name in _names(posixpath.basename(path)):
        reason_path = data.path(prefix, name) + REASON_SUFFIX
        bucket, key, _ = data.fs.split_path(reason_path)
        body = json.dumps(reason_document(name), indent=2, sort_keys=True).encode()
        try:
            data.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, IfNoneMatch="*",
                            ContentType="application/json")
        except FileExistsError:
            data.fs.invalidate_cache(data.path(prefix))
            if data.fs.exists(data.path(prefix, name)) or read_json(data.fs, reason_path).get("source") != source:
                continue
        data.fs.invalidate_cache(data.path(prefix))
        return move_to(data, path, prefix, name)
    raise AssertionError("unreachable")


class _NoHardLinks(Exception):
    pass


def _quarantine_locally(data: Location, path: str, prefix: str, write_reason) -> str:
    # A hard link claims a name atomically: a concurrent quarantine cannot take it between a
    # probe and the move. A link to this very file is this quarantine, interrupted before its
    # reason was written or the original removed: it is finished, not done again.
    data.fs.makedirs(data.path(prefix), exist_ok=True)
    for name in _names(posixpath.basename(path)):
        target = data.path(prefix, name)
        try:
            os.link(path, target)
        except FileExistsError:
            if not os.path.samefile(path, target):
                continue
        except OSError as error:  # another device, or a filesystem without hard links
            raise _NoHardLinks from error
        write_reason(name)
        os.unlink(path)
        return target
    raise AssertionError("unreachable")


def _names(name: str):
    """``name``, then ``name~2``, ``name~3``, ... (the number before the extensions)."""
    yield name
    root, dot, extension = name.partition(".")
    for number in itertools.count(2):
        yield f"{root}~{number}{dot}{extension}"
