"""File access shared by every stage: local paths and ``s3://`` URLs through fsspec.

Writes are atomic everywhere: data goes to a temporary name beside the target and is moved
into place only when complete, so a failed run never leaves a half-written object that a
reader could mistake for a result.
"""

from __future__ import annotations

import contextlib
import functools
import json
import posixpath
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from fraud_assets.core.storage.failures import storage_operation


@dataclass(frozen=True)
class Location:
    """A root directory or bucket prefix plus the options needed to reach it."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @functools.cached_property
    def _resolved(self) -> tuple[fsspec.AbstractFileSystem, str]:
        # Resolved once per location: path() runs for every file of a listing.
        fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs, root.rstrip("/")

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self._resolved[0]

    @property
    def root(self) -> str:
        return self._resolved[1]

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        """Filesystem path (no protocol) of ``parts`` under this location."""
        return posixpath.join(self.root, *parts)

    def url_of(self, *parts: str) -> str:
        """Full URL, for messages and metadata that a person reads."""
        return self.display(self.path(*parts))

    def display(self, path: str) -> str:
        """URL of a filesystem path that lies in this location's filesystem."""
        return path if self.is_local else f"s3://{path}"


def sse_arguments(kms_key_id: str | None) -> dict[str, str]:
    """S3 PUT arguments that encrypt an object: with the KMS key when given, else AES256."""
    if kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    return {"ServerSideEncryption": "AES256"}


def s3_storage_options(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    kms_key_id: str | None = None,
) -> dict[str, Any]:
    """s3fs options that encrypt every object written (AES256, or KMS when a key is given)."""
    client_kwargs: dict[str, Any] = {}
    if endpoint_url:
        client_kwargs["endpoint_url"] = endpoint_url
    if region:
        client_kwargs["region_name"] = region
    return {
        "s3_additional_kwargs": sse_arguments(kms_key_id),
        "client_kwargs": client_kwargs,
        # Listings must see objects that other processes wrote moments ago.
        "use_listings_cache": False,
        "config_kwargs": {
            # Transient S3 errors (throttling, 5xx, resets) are retried with backoff.
            "retries": {"max_attempts": 8, "mode": "adaptive"},
            # Ranged reads of copied or multipart objects carry whole-object checksums that
            # cannot be checked against a range; S3-compatible servers disagree on them.
            "response_checksum_validation": "when_required",
            "request_checksum_calculation": "when_required",
        },
    }


def _temporary_name(name: str) -> str:
    return f".{name}.tmp-{uuid.uuid4().hex[:12]}"


_TEMPORARY_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{12}$")


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is one that :func:`atomic_path` gives its temporaries."""
    return bool(_TEMPORARY_NAME.match(name))


def _modified_at(entry: dict) -> float | None:
    modified = entry.get("LastModified") or entry.get("mtime")
    if modified is None:
        return None
    return modified.timestamp() if hasattr(modified, "timestamp") else float(modified)


def remove_stale_temporaries(
    fs: fsspec.AbstractFileSystem, directory: str, older_than_seconds: float
) -> list[str]:
    """Delete temporaries that a killed writer left in ``directory``; return their paths.

    A SIGKILL skips :func:`atomic_path`'s cleanup, so nothing else ever removes them. Only
    those older than ``older_than_seconds`` go: a younger one may belong to a run still
    writing, and no run lives longer than its maximum run time.
    """
    if not fs.exists(directory):
        return []
    cutoff = time.time() - older_than_seconds
    removed = []
    for entry in fs.ls(directory, detail=True):
        name = posixpath.basename(entry["name"])
        modified = _modified_at(entry)
        if entry.get("type") == "file" and is_temporary_name(name) and modified is not None:
            if modified < cutoff:
                with contextlib.suppress(FileNotFoundError):
                    fs.rm(entry["name"])
                removed.append(entry["name"])
    return removed


def remove_abandoned_temporaries(
    fs: fsspec.AbstractFileSystem, path: str, unchanged_since: float, *, names: list[str] | None = None
) -> list[str]:
    """Delete the temporaries of ``path`` (or, with ``names``, of those files in the folder
    ``path``) that nobody has written to since ``unchanged_since`` (a command's start): what
    an earlier run of it, SIGKILLed mid-write, left. A writer still alive keeps its
    temporary's time moving, so it is never taken. The folder is listed once."""
    directory, owners = (path, set(names)) if names is not None else (posixpath.dirname(path), {posixpath.basename(path)})
    removed = []
    if not fs.exists(directory):
        return removed
    for entry in fs.ls(directory, detail=True):
        entry_name = posixpath.basename(entry["name"])
        modified = _modified_at(entry)
        if (entry.get("type") == "file" and is_temporary_name(entry_name)
                and entry_name[1:entry_name.rfind(".tmp-")] in owners and modified is not None
                and modified < unchanged_since):
            with contextlib.suppress(FileNotFoundError):
                fs.rm(entry["name"])
            removed.append(entry["name"])
    return removed


@contextlib.contextmanager
def atomic_path(fs: fsspec.AbstractFileSystem, path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    directory, name = posixpath.split(path)
    temporary = posixpath.join(directory, _temporary_name(name))
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(directory, exist_ok=True)
    try:
        yield temporary
        with storage_operation(f"moving {temporary} into place"):
            fs.mv(temporary, path)
    except BaseException:
        # Cleanup that fails (storage down) must not hide why the write failed; whatever it
        # leaves is removed later by remove_stale_temporaries.
        with contextlib.suppress(Exception):
            if fs.exists(temporary):
                fs.rm(temporary)
        raise


def write_bytes_atomic(fs: fsspec.AbstractFileSystem, path: str, payload: bytes) -> None:
    with atomic_path(fs, path) as temporary:
        with fs.open(temporary, "wb") as handle:
            handle.write(payload)


def write_json_atomic(fs: fsspec.AbstractFileSystem, path: str, document: Any) -> None:
    payload = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    write_bytes_atomic(fs, path, payload)


def read_json(fs: fsspec.AbstractFileSystem, path: str) -> Any:
    with fs.open(path, "rb") as handle:
        return json.load(handle)
