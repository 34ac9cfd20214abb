"""What the dashboard and `faas top` show: recent calls, and latency per function per second.

Fed as a scheduler listener (record() and throttled()), so record() is on every call's path: it takes one short lock,
appends to a bounded ring, and adds one count to a sparse histogram of the current second.
Nothing is sorted or summed there; percentiles are worked out when somebody asks (a
dashboard poll, a `faas top` refresh), from log-spaced buckets that merge across seconds.
Everything is bounded: the last RING_SIZE calls, the last HISTORY_S seconds per function.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from faas.models import FunctionVersion, Result, StartType, Status

RING_SIZE = 500
HISTORY_S = 600  # ten minutes of per-second windows per function
LOG_CHARS = 4096  # the end of a call's log kept with it, as much as Lambda's Tail returns
# Log-spaced latency buckets: 16 per doubling (each about 4.4 % wide) from 10 µs up.
BUCKETS_PER_DOUBLING = 16
SMALLEST_MS = 0.01


def bucket_of(duration_ms: float) -> int:
    if duration_ms <= SMALLEST_MS:
        return 0
    return int(math.log2(duration_ms / SMALLEST_MS) * BUCKETS_PER_DOUBLING) + 1


def bucket_value(index: int) -> float:
    """A bucket's representative duration: the geometric middle of its bounds."""
    if index <= 0:
        return SMALLEST_MS
    return SMALLEST_MS * 2 ** ((index - 0.5) / BUCKETS_PER_DOUBLING)


def percentile(buckets: dict[int, int], p: float) -> float | None:
    """The p-th percentile (0..100) of the durations counted in buckets, within a bucket's width."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            return round(bucket_value(index), 3)
    return round(bucket_value(max(buckets)), 3)


@dataclass
class Window:
    """One second of one function's calls."""

    second: int
    calls: int = 0
    errors: int = 0  # error, timeout and oom
    throttled: int = 0
    cold: int = 0
    buckets: dict[int, int] = field(default_factory=dict)


@dataclass
class Totals:
    calls: int = 0
    errors: int = 0
    throttled: int = 0
    last_call: float = 0.0


