"""The schedule book: what fires when, what a restart skips, what is refused (a real SQLite file)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from faas.errors import FunctionNotFound, ValidationError
from faas.events.schedule import SCHEDULER, Schedule, ScheduleBook


class Clock:
    def __init__(self, start: str) -> None:
        self.now = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def book(tmp_path: Path, clock: Clock, calls: list[tuple[str, dict]], speedup: float = 1.0) -> ScheduleBook:
    def invoke(name: str, payload: bytes) -> str:
        if name == "missing":
            raise FunctionNotFound(name)
        calls.append((name, json.loads(payload)))
        return f"req-{len(calls)}"

    return ScheduleBook(tmp_path / "faas.db", invoke, clock=clock, speedup_factor=speedup, start=False)


def test_a_rate_fires_the_scheduled_event_and_a_restart_skips_missed_firings(tmp_path: Path) -> None:
    clock, calls = Clock("2026-01-01T00:00:00"), []
    b = book(tmp_path, clock, calls)
    b.put("stack", [Schedule("tick", "fn", "rate(5 minutes)")])
    assert b.list()[0]["next"] == "2026-01-01T00:05:00Z"
    clock.now += 299
    assert b.tick() == 0
    clock.now += 1
    assert b.tick() == 1
    name, event = calls[0]
    assert name == "fn" and event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/tick"] and event["detail"] == {}
    assert event["time"] == "2026-01-01T00:05:00Z"
    b.close()
    # Stopped for an hour: after the restart nothing fires for the missed hour, the rhythm is kept.
    clock.now += 3600 + 30
    again = book(tmp_path, clock, calls)
    assert again.tick() == 0 and len(calls) == 1
    assert again.list()[0]["next"] == "2026-01-01T01:10:00Z"


def test_disabled_schedules_never_fire_but_can_be_fired_by_hand(tmp_path: Path) -> None:
    clock, calls = Clock("2026-01-01T00:00:00"), []
    b = book(tmp_path, clock, calls)
    b.put("s", [Schedule("off", "fn", "rate(1 minute)", enabled=False, input='{"a": 1}')])
    clock.now += 3600
    assert b.tick() == 0 and b.list()[0]["next"] is None
    assert b.fire("off") == "req-1" and calls == [("fn", {"a": 1})]


def test_input_path_speedup_and_scheduler_payload(tmp_path: Path) -> None:
    clock, calls = Clock("2026-01-01T00:00:00"), []
    b = book(tmp_path, clock, calls, speedup=60)
    b.put("s", [Schedule("v2", "fn", "rate(1 minute)", kind=SCHEDULER, timezone="Europe/Paris", input_path="$.resources")])
    clock.now += 1
    assert b.tick() == 1
    assert calls == [("fn", ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/v2"])]


def test_a_missing_function_is_reported_not_fatal(tmp_path: Path) -> None:
    clock, calls = Clock("2026-01-01T00:00:00"), []
    b = book(tmp_path, clock, calls)
    b.put("s", [Schedule("m", "missing", "rate(1 minute)")])
    clock.now += 60
    assert b.tick() == 1
    assert "missing" in (b.list()[0]["last_error"] or "") and b.list()[0]["next"] == "2026-01-01T00:02:00Z"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule("x", "fn", "rate(1 minutes)"), "rate(1 minute)"),
        (Schedule("bad name!", "fn", "rate(1 minute)"), "name"),
        (Schedule("x", "fn", "cron(0 9 * * ? *)", timezone="Europe/Paris"), "UTC"),
        (Schedule("x", "fn", "rate(1 minute)", input="{not json"), "not valid JSON"),
        (Schedule("x", "fn", "rate(1 minute)", input_path="detail"), "InputPath"),
    ],
)
def test_bad_schedules_are_refused_and_change_nothing(tmp_path: Path, schedule: Schedule, message: str) -> None:
    b = book(tmp_path, Clock("2026-01-01T00:00:00"), [])
    b.put("s", [Schedule("keep", "fn", "rate(1 hour)")])
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        b.put("s", [schedule])
    assert [r["name"] for r in b.list()] == ["keep"]


def test_a_name_of_another_template_is_refused(tmp_path: Path) -> None:
    b = book(tmp_path, Clock("2026-01-01T00:00:00"), [])
    b.put("one", [Schedule("tick", "fn", "rate(1 hour)")])
    with pytest.raises(ValidationError, match="another template"):
        b.put("two", [Schedule("tick", "fn", "rate(1 hour)")])
    with pytest.raises(ValidationError, match="no field"):
        Schedule.from_json({"name": "a", "function": "f", "expression": "rate(1 hour)", "evil": 1})
