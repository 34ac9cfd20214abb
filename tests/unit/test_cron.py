"""EventBridge schedule expressions: a table of expressions and their next firing times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from faas.errors import ValidationError
from faas.events.cron import parse


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (expression, time zone, after (UTC), the next firings (UTC))
TABLE = [
    ("cron(0 10 * * ? *)", None, "2026-03-01T09:59:30", ["2026-03-01T10:00:00", "2026-03-02T10:00:00"]),
    ("cron(15 10 ? * 6L 2026)", None, "2026-01-01T00:00:00", ["2026-01-30T10:15:00", "2026-02-27T10:15:00"]),  # last Friday
    ("cron(0/15 * * * ? *)", None, "2026-05-05T12:07:00", ["2026-05-05T12:15:00", "2026-05-05T12:30:00", "2026-05-05T12:45:00"]),
    ("cron(0 18 ? * MON-FRI *)", None, "2026-12-04T18:00:00", ["2026-12-07T18:00:00", "2026-12-08T18:00:00"]),  # Fri -> Mon
    ("cron(0 8 1 * ? *)", None, "2026-01-31T00:00:00", ["2026-02-01T08:00:00", "2026-03-01T08:00:00"]),
    ("cron(0 12 L * ? *)", None, "2024-02-01T00:00:00", ["2024-02-29T12:00:00", "2024-03-31T12:00:00"]),  # leap February
    ("cron(0 9 LW * ? *)", None, "2026-05-01T00:00:00", ["2026-05-29T09:00:00", "2026-06-30T09:00:00"]),  # May 31 is a Sunday
    ("cron(0 9 15W * ? *)", None, "2026-08-01T00:00:00", ["2026-08-14T09:00:00", "2026-09-15T09:00:00"]),  # Aug 15 Sat -> Fri
    ("cron(0 9 1W * ? *)", None, "2026-08-01T00:00:00", ["2026-08-03T09:00:00", "2026-09-01T09:00:00"]),  # Aug 1 Sat -> Mon 3
    ("cron(0 10 ? * 3#2 *)", None, "2026-01-01T00:00:00", ["2026-01-13T10:00:00", "2026-02-10T10:00:00"]),  # second Tuesday
    (
        "cron(30 1,13 ? * SUN,SAT *)",
        None,
        "2026-06-05T00:00:00",
        ["2026-06-06T01:30:00", "2026-06-06T13:30:00", "2026-06-07T01:30:00"],
    ),
    ("cron(0 0 29 2 ? *)", None, "2026-01-01T00:00:00", ["2028-02-29T00:00:00", "2032-02-29T00:00:00"]),
    ("cron(0 0 1 JAN-MAR/2 ? 2026-2027)", None, "2026-01-01T00:00:00", ["2026-03-01T00:00:00", "2027-01-01T00:00:00"]),
    ("cron(5 4 ? * L *)", None, "2026-06-01T00:00:00", ["2026-06-06T04:05:00", "2026-06-13T04:05:00"]),  # L alone: Saturday
    # Time zones: 09:00 in Paris is 08:00 UTC in winter, 07:00 in summer (DST from 2026-03-29).
    ("cron(0 9 * * ? *)", "Europe/Paris", "2026-03-27T12:00:00", ["2026-03-28T08:00:00", "2026-03-29T07:00:00"]),
    # 02:30 does not exist in Paris on 2026-03-29: that day is not fired.
    ("cron(30 2 * * ? *)", "Europe/Paris", "2026-03-28T02:00:00", ["2026-03-30T00:30:00"]),
    ("cron(0 0 1 1 ? 2025)", None, "2026-01-01T00:00:00", []),  # no year left
    ("at(2026-07-01T12:00:00)", "America/New_York", "2026-06-01T00:00:00", ["2026-07-01T16:00:00"]),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), TABLE)
def test_next_firings(expression: str, tz: str | None, after: str, expected: list[str]) -> None:
    parsed = parse(expression, tz)
    at = utc(after)
    seen = []
    for _ in expected or [None]:
        nxt = parsed.next_after(at, at)
        if nxt is None:
            break
        seen.append(nxt.replace(tzinfo=None).isoformat())
        at = nxt
    assert seen == expected


def test_a_rate_fires_every_period_from_its_anchor_and_skips_what_was_missed() -> None:
    rate = parse("rate(5 minutes)")
    anchor = utc("2026-01-01T00:00:00")
    assert rate.next_after(anchor, anchor) == utc("2026-01-01T00:05:00")
    # faas was stopped from 00:06 to 01:02: the firings in between are skipped, the rhythm kept.
    assert rate.next_after(utc("2026-01-01T01:02:10"), anchor) == utc("2026-01-01T01:05:00")
    assert parse("rate(1 day)").next_after(anchor, anchor) == utc("2026-01-02T00:00:00")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "rate(5 minutes)"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "a ScheduleExpression is"),
        ("cron(0 10 * * *)", "six fields"),
        ("cron(0 10 * * * *)", "must be '?'"),
        ("cron(0 10 ? * ? *)", "must be '?'"),
        ("cron(60 10 * * ? *)", "outside 0-59"),
        ("cron(0 10 * 13 ? *)", "outside 1-12"),
        ("cron(0 10 ? * 8 *)", "outside 1-7"),
        ("cron(0 10 ? * 2#6 *)", "# takes 1-5"),
        ("cron(0 10-5 * * ? *)", "backwards"),
        ("cron(0 10 * * ? 1969)", "outside 1970-2199"),
        ("cron(0 x * * ? *)", "not a value"),
        ("every day", "a ScheduleExpression is"),
    ],
)
def test_bad_expressions_are_refused_with_a_reason(expression: str, message: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse(expression)
    assert message in e.value.message


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        parse("cron(0 10 * * ? *)", "Mars/Olympus")
