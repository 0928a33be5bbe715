"""Cron expressions mean what crontab(5) says, and a mistake names the field and the fix."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from promoter.cron import CronExpression, CronSyntaxError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("expr", "when", "expected"), [
    ("0 9 * * mon-thu", "2026-11-23T09:00", True),    # Monday
    ("0 9 * * mon-thu", "2026-11-27T09:00", False),   # Friday
    ("0 9 * * mon-thu", "2026-11-23T09:01", False),
    ("*/15 * * * *", "2026-11-23T10:45", True),
    ("*/15 * * * *", "2026-11-23T10:46", False),
    ("0 0 1 jan *", "2027-01-01T00:00", True),
    ("0 0 1 JAN *", "2027-01-01T00:00", True),
    ("0 0 * * 7", "2026-11-29T00:00", True),         # 7 is Sunday too
    ("0 0 * * 0", "2026-11-29T00:00", True),
    ("30 8-18/2 * * *", "2026-11-23T10:30", True),
    ("30 8-18/2 * * *", "2026-11-23T11:30", False),
    ("0 12 1,15 * *", "2026-11-15T12:00", True),
    ("0 12 1,15 * *", "2026-11-16T12:00", False),
    # Both day fields restricted: either matches (Vixie cron).
    ("0 0 13 * fri", "2026-11-13T00:00", True),       # the 13th (a Friday)
    ("0 0 13 * fri", "2026-11-20T00:00", True),       # a Friday, not the 13th
    ("0 0 13 * fri", "2026-11-19T00:00", False),
    # Only one restricted: it alone decides.
    ("0 0 13 * *", "2026-11-20T00:00", False),
    ("0 0 */2 * fri", "2026-11-20T00:00", False),    # day-of-month starts with *: AND
    ("0 0 */2 * fri", "2026-11-27T00:00", True),     # odd day and a Friday
    ("0 0 */2 * fri", "2026-11-26T00:00", False),
])
def test_matches(expr: str, when: str, expected: bool) -> None:
    assert CronExpression.parse(expr).matches(at(when)) is expected


@pytest.mark.parametrize(("expr", "message"), [
    ("0 9 * *", "has 4 fields; a cron expression has five"),
    ("0 9 * * * *", "has 6 fields"),
    ("60 9 * * *", "the minute field '60' has '60'; expected 0-59"),
    ("0 24 * * *", "the hour field '24' has '24'; expected 0-23"),
    ("0 9 0 * *", "the day of month field '0' has '0'; expected 1-31"),
    ("0 9 * foo *", "the month field 'foo' has 'foo'; expected 1-12 or jan-dec"),
    ("0 9 * * mon-fry", "the day of week field 'mon-fry' has 'fry'; expected 0-7 or sun-sat"),
    ("0 9 * * fri-mon", "runs backwards"),
    ("*/0 9 * * *", "a step is a positive whole number"),
    ("1,,2 9 * * *", "empty list item"),
    ("\u00b2 9 * * *", "expected 0-59"),          # '²' is a digit to str.isdigit only
    ("*/\u00b2 9 * * *", "a step is a positive whole number"),
])
def test_errors_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as info:
        CronExpression.parse(expr)
    assert message in str(info.value)


def brute_next(cron: CronExpression, when: datetime) -> datetime:
    current = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while not cron.matches(current):
        current += timedelta(minutes=1)
    return current


@pytest.mark.parametrize("expr", ["0 9 * * mon-thu", "*/7 3-5 * * *", "0 0 29 feb *",
                                  "15 10 13 * fri", "0 0 1 jan,jul *"])
@pytest.mark.parametrize("start", ["2026-11-23T08:59", "2026-11-26T16:00",
                                   "2026-12-31T23:59"])
def test_next_after_agrees_with_minute_by_minute_search(expr: str, start: str) -> None:
    cron = CronExpression.parse(expr)
    when = at(start)
    expected = brute_next(cron, when) if expr != "0 0 29 feb *" else at("2028-02-29T00:00")
    assert cron.next_after(when, limit=timedelta(days=800)) == expected


def test_next_after_gives_up_at_the_limit() -> None:
    cron = CronExpression.parse("0 0 29 feb *")
    assert cron.next_after(at("2026-03-01T00:00"), limit=timedelta(days=365)) is None


def test_latest_at_or_before() -> None:
    cron = CronExpression.parse("0 9 * * mon-thu")
    monday_nine = at("2026-11-23T09:00")
    assert cron.latest_at_or_before(at("2026-11-23T15:59"), within=timedelta(hours=7)) == \
        monday_nine
    assert cron.latest_at_or_before(monday_nine, within=timedelta(minutes=1)) == monday_nine
    assert cron.latest_at_or_before(at("2026-11-23T16:01"), within=timedelta(hours=7)) is None
    # Saturday noon: the last start was Thursday 09:00.
    assert cron.latest_at_or_before(at("2026-11-28T12:00"), within=timedelta(days=3)) == \
        at("2026-11-26T09:00")
