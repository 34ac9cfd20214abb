"""Keep-alive learnt from each function's idle periods (faas/invoke/keepalive.py), and the pool's
reaping by it: a function whose calls come back every 15 minutes stays warm past the fixed
10-minute window; one with too few idle periods, only short ones or ones longer than the
ceiling keeps the fixed window."""

from __future__ import annotations

from faas.invoke.keepalive import CEILING_S, IdleTimes
from tests.unit.test_pool import Clock, make_pool, version


def idle_periods(times: IdleTimes, name: str, gaps: list[float]) -> None:
    now = 1000.0
    for gap in gaps:
        times.went_idle(name, now)
        now += gap
        times.called(name, now)
        now += 0.05  # the call itself


def test_the_fixed_window_until_enough_idle_periods_are_known() -> None:
    times = IdleTimes(600)
    idle_periods(times, "f", [900] * 4)
    assert times.keep_alive_s("f") == 600
    idle_periods(times, "f", [900])
    assert 900 <= times.keep_alive_s("f") <= 1800  # the 99th percentile, rounded up to a power of two


def test_short_idle_periods_never_shorten_the_window() -> None:
    times = IdleTimes(600)
    idle_periods(times, "busy", [0.002] * 500)
    assert times.keep_alive_s("busy") == 600


def test_the_rare_long_gap_does_not_count_but_a_pattern_does() -> None:
    times = IdleTimes(600)
    idle_periods(times, "f", [30] * 200 + [3000])  # one long break among many short ones: under the 99th
    assert times.keep_alive_s("f") == 600
    idle_periods(times, "g", [30] * 50 + [3000] * 10)  # every sixth call comes after 50 minutes
    assert 3000 <= times.keep_alive_s("g") <= 6000


def test_calls_that_come_back_after_hours_are_no_pattern() -> None:
    times = IdleTimes(600)
    idle_periods(times, "nightly", [CEILING_S * 2] * 10)
    assert times.keep_alive_s("nightly") == 600


def test_recent_behaviour_outweighs_old() -> None:
    times = IdleTimes(600)
    idle_periods(times, "f", [900] * 150)
    assert times.keep_alive_s("f") > 600
    idle_periods(times, "f", [5] * 1500)  # now called every few seconds
    assert times.keep_alive_s("f") == 600


def test_a_removed_function_starts_over() -> None:
    times = IdleTimes(600)
    idle_periods(times, "f", [900] * 10)
    times.forget("f")
    assert times.keep_alive_s("f") == 600


def test_the_pool_keeps_a_function_warm_as_long_as_its_calls_come_back() -> None:
    clock, launched = Clock(), []
    pool = make_pool(clock, launched)  # fixed keep-alive: 600 s
    fv, other = version("every15min"), version("once")
    for _ in range(6):  # called every 15 minutes; the environment is kept busy-free in between
        with pool.acquire(fv):
            pass
        clock.now += 900
        pool.tick([fv])  # reaped at 600 s by the fixed window until the pattern is known
    with pool.acquire(other):
        pass
    with pool.acquire(fv):
        pass
    env = next(e for e in launched if e.version is fv and not e.destroyed)
    clock.now += 700  # past the fixed window, within the learnt one
    pool.tick([fv, other])
    assert not env.destroyed, "a function called every 15 minutes stays warm for its next call"
    assert [e.destroyed for e in launched if e.version is other] == [True]
    with pool.acquire(fv) as lease:
        assert lease.start == "warm" and lease.env is env
    clock.now += 2000  # but not forever
    pool.tick([fv])
    assert env.destroyed
