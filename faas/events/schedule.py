"""A template's schedules, kept in SQLite and fired into the async queue as EventBridge fires them.

`faas deploy template.yaml` registers its schedules with the gateway (PUT
/system/schedules/STACK, gateway/schedules_api.py), as it registers its routes: a stack's
schedules are replaced whole, survive a restart, and one thread fires them. A firing is an
Event call through faas/invoke/async_invoke.py, so it gets Lambda's async retries, bounds and
failure records. Firings due while faas was stopped are skipped, as EventBridge skips what it
could not deliver on time: after a start, each schedule's next firing is the first one after
now (a rate keeps its rhythm from when it was first deployed).

FAAS_SCHEDULE_SPEEDUP=N divides every rate() period by N (a test setting: `rate(1 minute)`
fires every second with N=60); cron() and at() are never sped up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faas.errors import FaasError, ValidationError
from faas.events import cron
from faas.models import ACCOUNT_ID, NAME_RE, clip, short_repr

LOG = logging.getLogger(__name__)

RULE = "Schedule"  # an EventBridge rule (Events: Schedule, AWS::Events::Rule): UTC only
SCHEDULER = "ScheduleV2"  # EventBridge Scheduler (ScheduleV2, AWS::Scheduler::Schedule): a time zone
KINDS = (RULE, SCHEDULER)
REGION = "us-east-1"
MAX_SCHEDULES = 1000  # per stack
MAX_INPUT = 8192  # EventBridge's limit on a target's Input
IDLE_WAIT_S = 1.0
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STACK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PATH = re.compile(r"\$(\.[A-Za-z0-9_-]+)*")
_TABLE = "CREATE TABLE IF NOT EXISTS schedules (stack TEXT PRIMARY KEY, schedules_json TEXT NOT NULL, updated REAL NOT NULL)"

InvokeAsync = Callable[[str, bytes], str]


def speedup() -> float:
    try:
        value = float(os.environ.get("FAAS_SCHEDULE_SPEEDUP", "1"))
    except ValueError:
        return 1.0
    return value if value >= 1 else 1.0


@dataclass(frozen=True)
class Schedule:
    """One schedule of a template: what fires, when, and with what."""

    name: str
    function: str
    expression: str
    kind: str = RULE
    timezone: str | None = None
    input: str | None = None  # a JSON text that replaces the event
    input_path: str | None = None  # "$.detail": the part of the event sent
    enabled: bool = True
    source: str = ""  # where in the template, for messages ("Fn.Events.Tick")

    def check(self) -> cron.Expression:
        """Every rule EventBridge would check on deploy; the parsed expression."""
        where = clip(self.source, 200) if self.source else f"schedule {short_repr(self.name)}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValidationError(f"{where}: a schedule's name is 1-64 letters, digits, '.', '_' or '-': {short_repr(self.name)}")
        if not isinstance(self.function, str) or not NAME_RE.match(self.function):
            raise ValidationError(f"{where}: not a function name: {short_repr(self.function)}")
        if self.kind not in KINDS:
            raise ValidationError(f"{where}: kind must be one of {', '.join(KINDS)}")
        if self.kind == RULE and self.timezone not in (None, "UTC"):
            raise ValidationError(f"{where}: an EventBridge rule runs in UTC; a time zone needs ScheduleV2")
        if self.input is not None and self.input_path is not None:
            raise ValidationError(f"{where}: give Input or InputPath, not both")
        if self.input is not None:
            if not isinstance(self.input, str) or len(self.input) > MAX_INPUT:
                raise ValidationError(f"{where}: Input must be a JSON text of at most {MAX_INPUT} characters")
            try:
                json.loads(self.input)
            except ValueError:
                raise ValidationError(f"{where}: Input is not valid JSON: {short_repr(self.input)}") from None
        if self.input_path is not None and (not isinstance(self.input_path, str) or not _PATH.fullmatch(self.input_path)):
            raise ValidationError(f"{where}: InputPath must be a path such as $.detail: {short_repr(self.input_path)}")
        try:
            return cron.parse(self.expression, self.timezone)
        except ValidationError as e:
            raise ValidationError(f"{where}: {e.message}") from None

    def arn(self) -> str:
        if self.kind == SCHEDULER:
            return f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{self.name}"
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.name}"

    def payload(self, when: datetime) -> bytes:
        """What the function receives: EventBridge's Scheduled Event, or the schedule's Input."""
        if self.input is not None:
            return self.input.encode()
        event: Any = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler" if self.kind == SCHEDULER else "aws.events",
            "account": ACCOUNT_ID,
            "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [self.arn()],
            "detail": {},
        }
        for key in (self.input_path or "$").split(".")[1:]:
            event = event.get(key) if isinstance(event, Mapping) else None
        return json.dumps(event).encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function,
            "expression": self.expression,
            "kind": self.kind,
            "timezone": self.timezone,
            "input": self.input,
            "input_path": self.input_path,
            "enabled": self.enabled,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Schedule:
        if not isinstance(raw, Mapping):
            raise ValidationError("a schedule must be an object")
        known = {"name", "function", "expression", "kind", "timezone", "input", "input_path", "enabled", "source"}
        extra = sorted(str(k) for k in raw if k not in known)
        if extra:
            raise ValidationError(f"a schedule has no field {short_repr(extra[0])}")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValidationError("a schedule's enabled must be true or false")
        texts = {k: raw.get(k) for k in ("name", "function", "expression", "kind", "timezone", "input", "input_path", "source")}
        for key, value in texts.items():
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"a schedule's {key} must be a string")
        schedule = cls(
            name=texts["name"] or "",
            function=texts["function"] or "",
            expression=texts["expression"] or "",
            kind=texts["kind"] or RULE,
            timezone=texts["timezone"],
            input=texts["input"],
            input_path=texts["input_path"],
            enabled=enabled,
            source=(texts["source"] or "")[:200],
        )
        schedule.check()
        return schedule


@dataclass
class _Entry:
    schedule: Schedule
    stack: str
    expression: cron.Expression
    anchor: datetime  # when a rate counts from
    next_at: datetime | None
    last_fired: datetime | None = None
    last_request: str | None = None
    last_error: str | None = None


class ScheduleBook:
    """Every stack's schedules, durable in faas.db, and the thread that fires them."""

    def __init__(
        self,
        db_path: Path,
        invoke_async: InvokeAsync,
        *,
        clock: Callable[[], float] = time.time,
        speedup_factor: float | None = None,
        start: bool = True,
    ) -> None:
        self._invoke = invoke_async
        self._clock = clock
        self._speedup = speedup_factor if speedup_factor is not None else speedup()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._entries: dict[str, _Entry] = {}  # by schedule name
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute(_TABLE)
        now = self._now()
        for stack, text in self._db.execute("SELECT stack, schedules_json FROM schedules ORDER BY stack").fetchall():
            try:
                for raw in json.loads(text):
                    schedule = Schedule.from_json(raw["schedule"])
                    anchor = datetime.fromtimestamp(float(raw["anchor"]), UTC)
                    self._entries[schedule.name] = self._entry(schedule, stack, anchor, now)
            except (ValueError, KeyError, TypeError, ValidationError):
                LOG.warning("schedules of %s could not be read back; skipped", stack)
        self._thread = threading.Thread(target=self._loop, name="schedules", daemon=True)
        if start:
            self._thread.start()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _entry(self, schedule: Schedule, stack: str, anchor: datetime, now: datetime) -> _Entry:
        expression = schedule.check()
        if isinstance(expression, cron.Rate) and self._speedup > 1:
            expression = cron.Rate(max(1, round(expression.seconds / self._speedup)))
        entry = _Entry(schedule, stack, expression, anchor, None)
        entry.next_at = expression.next_after(now, anchor) if schedule.enabled else None
        return entry

    # ---- registration (gateway/schedules_api.py) -----------------------------------------

    def put(self, stack: str, schedules: Sequence[Schedule], *, dry_run: bool = False) -> None:
        """Replace a stack's schedules (an empty list removes them); a name another stack
        uses, or two alike here, is a ValidationError and changes nothing."""
        if not isinstance(stack, str) or not _STACK.fullmatch(stack):
            raise ValidationError(f"not a stack name: {short_repr(stack)}")
        if len(schedules) > MAX_SCHEDULES:
            raise ValidationError(f"a template may have at most {MAX_SCHEDULES} schedules, got {len(schedules)}")
        seen: set[str] = set()
        for s in schedules:
            s.check()
            if s.name in seen:
                raise ValidationError(f"two schedules of the template are named {short_repr(s.name)}")
            seen.add(s.name)
        with self._lock:
            for s in schedules:
                other = self._entries.get(s.name)
                if other is not None and other.stack != stack:
                    raise ValidationError(f"schedule {short_repr(s.name)} belongs to another template ({other.stack})")
            if dry_run:
                return
            now = self._now()
            kept = {n: e for n, e in self._entries.items() if e.stack != stack}
            for s in schedules:
                old = self._entries.get(s.name)
                same = old is not None and old.schedule.expression == s.expression and old.schedule.timezone == s.timezone
                entry = self._entry(s, stack, old.anchor if old is not None and same else now, now)
                if old is not None:
                    entry.last_fired, entry.last_request, entry.last_error = old.last_fired, old.last_request, old.last_error
                kept[s.name] = entry
            saved = [
                {"schedule": e.schedule.to_json(), "anchor": e.anchor.timestamp()} for e in kept.values() if e.stack == stack
            ]
            if saved:
                self._db.execute(
                    "INSERT INTO schedules (stack, schedules_json, updated) VALUES (?, ?, ?)"
                    " ON CONFLICT(stack) DO UPDATE SET schedules_json = excluded.schedules_json, updated = excluded.updated",
                    (stack, json.dumps(saved, separators=(",", ":")), time.time()),
                )
            else:
                self._db.execute("DELETE FROM schedules WHERE stack = ?", (stack,))
            self._entries = kept
            self._wake.notify_all()

    def stacks(self) -> set[str]:
        with self._lock:
            return {e.stack for e in self._entries.values()}

    def list(self) -> list[dict[str, Any]]:
        """Every schedule with its next firing, for `faas schedules`."""

        def iso(at: datetime | None) -> str | None:
            return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None

        with self._lock:
            return [
                {
                    **e.schedule.to_json(),
                    "stack": e.stack,
                    "next": iso(e.next_at),
                    "last_fired": iso(e.last_fired),
                    "last_request_id": e.last_request,
                    "last_error": e.last_error,
                }
                for e in sorted(self._entries.values(), key=lambda e: e.schedule.name)
            ]

    def fire(self, name: str) -> str:
        """Fire a schedule now (`faas schedules fire NAME`), enabled or not; its request id."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                raise ValidationError(f"no schedule is named {short_repr(name)} (see `faas schedules`)")
        return self._fire(entry, self._now())

    def _fire(self, entry: _Entry, when: datetime) -> str:
        schedule = entry.schedule
        try:
            request_id = self._invoke(schedule.function, schedule.payload(when))
        except FaasError as e:
            entry.last_error = e.message
            LOG.warning("schedule %s: %s could not be called: %s", schedule.name, schedule.function, e.message)
            raise
        entry.last_fired, entry.last_request, entry.last_error = when, request_id, None
        LOG.info("schedule %s fired %s (request %s)", schedule.name, schedule.function, request_id)
        return request_id

    # ---- the firing thread -----------------------------------------------------------------

    def tick(self) -> int:
        """Fire what is due (each once, however late) and plan its next firing after now."""
        now = self._now()
        with self._lock:
            due = [e for e in self._entries.values() if e.next_at is not None and e.next_at <= now]
            for e in due:
                e.next_at = e.expression.next_after(now, e.anchor)
        for e in due:
            try:
                self._fire(e, now)
            except FaasError:
                pass  # said in the log and in `faas schedules`; the next firing is planned
        return len(due)

    def _wait_s(self) -> float:
        now = self._now()
        upcoming = [e.next_at for e in self._entries.values() if e.next_at is not None]
        if not upcoming:
            return IDLE_WAIT_S
        return max(0.0, min(IDLE_WAIT_S, (min(upcoming) - now).total_seconds()))

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                self._wake.wait(self._wait_s())
                if self._stopping:
                    return
            try:
                self.tick()
            except Exception:  # the schedules must keep firing whatever one firing does
                LOG.exception("schedule tick failed")

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._db.close()
