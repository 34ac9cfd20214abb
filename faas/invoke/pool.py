"""The warm pool: environments per function version, handed to calls one at a time.

The rules, each from a system that does this well:
- Reuse the most recently used idle environment of the same version (warm caches, and the
  others age out and are reaped).
- No stampede (Fn's hot containers): when no environment is idle, a call queues for one. It
  starts a new one only when nothing already starting will reach it and the busy ones are not
  expected to free up sooner than a start would take; an environment that becomes free goes
  to the first call in the queue.
- Memory budget (OpenWhisk's ContainerPool): every environment holds its memory from start
  to removal; a start that does not fit evicts least-recently-used idle environments of other
  versions (pre-started containers first), else waits in turn, else 429.
- Provisioned concurrency: versions with `min_warm` keep that many environments.
acquire() is a context manager, so an environment always comes back (or is destroyed) however
the call ends. Maintenance is one tick() (reap, provision), as gunicorn's arbiter manages its
workers.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from faas.errors import ShuttingDown
from faas.invoke.environment import Environment, Outcome
from faas.invoke.keepalive import IdleTimes
from faas.invoke.limits import MemoryBudget
from faas.models import FunctionVersion, InitType, StartType

if TYPE_CHECKING:
    from faas.invoke.prestart import PrestartedContainers

LOG = logging.getLogger(__name__)

EWMA = 0.2  # weight of a new sample in the running averages
PARALLEL_STARTS = max(2, os.cpu_count() or 2)  # starts of one version under way at once while others serve it


Spawn = Callable[[Callable[[], None], str], None]
"""Runs work off the caller's path: spawn(work, name). It may be called with the pool's lock
held, so it must not run the work before it returns (tests queue it and run it when they say)."""


def spawn_thread(work: Callable[[], None], name: str) -> None:
    """The spawner outside tests: a daemon thread."""
    threading.Thread(target=work, name=name, daemon=True).start()


class Launch(Protocol):
    """Launcher.launch: an initialised environment for a version (InitFailed if it cannot be)."""

    def __call__(self, fv: FunctionVersion, init_type: str = ..., debug_port: int | None = ...) -> Environment: ...


class InitFailed(Exception):
    """A new environment failed to initialise; the outcome is what the caller is told."""

    def __init__(self, outcome: Outcome, init_duration_ms: float | None = None) -> None:
        super().__init__(outcome.error_type)
        self.outcome = outcome
        self.init_duration_ms = init_duration_ms


@dataclass(frozen=True)
class Lease:
    env: Environment
    start: StartType
    init_duration_ms: float | None
    init_logs: str


class _Waiter:
    __slots__ = ("event", "env", "start_own")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.env: Environment | None = None
        self.start_own = False  # told to start its own environment (the one it waited for failed)


@dataclass
class _Version:
    """The pool's state for one function version."""

    idle: list[Environment] = field(default_factory=list)
    busy: set[Environment] = field(default_factory=set)
    starting: int = 0
    waiters: deque[_Waiter] = field(default_factory=deque)
    avg_run_ms: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.idle or self.busy or self.starting or self.waiters)


