"""Pool and limiter logic with fake environments: reuse, keep-alive, retirement, shutdown, throttling."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from faas.errors import ShuttingDown, TooManyRequests
from faas.limits import Limiter
from faas.models import FunctionSpec, FunctionVersion
from faas.pool import Pool


class FakeEnv:
    _n = 0

    def __init__(self, fv: FunctionVersion, clock: "Clock") -> None:
        FakeEnv._n += 1
        self.id = f"env{FakeEnv._n}"
        self.version = fv
        self.healthy = True
        self.destroyed = False
        self.last_used = clock.now
        self.init_duration_ms = 5.0
        self.init_logs = ""

    def destroy(self) -> None:
        self.destroyed = True
        self.healthy = False


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def version(name: str = "f", n: int = 1, concurrency: int | None = None) -> FunctionVersion:
    return FunctionVersion(FunctionSpec(name=name, concurrency=concurrency), n, "sha", Path("/nowhere"), 1, 0.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def launched() -> list[FakeEnv]:
    return []


@pytest.fixture
def pool(clock: Clock, launched: list[FakeEnv]) -> Pool:
    def launch(fv: FunctionVersion) -> FakeEnv:
        env = FakeEnv(fv, clock)
        launched.append(env)
        return env

    return Pool(launch, keep_alive_s=600, clock=clock)  # type: ignore[arg-type]


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


def test_retire_drops_idle_now_and_busy_when_their_call_ends(pool: Pool, launched: list[FakeEnv]) -> None:
    fv = version()
    with pool.acquire(fv):
        pass
    with pool.acquire(fv) as busy:
        with pool.acquire(fv) as other:
            pass
        pool.retire(fv.key)
        assert other.env.destroyed
        assert not busy.env.destroyed  # the call in flight finishes on its environment
    assert busy.env.destroyed


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


def test_retire_function_drops_every_version(pool: Pool, launched: list[FakeEnv]) -> None:
    v1, v2, other = version(n=1), version(n=2), version(name="g")
    for fv in (v1, v2, other):
        with pool.acquire(fv):
            pass
    pool.retire_function("f")
    assert [e.destroyed for e in launched] == [True, True, False]