class Activity:
    """Recent invocations (a ring with a cursor) and per-second latency windows per function."""

    def __init__(self, *, ring_size: int = RING_SIZE, history_s: int = HISTORY_S, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ring: deque[tuple[Any, ...]] = deque(maxlen=ring_size)
        self._seq = 0
        self._history_s = history_s
        self._windows: dict[str, deque[Window]] = {}
        self._totals: dict[str, Totals] = {}

    # ---- the hot path ------------------------------------------------------------------

    def record(self, fv: FunctionVersion, result: Result) -> None:
        """Scheduler listener: one call finished.

        The ring keeps a tuple of what the dashboard shows (never the payload, which may be
        6 MB); it becomes a dict only when somebody reads it.
        """
        now = self._clock()
        failed = result.status != Status.OK
        index = bucket_of(result.duration_ms)
        name = fv.name
        with self._lock:
            self._seq += 1
            self._ring.append(
                (
                    self._seq,
                    now,
                    name,
                    fv.spec.memory,
                    result.version,
                    result.request_id,
                    result.status,
                    result.start,
                    result.duration_ms,
                    result.init_duration_ms,
                    result.max_memory_mb,
                    result.error_type,
                    result.logs,
                )
            )
            window = self._window(name, now)
            window.calls += 1
            window.buckets[index] = window.buckets.get(index, 0) + 1
            if failed:
                window.errors += 1
            if result.start != StartType.WARM:
                window.cold += 1
            totals = self._totals.get(name)
            if totals is None:
                totals = self._totals[name] = Totals()
            totals.calls += 1
            if failed:
                totals.errors += 1
            totals.last_call = now

    def throttled(self, name: str) -> None:
        """A call refused with 429 before it reached an environment."""
        now = self._clock()
        with self._lock:
            self._seq += 1
            self._ring.append(
                (self._seq, now, name, None, None, None, "throttled", None, None, None, None, "TooManyRequestsException", "")
            )
            self._window(name, now).throttled += 1
            totals = self._totals.get(name)
            if totals is None:
                totals = self._totals[name] = Totals()
            totals.throttled += 1
            totals.last_call = now

    def _window(self, name: str, now: float) -> Window:
        """Caller holds the lock. The current second's window, opening a new one if needed."""
        second = int(now)
        windows = self._windows.get(name)
        if windows is None:
            windows = self._windows[name] = deque(maxlen=self._history_s)
        if not windows or windows[-1].second != second:
            windows.append(Window(second))
        return windows[-1]

    # ---- readers (a dashboard poll, `faas top`) -----------------------------------------

    def recent(self, since: int = 0, limit: int = 100, function: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        """(cursor, calls after `since`, oldest first, at most `limit` of the newest).

        Pass the returned cursor as `since` next time to get only what is new. A cursor
        from before a gateway restart (ahead of this one) starts over from the oldest kept.
        """
        with self._lock:
            cursor = self._seq
            if since > cursor:
                since = 0
            first = cursor - len(self._ring) + 1
            start = max(0, since + 1 - first)
            entries = list(self._ring)[start:] if start < len(self._ring) else []
        if function is not None:
            entries = [e for e in entries if e[2] == function]
        return cursor, [_as_dict(e) for e in (entries[-limit:] if limit > 0 else [])]

    def forget(self, name: str) -> None:
        """A function was removed: its windows and totals go (its calls stay in the ring until pushed out)."""
        with self._lock:
            self._windows.pop(name, None)
            self._totals.pop(name, None)

    def _copy_windows(self, names: Iterable[str] | None, oldest: int) -> dict[str, list[Window]]:
        """Copies of the windows from second `oldest` on. Walks each deque from its newest end
        and stops at the first older window, so the lock is held for the range asked, not the history."""
        out: dict[str, list[Window]] = {}
        with self._lock:
            chosen = self._windows if names is None else {n: self._windows[n] for n in names if n in self._windows}
            for name, windows in chosen.items():
                recent: list[Window] = []
                for w in reversed(windows):
                    if w.second < oldest:
                        break
                    recent.append(Window(w.second, w.calls, w.errors, w.throttled, w.cold, dict(w.buckets)))
                if recent:
                    recent.reverse()
                    out[name] = recent
        return out

    def series(self, name: str, seconds: int = 300) -> dict[str, list[Any]]:
        """Per-second points of one function over the last `seconds`: p50/p99 in ms, calls, errors.

        Seconds without calls are present with None latencies, so a chart shows the gaps.
        """
        now = int(self._clock())
        seconds = max(1, min(seconds, self._history_s))
        oldest = now - seconds + 1
        windows = {w.second: w for w in self._copy_windows([name], oldest).get(name, [])}
        out: dict[str, list[Any]] = {"t": [], "p50": [], "p99": [], "calls": [], "errors": [], "throttled": []}
        for second in range(oldest, now + 1):
            w = windows.get(second)
            out["t"].append(second)
            out["p50"].append(percentile(w.buckets, 50) if w else None)
            out["p99"].append(percentile(w.buckets, 99) if w else None)
            out["calls"].append(w.calls if w else 0)
            out["errors"].append(w.errors if w else 0)
            out["throttled"].append(w.throttled if w else 0)
        return out

    def summary(self, window_s: float = 10.0) -> dict[str, dict[str, Any]]:
        """Per function over the last window_s seconds: calls/s, p50/p99, errors; and totals since start."""
        now = self._clock()
        oldest = int(now - window_s) + 1
        span = max(1.0, window_s - 1 + (now - int(now)))  # the current second counts as far as it has gone
        copies = self._copy_windows(None, oldest)
        with self._lock:
            totals = {name: Totals(t.calls, t.errors, t.throttled, t.last_call) for name, t in self._totals.items()}
        out: dict[str, dict[str, Any]] = {}
        for name, total in totals.items():
            windows = copies.get(name, [])
            merged: dict[int, int] = {}
            for w in windows:
                for index, count in w.buckets.items():
                    merged[index] = merged.get(index, 0) + count
            calls = sum(w.calls for w in windows)
            out[name] = {
                "calls_per_s": round(calls / span, 2),
                "calls": calls,
                "errors": sum(w.errors for w in windows),
                "throttled": sum(w.throttled for w in windows),
                "cold": sum(w.cold for w in windows),
                "p50_ms": percentile(merged, 50),
                "p99_ms": percentile(merged, 99),
                "total_calls": total.calls,
                "total_errors": total.errors,
                "total_throttled": total.throttled,
                "last_call": total.last_call,
            }
        return out


def _as_dict(entry: tuple[Any, ...]) -> dict[str, Any]:
    """A ring entry as the dashboard's JSON has it."""
    (seq, when, name, memory, version, request_id, status, start, duration, init, max_mb, error_type, logs) = entry
    return {
        "seq": seq,
        "time": when,
        "function": name,
        "version": version,
        "request_id": request_id,
        "status": status,
        "start": start,
        "duration_ms": None if duration is None else round(duration, 3),
        "init_duration_ms": None if init is None else round(init, 3),
        "max_memory_mb": max_mb,
        "memory_mb": memory,
        "error_type": error_type,
        "logs": logs if len(logs) <= LOG_CHARS else "…" + logs[-LOG_CHARS:],
    }
