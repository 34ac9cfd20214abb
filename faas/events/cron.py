"""EventBridge's schedule expressions and when they fire next: `rate(...)`, the six-field
`cron(...)` and Scheduler's one-time `at(...)`.

Pure: no clock, no I/O, so that a table of expressions and instants pins the rules down
(tests/unit/test_cron.py). The rules are EventBridge's, not Unix cron's: six fields
(minutes hours day-of-month month day-of-week year), day-of-week 1-7 is SUN-SAT, one of the
two day fields must be `?`, and `L`, `W`, `#` mean what Quartz makes them mean. A cron
expression is evaluated on the wall clock of its time zone (UTC unless the schedule names
one), so a 09:00 schedule stays at 09:00 across daylight saving; a wall time that a
spring-forward skips does not exist and is not fired that day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from faas.errors import ValidationError
from faas.models import short_repr

MAX_EXPRESSION = 256
YEAR_MIN, YEAR_MAX = 1970, 2199
_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_RATE = re.compile(r"rate\(\s*(\d{1,9})\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def zone(name: str | None) -> tzinfo:
    """A schedule's time zone (IANA name); UTC when none is given."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {short_repr(name)} (an IANA name such as Europe/Paris)") from None


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, after: datetime, anchor: datetime) -> datetime:
        """The first anchor + k*period strictly after `after` (k >= 1): firings between are skipped."""
        elapsed = (after - anchor).total_seconds()
        k = max(1, int(elapsed // self.seconds) + 1)
        return anchor + timedelta(seconds=k * self.seconds)


@dataclass(frozen=True)
class At:
    when: datetime  # aware

    def next_after(self, after: datetime, anchor: datetime) -> datetime | None:
        return self.when if self.when > after else None


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    dom: str  # the day-of-month field as written ("?" when day-of-week decides)
    dow: str
    tz: tzinfo

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        """The first firing strictly after `after` (aware), None when the years run out."""
        local = after.astimezone(self.tz).replace(second=0, microsecond=0, tzinfo=None)
        local += timedelta(minutes=1)
        day = local.date()
        for year in sorted(y for y in self.years if y >= day.year):
            for month in sorted(self.months):
                if (year, month) < (day.year, day.month):
                    continue
                days = _days_in(self.dom, self.dow, year, month)
                for d in days:
                    if (year, month, d) < (day.year, day.month, day.day):
                        continue
                    first = (year, month, d) == (day.year, day.month, day.day)
                    for hour in sorted(self.hours):
                        if first and hour < local.hour:
                            continue
                        for minute in sorted(self.minutes):
                            if first and hour == local.hour and minute < local.minute:
                                continue
                            wall = datetime(year, month, d, hour, minute)
                            found = _real(wall, self.tz)
                            if found is not None and found > after:
                                return found
        return None


Expression = Rate | Cron | At


def parse(text: str, tz_name: str | None = None) -> Expression:
    """A ScheduleExpression, or a ValidationError that says what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("ScheduleExpression must be rate(...), cron(...) or at(...)")
    if len(text) > MAX_EXPRESSION:
        raise ValidationError(f"ScheduleExpression may be at most {MAX_EXPRESSION} characters")
    text = text.strip()
    tz = zone(tz_name)
    m = _RATE.fullmatch(text)
    if m:
        value, unit = int(m.group(1)), m.group(2)
        if value < 1:
            raise ValidationError(f"{short_repr(text)}: the rate must be a positive number")
        if (value == 1) == unit.endswith("s"):
            want = unit.rstrip("s") if value == 1 else unit + ("" if unit.endswith("s") else "s")
            raise ValidationError(f"{short_repr(text)}: EventBridge wants rate({value} {want})")
        return Rate(value * _UNIT_S[unit.rstrip("s")])
    m = _AT.fullmatch(text)
    if m:
        try:
            wall = datetime.fromisoformat(m.group(1))
        except ValueError:
            raise ValidationError(f"{short_repr(text)}: not a date and time") from None
        return At(wall.replace(tzinfo=tz).astimezone(UTC))
    m = _CRON.fullmatch(text)
    if not m:
        raise ValidationError(
            f"{short_repr(text)}: a ScheduleExpression is rate(N unit), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss)"
        )
    return parse_cron(m.group(1), tz)


def parse_cron(body: str, tz: tzinfo = UTC) -> Cron:
    fields = body.split()
    where = f"cron({short_repr(body)[1:-1]})"
    if len(fields) != 6:
        raise ValidationError(f"{where}: a cron expression has six fields (minutes hours day-of-month month day-of-week year)")
    minutes, hours, dom, month, dow, year = (f.upper() for f in fields)
    if (dom == "?") == (dow == "?"):
        raise ValidationError(f"{where}: one of day-of-month and day-of-week must be '?', and only one")
    parsed = Cron(
        minutes=_field(minutes, 0, 59, {}, where, "minutes"),
        hours=_field(hours, 0, 23, {}, where, "hours"),
        months=_field(month, 1, 12, _MONTHS, where, "month"),
        years=_field(year, YEAR_MIN, YEAR_MAX, {}, where, "year"),
        dom=dom,
        dow=dow,
        tz=tz,
    )
    # The day fields are checked by evaluating them once on a month with every weekday.
    _days_in(dom, dow, 2024, 1, where)
    return parsed


def _field(text: str, lo: int, hi: int, names: dict[str, int], where: str, what: str) -> frozenset[int]:
    if text in ("*", "?"):
        return frozenset(range(lo, hi + 1))
    out: set[int] = set()
    for part in text.split(","):
        out |= _part(part, lo, hi, names, where, what)
    return frozenset(out)


def _number(token: str, lo: int, hi: int, names: dict[str, int], where: str, what: str) -> int:
    value = names.get(token)
    if value is None:
        if not token.isdigit():
            raise ValidationError(f"{where}: {what}: {short_repr(token)} is not a value")
        value = int(token)
    if not lo <= value <= hi:
        raise ValidationError(f"{where}: {what}: {value} is outside {lo}-{hi}")
    return value


def _part(part: str, lo: int, hi: int, names: dict[str, int], where: str, what: str) -> set[int]:
    base, _, step_text = part.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValidationError(f"{where}: {what}: the step {short_repr(step_text)} must be a positive number")
        step = int(step_text)
    if base == "*":
        start, end = lo, hi
    elif "-" in base:
        a, _, b = base.partition("-")
        start, end = _number(a, lo, hi, names, where, what), _number(b, lo, hi, names, where, what)
        if start > end:
            raise ValidationError(f"{where}: {what}: the range {short_repr(base)} runs backwards")
    else:
        start = _number(base, lo, hi, names, where, what)
        end = hi if step_text else start
    return set(range(start, end + 1, step))


def _days_in(dom: str, dow: str, year: int, month: int, where: str = "cron") -> list[int]:
    """The days of one month a cron's day fields select, in order."""
    last = calendar.monthrange(year, month)[1]
    if dow == "?":
        return sorted(_dom_days(dom, year, month, last, where))
    return sorted(_dow_days(dow, year, month, last, where))


def _aws_dow(year: int, month: int, day: int) -> int:
    return (calendar.weekday(year, month, day) + 1) % 7 + 1  # Monday=0 -> 2; Sunday=6 -> 1


def _dom_days(text: str, year: int, month: int, last: int, where: str) -> set[int]:
    if text == "*":
        return set(range(1, last + 1))
    out: set[int] = set()
    for part in text.split(","):
        if part == "L":
            out.add(last)
        elif part == "LW":
            out.add(_weekday_near(last, year, month, last))
        elif part.startswith("L-") and part[2:].isdigit():
            out.add(max(1, last - int(part[2:])))
        elif part.endswith("W") and part[:-1].isdigit():
            day = _number(part[:-1], 1, 31, {}, where, "day-of-month")
            if day <= last:
                out.add(_weekday_near(day, year, month, last))
        else:
            out |= {d for d in _part(part, 1, 31, {}, where, "day-of-month") if d <= last}
    return out


def _weekday_near(day: int, year: int, month: int, last: int) -> int:
    """Quartz's W: the weekday nearest to `day`, never crossing into another month."""
    dow = calendar.weekday(year, month, day)  # Monday=0
    if dow == 5:  # Saturday: Friday, or Monday when the 1st is a Saturday
        return day - 1 if day > 1 else day + 2
    if dow == 6:  # Sunday: Monday, or Friday when it is the last day
        return day + 1 if day < last else day - 2
    return day


def _dow_days(text: str, year: int, month: int, last: int, where: str) -> set[int]:
    all_days = range(1, last + 1)
    if text == "*":
        return set(all_days)
    out: set[int] = set()
    for part in text.split(","):
        if part == "L":
            part = "7"  # alone, L is the last day of the week: Saturday
        if "#" in part:
            a, _, b = part.partition("#")
            want = _number(a, 1, 7, _DAYS, where, "day-of-week")
            if not b.isdigit() or not 1 <= int(b) <= 5:
                raise ValidationError(f"{where}: day-of-week: {short_repr(part)}: # takes 1-5")
            matching = [d for d in all_days if _aws_dow(year, month, d) == want]
            if int(b) <= len(matching):
                out.add(matching[int(b) - 1])
        elif part.endswith("L") and len(part) > 1:
            want = _number(part[:-1], 1, 7, _DAYS, where, "day-of-week")
            out.add(max(d for d in all_days if _aws_dow(year, month, d) == want))
        else:
            wanted = _part(part, 1, 7, _DAYS, where, "day-of-week")
            out |= {d for d in all_days if _aws_dow(year, month, d) in wanted}
    return out


def _real(wall: datetime, tz: tzinfo) -> datetime | None:
    """A wall-clock time in tz as an instant; None when a clock change skips it."""
    aware = wall.replace(tzinfo=tz)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return aware.astimezone(UTC) if back == wall else None
