"""Cron expressions mean what crontab(5) says, and a mistake names the field and the fix."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from promoter.cron import CronExpression, CronSyntaxError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def fires_at(expr: str, when: str) -> bool:
    moment = at(when)
    return CronExpression.parse(expr).next_after(moment - timedelta(minutes=1)) == moment


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
    ("0 0 * * fri-7", "2026-11-29T00:00", True),     # a range up to 7 includes Sunday
    ("30 8-18/2 * * *", "2026-11-23T10:30", True),
    ("30 8-18/2 * * *", "2026-11-23T11:30", False),
    ("0 12 1,15 * *", "2026-11-15T12:00", True),
    ("0 12 1,15 * *", "2026-11-16T12:00", False),
    ("5/20 * * * *", "2026-11-23T10:45", True),      # a/n runs from a to the field's end
    ("5/20 * * * *", "2026-11-23T10:00", False),
    # Both day fields restricted: either matches (Vixie cron).
    ("0 0 13 * fri", "2026-11-13T00:00", True),       # the 13th (a Friday)
    ("0 0 13 * fri", "2026-11-20T00:00", True),       # a Friday, not the 13th
    ("0 0 13 * fri", "2026-11-19T00:00", False),
    # Only one restricted: it alone decides.
    ("0 0 13 * *", "2026-11-20T00:00", False),
    ("0 0 */2 * fri", "2026-11-20T00:00", False),    # day-of-month starts with *: AND
    ("0 0 */2 * fri", "2026-11-27T00:00", True),     # odd day and a Friday
    ("0 0 */2 * fri", "2026-11-26T00:00", False),
    # A range of one value with a step is that value (crontab(5)), not a/n.
    ("0 12-12/5 * * *", "2026-11-23T12:00", True),
    ("0 12-12/5 * * *", "2026-11-23T17:00", False),
    ("0 0 * * tue-2/3", "2026-11-24T00:00", True),    # Tuesday
    ("0 0 * * tue-2/3", "2026-11-27T00:00", False),   # Friday
])
def test_matches(expr: str, when: str, expected: bool) -> None:
    assert fires_at(expr, when) is expected


@pytest.mark.parametrize(("expr", "message"), [
    ("0 9 * *", "has 4 fields; a cron expression has five"),
    ("0 9 * * * *", "has 6 fields"),                  # cronsim would read a seconds field
    ("60 9 * * *", "the minute field '60' is not valid; expected 0-59,"),
    ("0 24 * * *", "the hour field '24' is not valid; expected 0-23,"),
    ("0 9 0 * *", "the day of month field '0' is not valid; expected 1-31,"),
    ("0 9 * foo *", "the month field 'foo' is not valid; expected 1-12 or jan-dec,"),
    ("0 9 * * mon-fry",
     "the day of week field 'mon-fry' is not valid; expected 0-7 or sun-sat (0 and 7 are "
     "Sunday),"),
    ("0 9 * * fri-mon", "with the smaller bound first"),
    ("*/0 9 * * *", "a step of 1 or more"),
    ("0 0 * * sun-0/0", "the day of week field 'sun-0/0' is not valid"),
    ("1,,2 9 * * *", "the minute field '1,,2' is not valid"),
    ("0 mon * * *", "the hour field 'mon' is not valid"),
    ("*-5 9 * * *", "the minute field '*-5' is not valid"),
    ("\u00b2 9 * * *", "the minute field '\u00b2' is not valid"),  # a digit to isdigit only
    ("*/\u00b2 9 * * *", "the minute field '*/\u00b2' is not valid"),
    ("0 9 * * \u017fat", "the day of week field '\u017fat' is not valid"),  # long s: upper() is 'S'
    ("1" * 5000 + " 9 * * *", "the minute field '1111"),  # over int()'s digit limit
    # Extensions cronsim has and crontab(5) does not.
    ("0 0 L * *", "the day of month field 'L' is not valid"),
    ("0 0 LW * *", "the day of month field 'LW' is not valid"),
    ("0 0 * * 5L", "the day of week field '5L' is not valid"),
    ("0 0 * * 5#2", "the day of week field '5#2' is not valid"),
    ("0 0 ? * *", "the day of month field '?' is not valid"),
    # A day no month given has: cronsim refuses it, and the window would never open.
    ("0 0 30 feb *", "the day of month field '30' never occurs in the month field 'feb'"),
    ("0 0 31 apr,jun *", "never occurs in the month field 'apr,jun'"),
])
def test_errors_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as info:
        CronExpression.parse(expr)
    assert message in str(info.value)


def test_a_day_that_exists_in_some_given_month_is_accepted() -> None:
    assert fires_at("0 0 31 feb,mar *", "2027-03-31T00:00")
    assert fires_at("0 0 29 feb *", "2028-02-29T00:00")
    assert fires_at("0 0 30 feb mon", "2027-02-01T00:00")  # OR: every Monday in February


@pytest.mark.parametrize(("expr", "start", "expected"), [
    ("0 9 * * mon-thu", "2026-11-23T08:59", "2026-11-23T09:00"),
    ("0 9 * * mon-thu", "2026-11-23T09:00:30", "2026-11-24T09:00"),   # strictly after
    ("0 9 * * mon-thu", "2026-11-26T16:00", "2026-11-30T09:00"),      # Thursday -> Monday
    ("0 9 * * mon-thu", "2026-12-31T23:59", "2027-01-04T09:00"),      # across the year
    ("*/7 3-5 * * *", "2026-11-23T03:56", "2026-11-23T04:00"),
    ("*/7 3-5 * * *", "2026-11-23T05:56", "2026-11-24T03:00"),
    ("15 10 13 * fri", "2026-11-23T08:59", "2026-11-27T10:15"),       # a Friday
    ("15 10 13 * fri", "2026-12-11T10:15", "2026-12-13T10:15"),       # the 13th (Sunday)
    ("0 0 1 jan,jul *", "2026-11-23T08:59", "2027-01-01T00:00"),
    ("0 0 29 feb *", "2026-11-23T08:59", "2028-02-29T00:00"),
])
def test_next_after(expr: str, start: str, expected: str) -> None:
    found = CronExpression.parse(expr).next_after(at(start), limit=timedelta(days=800))
    assert found == at(expected)


def test_next_after_gives_up_at_the_limit() -> None:
    cron = CronExpression.parse("0 0 29 feb *")
    assert cron.next_after(at("2026-03-01T00:00"), limit=timedelta(days=365)) is None


def test_latest_at_or_before() -> None:
    cron = CronExpression.parse("0 9 * * mon-thu")
    monday_nine = at("2026-11-23T09:00")
    assert cron.latest_at_or_before(at("2026-11-23T15:59"), within=timedelta(hours=7)) == \
        monday_nine
    assert cron.latest_at_or_before(monday_nine, within=timedelta(minutes=1)) == monday_nine
    assert cron.latest_at_or_before(at("2026-11-23T09:00:59.5"),
                                    within=timedelta(minutes=1)) == monday_nine
    assert cron.latest_at_or_before(at("2026-11-23T16:01"), within=timedelta(hours=7)) is None
    # Saturday noon: the last start was Thursday 09:00.
    assert cron.latest_at_or_before(at("2026-11-28T12:00"), within=timedelta(days=3)) == \
        at("2026-11-26T09:00")


def test_times_must_be_naive_wall_clock() -> None:
    cron = CronExpression.parse("30 2 * * *")
    with pytest.raises(TypeError):
        cron.next_after(datetime(2027, 3, 27, 12, tzinfo=ZoneInfo("Europe/Berlin")))


def test_the_library_reads_single_value_steps_and_daylight_saving_its_own_way() -> None:
    """What cronsim does where promoter decided otherwise (module doc); if cronsim changes,
    this fails and the workaround or the decision can be revisited."""
    # `12-12/5` is 12 alone in crontab(5). cronsim 2.8 read it as 12/5 (12, 17, 22); 2.9
    # reads it as crontab(5) does. Promoter passes the single value either way.
    library = next(CronSim("0 12-12/5 * * *", at("2026-11-23T12:00")))
    assert library in (at("2026-11-23T17:00"), at("2026-11-24T12:00"))
    assert CronExpression.parse("0 12-12/5 * * *").next_after(at("2026-11-23T12:00")) == \
        at("2026-11-24T12:00")
    # 02:30 does not exist in Berlin on 2027-03-28. Given an aware time, cronsim runs the
    # job at 03:00 as Debian's cron does; promoter works on wall-clock times and the change
    # window gate skips that start (tests/test_change_windows.py).
    berlin = ZoneInfo("Europe/Berlin")
    aware = next(CronSim("30 2 * * *", datetime(2027, 3, 27, 12, tzinfo=berlin)))
    assert aware == datetime(2027, 3, 28, 3, 0, tzinfo=berlin)
    assert CronExpression.parse("30 2 * * *").next_after(at("2027-03-27T12:00")) == \
        at("2027-03-28T02:30")
    # 02:00 happens twice in Berlin on 2026-10-25. For an `*`-hour expression cronsim steps
    # in real time and matches both; promoter counts the wall-clock start once.
    hourly = CronSim("0 * * * *", datetime(2026, 10, 25, 1, 30, tzinfo=berlin))
    utc = ZoneInfo("UTC")
    assert [next(hourly).astimezone(utc).hour for _ in range(3)] == [0, 1, 2]
