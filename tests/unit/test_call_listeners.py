"""The scheduler tells its listeners of every call that ran and every call throttled, through
one channel (faas/invoke/scheduler.CallListener); the states it reports are typed.

Everything around the scheduler is a stand-in: no environments, no processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from faas.errors import TooManyRequests
from faas.invoke.environment import Outcome
from faas.invoke.limits import Limiter
from faas.invoke.pool import Lease
from faas.invoke.scheduler import Scheduler
from faas.models import FunctionSpec, FunctionVersion, OutcomeStatus, Result, StartType, Status


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def record(self, fv: FunctionVersion, result: Result) -> None:
        self.events.append(("record", result))

    def throttled(self, name: str) -> None:
        self.events.append(("throttled", name))


class Env:
    container_id = "c1"

    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes

    def invoke(self, inv: Any, timeout: float) -> Outcome:
        return self.outcomes.pop(0)


class Pool:
    def __init__(self, outcomes: list[Outcome], start: StartType = StartType.WARM, refuse: bool = False) -> None:
        self.env = Env(outcomes)
        self.start = start
        self.refuse = refuse

    @contextmanager
    def acquire(self, fv: FunctionVersion) -> Iterator[Lease]:
        if self.refuse:  # as the memory budget refuses when no memory frees up in time
            raise TooManyRequests("Rate Exceeded.", "ConcurrentInvocationLimitExceeded")
        yield Lease(self.env, self.start, None if self.start is StartType.WARM else 120.0, "")  # type: ignore[arg-type]


class Registry:
    def __init__(self, fv: FunctionVersion) -> None:
        self.fv = fv

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        return self.fv


class Logs:
    def __init__(self) -> None:
        self.text: list[str] = []

    def append(self, name: str, text: str) -> None:
        self.text.append(text)


def scheduler(pool: Pool, concurrency: int | None = None) -> tuple[Scheduler, Listener, Limiter]:
    spec = FunctionSpec.from_mapping({"name": "f", "memory": 128, "timeout": 3, "concurrency": concurrency})
    fv = FunctionVersion(spec, 1, "ab" * 32, Path("/x"), 1, time.time())
    limiter = Limiter()
    s = Scheduler(Registry(fv), pool, limiter, Logs(), lambda cid: 40 * 1024 * 1024)  # type: ignore[arg-type]
    listener = Listener()
    s.listeners.append(listener)
    return s, listener, limiter


def test_a_call_that_ran_is_recorded_with_typed_states() -> None:
    s, listener, _ = scheduler(Pool([Outcome(b'"ok"', duration_ms=2.0)], start=StartType.PRESTARTED))
    result = s.invoke("f", b"{}")
    assert listener.events == [("record", result)]
    assert result.status is Status.OK and result.start is StartType.PRESTARTED
    assert result.max_memory_mb == 40 and result.init_duration_ms == 120.0
    assert json.dumps({"status": result.status, "start": result.start}) == '{"status": "ok", "start": "prestarted"}'


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (OutcomeStatus.ERROR, Status.ERROR),
        (OutcomeStatus.EXIT, Status.ERROR),
        (OutcomeStatus.TIMEOUT, Status.TIMEOUT),
        (OutcomeStatus.OOM, Status.OOM),
        ("exit", Status.ERROR),
    ],
)
def test_an_environments_outcome_becomes_the_calls_status(status: str, expected: Status) -> None:
    s, _, _ = scheduler(Pool([Outcome(b"{}", "Some.Error", status)]))
    result = s.invoke("f", b"{}")
    assert result.status is expected and result.function_error == "Unhandled"
    assert result.max_memory_mb == (128 if expected is Status.OOM else 0 if expected is Status.TIMEOUT else 40)


def test_a_call_never_delivered_ends_as_a_runtime_exit() -> None:
    s, listener, _ = scheduler(Pool([Outcome(b"", "faas.NotDelivered", OutcomeStatus.UNDELIVERED)] * 3))
    result = s.invoke("f", b"{}")
    assert result.status is Status.ERROR and result.error_type == "Runtime.ExitError"
    assert [kind for kind, _ in listener.events] == ["record"]


def test_a_throttle_by_the_concurrency_cap_is_told_to_the_listeners() -> None:
    s, listener, limiter = scheduler(Pool([]), concurrency=1)
    with limiter.lease(s.registry.resolve("f").spec), pytest.raises(TooManyRequests):
        s.invoke("f", b"{}")
    assert listener.events == [("throttled", "f")]


def test_a_throttle_by_the_memory_budget_is_told_too() -> None:
    s, listener, limiter = scheduler(Pool([], refuse=True))
    with pytest.raises(TooManyRequests):
        s.invoke("f", b"{}")
    assert listener.events == [("throttled", "f")] and limiter.in_flight("f") == 0


def test_a_queued_events_throttle_is_not_told_it_waits_and_is_tried_again() -> None:
    s, listener, limiter = scheduler(Pool([]), concurrency=1)
    with limiter.lease(s.registry.resolve("f").spec), pytest.raises(TooManyRequests):
        s.invoke("f", b"{}", invocation_type="Event")
    assert listener.events == []
