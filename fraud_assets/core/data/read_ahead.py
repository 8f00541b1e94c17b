"""A producer thread running ahead of its consumer, with bounded look-ahead."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

_Item = TypeVar("_Item")
_END = object()


@dataclass(frozen=True)
class _Failure:
    error: BaseException


def read_ahead(items: Iterator[_Item], depth: int = 1) -> Iterator[_Item]:
    """Yield ``items`` in order while a background thread produces the next ones.

    At most ``depth`` items exist beyond the one the consumer holds: the producer starts an
    item only when a slot is free, so memory stays at (1 + depth) items. An exception in the
    producer is raised here after the items produced before it, so a bad item fails at the
    same point as without read-ahead. If the consumer stops early, the producer stops before
    its next item and closes ``items``.
    """
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stopped = threading.Event()

    def produce() -> None:
        try:
            while True:
                slots.acquire()
                if stopped.is_set():
                    return
                item = next(items, _END)
                handoff.put(item)
                if item is _END:
                    return
                del item  # the consumer owns it now; don't pin it while producing the next
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, re-raised there
            handoff.put(_Failure(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            slots.release()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stopped.set()
        slots.release()  # wakes a producer waiting for a slot, so it sees the stop at once
        producer.join()
