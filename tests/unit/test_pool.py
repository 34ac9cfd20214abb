"""Pool and limiter logic with fake environments: reuse, keep-alive, retirement, shutdown, throttling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faas.errors import ShuttingDown, TooManyRequests
from faas.invoke.limits import Limiter, MemoryBudget
from faas.invoke.pool import Pool
from faas.models import FunctionSpec, FunctionVersion, StartType


class FakeEnv:
    _n = 0

    def __init__(self, fv: FunctionVersion, clock: Clock) -> None:
        FakeEnv._n += 1
        self.id = f"env{FakeEnv._n}"
        self.version = fv
        self.healthy = True
        self.destroyed = False
        self.last_used = clock.now
        self.init_duration_ms = 5.0
        self.init_logs = ""
        self.start_type = StartType.COLD
        self.fresh = True
        self.reserved_mb = 0
        self.on_dead = None

    def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        self.healthy = False
        if self.on_dead:
            self.on_dead(self)


def eventually(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Spawned:
    """The spawner for tests: background work (a scale-out, provisioning, a removal, a pre-start)
    waits here until the test runs it, on the test's own thread. Work whose name starts with one
    of `threaded` runs on a thread at once, as outside tests."""

    def __init__(self, threaded: tuple[str, ...] = ()) -> None:
        self.threaded = threaded
        self._lock = threading.Lock()
        self._queue: list[tuple[str, Callable[[], None]]] = []

    def __call__(self, work: Callable[[], None], name: str) -> None:
        if self.threaded and name.startswith(self.threaded):
            threading.Thread(target=work, name=name, daemon=True).start()
            return
        with self._lock:
            self._queue.append((name, work))

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self._queue]

    def run(self, prefix: str = "") -> int:
        """Run the work queued now whose name starts with prefix (not what that work queues); how many ran."""
        with self._lock:
            now = [item for item in self._queue if item[0].startswith(prefix)]
            self._queue = [item for item in self._queue if not item[0].startswith(prefix)]
        for _, work in now:
            work()
        return len(now)


def version(name: str = "f", n: int = 1, concurrency: int | None = None, memory: int = 128, min_warm: int = 0) -> FunctionVersion:
    spec = FunctionSpec(name=name, concurrency=concurrency, memory=memory, min_warm=min_warm)
    return FunctionVersion(spec, n, "sha", Path("/nowhere"), 1, 0.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def launched() -> list[FakeEnv]:
    return []


def make_pool(clock: Clock, launched: list[FakeEnv], budget_mb: int = 1 << 20, delay_s: float = 0.0, **kw) -> Pool:
    holder: list[Pool] = []

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        if delay_s:
            time.sleep(delay_s)
        env = FakeEnv(fv, clock)
        env.init_type = init_type  # type: ignore[attr-defined]
        env.on_dead = holder[0].forget
        launched.append(env)
        return env

    pool = Pool(launch, keep_alive_s=600, budget=MemoryBudget(budget_mb), clock=clock, **kw)  # type: ignore[arg-type]
    holder.append(pool)
    return pool


@pytest.fixture
def pool(clock: Clock, launched: list[FakeEnv]) -> Pool:
    return make_pool(clock, launched)


def test_second_call_reuses_the_warm_environment(pool: Pool, launched: list[FakeEnv]) -> None:
    fv = version()
    with pool.acquire(fv) as first:
        assert first.start == "cold"
        assert first.init_duration_ms == 5.0
    with pool.acquire(fv) as second:
        assert second.start == "warm"
        assert second.env is first.env
    assert len(launched) == 1


def test_overlapping_calls_get_separate_environments(pool: Pool, launched: list[FakeEnv]) -> None:
    fv = version()
    with pool.acquire(fv) as a, pool.acquire(fv) as b:
        assert a.env is not b.env
    assert pool.counts(fv.key) == (2, 0)


def test_an_unhealthy_environment_is_destroyed_not_reused(pool: Pool, launched: list[FakeEnv]) -> None:
    fv = version()
    with pool.acquire(fv) as lease:
        lease.env.healthy = False  # e.g. it timed out
    assert launched[0].destroyed
    with pool.acquire(fv) as lease:
        assert lease.start == "cold"


def test_versions_never_share_environments(pool: Pool) -> None:
    v1, v2 = version(n=1), version(n=2)
    with pool.acquire(v1) as a:
        pass
    with pool.acquire(v2) as b:
        assert b.env is not a.env
        assert b.start == "cold"


def test_idle_environments_are_reaped_after_keep_alive(pool: Pool, clock: Clock, launched: list[FakeEnv]) -> None:
    fv = version()
    with pool.acquire(fv):
        pass
    clock.now += 599
    assert pool.tick() == 0
    clock.now += 2
    assert pool.tick() == 1
    assert launched[0].destroyed
    assert pool.counts(fv.key) == (0, 0)


def test_retire_drops_idle_now_and_busy_when_their_call_ends(clock: Clock, launched: list[FakeEnv]) -> None:
    spawned = Spawned(threaded=("scale-",))  # the second call's environment comes from a scale-out
    pool = make_pool(clock, launched, spawn=spawned)
    fv = version()
    with pool.acquire(fv):
        pass
    with pool.acquire(fv) as busy:
        with pool.acquire(fv) as other:
            pass
        pool.retire(fv.key)
        assert not other.env.destroyed and spawned.run("pool-remove") == 1
        assert other.env.destroyed  # removed in the background
        assert not busy.env.destroyed  # the call in flight finishes on its environment
    assert not busy.env.destroyed and spawned.run("pool-remove") == 1
    assert busy.env.destroyed  # removed in the background once its call ended


def test_a_call_in_flight_at_a_switch_answers_without_waiting_for_its_container_to_go() -> None:
    """Removing a container takes the engine 200-300 ms under load: the call that ran in it must
    not carry that before its answer goes back (it did, on every switch of bench/redeploy.py)."""
    removing = threading.Event()
    removed = threading.Event()

    class SlowToRemove(FakeEnv):
        def destroy(self) -> None:
            removing.set()
            removed.wait(5)
            super().destroy()

    pool = Pool(lambda fv, init_type: SlowToRemove(fv, Clock()), keep_alive_s=600)  # type: ignore[arg-type, return-value]
    fv = version()
    t = time.monotonic()
    try:
        with pool.acquire(fv) as busy:
            pool.retire(fv.key)  # the next version went live during the call
        assert time.monotonic() - t < 1.0 and not busy.env.destroyed
        assert removing.wait(5), "the retired environment is removed, in the background"
    finally:
        removed.set()
    assert eventually(lambda: busy.env.destroyed)


def test_shutdown_waits_for_calls_in_flight_then_refuses(pool: Pool, launched: list[FakeEnv]) -> None:
    fv = version()
    release = threading.Event()
    entered = threading.Event()

    def call() -> None:
        with pool.acquire(fv):
            entered.set()
            release.wait(5)

    t = threading.Thread(target=call)
    t.start()
    entered.wait(5)
    threading.Timer(0.2, release.set).start()
    pool.shutdown(wait_s=5)
    t.join(5)
    assert all(e.destroyed for e in launched)
    with pytest.raises(ShuttingDown):
        with pool.acquire(fv):
            pass


def test_dead_idle_environment_is_forgotten(pool: Pool, launched: list[FakeEnv]) -> None:
    fv = version()
    with pool.acquire(fv):
        pass
    launched[0].healthy = False
    pool.forget(launched[0])  # type: ignore[arg-type]
    with pool.acquire(fv) as lease:
        assert lease.start == "cold"


def test_limiter_refuses_past_concurrency_with_lambda_reason() -> None:
    limiter = Limiter()
    spec = FunctionSpec(name="f", concurrency=2)
    with limiter.lease(spec), limiter.lease(spec):
        with pytest.raises(TooManyRequests) as e:
            with limiter.lease(spec):
                pass
        assert e.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert e.value.status == 429
    with limiter.lease(spec):  # leases were returned
        assert limiter.in_flight("f") == 1
    assert limiter.in_flight("f") == 0


def test_limiter_without_cap_never_refuses() -> None:
    limiter = Limiter()
    spec = FunctionSpec(name="f")
    leases = [limiter.lease(spec) for _ in range(50)]
    for lease in leases:
        lease.__enter__()
    assert limiter.in_flight("f") == 50


def test_retire_function_drops_every_version(clock: Clock, launched: list[FakeEnv]) -> None:
    spawned = Spawned()
    pool = make_pool(clock, launched, spawn=spawned)
    v1, v2, other = version(n=1), version(n=2), version(name="g")
    for fv in (v1, v2, other):
        with pool.acquire(fv):
            pass
    pool.retire_function("f")
    spawned.run("pool-remove")  # removed in the background
    assert [e.destroyed for e in launched] == [True, True, False]


def test_memory_budget_evicts_lru_idle_environments_of_other_functions(clock: Clock, launched: list[FakeEnv]) -> None:
    pool = make_pool(clock, launched, budget_mb=512)
    a, b, c = version("a", memory=256), version("b", memory=256), version("c", memory=256)
    with pool.acquire(a):
        pass
    clock.now += 1
    with pool.acquire(b):
        pass
    assert pool.budget.used_mb == 512
    with pool.acquire(c) as lease:  # the budget is full: the least recently used idle one (a) goes
        assert lease.start == "cold"
    assert [e.version.name for e in launched if e.destroyed] == ["a"]
    assert pool.budget.used_mb == 512


def test_memory_budget_full_of_busy_environments_waits_then_429(clock: Clock, launched: list[FakeEnv]) -> None:
    pool = make_pool(clock, launched, budget_mb=256, budget_wait_s=0.3)
    a, b = version("a", memory=256), version("b", memory=128)
    with pool.acquire(a):
        t = time.monotonic()
        with pytest.raises(TooManyRequests) as e:
            with pool.acquire(b):
                pass
        assert e.value.reason == "ConcurrentInvocationLimitExceeded"
        assert 0.25 <= time.monotonic() - t < 2
    # once the busy one is idle, it can be evicted for b
    with pool.acquire(b) as lease:
        assert lease.start == "cold"


def test_memory_budget_waiter_gets_memory_freed_while_it_waits(clock: Clock, launched: list[FakeEnv]) -> None:
    pool = make_pool(clock, launched, budget_mb=256, budget_wait_s=5)
    a, b = version("a", memory=256), version("b", memory=256)
    got: list[str] = []
    with pool.acquire(a) as lease_a:

        def call_b() -> None:
            with pool.acquire(b) as lease:
                got.append(lease.start)

        t = threading.Thread(target=call_b)
        t.start()
        assert eventually(lambda: len(pool.budget._queue) == 1)  # b waits in turn for the memory
        assert not got
        lease_a.env.healthy = False  # a's call ends badly: its environment goes, and so its memory
    t.join(5)
    assert got == ["cold"]


def test_failed_start_frees_its_memory(clock: Clock, launched: list[FakeEnv]) -> None:
    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        raise RuntimeError("engine down")

    pool = Pool(launch, keep_alive_s=600, budget=MemoryBudget(1024), clock=clock)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        with pool.acquire(version(memory=512)):
            pass
    assert pool.budget.used_mb == 0


def test_simultaneous_first_calls_start_one_environment_each_at_most(clock: Clock, launched: list[FakeEnv]) -> None:
    pool = make_pool(clock, launched, delay_s=0.2)
    fv = version()
    barrier = threading.Barrier(6)
    starts: list[str] = []

    def call() -> None:
        barrier.wait()
        with pool.acquire(fv) as lease:
            starts.append(lease.start)
            time.sleep(0.05)

    threads = [threading.Thread(target=call) for _ in range(6)]
    [t.start() for t in threads]
    [t.join(10) for t in threads]
    assert len(starts) == 6
    assert len(launched) <= 6
    assert starts.count("cold") == len(launched)  # each new environment's init is reported once


def test_burst_on_a_warm_fast_function_waits_instead_of_starting_more() -> None:
    """Fn's rule: with calls of ~1 ms and starts of ~200 ms, queueing for the busy one is sooner."""
    launched: list[FakeEnv] = []
    clock = time.monotonic
    holder: list[Pool] = []

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        time.sleep(0.2)
        env = FakeEnv(fv, Clock())
        env.on_dead = holder[0].forget
        launched.append(env)
        return env

    pool = Pool(launch, keep_alive_s=600, clock=clock)  # type: ignore[arg-type]
    holder.append(pool)
    fv = version()
    for _ in range(5):  # learn that calls take ~1 ms
        with pool.acquire(fv):
            time.sleep(0.001)
    barrier = threading.Barrier(8)
    done: list[float] = []

    def call() -> None:
        barrier.wait()
        with pool.acquire(fv):
            time.sleep(0.001)
        done.append(time.monotonic())

    t0 = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(8)]
    [t.start() for t in threads]
    [t.join(10) for t in threads]
    assert len(done) == 8
    assert len(launched) <= 2, f"started {len(launched)} environments for 8 calls of 1 ms"
    assert max(done) - t0 < 0.5


