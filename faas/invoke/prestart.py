"""Pre-started runtime containers (OpenWhisk's prewarmed "stem cell" containers).

A container of each runtime is started ahead of any call, its bootstrap loaded and waiting on
its socket with no function in it. The first call of a function that has no warm environment
takes one, which saves the engine's create+start (about 200 ms here) and the interpreter's
start. The pool of each runtime sizes itself to the recent rate at which they were taken,
between a floor and a ceiling, and is refilled in the background, never on a call's path.

A take that finds none ready but one on its way (its container started and its bootstrap
not yet connected, or its start under way) waits for that one rather than starting a
container of its own: the one on its way is further along, and on a busy machine a second
start only slows both. A redeploy's switch that passed over three pre-started containers
whose bootstraps had not connected yet cold-started its own in 720 ms; they were all ready
well within that time.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from faas.errors import FaasError
from faas.invoke.environment import Environment, Status
from faas.invoke.limits import MemoryBudget
from faas.invoke.pool import Spawn, spawn_thread

LOG = logging.getLogger(__name__)

DEMAND_WINDOW_S = 60.0
WAIT_S = 3.0  # longest a take waits for a pre-started container on its way, then it starts its own


class PrestartedContainers:
    def __init__(
        self,
        start: Callable[[str], Environment],
        budget: MemoryBudget,
        memory_mb: int,
        *,
        floor: int = 1,
        ceiling: int = 4,
        clock: Callable[[], float] = time.monotonic,
        spawn: Spawn = spawn_thread,
    ) -> None:
        self._start = start
        self.budget = budget
        self.memory_mb = memory_mb
        self.floor = floor
        self.ceiling = ceiling
        self._clock = clock
        self._spawn = spawn
        self._lock = threading.Lock()
        self._landed = threading.Condition(self._lock)  # a start ended: a container arrived, or it failed
        self._containers: dict[str, list[Environment]] = {}
        self._starting: dict[str, int] = {}
        self._awaiting: dict[str, int] = {}  # takes waiting for a start under way, per runtime
        self._taken: dict[str, deque[float]] = {}
        self._runtimes: set[str] = set()
        self._closed = False
        self.taken_total = 0
        self.missed_total = 0

    def take(self, runtime: str, wait_s: float = WAIT_S) -> Environment | None:
        """A pre-started container of this runtime whose bootstrap is up, or None (then: cold start).

        Waits up to wait_s for one on its way (see the module's docstring), but only when one
        was on its way before this take came: with none, it answers None at once rather than
        wait for the refill it sets off.
        """
        deadline = time.monotonic() + wait_s
        with self._lock:
            self._taken.setdefault(runtime, deque()).append(self._clock())
            env = self._claim(runtime)
            on_its_way = env is None and self._awaiting.get(runtime, 0) < self._starting.get(runtime, 0)
            runtimes = set(self._runtimes)
        self.reconcile(runtimes)  # refill now, in the background, not at the next tick
        if on_its_way:
            with self._lock:
                env = self._await_start(runtime, deadline)
            self.reconcile(runtimes)
        if env is not None and not env.connected.is_set():
            env = self._await_bootstrap(env, deadline)
        with self._lock:
            if env is None:
                self.missed_total += 1
            else:
                self.taken_total += 1
        return env

    def _claim(self, runtime: str) -> Environment | None:
        """Remove and return the container nearest to ready: one whose bootstrap is up, else one whose
        container runs. Lock held."""
        cells = self._containers.get(runtime, [])
        usable = [env for env in cells if env.status is Status.STARTING]
        ready = [env for env in usable if env.connected.is_set()]
        if not (ready or usable):
            return None
        env = (ready or usable)[0]
        cells.remove(env)
        return env

    def _await_start(self, runtime: str, deadline: float) -> Environment | None:
        """Wait (lock held, released while waiting) for a start under way to land a container."""
        self._awaiting[runtime] = self._awaiting.get(runtime, 0) + 1
        try:
            while not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not (self._starting.get(runtime, 0) or self._containers.get(runtime)):
                    return None
                self._landed.wait(remaining)
                env = self._claim(runtime)
                if env is not None:
                    return env
            return None
        finally:
            self._awaiting[runtime] -= 1

    def _await_bootstrap(self, env: Environment, deadline: float) -> Environment | None:
        """Wait for a claimed container's bootstrap to connect; if it does not in time, put it back."""
        while env.status is Status.STARTING and not env.connected.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            env.connected.wait(min(0.05, remaining))  # in slices: a container that dies ends the wait
        if env.connected.is_set() and env.status is Status.STARTING:
            return env
        with self._lock:
            keep = not self._closed and env.status is Status.STARTING
            if keep:  # slow, not broken: still the next take's best chance
                self._containers.setdefault(env.runtime, []).insert(0, env)
        if not keep:
            env.destroy()
        return None

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
                have = len(self._containers.get(runtime, ())) + self._starting.get(runtime, 0)
                for _ in range(self.target(runtime) - have):
                    self._starting[runtime] = self._starting.get(runtime, 0) + 1
                    to_start.append(runtime)
            surplus = [env for runtime, cells in self._containers.items() if runtime not in self._runtimes for env in cells]
            for runtime in list(self._containers):
                if runtime not in self._runtimes:
                    del self._containers[runtime]
        for env in surplus:
            env.destroy()
        for runtime in to_start:
            self._spawn(functools.partial(self._start_one, runtime), f"prestarted-{runtime}")

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
                    self._containers.setdefault(runtime, []).append(env)
                self._landed.notify_all()
        if env is not None and closed:
            env.destroy()

    def evict_one(self) -> bool:
        """Give back the memory of one pre-started container (the budget is wanted by a call)."""
        with self._lock:
            for cells in self._containers.values():
                if cells:
                    env = cells.pop(0)
                    break
            else:
                return False
        env.destroy()
        return True

    def forget(self, env: Environment) -> None:
        with self._lock:
            cells = self._containers.get(env.runtime)
            if cells and env in cells:
                cells.remove(env)

    def environments(self) -> list[Environment]:
        with self._lock:
            return [env for cells in self._containers.values() for env in cells]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._landed.notify_all()
            cells = [env for cells in self._containers.values() for env in cells]
            self._containers.clear()
        for env in cells:
            env.destroy()