class Pool:
    def __init__(
        self,
        launch: Launch,
        keep_alive_s: float,
        *,
        budget: MemoryBudget | None = None,
        budget_wait_s: float = 5.0,
        prestarted: PrestartedContainers | None = None,
        clock: Callable[[], float] = time.monotonic,
        spawn: Spawn = spawn_thread,
    ) -> None:
        self._launch = launch
        self.keep_alive_s = keep_alive_s
        self.idle_times = IdleTimes(keep_alive_s)  # each function's keep-alive, learnt from its calls
        self.budget = budget or MemoryBudget(1 << 30)
        self.budget_wait_s = budget_wait_s
        self.prestarted = prestarted
        self._clock = clock
        self._spawn = spawn
        self._lock = threading.Lock()
        self._versions: dict[str, _Version] = {}
        self._retired: set[str] = set()
        self._closed = False
        self._drained = threading.Condition(self._lock)
        self.avg_start_ms = 250.0  # how long a new environment takes to be ready, learnt as they start
        self._avg_run_by_function: dict[str, float] = {}
        self.started: dict[str, int] = {StartType.COLD: 0, StartType.PRESTARTED: 0}

    # ---- the call path -------------------------------------------------------------------

    @contextmanager
    def acquire(self, fv: FunctionVersion) -> Iterator[Lease]:
        lease = self._take(fv)
        began = self._clock()
        try:
            yield lease
        finally:
            self._give_back(fv, lease.env, (self._clock() - began) * 1000)

    def _take(self, fv: FunctionVersion) -> Lease:
        key = fv.key
        with self._lock:
            if self._closed:
                raise ShuttingDown("faas is shutting down and takes no new calls")
            self.idle_times.called(fv.name, self._clock())
            self._retired.discard(key)
            st = self._versions.get(key)
            if st is None:  # a new version: calls probably take what the function's calls took so far
                st = self._versions[key] = _Version(avg_run_ms=self._avg_run_by_function.get(fv.name))
            while st.idle:
                env = st.idle.pop()
                if env.healthy:
                    st.busy.add(env)
                    return self._lease(env)
            waiter = _Waiter()
            st.waiters.append(waiter)
            start = self._should_start(st)
            if start:
                st.starting += 1
            else:
                self._scale_out(fv, st)
        while True:
            if start:
                self._start_for(fv, st, waiter)
                start = False
            waited = waiter.event.wait(self._wait_slice(st))
            with self._lock:
                if waiter.env is not None:
                    return self._lease(waiter.env)
                if self._closed:
                    self._drop_waiter(st, waiter)
                    raise ShuttingDown("faas is shutting down and takes no new calls")
                if waiter.start_own or (not waited and not st.starting):
                    # What it waited for failed, or is taking longer than a start would: start one,
                    # unless one is under way already. Waiters whose slice runs out together would
                    # otherwise each start one (dozens of containers at once after a redeploy under
                    # load, filling the memory budget: 429s); this way they ramp up one at a time.
                    waiter.start_own = False
                    waiter.event.clear()
                    st.starting += 1
                    start = True

    @contextmanager
    def one_off(self, fv: FunctionVersion, debug_port: int) -> Iterator[Lease]:
        """An environment of its own for one call under a debugger, removed after it."""
        env = self._start(fv, InitType.ON_DEMAND, fresh=False, debug_port=debug_port)
        assert env is not None  # a start that waits for the budget gets it or raises
        if not env.healthy:  # its session was ended while it waited for the IDE (client gone, drain)
            env.destroy()
            raise ShuttingDown("the debug session ended before the call ran")
        try:
            yield Lease(env, StartType.COLD, env.init_duration_ms, env.init_logs)
        finally:
            env.destroy()

    def _scale_out(self, fv: FunctionVersion, st: _Version) -> None:
        """Calls are queueing: start one more environment in the background. Lock held.

        Waiting is right for one call (Fn's rule), but load that keeps queueing deserves more
        environments: one start at a time, off every call's path, so a sustained burst ramps up
        by one environment per start time while a short one costs at most one container.
        """
        if st.starting or self._closed:
            return
        st.starting += 1
        self._spawn(lambda: self._start_off_path(fv, st, InitType.ON_DEMAND), f"scale-{fv.key}")

    def _start_off_path(self, fv: FunctionVersion, st: _Version, init_type: InitType) -> None:
        """A start on a thread of its own, its environment handed to the first queued call, else idle.

        A scale-out (on-demand) only tries the budget, which belongs to calls first; when it
        fails, a queued call starts its own and reports the error. Provisioning (min_warm) waits
        for the budget like a call, its environment initialised ahead of any call (so no call
        reports its init); when it fails, the next tick tries again.
        """
        provisioned = init_type is InitType.PROVISIONED
        env: Environment | None = None
        try:
            env = self._start(fv, init_type, wait=provisioned, fresh=not provisioned)
        except Exception as e:
            if provisioned:
                LOG.warning("function %s: provisioned environment failed to start: %s", fv.key, e)
            else:
                LOG.info("function %s: background start failed: %s", fv.key, e)
        with self._lock:
            st.starting -= 1
            if env is None:
                if not provisioned:
                    self._wake_one_to_start(st)
                return
            if not (self._closed or fv.key in self._retired):
                self._hand_out(fv.key, st, env)
                return
        env.destroy()

    def _wait_slice(self, st: _Version) -> float:
        return max(0.05, self.avg_start_ms / 1000)

    def _should_start(self, st: _Version) -> bool:
        """Fn's rule: wait for an environment when that is sooner than starting another. Lock held."""
        ahead = len(st.waiters) - 1
        if st.starting > ahead:
            return False  # one already starting will reach this call
        if not st.busy or st.avg_run_ms is None:
            return True
        if st.starting >= PARALLEL_STARTS:
            # Calls are being served: more starts at once only slow each other down. (The start
            # time learnt from pre-started containers, ~30 ms, is far too short once they run
            # out: a redeploy under load started 19 cold containers at once and calls waited 10 s.)
            return False
        rounds = math.ceil((ahead - st.starting + 1) / len(st.busy))
        return rounds * st.avg_run_ms >= self.avg_start_ms

    def _start_for(self, fv: FunctionVersion, st: _Version, waiter: _Waiter) -> None:
        """Start an environment (on this call's thread) and hand it to the first call in the queue."""
        began = self._clock()
        try:
            env = self._start(fv, InitType.ON_DEMAND)
            assert env is not None  # a start that waits for the budget gets it or raises
        except BaseException:
            with self._lock:
                st.starting -= 1
                self._drop_waiter(st, waiter)
                handed, waiter.env = waiter.env, None
                if handed is not None:  # another environment reached this call meanwhile: pass it on
                    st.busy.discard(handed)
                    self._hand_out(fv.key, st, handed)
                self._wake_one_to_start(st)
            raise
        with self._lock:
            st.starting -= 1
            self.avg_start_ms += EWMA * ((self._clock() - began) * 1000 - self.avg_start_ms)
            self._hand_out(fv.key, st, env)

    def _start(
        self,
        fv: FunctionVersion,
        init_type: InitType,
        *,
        wait: bool = True,
        fresh: bool = True,
        debug_port: int | None = None,
    ) -> Environment | None:
        """The one way an environment comes into being: reserve its memory, launch it, move the
        reservation onto it (it follows the environment to its end), count the start.

        wait: wait in turn for the budget, evicting idle environments (TooManyRequests when the
        wait runs out); else only try, and answer None when it does not fit. fresh=False: no
        call reports its init (provisioned ahead of calls, or a debugger's own). debug_port: a
        debugger's one-off, always a new container, not one of the pool's starts.
        """
        mb = fv.spec.memory
        if wait:
            self.budget.reserve(mb, self.budget_wait_s, lambda missing: self._evict(missing, fv.key))
        elif not self.budget.try_reserve(mb):
            return None
        try:
            if debug_port is None:
                env = self._launch(fv, init_type)
            else:
                env = self._launch(fv, init_type, debug_port=debug_port)
        except BaseException:
            self.budget.release(mb)
            raise
        if env.reserved_mb:  # a pre-started container held its own (smaller) reservation
            self.budget.release(env.reserved_mb)
        env.reserved_mb = mb
        if not fresh:
            env.fresh = False
        if debug_port is None:
            self.started[env.start_type] = self.started.get(env.start_type, 0) + 1
        return env

    def _lease(self, env: Environment) -> Lease:
        if env.fresh:
            env.fresh = False
            return Lease(env, env.start_type, env.init_duration_ms, env.init_logs)
        return Lease(env, StartType.WARM, None, "")

    def _hand_out(self, key: str, st: _Version, env: Environment) -> None:
        """A free environment goes to the first call in the queue, else to the idle list; a retired
        version's goes away once no call of that version waits for it. Lock held."""
        while st.waiters:
            waiter = st.waiters.popleft()
            if waiter.env is None:
                st.busy.add(env)
                waiter.env = env
                waiter.event.set()
                return
        if key in self._retired or self._closed:
            self._destroy_later([env])
            return
        st.idle.append(env)
        env.last_used = self._clock()

    def _destroy_later(self, envs: list[Environment]) -> None:
        """Remove containers off the caller's path (an engine call takes up to a second under load)."""

        def destroy() -> None:
            for env in envs:
                env.destroy()

        if envs:
            self._spawn(destroy, "pool-remove")

    def _drop_waiter(self, st: _Version, waiter: _Waiter) -> None:
        try:
            st.waiters.remove(waiter)
        except ValueError:
            pass

    def _wake_one_to_start(self, st: _Version) -> None:
        """A start failed: if calls still wait and nothing else will reach them, let the first try its own."""
        if st.waiters and st.starting < len(st.waiters) and not st.busy:
            for waiter in st.waiters:
                if waiter.env is None and not waiter.start_own:
                    waiter.start_own = True
                    waiter.event.set()
                    return

    def _give_back(self, fv: FunctionVersion, env: Environment, ran_ms: float) -> None:
        with self._lock:
            st = self._versions.get(fv.key)
            keep = retired = False
            if st is not None:
                st.busy.discard(env)
                st.avg_run_ms = ran_ms if st.avg_run_ms is None else st.avg_run_ms + EWMA * (ran_ms - st.avg_run_ms)
                self._avg_run_by_function[fv.name] = st.avg_run_ms
                # A retired version's environment still serves the calls already queued for it.
                keep = env.healthy and not self._closed and (fv.key not in self._retired or bool(st.waiters))
                if keep:
                    self._hand_out(fv.key, st, env)
                else:
                    self._wake_one_to_start(st)
                    retired = env.healthy and not self._closed
                if not st.busy and not st.waiters:
                    self.idle_times.went_idle(fv.name, self._clock())
                self._prune(fv.key, st)
            self._drained.notify_all()
        if retired:
            # A call that was in flight when its version was replaced: its answer must not wait
            # for the engine to remove the container (200-300 ms under load, measured on the
            # calls in flight at each switch of bench/redeploy.py).
            self._destroy_later([env])
        elif not keep:
            env.destroy()

    def _prune(self, key: str, st: _Version) -> None:
        if st.empty:
            self._versions.pop(key, None)

    # ---- memory --------------------------------------------------------------------------

    def _evict(self, missing_mb: int, for_key: str) -> bool:
        """Free at least missing_mb: pre-started containers first, then LRU idle environments of other versions."""
        freed = 0
        while freed < missing_mb and self.prestarted is not None and self.prestarted.evict_one():
            freed += self.prestarted.memory_mb
        victims: list[Environment] = []
        with self._lock:
            candidates = sorted(
                ((env.last_used, key, env) for key, st in self._versions.items() if key != for_key for env in st.idle),
                key=lambda t: t[0],
            )
            for _, key, env in candidates:
                if freed >= missing_mb:
                    break
                self._versions[key].idle.remove(env)
                victims.append(env)
                freed += env.reserved_mb
        for env in victims:
            LOG.info(
                "environment %s of %s: evicted to make room in the memory budget", env.id, env.version.key if env.version else "-"
            )
            env.destroy()
        return freed > 0

    def forget(self, env: Environment) -> None:
        """An environment ended (for whatever reason): drop it everywhere and give its memory back."""
        with self._lock:
            for st in self._versions.values():
                if env in st.idle:
                    st.idle.remove(env)
            mb, env.reserved_mb = env.reserved_mb, 0
        if self.prestarted is not None:
            self.prestarted.forget(env)
        if mb:
            self.budget.release(mb)

    # ---- versions and maintenance --------------------------------------------------------

    def add_idle(self, fv: FunctionVersion, env: Environment) -> None:
        """Adopt an environment started ahead of traffic (a new version warmed before it goes live)."""
        with self._lock:
            if not self._closed and env.healthy:
                self._retired.discard(fv.key)
                st = self._versions.get(fv.key)
                if st is None:  # as in _take: without the function's call time, every queued call would start one
                    st = self._versions[fv.key] = _Version(avg_run_ms=self._avg_run_by_function.get(fv.name))
                self._hand_out(fv.key, st, env)
                return
        env.destroy()

    def warm(self, fv: FunctionVersion, init_type: InitType = InitType.ON_DEMAND) -> Environment:
        """Start and initialise an environment for fv without giving it to anyone (InitFailed if it cannot)."""
        env = self._start(fv, init_type)
        assert env is not None  # a start that waits for the budget gets it or raises
        return env

    def retire(self, key: str) -> None:
        """A version stopped being live: its idle environments go now, busy ones when their call ends."""
        with self._lock:
            self._retired.add(key)
            st = self._versions.get(key)
            envs = list(st.idle) if st else []
            if st:
                st.idle.clear()
                self._prune(key, st)
        self._destroy_later(envs)  # the deploy that retired them must not wait for the engine

    def retire_function(self, name: str) -> None:
        """A function was removed: every version's environments go (busy ones when their call ends)."""
        prefix = f"{name}:"
        with self._lock:
            keys = [k for k in self._versions if k.startswith(prefix)]
            self._avg_run_by_function.pop(name, None)
        self.idle_times.forget(name)
        for key in keys:
            self.retire(key)

    def tick(self, live: Iterable[FunctionVersion] = ()) -> int:
        """Reap environments idle past the keep-alive (never below min_warm); provision min_warm. Returns reaped."""
        now = self._clock()
        floor = {fv.key: fv.spec.min_warm for fv in live}
        reaped: list[Environment] = []
        provision: list[tuple[FunctionVersion, _Version]] = []
        with self._lock:
            if self._closed:
                return 0
            for key, st in list(self._versions.items()):
                reaped.extend(e for e in st.idle if not e.healthy)
                st.idle[:] = [e for e in st.idle if e.healthy]
                keep = max(0, floor.get(key, 0) - len(st.busy) - st.starting)
                by_age = sorted(st.idle, key=lambda e: e.last_used, reverse=True)
                keep_alive = self.idle_times.keep_alive_s(key.rpartition(":")[0])
                for i, env in enumerate(by_age):
                    if i >= keep and now - env.last_used >= keep_alive:
                        st.idle.remove(env)
                        reaped.append(env)
                self._prune(key, st)
            for fv in live:
                if fv.spec.min_warm:
                    known = self._versions.get(fv.key)
                    have = (len(known.idle) + len(known.busy) + known.starting) if known else 0
                    for _ in range(fv.spec.min_warm - have):
                        target = self._versions.setdefault(fv.key, _Version())
                        target.starting += 1
                        provision.append((fv, target))
        for env in reaped:
            LOG.info("environment %s of %s: idle past keep-alive, stopping", env.id, env.version.key if env.version else "-")
            env.destroy()
        for fv, target in provision:
            self._spawn(functools.partial(self._start_off_path, fv, target, InitType.PROVISIONED), f"provision-{fv.key}")
        return len(reaped)

    # ---- views and shutdown ----------------------------------------------------------------

    def counts(self, key: str) -> tuple[int, int]:
        """(idle, busy) environments of one version."""
        with self._lock:
            st = self._versions.get(key)
            return (len(st.idle), len(st.busy)) if st else (0, 0)

    def environments(self) -> list[Environment]:
        with self._lock:
            envs = [e for st in self._versions.values() for e in (*st.idle, *st.busy)]
        return envs + (self.prestarted.environments() if self.prestarted is not None else [])

    def shutdown(self, wait_s: float) -> None:
        """Take no new calls, let calls in flight finish for up to wait_s, then destroy everything."""
        deadline = self._clock() + wait_s
        with self._lock:
            self._closed = True
            idle = [e for st in self._versions.values() for e in st.idle]
            for st in self._versions.values():
                st.idle.clear()
                for waiter in st.waiters:
                    waiter.event.set()
        if self.prestarted is not None:
            self.prestarted.shutdown()
        for env in idle:
            env.destroy()
        with self._lock:
            while any(st.busy for st in self._versions.values()) and self._clock() < deadline:
                self._drained.wait(timeout=min(0.5, max(0.01, deadline - self._clock())))
            busy = [e for st in self._versions.values() for e in st.busy]
        for env in busy:
            env.destroy()