def test_long_calls_scale_out_in_parallel() -> None:
    launched: list[FakeEnv] = []
    holder: list[Pool] = []

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        time.sleep(0.05)
        env = FakeEnv(fv, Clock())
        env.on_dead = holder[0].forget
        launched.append(env)
        return env

    pool = Pool(launch, keep_alive_s=600)  # type: ignore[arg-type]
    holder.append(pool)
    fv = version()
    with pool.acquire(fv):
        time.sleep(0.5)  # it learns that calls take 0.5 s, far longer than a start

    def call() -> None:
        with pool.acquire(fv):
            time.sleep(0.5)

    t0 = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(4)]
    [t.start() for t in threads]
    [t.join(10) for t in threads]
    assert time.monotonic() - t0 < 1.2  # in parallel, not 2 s in a row
    assert len(launched) == 4


def test_min_warm_is_provisioned_and_never_reaped(clock: Clock, launched: list[FakeEnv]) -> None:
    spawned = Spawned()
    pool = make_pool(clock, launched, spawn=spawned)
    fv = version(min_warm=2)
    pool.tick([fv])
    assert pool.tick([fv]) == 0 and spawned.names() == [f"provision-{fv.key}"] * 2  # none twice
    assert spawned.run() == 2
    assert pool.counts(fv.key) == (2, 0)
    assert {e.init_type for e in launched} == {"provisioned-concurrency"}  # type: ignore[attr-defined]
    clock.now += 10_000
    assert pool.tick([fv]) == 0
    assert pool.counts(fv.key) == (2, 0)
    pool.tick([])  # no longer live with min_warm: reaped like any other
    assert pool.counts(fv.key) == (0, 0)


