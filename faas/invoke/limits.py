"""Concurrency leases: a function's `concurrency` caps its calls in flight, as Lambda's reserved concurrency does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from faas.errors import TooManyRequests
from faas.models import FunctionSpec


class Limiter:
    """Counts calls in flight per function; past the cap a call is refused at once, never queued."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def lease(self, spec: FunctionSpec) -> Iterator[None]:
        with self._lock:
            n = self._in_flight.get(spec.name, 0)
            if spec.concurrency is not None and n >= spec.concurrency:
                raise TooManyRequests("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded")
            self._in_flight[spec.name] = n + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._in_flight[spec.name] - 1
                if left:
                    self._in_flight[spec.name] = left
                else:
                    del self._in_flight[spec.name]

    def in_flight(self, name: str | None = None) -> int:
        """Calls in flight of one function, or of all."""
        if name is None:
            return sum(self._in_flight.values())
        return self._in_flight.get(name, 0)


class MemoryBudget:
    """The memory all environments may hold at once; waiters are served first come, first served.

    Every environment (pre-started ones too) holds its `memory` from start to removal, so the
    sum of container limits never exceeds the host budget. A call that needs a new environment
    when the budget is full first has idle environments evicted for it (evict callback), then
    waits in a FIFO queue for a bounded time.
    """

    def __init__(self, total_mb: int) -> None:
        self.total_mb = total_mb
        self.used_mb = 0
        self._cond = threading.Condition()
        self._queue: list[object] = []

    def try_reserve(self, mb: int) -> bool:
        """Reserve without waiting or evicting (pre-started containers must never push calls out)."""
        with self._cond:
            if self._queue or self.used_mb + mb > self.total_mb:
                return False
            self.used_mb += mb
            return True

    def reserve(self, mb: int, timeout_s: float, evict: Callable[[int], bool]) -> None:
        """Reserve mb, evicting idle environments or waiting in turn; 429 when the wait runs out."""
        if mb > self.total_mb:
            raise TooManyRequests(
                f"Function needs {mb} MB but the host memory budget is {self.total_mb} MB.",
                "ConcurrentInvocationLimitExceeded",
            )
        ticket = object()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._queue.append(ticket)
            try:
                while True:
                    if self._queue[0] is ticket and self.used_mb + mb <= self.total_mb:
                        self.used_mb += mb
                        return
                    if self._queue[0] is ticket:
                        missing = self.used_mb + mb - self.total_mb
                        self._cond.release()
                        try:
                            evicted = evict(missing)  # destroys environments, which release() their memory
                        finally:
                            self._cond.acquire()
                        if evicted:
                            continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TooManyRequests(
                            "Rate Exceeded. The host memory budget is in use by environments that are busy.",
                            "ConcurrentInvocationLimitExceeded",
                        )
                    self._cond.wait(min(left, 0.25))
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()

    def release(self, mb: int) -> None:
        with self._cond:
            self.used_mb = max(0, self.used_mb - mb)
            self._cond.notify_all()
