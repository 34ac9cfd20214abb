"""Pre-started containers: a take with none ready waits for one on its way instead of starting
a container of its own (a redeploy's switch that did so took 720 ms while three were nearly
ready), and never waits when none is on its way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from faas.invoke.environment import Status
from faas.invoke.limits import MemoryBudget
from faas.invoke.prestart import StemCells

RUNTIME = "python3.11"


class FakeStem:
    """What StemCells looks at: the bootstrap's connection, the status, destroy()."""

    def __init__(self, runtime: str) -> None:
        self.id = f"stem-{id(self):x}"
        self.runtime = runtime
        self.status = Status.STARTING
        self.connected = threading.Event()
        self.reserved_mb = 0
        self.destroyed = False

    def destroy(self) -> None:
        self.destroyed = True
        self.status = Status.DEAD


class Starts:
    """The start callable: each start blocks until let through, so a test holds one "under way"."""

    def __init__(self, *, connect: bool = True) -> None:
        self.connect = connect
        self.gate = threading.Semaphore(0)
        self.started: list[FakeStem] = []
        self.calls = 0

    def __call__(self, runtime: str) -> FakeStem:
        self.calls += 1
        assert self.gate.acquire(timeout=10), "a start was never let through"
        env = FakeStem(runtime)
        if self.connect:
            env.connected.set()
        self.started.append(env)
        return env


@contextmanager
def running(starts: Starts, *, floor: int = 1) -> Iterator[StemCells]:
    """StemCells over these starts; afterwards every held start is let through and it shuts down."""
    stems = StemCells(starts, MemoryBudget(1 << 20), 128, floor=floor, ceiling=4)  # type: ignore[arg-type]
    try:
        yield stems
    finally:
        for _ in range(8):
            starts.gate.release()
        stems.shutdown()


def eventually(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return bool(predicate())


def take_in_thread(stems: StemCells, wait_s: float = 5.0) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(stems.take(RUNTIME, wait_s)), daemon=True)
    t.start()
    return t, got


def test_a_take_waits_for_a_start_under_way_instead_of_missing() -> None:
    starts = Starts()
    with running(starts) as stems:
        stems.reconcile({RUNTIME})
        assert eventually(lambda: starts.calls == 1)  # under way, held at the gate
        t, got = take_in_thread(stems)
        time.sleep(0.1)
        assert t.is_alive() and got == []  # waiting for it, not answering "none" (a cold start)
        starts.gate.release()
        t.join(5)
        assert got == [starts.started[0]]
        assert (stems.taken_total, stems.missed_total) == (1, 0)


def test_a_take_waits_for_a_started_container_whose_bootstrap_is_not_up_yet() -> None:
    starts = Starts(connect=False)
    with running(starts) as stems:
        starts.gate.release()
        stems.reconcile({RUNTIME})
        assert eventually(lambda: len(stems.environments()) == 1)
        stem = starts.started[0]
        t, got = take_in_thread(stems)
        time.sleep(0.1)
        assert t.is_alive() and got == []
        stem.connected.set()  # the bootstrap asks for its function
        t.join(5)
        assert got == [stem]


def test_with_none_on_its_way_a_take_answers_at_once_and_refills() -> None:
    starts = Starts()
    with running(starts, floor=0) as stems:
        stems.reconcile({RUNTIME})  # floor 0 and no demand yet: nothing starts
        assert starts.calls == 0
        t = time.monotonic()
        assert stems.take(RUNTIME, wait_s=5) is None  # not waiting for the refill it sets off
        assert time.monotonic() - t < 1.0
        assert eventually(lambda: starts.calls == 1)  # the refill is under way
        assert stems.missed_total == 1


def test_a_bootstrap_that_does_not_come_up_in_time_is_kept_and_the_take_misses() -> None:
    starts = Starts(connect=False)
    with running(starts) as stems:
        starts.gate.release()
        stems.reconcile({RUNTIME})
        assert eventually(lambda: len(stems.environments()) == 1)
        t = time.monotonic()
        assert stems.take(RUNTIME, wait_s=0.2) is None
        assert 0.15 < time.monotonic() - t < 2.0
        assert starts.started[0] in stems.environments() and not starts.started[0].destroyed


def test_a_container_that_dies_before_its_bootstrap_is_up_ends_the_wait() -> None:
    starts = Starts(connect=False)
    with running(starts) as stems:
        starts.gate.release()
        stems.reconcile({RUNTIME})
        assert eventually(lambda: len(stems.environments()) == 1)
        t, got = take_in_thread(stems, wait_s=30)
        time.sleep(0.1)
        t0 = time.monotonic()
        starts.started[0].destroy()  # e.g. killed from outside
        t.join(5)
        assert got == [None] and time.monotonic() - t0 < 1.0


def test_two_takes_share_one_start_under_way_the_second_does_not_wait_for_it() -> None:
    starts = Starts()
    with running(starts) as stems:
        stems.reconcile({RUNTIME})
        assert eventually(lambda: starts.calls == 1)
        t1, got1 = take_in_thread(stems)
        assert eventually(lambda: stems._awaiting.get(RUNTIME) == 1)
        t = time.monotonic()
        assert stems.take(RUNTIME, wait_s=5) is None  # the one under way is promised to the first
        assert time.monotonic() - t < 1.0
        starts.gate.release()
        t1.join(5)
        assert got1 == [starts.started[0]]


def test_shutdown_ends_a_take_that_waits() -> None:
    starts = Starts()
    with running(starts) as stems:
        stems.reconcile({RUNTIME})
        assert eventually(lambda: starts.calls == 1)
        t, got = take_in_thread(stems, wait_s=30)
        time.sleep(0.1)
        stems.shutdown()
        t.join(5)
        assert not t.is_alive() and got == [None]
        starts.gate.release()  # the start lands after shutdown: it is removed, not kept
        assert eventually(lambda: bool(starts.started) and starts.started[0].destroyed)