def test_a_retired_versions_environment_serves_calls_already_queued_then_goes() -> None:
    launched: list[FakeEnv] = []
    holder: list[Pool] = []
    spawned = Spawned()  # the scale-out start the queued call sets off is still under way: starting is slow

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        env = FakeEnv(fv, Clock())
        env.on_dead = holder[0].forget
        launched.append(env)
        return env

    pool = Pool(launch, keep_alive_s=600, spawn=spawned)  # type: ignore[arg-type]
    holder.append(pool)
    fv = version()
    with pool.acquire(fv):
        pass
    got: list[str] = []
    with pool.acquire(fv):
        t = threading.Thread(target=lambda: got.append(pool.acquire(fv).__enter__().start))
        t.start()
        assert eventually(lambda: len(pool._versions[fv.key].waiters) == 1)  # queued for the busy environment
        pool.retire(fv.key)  # a new version went live meanwhile
    t.join(5)
    assert got == ["warm"]  # the queued call got the returned environment, no cold start
    spawned.run()  # the scale-out start lands after the switch: removed, not kept
    assert len(launched) <= 2


def test_a_new_version_starts_from_what_the_functions_calls_took() -> None:
    pool = Pool(lambda fv, init_type: FakeEnv(fv, Clock()), keep_alive_s=600)  # type: ignore[arg-type, return-value]
    v1, v2 = version(n=1), version(n=2)
    with pool.acquire(v1):
        pass
    with pool.acquire(v2):
        pass
    assert pool._versions[v2.key].avg_run_ms is not None


