"""Telling a file's own fault from the storage's: quarantine the one, retry the other.

Parsers (Arrow, pandas) raise plain ``OSError`` for a corrupt Parquet page, and s3fs raises
the same plain ``OSError`` for an HTTP 500 that outlived its retries, so the exception type
cannot tell them apart. What can is where the exception started: every byte a reader gets
goes through a :class:`GuardedFile`, which re-raises any failure of the storage underneath
as :class:`StorageError`; the parsers hand Python exceptions from file objects back
unchanged. Anything else that goes wrong while turning one file into transactions is the
file's content.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Literal

import fsspec

FailureKind = Literal["content", "storage"]

# Raised by storage clients for failures that are about reaching the bytes, never about them.
_STORAGE_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    FileNotFoundError,
    PermissionError,
)


class StorageError(OSError):
    """Storage failed to deliver or accept bytes; the file itself may be perfectly good."""


@contextlib.contextmanager
def storage_operation(what: str) -> Iterator[None]:
    """Re-raise any failure inside the block as :class:`StorageError`, naming ``what``."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        raise StorageError(f"{what}: {type(error).__name__}: {error}") from error


class GuardedFile(io.RawIOBase):
    """A binary file whose storage failures surface as :class:`StorageError`.

    Only the calls that touch storage are wrapped; the parser on top sees a normal file.
    """

    def __init__(self, handle, name: str):
        super().__init__()
        self._handle = handle
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with storage_operation(f"reading {self.name}"):
            data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        with storage_operation(f"reading {self.name}"):
            return self._handle.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            return self._bounded_line(size)
        with storage_operation(f"reading {self.name}"):
            return self._handle.readline()

    def _bounded_line(self, size: int) -> bytes:
        # fsspec's readline takes no size, and RawIOBase's reads a byte per call (30 s for
        # the rows of a 6,000-row file): read blocks and step back to just after the newline.
        start, parts, got = self.tell(), [], 0
        while got < size:
            block = self.read(min(size - got, 1 << 16))
            if not block:
                break
            newline = block.find(b"\n")
            if newline >= 0:
                parts.append(block[: newline + 1])
                got += newline + 1
                self.seek(start + got)
                break
            parts.append(block)
            got += len(block)
        return b"".join(parts)

    def write(self, data) -> int:
        with storage_operation(f"writing {self.name}"):
            written = self._handle.write(data)
        return len(data) if written is None else written

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with storage_operation(f"seeking in {self.name}"):
            return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def flush(self) -> None:
        # IOBase.close flushes after the handle underneath is already closed.
        if not self.closed and not getattr(self._handle, "closed", False):
            with storage_operation(f"writing {self.name}"):
                self._handle.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            # s3fs uploads what is left of a written object when it is closed.
            with storage_operation(f"closing {self.name}"):
                self._handle.close()
        finally:
            super().close()

    @property
    def size(self) -> int | None:
        return getattr(self._handle, "size", None)


def open_guarded(fs: fsspec.AbstractFileSystem, path: str, mode: str = "rb", **options) -> GuardedFile:
    """``fs.open`` whose failures, then and on every later call, are storage failures."""
    with storage_operation(f"opening {path}"):
        handle = fs.open(path, mode, **options)
    return GuardedFile(handle, path)


def failure_kind(error: BaseException) -> FailureKind:
    """``storage`` if the failure came from the storage (retry later, keep the file);
    ``content`` otherwise (quarantine the file with the reason).

    The exception's causes are searched too: a parser may wrap what the storage raised.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (StorageError, *_STORAGE_TYPES)) or _is_storage_client_error(current):
            return "storage"
        current = current.__cause__ or current.__context__
    return "content"


def _is_storage_client_error(error: BaseException) -> bool:
    # By module rather than by import: botocore and aiohttp are only present with S3.
    module = type(error).__module__ or ""
    return module.startswith(("botocore", "aiobotocore", "aiohttp", "urllib3"))
