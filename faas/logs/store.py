"""Function logs on disk: one file per function, written by one lingering writer, rotated by size.

The texts come framed already (faas/logs/framing.py); this module only keeps them, tails them
for `faas logs` and rotates them so that the newest lines are always in NAME.log.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import TextIO

from faas.logs.batches import Batches
from faas.private import open_private, private_dir

LOG = logging.getLogger(__name__)

FILE_ROTATE_BYTES = 8 * 1024 * 1024
LINGER_S = 0.05  # how long the writer collects texts before it writes them


class LogStore:
    """Per-function log files, written by one background thread so calls never wait on disk.

    The writer lingers LINGER_S before it takes what has queued (faas/logs/batches.py), so calls
    one after another share a write; flush() (readers, tests, `faas logs`) cuts that short.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)
        self._texts: Batches[tuple[str, str]] = Batches(LINGER_S)
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def append(self, name: str, text: str) -> None:
        self._texts.put((name, text))

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything appended so far is on disk (tests and `faas logs`)."""
        self._texts.flush(timeout)

    def tail(self, name: str, lines: int = 200) -> list[str]:
        self.flush()
        out: deque[str] = deque(maxlen=lines)
        for p in (self.path(name).with_suffix(".log.1"), self.path(name)):
            if p.exists():
                with open(p, encoding="utf-8", errors="replace") as f:
                    out.extend(line.rstrip("\n") for line in f)
        return list(out)

    def remove(self, name: str) -> None:
        self.flush()
        for p in (self.path(name), self.path(name).with_suffix(".log.1")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self._texts.close()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        """Write in batches, files kept open: a busy function costs one write per batch, not per call."""
        files: dict[str, TextIO] = {}
        sizes: dict[str, int] = {}  # characters in each open file (set when it is opened)
        stop = False
        while not stop:
            batch, flushes, stop = self._texts.take(512)
            texts: dict[str, list[str]] = {}
            for name, text in batch:
                texts.setdefault(name, []).append(text)
            for name, parts in texts.items():
                self._write(files, sizes, name, parts)
            for f in files.values():
                try:
                    f.flush()
                except OSError:
                    pass
            for ev in flushes:
                ev.set()
            if len(files) > 64:
                self._close_files(files)
        self._close_files(files)

    def _write(self, files: dict[str, TextIO], sizes: dict[str, int], name: str, parts: list[str]) -> None:
        """Append a batch of one function's texts, rotating before a text that would take the
        file past FILE_ROTATE_BYTES: the newest lines are always in NAME.log, and a file grows
        past the limit by one call's text at most, however many calls a batch holds."""
        path = self.path(name)
        try:
            f = files.get(name)
            if f is None or f.closed or not path.exists():  # removed or rotated by someone else
                if f is not None:
                    f.close()
                f = files[name] = open(path, "a", encoding="utf-8", opener=open_private)
                sizes[name] = f.tell()
            for text in parts:
                if sizes[name] and sizes[name] + len(text) > FILE_ROTATE_BYTES:
                    f.close()
                    os.replace(path, path.with_suffix(".log.1"))
                    f = files[name] = open(path, "a", encoding="utf-8", opener=open_private)
                    sizes[name] = 0
                f.write(text)
                sizes[name] += len(text)
        except OSError as e:
            files.pop(name, None)
            LOG.warning("function %s: cannot write its log to %s: %s", name, path, e)

    @staticmethod
    def _close_files(files: dict[str, TextIO]) -> None:
        for f in files.values():
            try:
                f.close()
            except OSError:
                pass
        files.clear()