def test_a_prestarted_containers_own_reservation_is_replaced_by_the_functions(clock: Clock) -> None:
    """The one way in moves the reservation: a pre-started container held 128 MB of its own."""
    budget = MemoryBudget(1024)

    def launch(fv: FunctionVersion, init_type: str) -> FakeEnv:
        assert budget.try_reserve(128)  # what the pre-started container held before it was taken
        env = FakeEnv(fv, clock)
        env.start_type, env.reserved_mb = "prestarted", 128
        return env

    pool = Pool(launch, keep_alive_s=600, budget=budget, clock=clock)  # type: ignore[arg-type]
    with pool.acquire(version(memory=512)) as lease:
        assert lease.start == "prestarted" and lease.env.reserved_mb == 512
        assert budget.used_mb == 512
    assert pool.started == {"cold": 0, "prestarted": 1}


def test_a_debuggers_one_off_holds_its_memory_is_not_counted_and_goes_after_the_call(clock: Clock) -> None:
    launched: list[tuple[str, int | None]] = []
    holder: list[Pool] = []

    def launch(fv: FunctionVersion, init_type: str, debug_port: int | None = None) -> FakeEnv:
        launched.append((init_type, debug_port))
        env = FakeEnv(fv, clock)
        env.on_dead = holder[0].forget
        return env

    pool = Pool(launch, keep_alive_s=600, budget=MemoryBudget(1024), clock=clock)  # type: ignore[arg-type]
    holder.append(pool)
    with pool.one_off(version(memory=256), debug_port=5678) as lease:
        assert lease.start == "cold" and pool.budget.used_mb == 256
        assert not lease.env.fresh  # its init is in this lease; it never reaches the pool
    assert lease.env.destroyed and pool.budget.used_mb == 0
    assert launched == [("on-demand", 5678)]
    assert pool.started == {"cold": 0, "prestarted": 0}
