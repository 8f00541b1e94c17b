"""Progress of the long commands, and how much they log.

Progress is one stderr line rewritten in place, drawn only when stderr is a terminal: output
that is piped or captured stays what it was. It appears once work has lasted a moment, so a
small file finishes without any. The core reports rows and boosting rounds through plain
callables (``on_rows``, ``on_round``) and never learns who listens.
"""

from __future__ import annotations

import logging
import sys
import time

# Work shorter than this shows no progress at all; later updates are at most this often.
FIRST_DRAW_SECONDS = 0.5
REDRAW_SECONDS = 0.1


# Whether a progress line is on screen without its newline yet: a log record then ends it
# first, so that records never run on after a progress line.
_line_open = False


def _end_open_line() -> None:
    global _line_open
    if _line_open:
        sys.stderr.write("\n")
        _line_open = False


def on_terminal() -> bool:
    return sys.stderr.isatty()


def known_rows(path: str) -> int | None:
    """The row count a Parquet footer states (free to read); None for CSV, which would have
    to be read to be counted, and for a file that cannot say (validation will tell why)."""
    if not path.lower().endswith((".parquet", ".pq")):
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - a progress total is never worth an error
        return None


class Progress:
    """``label: done[/total] unit (elapsed)`` on one line; a context manager that ends the line."""

    def __init__(self, label: str, *, total: int | None = None, unit: str = "rows"):
        self.label, self.total, self.unit = label, total, unit
        self.most: int | None = None
        self.enabled = on_terminal()
        self.done = 0
        self._started = time.monotonic()
        self._drawn_at: float | None = None
        self._width = 0

    def add(self, count: int) -> None:
        """``on_rows``: ``count`` more done."""
        self.update(self.done + count)

    def rounds(self, done: int, most: int) -> None:
        """``on_round``: boosting round ``done`` of at most ``most`` (a bound, not a total:
        early stopping usually ends sooner, so no percentage)."""
        self.most = most
        self.update(done)

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if self._drawn_at is None and now - self._started < FIRST_DRAW_SECONDS:
            return
        if self._drawn_at is not None and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._draw(now)

    def text(self, now: float) -> str:
        done = f"{self.done:,}"
        if self.most:
            done = f"{self.unit} {self.done:,} of at most {self.most:,}"
        elif self.total:
            done += f"/{self.total:,} {self.unit} ({min(self.done / self.total, 1):.0%})"
        else:
            done += f" {self.unit}"
        return f"{self.label}: {done}, {now - self._started:.1f} s"

    def _draw(self, now: float) -> None:
        global _line_open
        line = self.text(now)
        # Spaces wipe what a longer previous line left behind.
        sys.stderr.write("\r" + line.ljust(self._width if _line_open else 0))
        sys.stderr.flush()
        self._width, self._drawn_at, _line_open = len(line), now, True

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        # The last state stays on screen, and whatever follows starts on a line of its own.
        if self._drawn_at is not None:
            self._draw(time.monotonic())
            _end_open_line()
            sys.stderr.flush()


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (click and tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        _end_open_line()
        super().emit(record)


_handler: _CurrentStderr | None = None


def configure_logging(verbosity: int) -> None:
    """``-v``: what the package does (INFO), ``-vv``: each chunk and boosting round (DEBUG);
    warnings always. Other libraries keep their own levels."""
    global _handler
    package = logging.getLogger("fraud_assets")
    if _handler is None:
        _handler = _CurrentStderr()
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package.addHandler(_handler)
    # The level is the package logger's, not the handler's: a module that must always be
    # heard (the service's model swaps) raises its own logger's level above it.
    package.setLevel(logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG)
