"""The warm pool: idle environments per function version, reused most-recently-used first.

acquire() is a context manager, so an environment always comes back (or is destroyed) however
the call ends. Maintenance is one tick() that reaps idle environments past the keep-alive,
called by the platform's reconciliation thread, as gunicorn's arbiter manages its workers.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from faas.environment import Environment, Outcome
from faas.errors import ShuttingDown
from faas.models import FunctionVersion

LOG = logging.getLogger(__name__)


class InitFailed(Exception):
    """A new environment failed to initialise; the outcome is what the caller is told."""

    def __init__(self, outcome: Outcome, init_duration_ms: float | None = None) -> None:
        super().__init__(outcome.error_type)
        self.outcome = outcome
        self.init_duration_ms = init_duration_ms


@dataclass(frozen=True)
class Lease:
    env: Environment
    start: str  # "cold" | "warm"
    init_duration_ms: float | None
    init_logs: str


class Pool:
    def __init__(
        self,
        launch: Callable[[FunctionVersion], Environment],
        keep_alive_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._launch = launch
        self.keep_alive_s = keep_alive_s
        self._clock = clock
        self._lock = threading.Lock()
        self._idle: dict[str, list[Environment]] = {}
        self._busy: dict[str, set[Environment]] = {}
        self._retired: set[str] = set()
        self._closed = False
        self._drained = threading.Condition(self._lock)

    @contextmanager
    def acquire(self, fv: FunctionVersion) -> Iterator[Lease]:
        lease = self._take(fv)
        try:
            yield lease
        finally:
            self._give_back(fv, lease.env)

    def _take(self, fv: FunctionVersion) -> Lease:
        with self._lock:
            if self._closed:
                raise ShuttingDown("faas is shutting down and takes no new calls")
            self._retired.discard(fv.key)
            idle = self._idle.get(fv.key)
            while idle:
                env = idle.pop()
                if env.healthy:
                    self._busy.setdefault(fv.key, set()).add(env)
                    return Lease(env, "warm", None, "")
        env = self._launch(fv)  # raises InitFailed / EngineError; nothing to give back then
        with self._lock:
            self._busy.setdefault(fv.key, set()).add(env)
            closed = self._closed
        if closed:
            self._give_back(fv, env)
            raise ShuttingDown("faas is shutting down and takes no new calls")
        return Lease(env, "cold", env.init_duration_ms, env.init_logs)

    def _give_back(self, fv: FunctionVersion, env: Environment) -> None:
        with self._lock:
            busy = self._busy.get(fv.key)
            if busy is not None:
                busy.discard(env)
                if not busy:
                    del self._busy[fv.key]
            keep = env.healthy and not self._closed and fv.key not in self._retired
            if keep:
                self._idle.setdefault(fv.key, []).append(env)
            self._drained.notify_all()
        if not keep:
            env.destroy()

    def add_idle(self, fv: FunctionVersion, env: Environment) -> None:
        """Adopt an environment started ahead of traffic (a new version warmed before it goes live)."""
        with self._lock:
            if not self._closed and env.healthy:
                self._retired.discard(fv.key)
                self._idle.setdefault(fv.key, []).append(env)
                return
        env.destroy()

    def forget(self, env: Environment) -> None:
        """An environment died on its own (killed from outside, OOM while idle): drop it from the idle lists."""
        with self._lock:
            for envs in self._idle.values():
                if env in envs:
                    envs.remove(env)

    def retire(self, key: str) -> None:
        """A version stopped being live: its idle environments go now, busy ones when their call ends."""
        with self._lock:
            self._retired.add(key)
            envs = self._idle.pop(key, [])
        for env in envs:
            env.destroy()

    def retire_function(self, name: str) -> None:
        """A function was removed: every version's environments go (busy ones when their call ends)."""
        prefix = f"{name}:"
        with self._lock:
            keys = {k for k in (*self._idle, *self._busy) if k.startswith(prefix)}
        for key in keys:
            self.retire(key)

    def tick(self) -> int:
        """Reap environments idle longer than the keep-alive; returns how many."""
        now = self._clock()
        reaped: list[Environment] = []
        with self._lock:
            for key, envs in list(self._idle.items()):
                keep = [e for e in envs if now - e.last_used < self.keep_alive_s and e.healthy]
                reaped.extend(e for e in envs if e not in keep)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        for env in reaped:
            LOG.info("environment %s of %s: idle past keep-alive, stopping", env.id, env.version.key if env.version else "-")
            env.destroy()
        return len(reaped)

    def counts(self, key: str) -> tuple[int, int]:
        """(idle, busy) environments of one version."""
        with self._lock:
            return len(self._idle.get(key, ())), len(self._busy.get(key, ()))

    def environments(self) -> list[Environment]:
        with self._lock:
            return [e for envs in self._idle.values() for e in envs] + [e for envs in self._busy.values() for e in envs]

    def shutdown(self, wait_s: float) -> None:
        """Take no new calls, let calls in flight finish for up to wait_s, then destroy everything."""
        deadline = self._clock() + wait_s
        with self._lock:
            self._closed = True
            idle = [e for envs in self._idle.values() for e in envs]
            self._idle.clear()
        for env in idle:
            env.destroy()
        with self._lock:
            while self._busy and self._clock() < deadline:
                self._drained.wait(timeout=min(0.5, max(0.01, deadline - self._clock())))
            busy = [e for envs in self._busy.values() for e in envs]
        for env in busy:
            env.destroy()
