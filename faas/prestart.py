"""Pre-started runtime containers ("stem cells", as OpenWhisk calls its prewarmed containers).

A container of each runtime is started ahead of any call, its bootstrap loaded and waiting on
its socket with no function in it. The first call of a function that has no warm environment
takes one, which saves the engine's create+start (about 200 ms here) and the interpreter's
start. The pool of each runtime sizes itself to the recent rate at which they were taken,
between a floor and a ceiling, and is refilled in the background, never on a call's path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable

from faas.environment import Environment, Status
from faas.errors import FaasError
from faas.limits import MemoryBudget

LOG = logging.getLogger(__name__)

DEMAND_WINDOW_S = 60.0


class StemCells:
    def __init__(
        self,
        start: Callable[[str], Environment],
        budget: MemoryBudget,
        memory_mb: int,
        *,
        floor: int = 1,
        ceiling: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._start = start
        self.budget = budget
        self.memory_mb = memory_mb
        self.floor = floor
        self.ceiling = ceiling
        self._clock = clock
        self._lock = threading.Lock()
        self._cells: dict[str, list[Environment]] = {}
        self._starting: dict[str, int] = {}
        self._taken: dict[str, deque[float]] = {}
        self._runtimes: set[str] = set()
        self._closed = False
        self.taken_total = 0
        self.missed_total = 0

    def take(self, runtime: str) -> Environment | None:
        """A pre-started container of this runtime whose bootstrap is up, or None (then: cold start)."""
        with self._lock:
            self._taken.setdefault(runtime, deque()).append(self._clock())
            cells = self._cells.get(runtime, [])
            for i, env in enumerate(cells):
                if env.connected.is_set() and env.status is Status.STARTING:
                    del cells[i]
                    self.taken_total += 1
                    break
            else:
                env = None
                self.missed_total += 1
            runtimes = set(self._runtimes)
        self.reconcile(runtimes)  # refill now, in the background, not at the next tick
        return env

    def target(self, runtime: str) -> int:
        """How many to keep ready: the takes of the last minute, between the floor and the ceiling."""
        now = self._clock()
        taken = self._taken.get(runtime, deque())
        while taken and now - taken[0] > DEMAND_WINDOW_S:
            taken.popleft()
        return max(self.floor, min(self.ceiling, len(taken)))

    def reconcile(self, runtimes: Iterable[str]) -> None:
        """Start what is missing, in the background; called from the platform's tick and after a take."""
        to_start: list[str] = []
        with self._lock:
            if self._closed:
                return
            self._runtimes = set(runtimes)
            for runtime in self._runtimes:
                have = len(self._cells.get(runtime, ())) + self._starting.get(runtime, 0)
                for _ in range(self.target(runtime) - have):
                    self._starting[runtime] = self._starting.get(runtime, 0) + 1
                    to_start.append(runtime)
            surplus = [
                env
                for runtime, cells in self._cells.items()
                if runtime not in self._runtimes
                for env in cells
            ]
            for runtime in list(self._cells):
                if runtime not in self._runtimes:
                    del self._cells[runtime]
        for env in surplus:
            env.destroy()
        for runtime in to_start:
            threading.Thread(target=self._start_one, args=(runtime,), name=f"prestart-{runtime}", daemon=True).start()

    def _start_one(self, runtime: str) -> None:
        env: Environment | None = None
        try:
            if not self.budget.try_reserve(self.memory_mb):
                return  # the budget belongs to calls first
            try:
                env = self._start(runtime)
            except FaasError as e:
                self.budget.release(self.memory_mb)
                LOG.warning("could not pre-start a %s container: %s", runtime, e)
                return
            env.reserved_mb = self.memory_mb
        finally:
            with self._lock:
                self._starting[runtime] -= 1
                closed = self._closed
                if env is not None and not closed:
                    self._cells.setdefault(runtime, []).append(env)
        if env is not None and closed:
            env.destroy()

    def evict_one(self) -> bool:
        """Give back the memory of one pre-started container (the budget is wanted by a call)."""
        with self._lock:
            for cells in self._cells.values():
                if cells:
                    env = cells.pop(0)
                    break
            else:
                return False
        env.destroy()
        return True

    def forget(self, env: Environment) -> None:
        with self._lock:
            cells = self._cells.get(env.runtime)
            if cells and env in cells:
                cells.remove(env)

    def environments(self) -> list[Environment]:
        with self._lock:
            return [env for cells in self._cells.values() for env in cells]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            cells = [env for cells in self._cells.values() for env in cells]
            self._cells.clear()
        for env in cells:
            env.destroy()
