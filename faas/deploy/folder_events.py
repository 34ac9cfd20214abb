"""Watching folders the way werkzeug's reloader, watchdog's EventDebouncer and SAM do.

watchdog's callbacks only enqueue a key; one worker thread waits until a key has been quiet
for a short while (an editor's save is a burst of create/modify/rename events) and then does
the work; and the work starts by comparing a content hash, so a touch, a `git checkout` of
the same bytes or an editor's swap file changes nothing. Two watchers follow this
discipline: the CLI's source watcher (faas/cli/source_watcher.py) and the gateway's upload
folder (faas/deploy/incoming.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

from watchdog.events import FileSystemEvent, FileSystemEventHandler

LOG = logging.getLogger(__name__)

DEBOUNCE_S = 0.05  # an editor's save (write, rename, chmod) lands well within this
# Event types that can change what a folder would zip to; opened/closed_no_write cannot.
_CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed", "attrib"})

K = TypeVar("K", bound=Hashable)


class Debouncer(Generic[K]):
    """Coalesces bursts per key: fire(key, first_seen) runs on one worker thread once the key
    has had no push for delay_s. first_seen is the monotonic time of the burst's first push,
    so callers can say how long a change took to go live."""

    def __init__(self, fire: Callable[[K, float], None], delay_s: float = DEBOUNCE_S, *, name: str = "debounce") -> None:
        self._fire = fire
        self.delay_s = delay_s
        self._cond = threading.Condition()
        self._due: dict[K, float] = {}
        self._first: dict[K, float] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def push(self, key: K, delay_s: float | None = None) -> None:
        """Safe from any thread, including watchdog's: only records the key and wakes the worker."""
        now = time.monotonic()
        with self._cond:
            self._due[key] = now + (self.delay_s if delay_s is None else delay_s)
            self._first.setdefault(key, now)
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    ready = [k for k, due in self._due.items() if due <= now]
                    if ready:
                        break
                    wait = min(self._due.values()) - now if self._due else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                batch = [(k, self._first.pop(k, now)) for k in ready]
                for k in ready:
                    del self._due[k]
            for key, first in batch:
                try:
                    self._fire(key, first)
                except Exception:  # one bad folder or file must not stop the watching of the others
                    LOG.exception("watcher: handling a change of %s failed", key)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)


class Enqueue(FileSystemEventHandler):
    """watchdog's callback: filter, then push; nothing slow ever runs on the observer's thread."""

    def __init__(self, root: Path, accept: Callable[[Path, str], bool], push: Callable[[Path], None]) -> None:
        self.root = root
        self.accept = accept
        self.push = push

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES or (event.is_directory and event.event_type == "modified"):
            return
        paths = [event.src_path]
        if event.event_type == "moved" and event.dest_path:
            paths.append(event.dest_path)
        for raw in paths:
            path = Path(os.fsdecode(raw))
            try:
                rel = path.relative_to(self.root)
            except ValueError:
                continue
            if self.accept(path, rel.as_posix()):
                self.push(path)
                return
