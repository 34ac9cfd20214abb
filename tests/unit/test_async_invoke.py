"""The async queue with a real SQLite file and a scripted invoke: Lambda's retry rules,
the on-failure records, and events that survive a restart."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faas.deploy.store import Store
from faas.errors import FunctionNotFound, TooManyRequests
from faas.invoke.async_invoke import AsyncInvoker, Policy, QueueBounds
from faas.models import Result


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Script:
    """invoke() that answers from a list of outcomes per call and records every call."""

    def __init__(self, *outcomes: str) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, bytes, str | None, str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, payload: bytes, qualifier: str | None, request_id: str) -> Result:
        with self.lock:
            self.calls.append((name, payload, qualifier, request_id, time.monotonic()))
            outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "throttle":
            raise TooManyRequests("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded")
        if outcome == "gone":
            raise FunctionNotFound("Function not found")
        if outcome == "error":
            return Result(request_id, b'{"errorMessage": "no", "errorType": "ValueError"}', 3, "Unhandled", "ValueError")
        return Result(request_id, b'"done"', 3)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    Store(tmp_path / "faas.db").close()  # the store creates the tables
    return tmp_path / "faas.db"


def make(db: Path, tmp_path: Path, script: Script, **kw: object) -> AsyncInvoker:
    kw.setdefault("retry_delays_s", (0.2, 0.4))
    kw.setdefault("workers", 2)
    return AsyncInvoker(db, tmp_path / "failures", script, **kw)  # type: ignore[arg-type]


def test_an_event_runs_once_with_the_request_id_it_was_given(db: Path, tmp_path: Path) -> None:
    script = Script("ok")
    inv = make(db, tmp_path, script)
    try:
        rid = inv.submit("f", "prod", b'{"a": 1}')
        wait_for(lambda: inv.pending() == 0)
        assert [(c[0], c[1], c[2], c[3]) for c in script.calls] == [("f", b'{"a": 1}', "prod", rid)]
        assert inv.failures("f") == []
    finally:
        inv.close()


def test_function_errors_are_retried_twice_then_recorded(db: Path, tmp_path: Path) -> None:
    script = Script("error", "error", "error")
    inv = make(db, tmp_path, script)
    try:
        rid = inv.submit("f", None, b'{"n": 7}')
        wait_for(lambda: inv.pending() == 0)
    finally:
        inv.close()
    assert len(script.calls) == 3
    gaps = [b[4] - a[4] for a, b in itertools.pairwise(script.calls)]
    assert 0.18 <= gaps[0] < 0.39 and 0.38 <= gaps[1], gaps  # Lambda's 1 then 2 minutes, scaled
    (record,) = inv.failures("f")
    assert record["requestContext"] == {
        "requestId": rid,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"n": 7}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "3", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    files = list((tmp_path / "failures" / "f").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == record


def test_a_retry_that_succeeds_leaves_no_record(db: Path, tmp_path: Path) -> None:
    script = Script("error", "ok")
    inv = make(db, tmp_path, script)
    try:
        inv.submit("f", None, b"{}")
        wait_for(lambda: inv.pending() == 0)
    finally:
        inv.close()
    assert len(script.calls) == 2 and inv.failures("f") == []


def test_max_retry_attempts_zero_records_after_one_try(db: Path, tmp_path: Path) -> None:
    script = Script("error")
    inv = make(db, tmp_path, script, policy=lambda name: Policy(max_retries=0))
    try:
        inv.submit("f", None, b"{}")
        wait_for(lambda: inv.pending() == 0)
    finally:
        inv.close()
    assert len(script.calls) == 1
    assert inv.failures("f")[0]["requestContext"]["approximateInvokeCount"] == 1


def test_throttles_do_not_count_as_attempts(db: Path, tmp_path: Path) -> None:
    script = Script("throttle", "throttle", "error", "ok")
    inv = make(db, tmp_path, script)
    try:
        inv.submit("f", None, b"{}")
        wait_for(lambda: inv.pending() == 0)
    finally:
        inv.close()
    assert len(script.calls) == 4 and inv.failures("f") == []


def test_an_event_older_than_the_maximum_age_goes_to_the_failures(db: Path, tmp_path: Path) -> None:
    script = Script(*["throttle"] * 50)
    inv = make(db, tmp_path, script, policy=lambda name: Policy(max_age_s=1.5))
    try:
        rid = inv.submit("f", None, b'"x"')
        wait_for(lambda: inv.pending() == 0)
    finally:
        inv.close()
    (record,) = inv.failures("f")
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and record["requestPayload"] == "x"


def test_events_of_a_deleted_function_are_dropped(db: Path, tmp_path: Path) -> None:
    script = Script("gone")
    inv = make(db, tmp_path, script)
    try:
        inv.submit("f", None, b"{}")
        wait_for(lambda: inv.pending() == 0)
    finally:
        inv.close()
    assert len(script.calls) == 1 and inv.failures("f") == []


def test_queued_and_running_events_survive_a_restart(db: Path, tmp_path: Path) -> None:
    started = threading.Event()
    release = threading.Event()

    def stuck(name: str, payload: bytes, qualifier: str | None, request_id: str) -> Result:
        started.set()
        release.wait(5)
        return Result(request_id, b"null", 1)

    first = AsyncInvoker(db, tmp_path / "failures", stuck, workers=1)
    ids = [first.submit("f", None, json.dumps({"i": i}).encode()) for i in range(3)]
    assert started.wait(5)
    # The process "dies": nothing is acknowledged, the worker is abandoned mid-call.
    first._stopping.set()
    first._db.close()
    script = Script()
    second = make(db, tmp_path, script)
    try:
        wait_for(lambda: second.pending() == 0)
    finally:
        second.close()
        release.set()
    assert sorted(c[3] for c in script.calls) == sorted(ids)  # the one running then too, again


def test_submit_after_stop_is_refused(db: Path, tmp_path: Path) -> None:
    inv = make(db, tmp_path, Script())
    inv.close()
    from faas.errors import ShuttingDown

    with pytest.raises(ShuttingDown):
        inv.submit("f", None, b"{}")


# ------------------------------------------------------------------ the queue's bounds


class Blocked(Script):
    """invoke() that never finishes an event before `release` is set (they stay queued)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def __call__(self, name: str, payload: bytes, qualifier: str | None, request_id: str) -> Result:
        self.release.wait(10)
        return super().__call__(name, payload, qualifier, request_id)


