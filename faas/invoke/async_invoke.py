"""Asynchronous (Event) invocations that survive a crash: a queue in SQLite, retries, and an
on-failure destination in the state dir.

An Event call is committed to the async_events table before the caller gets its 202, so a
gateway that is killed loses none; a call that was running when the gateway died is run
again after restart (Lambda's async delivery is at-least-once too). Retries follow Lambda:
a function error is retried twice, one then two minutes later (configurable); a throttle or
a platform error is retried with exponential backoff (1 s up to 5 minutes) without counting
as an attempt, until the event is older than the maximum event age. An event that fails
every attempt, or ages out, goes as Lambda's invocation record to the function's on-failure
destination (faas/events/destinations.py) or, without one, to failures/<function>/, listed by
`faas failures NAME`; a success goes to its on-success destination, if it has one.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faas.errors import FaasError, FunctionNotFound, ShuttingDown, TooManyRequests
from faas.models import Result, function_arn

LOG = logging.getLogger(__name__)

THROTTLE_BACKOFF_MAX_S = 300.0  # Lambda: from 1 s up to 5 minutes
IDLE_WAIT_S = 1.0  # longest a worker sleeps before looking at the queue again
FAILURES_KEPT = 1000  # failure records per function; the oldest go first
MAX_RETRIES = 2

MB = 1024 * 1024

InvokeFn = Callable[[str, bytes, "str | None", str], Result]
# destination(function, "OnSuccess" | "OnFailure", record): True once a configured destination
# has the record, False when the function has none for that outcome (faas/events/destinations.py).
DestinationFn = Callable[[str, str, dict[str, Any]], bool]


@dataclass(frozen=True)
class Policy:
    """How one function's events are retried: Lambda's event invoke config."""

    max_retries: int = MAX_RETRIES
    max_age_s: float = 21600.0


@dataclass(frozen=True)
class QueueBounds:
    """How much the queue may hold before an Event call is answered 429.

    Lambda's own queue is large and on someone else's disk; this one is in faas.db, next to
    the state every deploy writes, so a caller must not be able to fill it. Per function so
    that one flooded function leaves room for the others, and in all so that many functions
    together cannot fill the disk either. Payload bytes are counted (an event is at most 1 MB).
    """

    events_per_function: int = 1000
    bytes_per_function: int = 64 * MB
    events: int = 10_000
    bytes: int = 256 * MB


DEFAULT_BOUNDS = QueueBounds()


@dataclass(frozen=True)
class Event:
    request_id: str
    name: str
    qualifier: str | None
    payload: bytes
    received: float
    attempts: int


class AsyncInvoker:
    """The queue, its workers and the failure records."""

    def __init__(
        self,
        db_path: Path,
        failures_root: Path,
        invoke: InvokeFn,
        *,
        policy: Callable[[str], Policy] = lambda _name: Policy(),
        workers: int = 4,
        retry_delays_s: tuple[float, ...] = (60.0, 120.0),
        bounds: QueueBounds = DEFAULT_BOUNDS,
        clock: Callable[[], float] = time.time,
        destination: DestinationFn | None = None,
    ) -> None:
        self.failures_root = failures_root
        self.bounds = bounds
        self._invoke = invoke
        self._policy = policy
        self._delays = retry_delays_s
        self._clock = clock
        self._destination = destination
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._throttles: dict[str, int] = {}
        try:
            self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Calls that were running when the gateway died run again (not counted as attempts).
            resumed = self._db.execute("UPDATE async_events SET running = 0 WHERE running = 1").rowcount
            waiting = self._db.execute("SELECT COUNT(*) FROM async_events").fetchone()[0]
            # What is queued, per function: kept up to date by every insert and delete (all
            # under self._lock), so the bounds cost no query per call.
            self._queued: dict[str, list[int]] = {
                name: [int(count), int(size)]
                for name, count, size in self._db.execute(
                    "SELECT name, COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM async_events GROUP BY name"
                )
            }
            self._total = [sum(t[0] for t in self._queued.values()), sum(t[1] for t in self._queued.values())]
        except sqlite3.Error as e:
            raise FaasError(f"cannot open the async event queue in {db_path}: {e}") from e
        if waiting:
            LOG.info("async queue: %d event(s) waiting from an earlier run (%d were running)", waiting, resumed)
        self._workers = [threading.Thread(target=self._work, name=f"async-{i}", daemon=True) for i in range(workers)]
        for thread in self._workers:
            thread.start()

    # ---- the caller's side -----------------------------------------------------------

    def submit(self, name: str, qualifier: str | None, payload: bytes) -> str:
        """Queue one event durably; returns its request id (the one the function will see)."""
        if self._stopping.is_set():
            raise ShuttingDown("faas is shutting down and takes no new calls")
        request_id = str(uuid.uuid4())
        now = self._clock()
        with self._lock:
            try:
                self._check_room(name, len(payload))
                self._db.execute(
                    "INSERT INTO async_events (request_id, name, qualifier, payload, received, attempts, next_attempt)"
                    " VALUES (?, ?, ?, ?, ?, 0, ?)",
                    (request_id, name, qualifier, payload, now, now),
                )
            except sqlite3.Error as e:
                raise FaasError(f"could not queue the event for {name}: {e}") from e
            tally = self._queued.setdefault(name, [0, 0])
            tally[0] += 1
            tally[1] += len(payload)
            self._total[0] += 1
            self._total[1] += len(payload)
        LOG.debug("function %s: event %s queued (%d bytes)", name, request_id, len(payload))
        with self._wake:
            self._wake.notify()
        return request_id

    def _check_room(self, name: str, size: int) -> None:
        """Refuse (429, nothing written) an event that would take the queue past its bounds.
        Called under self._lock, which every insert holds, so two callers cannot both fit."""
        b = self.bounds
        mine, mine_bytes = self._queued.get(name, (0, 0))
        if mine + 1 > b.events_per_function or mine_bytes + size > b.bytes_per_function:
            raise _queue_full(
                f"{name} has {mine} events ({mine_bytes} bytes) queued, at its bound of "
                f"{b.events_per_function} events or {b.bytes_per_function} bytes"
            )
        count, total = self._total
        if count + 1 > b.events or total + size > b.bytes:
            raise _queue_full(
                f"{count} events ({total} bytes) are queued in all, at the bound of {b.events} events or {b.bytes} bytes"
            )

    def pending(self, name: str | None = None) -> int:
        """Events queued or running (for one function, or all)."""
        with self._lock:
            if name is None:
                return int(self._db.execute("SELECT COUNT(*) FROM async_events").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM async_events WHERE name = ?", (name,)).fetchone()[0])

    def failures(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """The function's on-failure records, newest first."""
        folder = self.failures_root / name
        try:
            files = sorted((p for p in folder.iterdir() if p.suffix == ".json"), reverse=True)
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for path in files[:limit]:
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError) as e:
                LOG.warning("function %s: unreadable failure record %s: %s", name, path, e)
        return out

    def drop(self, name: str) -> int:
        """Forget a deleted function's queued events (Lambda discards them with the function)."""
        with self._lock:
            dropped = self._db.execute("DELETE FROM async_events WHERE name = ?", (name,)).rowcount
            tally = self._queued.pop(name, None)
            if tally is not None:
                self._total[0] -= tally[0]
                self._total[1] -= tally[1]
            return int(dropped)

    def stop(self) -> None:
        """Claim nothing more; a call in flight finishes (or is run again after a restart)."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()

    def close(self, wait_s: float = 2.0) -> None:
        self.stop()
        deadline = time.monotonic() + wait_s
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._db.close()

    # ---- workers -------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                event = self._claim()
            except sqlite3.Error as e:
                if self._stopping.is_set():
                    return
                LOG.warning("async queue: cannot read the next event: %s", e)
                event = None
            if event is None:
                with self._wake:
                    if not self._stopping.is_set():
                        self._wake.wait(self._idle_wait())
                continue
            try:
                self._run(event)
            except Exception:  # a worker must survive anything one event does
                LOG.exception("function %s: event %s failed in the async worker", event.name, event.request_id)
                self._release(event, delay=1.0, count=False)

    def _claim(self) -> Event | None:
        now = self._clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT request_id, name, qualifier, payload, received, attempts FROM async_events"
                    " WHERE running = 0 AND next_attempt <= ? ORDER BY next_attempt LIMIT 1",
                    (now,),
                ).fetchone()
                if row is not None:
                    self._db.execute("UPDATE async_events SET running = 1 WHERE request_id = ?", (row[0],))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if row is None:
            return None
        return Event(row[0], row[1], row[2], bytes(row[3]), float(row[4]), int(row[5]))

    def _idle_wait(self) -> float:
        with self._lock:
            (due,) = self._db.execute("SELECT MIN(next_attempt) FROM async_events WHERE running = 0").fetchone()
        if due is None:
            return IDLE_WAIT_S
        return min(IDLE_WAIT_S, max(0.01, float(due) - self._clock()))

    def _run(self, event: Event) -> None:
        policy = self._policy(event.name)
        if self._clock() - event.received > policy.max_age_s:
            self._fail(event, "EventAgeExceeded", None, event.attempts)
            return
        try:
            result = self._invoke(event.name, event.payload, event.qualifier, event.request_id)
        except FunctionNotFound:
            LOG.warning(
                "function %s: event %s dropped: the function (or %s) no longer exists",
                event.name,
                event.request_id,
                event.qualifier or "$LATEST",
            )
            self._delete(event)
            return
        except FaasError as e:  # throttled, shutting down, engine trouble: not the function's fault
            throttles = self._throttles.get(event.request_id, 0)
            self._throttles[event.request_id] = throttles + 1
            delay = min(THROTTLE_BACKOFF_MAX_S, 2.0**throttles)
            LOG.info(
                "function %s: event %s not run (%s: %s), again in %.0f s",
                event.name,
                event.request_id,
                e.error_type,
                e.message,
                delay,
            )
            self._release(event, delay=delay, count=False)
            return
        self._throttles.pop(event.request_id, None)
        if result.function_error is None:
            self._succeeded(event, result)
            return
        if self._stopping.is_set():  # the environment may have been torn down under the call
            self._release(event, delay=0.0, count=False)
            return
        attempts = event.attempts + 1
        if attempts > policy.max_retries:
            self._fail(event, "RetriesExhausted", result, attempts)
            return
        delay = self._delays[min(attempts, len(self._delays)) - 1]
        LOG.info(
            "function %s: event %s failed (%s), retry %d in %.0f s",
            event.name,
            event.request_id,
            result.error_type,
            attempts,
            delay,
        )
        self._release(event, delay=delay, count=True)

    def _release(self, event: Event, *, delay: float, count: bool) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "UPDATE async_events SET running = 0, next_attempt = ?, attempts = attempts + ? WHERE request_id = ?",
                    (self._clock() + delay, 1 if count else 0, event.request_id),
                )
            except sqlite3.Error as e:  # closed at shutdown: the restart resets `running`
                LOG.warning("function %s: event %s not released: %s", event.name, event.request_id, e)

    def _delete(self, event: Event) -> None:
        with self._lock:
            try:
                deleted = self._db.execute("DELETE FROM async_events WHERE request_id = ?", (event.request_id,)).rowcount
                tally = self._queued.get(event.name)
                if deleted and tally is not None:
                    tally[0] -= 1
                    tally[1] -= len(event.payload)
                    self._total[0] -= 1
                    self._total[1] -= len(event.payload)
                    if tally[0] <= 0:
                        del self._queued[event.name]
            except sqlite3.Error as e:
                LOG.warning("function %s: event %s done but not removed (it may run again): %s", event.name, event.request_id, e)

    # ---- destinations -----------------------------------------------------------------

    def _send(self, event: Event, kind: str, record: dict[str, Any]) -> bool:
        """Hand the record to the function's destination for this outcome; False when it has
        none, or the destination could not take it (logged)."""
        if self._destination is None:
            return False
        try:
            return self._destination(event.name, kind, record)
        except Exception as e:  # the queue's endpoint is down, the destination function is gone
            LOG.warning("function %s: event %s: %s destination not reached: %s", event.name, event.request_id, kind, e)
            return False

    def _succeeded(self, event: Event, result: Result) -> None:
        if self._destination is not None:
            self._send(event, "OnSuccess", invocation_record(event, "Success", result, event.attempts + 1))
        self._delete(event)

    def _fail(self, event: Event, condition: str, result: Result | None, attempts: int) -> None:
        """Send Lambda's invocation record for a discarded event to the function's on-failure
        destination, or else write it to the failures folder; then forget the event.

        Written before the row is deleted, under a name fixed by the event, so a crash in
        between rewrites the same record instead of losing it or making two.
        """
        record = invocation_record(event, condition, result, attempts)
        if self._send(event, "OnFailure", record):
            LOG.warning(
                "function %s: event %s discarded (%s after %d attempt(s)); record sent to its on-failure destination",
                event.name,
                event.request_id,
                condition,
                attempts,
            )
            self._delete(event)
            return
        folder = self.failures_root / event.name
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(event.received, UTC).strftime("%Y%m%dT%H%M%S%f")
        path = folder / f"{stamp}-{event.request_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, path)
        LOG.warning(
            "function %s: event %s discarded (%s after %d attempt(s)); record in %s",
            event.name,
            event.request_id,
            condition,
            attempts,
            path,
        )
        self._delete(event)
        old = sorted(p for p in folder.iterdir() if p.suffix == ".json")
        for stale in old[:-FAILURES_KEPT]:
            stale.unlink(missing_ok=True)


def _queue_full(why: str) -> TooManyRequests:
    LOG.warning("async queue full, Event call refused: %s", why)
    return TooManyRequests(f"Rate Exceeded. The Event queue is full: {why}; try again later.", "CallerRateLimitExceeded", 5)


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


def invocation_record(event: Event, condition: str, result: Result | None, attempts: int) -> dict[str, Any]:
    """The JSON Lambda sends to an on-failure destination."""
    now = datetime.now(UTC)
    qualifier = event.qualifier or "$LATEST"
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": function_arn(event.name, qualifier),
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": _json_or_text(event.payload),
    }
    if result is not None:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": str(result.version)}
        if result.function_error:
            response["functionError"] = result.function_error
        record["responseContext"] = response
        record["responsePayload"] = _json_or_text(result.payload)
    return record
