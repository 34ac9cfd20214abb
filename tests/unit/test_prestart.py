"""Pre-started containers: a take with none ready waits for one on its way instead of starting
a container of its own (a redeploy's switch that did so took 720 ms while three were nearly
ready), and never waits when none is on its way.

Starts run on the test's thread when it says (Spawned): a start "under way" is one queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from faas.invoke.environment import Status
from faas.invoke.limits import MemoryBudget
from faas.invoke.prestart import PrestartedContainers
from tests.unit.test_pool import Spawned, eventually

RUNTIME = "python3.11"


class FakeContainer:
    """What PrestartedContainers looks at: the bootstrap's connection, the status, destroy()."""

    def __init__(self, runtime: str) -> None:
        self.id = f"prestarted-{id(self):x}"
        self.runtime = runtime
        self.status = Status.STARTING
        self.connected = threading.Event()
        self.reserved_mb = 0
        self.destroyed = False

    def destroy(self) -> None:
        self.destroyed = True
        self.status = Status.DEAD


class Starts:
    """The start callable: records what it started."""

    def __init__(self, *, connect: bool = True) -> None:
        self.connect = connect
        self.started: list[FakeContainer] = []
        self.calls = 0

    def __call__(self, runtime: str) -> FakeContainer:
        self.calls += 1
        env = FakeContainer(runtime)
        if self.connect:
            env.connected.set()
        self.started.append(env)
        return env


@contextmanager
def running(starts: Starts, spawned: Spawned, *, floor: int = 1) -> Iterator[PrestartedContainers]:
    """PrestartedContainers over these starts, its starts queued in spawned; shut down afterwards."""
    prestarted = PrestartedContainers(
        starts,
        MemoryBudget(1 << 20),
        128,
        floor=floor,
        ceiling=4,
        spawn=spawned,  # type: ignore[arg-type]
    )
    try:
        yield prestarted
    finally:
        prestarted.shutdown()


def take_in_thread(prestarted: PrestartedContainers, wait_s: float = 5.0) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(prestarted.take(RUNTIME, wait_s)), daemon=True)
    t.start()
    return t, got


def test_a_take_waits_for_a_start_under_way_instead_of_missing() -> None:
    starts, spawned = Starts(), Spawned()
    with running(starts, spawned) as prestarted:
        prestarted.reconcile({RUNTIME})
        assert spawned.names() == [f"prestarted-{RUNTIME}"] and starts.calls == 0  # under way, not landed
        t, got = take_in_thread(prestarted)
        assert eventually(lambda: prestarted._awaiting.get(RUNTIME) == 1)
        assert t.is_alive() and got == []  # waiting for it, not answering "none" (a cold start)
        spawned.run()  # the start lands
        t.join(5)
        assert got == [starts.started[0]]
        assert (prestarted.taken_total, prestarted.missed_total) == (1, 0)


def test_a_take_waits_for_a_started_container_whose_bootstrap_is_not_up_yet() -> None:
    starts, spawned = Starts(connect=False), Spawned()
    with running(starts, spawned) as prestarted:
        prestarted.reconcile({RUNTIME})
        spawned.run()
        assert len(prestarted.environments()) == 1
        container = starts.started[0]
        t, got = take_in_thread(prestarted)
        assert eventually(lambda: prestarted.environments() == [])  # claimed; its refill stays queued
        assert t.is_alive() and got == []
        container.connected.set()  # the bootstrap asks for its function
        t.join(5)
        assert got == [container]


def test_with_none_on_its_way_a_take_answers_at_once_and_refills() -> None:
    starts, spawned = Starts(), Spawned()
    with running(starts, spawned, floor=0) as prestarted:
        prestarted.reconcile({RUNTIME})  # floor 0 and no demand yet: nothing starts
        assert starts.calls == 0 and spawned.names() == []
        t = time.monotonic()
        assert prestarted.take(RUNTIME, wait_s=5) is None  # not waiting for the refill it sets off
        assert time.monotonic() - t < 1.0
        assert spawned.run() == 1  # the refill was under way
        assert starts.calls == 1
        assert prestarted.missed_total == 1


def test_a_bootstrap_that_does_not_come_up_in_time_is_kept_and_the_take_misses() -> None:
    starts, spawned = Starts(connect=False), Spawned()
    with running(starts, spawned) as prestarted:
        prestarted.reconcile({RUNTIME})
        spawned.run()
        assert len(prestarted.environments()) == 1
        t = time.monotonic()
        assert prestarted.take(RUNTIME, wait_s=0.2) is None  # the 0.2 s wait is what is tested
        assert 0.15 < time.monotonic() - t < 2.0
        assert starts.started[0] in prestarted.environments() and not starts.started[0].destroyed


def test_a_container_that_dies_before_its_bootstrap_is_up_ends_the_wait() -> None:
    starts, spawned = Starts(connect=False), Spawned()
    with running(starts, spawned) as prestarted:
        prestarted.reconcile({RUNTIME})
        spawned.run()
        assert len(prestarted.environments()) == 1
        t, got = take_in_thread(prestarted, wait_s=30)
        assert eventually(lambda: prestarted.environments() == [])  # claimed, waiting for its bootstrap
        t0 = time.monotonic()
        starts.started[0].destroy()  # e.g. killed from outside
        t.join(5)
        assert got == [None] and time.monotonic() - t0 < 1.0


def test_two_takes_share_one_start_under_way_the_second_does_not_wait_for_it() -> None:
    starts, spawned = Starts(), Spawned()
    with running(starts, spawned) as prestarted:
        prestarted.reconcile({RUNTIME})
        assert len(spawned.names()) == 1
        t1, got1 = take_in_thread(prestarted)
        assert eventually(lambda: prestarted._awaiting.get(RUNTIME) == 1)
        t = time.monotonic()
        assert prestarted.take(RUNTIME, wait_s=5) is None  # the one under way is promised to the first
        assert time.monotonic() - t < 1.0
        spawned.run()
        t1.join(5)
        assert got1 == [starts.started[0]]


def test_shutdown_ends_a_take_that_waits() -> None:
    starts, spawned = Starts(), Spawned()
    with running(starts, spawned) as prestarted:
        prestarted.reconcile({RUNTIME})
        assert len(spawned.names()) == 1
        t, got = take_in_thread(prestarted, wait_s=30)
        assert eventually(lambda: prestarted._awaiting.get(RUNTIME) == 1)
        prestarted.shutdown()
        t.join(5)
        assert not t.is_alive() and got == [None]
        spawned.run()  # the start lands after shutdown: it is removed, not kept
        assert bool(starts.started) and starts.started[0].destroyed
