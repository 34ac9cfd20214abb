"""Invocation records: one row per call (request id, version, start type, durations, memory,
status, error type) in SQLite, listed by `faas calls NAME`.

The scheduler calls record() on the hot path, so record() only puts a tuple on a queue; a
background writer takes whatever has queued up (lingering LINGER_S first, see
faas/logs/batches.py) and inserts it in one transaction. Readers (`faas calls`) flush first, so
they never see stale rows. Retention is bounded per function: the
writer prunes a function's oldest rows once it has more than `keep` of them. Records are
diagnostics, not state: when the writer cannot keep up they are dropped (and counted)
rather than slowing calls down, and a crash loses at most the last batch.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from faas.errors import FaasError
from faas.logs.batches import Batches
from faas.models import FunctionVersion, Result

LOG = logging.getLogger(__name__)

BATCH = 4096  # most rows per transaction
LINGER_S = 0.05  # how long the writer collects rows before a commit
QUEUE_LIMIT = 100_000  # rows waiting for the writer; past this, records are dropped
PRUNE_EVERY = 64  # inserts of one function between two prunes of its old rows
REPEAT_WARNING_S = 60.0  # while writes keep failing, the warning is repeated this often
COLUMNS = (
    "name",
    "version",
    "request_id",
    "finished",
    "start",
    "init_ms",
    "duration_ms",
    "max_memory_mb",
    "memory_mb",
    "status",
    "error_type",
)
_Row = tuple[Any, ...]


class RecordStore:
    """Writes call records in the background and answers `faas calls` from SQLite."""

    def __init__(self, db_path: Path, *, keep_per_function: int = 1000) -> None:
        self.keep = keep_per_function
        self.dropped = 0  # records never written: the writer was behind, or the write failed
        self._failing_since: float | None = None  # writes have failed since then (the disk is full...)
        self._dropped_then = 0  # self.dropped when the failure began
        self._warned = 0.0
        self._rows: Batches[_Row] = Batches(LINGER_S)
        self._lock = threading.Lock()  # the connection is shared by the writer and readers
        try:
            # The store created the table (schema version 2); this is a second connection
            # so that record writes never wait on, or hold, the store's lock.
            self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise FaasError(f"cannot open the invocation records in {db_path}: {e}") from e
        self._since_prune: dict[str, int] = {}
        # name -> when it was deleted: a call still running then ran on a function that is gone
        # (and may be created again, from version 1): it must not be recorded under the new one.
        self._removed: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="records-writer", daemon=True)
        self._thread.start()

    # ---- hot path --------------------------------------------------------------------

    def record(self, fv: FunctionVersion, result: Result) -> None:
        """Scheduler listener: queue the call's record; never blocks, never raises.

        The start type and status are StrEnums, which sqlite3 stores as their plain text. A
        call of a function deleted while it ran is not recorded: its records went with it."""
        if self._removed and fv.created <= self._removed.get(fv.name, 0.0):
            return
        row = (
            fv.name,
            fv.version,
            result.request_id,
            time.time(),
            result.start,
            result.init_duration_ms,
            round(result.duration_ms, 3),
            result.max_memory_mb,
            fv.spec.memory,
            result.status,
            result.error_type,
        )
        if len(self._rows) < QUEUE_LIMIT:
            self._rows.put(row)
        else:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                LOG.warning("function %s: invocation records dropped (%d so far): the writer is behind", fv.name, self.dropped)

    def throttled(self, name: str) -> None:
        """Scheduler listener: a throttled call never ran, so it has no record (`faas calls` lists calls that ran)."""

    # ---- readers ---------------------------------------------------------------------

    def list(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """The function's most recent calls, newest first."""
        self.flush()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM invocations WHERE name = ? ORDER BY id DESC LIMIT ?", (name, limit)
            ).fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every record queued so far is written."""
        self._rows.flush(timeout)

    def remove(self, name: str) -> None:
        self._removed[name] = time.time()
        self.flush()
        with self._lock:
            self._db.execute("DELETE FROM invocations WHERE name = ?", (name,))

    def close(self) -> None:
        self._rows.close()
        self._thread.join(timeout=10)
        with self._lock:
            self._db.close()

    # ---- the writer --------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            rows, waiters, stop = self._rows.take(BATCH)
            if rows:
                self._write(rows)
            for waiter in waiters:
                waiter.set()

    def _write(self, rows: Sequence[_Row]) -> None:
        placeholders = ", ".join("?" for _ in COLUMNS)
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(f"INSERT INTO invocations ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows)
                    for name in {r[0] for r in rows}:
                        count = self._since_prune.get(name, 0) + sum(1 for r in rows if r[0] == name)
                        if count >= PRUNE_EVERY:
                            self._prune(name)
                            count = 0
                        self._since_prune[name] = count
                    self._db.execute("COMMIT")
                except BaseException:
                    # SQLite rolls back by itself on some errors (SQLITE_FULL among them): a second
                    # ROLLBACK would fail and its error would hide the real one.
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as e:  # records are diagnostics: a full disk must not stop calls
            self._failed(len(rows), e)
            return
        if self._failing_since is not None:
            LOG.warning(
                "invocation records are written again, after %d record(s) were dropped in %.0f s",
                self.dropped - self._dropped_then,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None

    def _failed(self, count: int, e: sqlite3.Error) -> None:
        """Count the lost records and say why, once when it starts and then once a minute."""
        self.dropped += count
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since, self._dropped_then, self._warned = now, self.dropped - count, 0.0
        if now - self._warned < REPEAT_WARNING_S:
            return
        self._warned = now
        why = "the disk is full" if _disk_full(e) else "the write failed"
        LOG.warning(
            "invocation records: %s (%s): %d record(s) dropped (%d since the first failure, %d in all); "
            "calls are not affected and records are written again once it is fixed",
            why,
            e,
            count,
            self.dropped - self._dropped_then,
            self.dropped,
        )

    def _prune(self, name: str) -> None:
        """Keep the newest `keep` rows of one function."""
        row = self._db.execute(
            "SELECT id FROM invocations WHERE name = ? ORDER BY id DESC LIMIT 1 OFFSET ?", (name, self.keep)
        ).fetchone()
        if row is not None:
            self._db.execute("DELETE FROM invocations WHERE name = ? AND id <= ?", (name, row[0]))


def _disk_full(e: sqlite3.Error) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or getattr(e, "errno", None) == errno.ENOSPC or "disk is full" in str(e)


class DroppedRecords(Collector):
    """faas_records_dropped_total: invocation records never written, read at scrape time."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("faas_records_dropped", "Invocation records dropped (writer behind, or the disk full).")

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("faas_records_dropped", "Invocation records dropped (writer behind, or the disk full).")
        family.add_metric([], self._records.dropped)
        yield family


def print_calls(console: Any, calls: list[dict[str, Any]]) -> None:
    """`faas calls`: one line per call, newest first, full request ids (to grep the logs)."""
    from datetime import datetime

    console.print(
        f"{'time':<8}  {'request id':<36}  {'ver':>3}  {'start':<10}  {'init ms':>8}  {'run ms':>9}  "
        f"{'memory':>11}  {'status':<7}  error",
        markup=False,
        style="bold",
    )
    for c in calls:
        init = c.get("init_ms")
        console.print(
            f"{datetime.fromtimestamp(float(c['finished'])).strftime('%H:%M:%S'):<8}  {c['request_id']:<36}  "
            f"{c['version']:>3}  {c['start']:<10}  {(f'{init:.1f}' if isinstance(init, (int, float)) else '-'):>8}  "
            f"{float(c['duration_ms']):>9.1f}  {str(c['max_memory_mb']) + '/' + str(c['memory_mb']) + ' MB':>11}  "
            f"{c['status']:<7}  {c.get('error_type') or ''}",
            markup=False,
        )