@pytest.mark.parametrize(
    "bounds, sizes, refused_at",
    [
        (QueueBounds(events_per_function=3), [10] * 4, 3),
        (QueueBounds(bytes_per_function=100), [40, 40, 40], 2),
    ],
)
def test_a_function_past_its_queue_bound_gets_429_and_nothing_is_written(
    db: Path, tmp_path: Path, bounds: QueueBounds, sizes: list[int], refused_at: int
) -> None:
    script = Blocked()
    q = make(db, tmp_path, script, bounds=bounds, workers=1)
    try:
        for i, size in enumerate(sizes):
            if i < refused_at:
                q.submit("f", None, b"x" * size)
                continue
            with pytest.raises(TooManyRequests) as e:
                q.submit("f", None, b"x" * size)
            assert e.value.status == 429 and e.value.reason == "CallerRateLimitExceeded"
            assert "queue is full" in e.value.message
        assert q.pending("f") == refused_at
        q.submit("g", None, b"{}")  # another function still has room
    finally:
        script.release.set()
        q.close()


def test_the_total_bound_holds_across_functions_and_frees_up_as_events_run(db: Path, tmp_path: Path) -> None:
    script = Blocked()
    q = make(db, tmp_path, script, bounds=QueueBounds(events=4, bytes=1000), workers=1)
    try:
        for name in "abcd":
            q.submit(name, None, b"{}")
        with pytest.raises(TooManyRequests, match="in all"):
            q.submit("e", None, b"{}")
        script.release.set()
        wait_for(lambda: q.pending() == 0)
        q.submit("e", None, b"{}")
    finally:
        script.release.set()
        q.close()


def test_the_bound_counts_events_left_by_an_earlier_run_and_a_dropped_function_frees_its_room(db: Path, tmp_path: Path) -> None:
    script = Blocked()
    bounds = QueueBounds(events_per_function=2)
    q = make(db, tmp_path, script, bounds=bounds, workers=1)
    q.submit("f", None, b"{}")
    q.submit("f", None, b"{}")
    q.stop()  # nothing more is claimed; the two stay queued
    q.close(wait_s=0.1)
    again = make(db, tmp_path, script, bounds=bounds, workers=1)
    try:
        with pytest.raises(TooManyRequests):
            again.submit("f", None, b"{}")
        assert again.drop("f") >= 1
        again.submit("f", None, b"{}")
    finally:
        script.release.set()
        again.close()
