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

import logging
import math
import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from faas.invoke.environment import Environment, Outcome
from faas.errors import ShuttingDown
from faas.invoke.keepalive import IdleTimes
from faas.invoke.limits import MemoryBudget
from faas.models import FunctionVersion

if TYPE_CHECKING:
    from faas.invoke.prestart import StemCells

LOG = logging.getLogger(__name__)

EWMA = 0.2  # weight of a new sample in the running averages
PARALLEL_STARTS = max(2, os.cpu_count() or 2)  # starts of one version under way at once while others serve it


class InitFailed(Exception):
    """A new environment failed to initialise; the outcome is what the caller is told."""

    def __init__(self, outcome: Outcome, init_duration_ms: float | None = None) -> None:
        super().__init__(outcome.error_type)
        self.outcome = outcome
        self.init_duration_ms = init_duration_ms


@dataclass(frozen=True)
class Lease:
    env: Environment
    start: str  # "cold" | "prestarted" | "warm"
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
        launch: Callable[[FunctionVersion, str], Environment],
        keep_alive_s: float,
        *,
        budget: MemoryBudget | None = None,
        budget_wait_s: float = 5.0,
        stems: "StemCells | None" = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._launch = launch
        self.keep_alive_s = keep_alive_s
        self.idle_times = IdleTimes(keep_alive_s)  # each function's keep-alive, learnt from its calls
        self.budget = budget or MemoryBudget(1 << 30)
        self.budget_wait_s = budget_wait_s
        self.stems = stems
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: dict[str, _Version] = {}
        self._retired: set[str] = set()
        self._closed = False
        self._drained = threading.Condition(self._lock)
        self.avg_start_ms = 250.0  # how long a new environment takes to be ready, learnt as they start
        self._avg_run_by_function: dict[str, float] = {}
        self.started = {"cold": 0, "prestarted": 0}

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
        mb = fv.spec.memory
        self.budget.reserve(mb, self.budget_wait_s, lambda missing: self._evict(missing, fv.key))
        try:
            env = self._launch(fv, "on-demand", debug_port=debug_port)  # type: ignore[call-arg]
        except BaseException:
            self.budget.release(mb)
            raise
        env.reserved_mb = mb
        env.fresh = False
        try:
            yield Lease(env, "cold", env.init_duration_ms, env.init_logs)
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
        threading.Thread(target=self._start_in_background, args=(fv, st), name=f"scale-{fv.key}", daemon=True).start()

    def _start_in_background(self, fv: FunctionVersion, st: _Version) -> None:
        mb = fv.spec.memory
        env: Environment | None = None
        if self.budget.try_reserve(mb):  # never evicts nor waits: the budget belongs to calls first
            try:
                env = self._launch(fv, "on-demand")
            except Exception as e:  # the calls waiting will start their own and report the error
                LOG.info("function %s: background start failed: %s", fv.key, e)
                self.budget.release(mb)
            else:
                if env.reserved_mb:
                    self.budget.release(env.reserved_mb)
                env.reserved_mb = mb
                self.started[env.start_type] = self.started.get(env.start_type, 0) + 1
        with self._lock:
            st.starting -= 1
            if env is None:
                self._wake_one_to_start(st)
            elif self._closed or fv.key in self._retired:
                env.fresh = False
            else:
                self._hand_out(fv.key, st, env)
                return
        if env is not None:
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
            env = self._new_environment(fv, "on-demand")
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

    def _new_environment(self, fv: FunctionVersion, init_type: str) -> Environment:
        """Reserve the memory, then launch; the reservation follows the environment to its end."""
        mb = fv.spec.memory
        self.budget.reserve(mb, self.budget_wait_s, lambda missing: self._evict(missing, fv.key))
        try:
            env = self._launch(fv, init_type)
        except BaseException:
            self.budget.release(mb)
            raise
        if env.reserved_mb:  # a pre-started container held its own (smaller) reservation
            self.budget.release(env.reserved_mb)
        env.reserved_mb = mb
        self.started[env.start_type] = self.started.get(env.start_type, 0) + 1
        return env

    def _lease(self, env: Environment) -> Lease:
        if env.fresh:
            env.fresh = False
            return Lease(env, env.start_type, env.init_duration_ms, env.init_logs)
        return Lease(env, "warm", None, "")

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

    @staticmethod
    def _destroy_later(envs: list[Environment]) -> None:
        """Remove containers off the caller's path (an engine call takes up to a second under load)."""
        if envs:
            threading.Thread(target=lambda: [e.destroy() for e in envs], name="pool-remove", daemon=True).start()

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
        while freed < missing_mb and self.stems is not None and self.stems.evict_one():
            freed += self.stems.memory_mb
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
            LOG.info("environment %s of %s: evicted to make room in the memory budget", env.id, env.version.key if env.version else "-")
            env.destroy()
        return freed > 0

    def forget(self, env: Environment) -> None:
        """An environment ended (for whatever reason): drop it everywhere and give its memory back."""
        with self._lock:
            for st in self._versions.values():
                if env in st.idle:
                    st.idle.remove(env)
            mb, env.reserved_mb = env.reserved_mb, 0
        if self.stems is not None:
            self.stems.forget(env)
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

    def warm(self, fv: FunctionVersion, init_type: str = "on-demand") -> Environment:
        """Start and initialise an environment for fv without giving it to anyone (InitFailed if it cannot)."""
        return self._new_environment(fv, init_type)

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
        provision: list[FunctionVersion] = []
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
                    st = self._versions.get(fv.key)
                    have = (len(st.idle) + len(st.busy) + st.starting) if st else 0
                    for _ in range(fv.spec.min_warm - have):
                        self._versions.setdefault(fv.key, _Version()).starting += 1
                        provision.append(fv)
        for env in reaped:
            LOG.info("environment %s of %s: idle past keep-alive, stopping", env.id, env.version.key if env.version else "-")
            env.destroy()
        for fv in provision:
            threading.Thread(target=self._provision_one, args=(fv,), name=f"provision-{fv.key}", daemon=True).start()
        return len(reaped)

    def _provision_one(self, fv: FunctionVersion) -> None:
        st = self._versions.get(fv.key)
        try:
            env = self._new_environment(fv, "provisioned-concurrency")
        except Exception as e:  # an init failure is shown by calls; the tick will try again
            LOG.warning("function %s: provisioned environment failed to start: %s", fv.key, e)
            with self._lock:
                if st is not None:
                    st.starting -= 1
            return
        env.fresh = False  # provisioned: initialised ahead of any call, so no call reports its init
        with self._lock:
            st = self._versions.setdefault(fv.key, st or _Version())
            st.starting -= 1
            if self._closed or fv.key in self._retired:
                keep = False
            else:
                keep = True
                self._hand_out(fv.key, st, env)
        if not keep:
            env.destroy()

    # ---- views and shutdown ----------------------------------------------------------------

    def counts(self, key: str) -> tuple[int, int]:
        """(idle, busy) environments of one version."""
        with self._lock:
            st = self._versions.get(key)
            return (len(st.idle), len(st.busy)) if st else (0, 0)

    def environments(self) -> list[Environment]:
        with self._lock:
            envs = [e for st in self._versions.values() for e in (*st.idle, *st.busy)]
        return envs + (self.stems.environments() if self.stems is not None else [])

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
        if self.stems is not None:
            self.stems.shutdown()
        for env in idle:
            env.destroy()
        with self._lock:
            while any(st.busy for st in self._versions.values()) and self._clock() < deadline:
                self._drained.wait(timeout=min(0.5, max(0.01, deadline - self._clock())))
            busy = [e for st in self._versions.values() for e in st.busy]
        for env in busy:
            env.destroy()
