"""A queue that one background writer empties in batches (the log files, the call records).

Calls put items without waiting; the writer blocks for the first item, then lingers
before it takes everything queued, so that calls arriving one after another share one
write. Woken for every call instead, the writers made a one-row commit or a small write
per call, which cost more CPU (~100 us each, measured) than the rest of a call's
bookkeeping. flush() and close() cut the linger short, so a reader never waits for it.
"""

from __future__ import annotations

import queue
import threading
from typing import Generic, TypeVar

T = TypeVar("T")
_STOP = object()


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Batches(Generic[T]):
    def __init__(self, linger_s: float) -> None:
        self.linger_s = linger_s
        self._q: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._hurry = threading.Event()

    def put(self, item: T) -> None:
        self._q.put(item)

    def __len__(self) -> int:
        return self._q.qsize()

    def flush(self, timeout: float) -> None:
        """Wait until the writer has handled everything put so far."""
        marker = _Flush()
        self._q.put(marker)
        self._hurry.set()
        marker.done.wait(timeout)

    def close(self) -> None:
        """The writer's last take() reports stop."""
        self._q.put(_STOP)
        self._hurry.set()

    def take(self, most: int) -> tuple[list[T], list[threading.Event], bool]:
        """For the writer: block for the next item, linger unless hurried, then take what is
        queued, up to `most` items. Returns the items, the flush markers to set once they are
        written, and whether close() was reached."""
        entry = self._q.get()
        if not isinstance(entry, _Flush) and entry is not _STOP and self._hurry.wait(self.linger_s):
            self._hurry.clear()
        items: list[T] = []
        flushes: list[threading.Event] = []
        while True:
            if entry is _STOP:
                return items, flushes, True
            if isinstance(entry, _Flush):
                flushes.append(entry.done)
            else:
                items.append(entry)  # type: ignore[arg-type]
            if len(items) >= most:
                return items, flushes, False
            try:
                entry = self._q.get_nowait()
            except queue.Empty:
                return items, flushes, False
