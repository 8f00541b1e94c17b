"""Finding a day's batch files: names start with their date (``YYYY-MM-DD...csv|parquet``)."""


import posixpath
import re
from datetime import UTC, datetime

from fsspec.implementations.local import LocalFileSystem

from fraud_assets.core.storage import Location, write_json_atomic
from fraud_assets.core.tables import is_table_file

_DATED_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def batch_date(name: str) -> str | None:
    match = _DATED_NAME.match(posixpath.basename(name))
    return match.group(1) if match else None


def list_batch_files(data: Location, date: str, prefixes: tuple[str, ...]) -> list[str]:
    """Paths of the batch files for ``date`` under each prefix, sorted by name.

    A file already moved to ``processed/`` still belongs to its day, so re-running a day
    after the sensor scored its files finds them all.
    """
    fs = data.fs
    found: dict[str, str] = {}
    for prefix in prefixes:
        directory = data.path(prefix)
        if not fs.exists(directory):
            continue
        for path in fs.ls(directory, detail=False):
            name = posixpath.basename(path)
            if is_table_file(name) and batch_date(name) == date and name not in found:
                found[name] = path
    return [found[name] for name in sorted(found)]


def prediction_name(batch_path: str) -> str:
    stem = posixpath.basename(batch_path)
    for suffix in (".csv.gz", ".csv", ".parquet", ".pq"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return f"{stem}.parquet"


def quarantine(data: Location, path: str, quarantine_prefix: str, reason: str) -> str:
    """Move a rejected batch file aside with a reason object beside it; return its new path.

    The file is kept, not deleted: someone has to look at it, fix it and put it back.
    """
    fs = data.fs
    name = posixpath.basename(path)
    target = data.path(quarantine_prefix, name)
    write_json_atomic(
        fs,
        target + ".reason.json",
        {"file": name, "source": data.display(path), "reason": reason,
         "quarantined_at": datetime.now(UTC).isoformat()},
    )
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
    fs.mv(path, target)
    return target
