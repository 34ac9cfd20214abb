"""The pool under a queue whose wait runs out: it ramps up one environment at a time instead of
starting one per waiting call (found by bench/soak.py: after a redeploy under load, dozens of
starts at once filled the memory budget and calls got 429)."""

from __future__ import annotations

import threading
import time

from faas.invoke.limits import MemoryBudget
from faas.invoke.pool import Pool
from faas.models import FunctionVersion
from tests.unit.test_pool import Clock, FakeEnv, version


def test_waiters_whose_slice_runs_out_together_do_not_each_start_one() -> None:
    launched: list[FakeEnv] = []
    holder: list[Pool] = []

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        time.sleep(0.5)  # starts are slow (a loaded machine): longer than the pool's first guess, 250 ms
        env = FakeEnv(fv, Clock())
        env.on_dead = holder[0].forget
        launched.append(env)
        return env

    pool = Pool(launch, keep_alive_s=600, budget=MemoryBudget(1 << 20))  # type: ignore[arg-type]
    holder.append(pool)
    fv = version()
    for _ in range(5):  # one environment, and calls of about 1 ms
        with pool.acquire(fv):
            time.sleep(0.001)
    assert len(launched) == 1
    held = threading.Event()
    release = threading.Event()

    def slow_call() -> None:  # an unusually slow call holds the only environment for 1 s
        with pool.acquire(fv):
            held.set()
            release.wait(5)

    done: list[float] = []

    def call() -> None:
        with pool.acquire(fv):
            time.sleep(0.001)
        done.append(time.monotonic())

    slow = threading.Thread(target=slow_call)
    slow.start()
    assert held.wait(5)
    threads = [threading.Thread(target=call) for _ in range(8)]
    t0 = time.monotonic()
    [t.start() for t in threads]
    time.sleep(1.0)
    release.set()
    [t.join(10) for t in threads]
    slow.join(5)
    assert len(done) == 8 and max(done) - t0 < 2.0
    # One background start when the calls began to queue, at most one more when their wait ran
    # out, never one per call (that was 9).
    assert len(launched) - 1 <= 3, f"{len(launched) - 1} environments started for 8 calls of 1 ms"


def test_a_new_version_adopted_from_a_deploy_knows_the_functions_call_time() -> None:
    """After a redeploy the new version has one environment, warmed by the deploy; a burst on it
    queues for that one (calls of 1 ms) instead of each call starting its own."""
    launched: list[FakeEnv] = []
    holder: list[Pool] = []

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        time.sleep(0.3)
        env = FakeEnv(fv, Clock())
        env.on_dead = holder[0].forget
        launched.append(env)
        return env

    pool = Pool(launch, keep_alive_s=600, budget=MemoryBudget(1 << 20))  # type: ignore[arg-type]
    holder.append(pool)
    v1, v2 = version(n=1), version(n=2)
    for _ in range(5):
        with pool.acquire(v1):
            time.sleep(0.001)
    pool.add_idle(v2, pool.warm(v2))  # what the deploy does, then the switch
    pool.retire(v1.key)
    before = len(launched)
    barrier = threading.Barrier(8)
    done: list[float] = []

    def call() -> None:
        barrier.wait()
        with pool.acquire(v2):
            time.sleep(0.001)
        done.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(8)]
    [t.start() for t in threads]
    [t.join(10) for t in threads]
    assert len(done) == 8
    assert len(launched) - before <= 1, f"{len(launched) - before} environments started for 8 calls of 1 ms"


def test_starts_under_way_at_once_are_capped_while_calls_are_served() -> None:
    """Pre-started containers teach the pool that a start takes ~10 ms; once they run out a start
    takes far longer, and a queue of fast calls must not start one container per call at once."""
    from faas.invoke.pool import PARALLEL_STARTS

    holder: list[Pool] = []
    delay = [0.01]
    in_flight = [0, 0]  # now, most
    lock = threading.Lock()

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(delay[0])
        with lock:
            in_flight[0] -= 1
        env = FakeEnv(fv, Clock())
        env.on_dead = holder[0].forget
        return env

    pool = Pool(launch, keep_alive_s=600, budget=MemoryBudget(1 << 20))  # type: ignore[arg-type]
    holder.append(pool)
    fv = version()
    barrier = threading.Barrier(3)

    def first(hold: float) -> None:
        barrier.wait()
        with pool.acquire(fv):
            time.sleep(hold)

    warm = [threading.Thread(target=first, args=(0.05,)) for _ in range(3)]  # learn: starts of 10 ms, calls of 50 ms
    [t.start() for t in warm]
    [t.join(5) for t in warm]
    in_flight[1] = 0
    delay[0] = 0.5  # from now on a start takes 0.5 s
    done: list[int] = []

    def call() -> None:
        with pool.acquire(fv):
            time.sleep(0.05)
        done.append(1)

    threads = [threading.Thread(target=call) for _ in range(30)]
    for t in threads:
        t.start()
        time.sleep(0.005)
    [t.join(20) for t in threads]
    assert len(done) == 30
    assert in_flight[1] <= PARALLEL_STARTS, f"{in_flight[1]} starts at once"
