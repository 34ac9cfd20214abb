"""Concurrency leases: a function's `concurrency` caps its calls in flight, as Lambda's reserved concurrency does."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

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

    def in_flight(self, name: str) -> int:
        return self._in_flight.get(name, 0)
