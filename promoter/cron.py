"""Cron expressions (the five fields of crontab(5)), matched against wall-clock minutes.

Change windows and recurring freezes are written as "starts at each time this cron expression
matches, lasts this long". Only what crontab(5) defines is accepted, so an expression means
the same here as in every other tool a platform team uses:

- five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec),
  day of week (0-7 or sun-sat; 0 and 7 are Sunday);
- in each field `*`, a number or name, a range `a-b`, a step `*/n` or `a-b/n`, and lists of
  those separated by commas;
- when both day of month and day of week are restricted (neither starts with `*`), a day
  matches if either matches, as in Vixie cron.

Times are naive wall-clock times in the schedule's time zone; the caller converts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class CronSyntaxError(ValueError):
    """The expression is not a five-field crontab(5) expression; the message says where."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day of week", 0, 7, _DAYS, 0),
)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed expression: the set of allowed values per field."""

    source: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday … 6 = Saturday (7 is folded into 0)."""
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        parts = text.split()
        if len(parts) != 5:
            raise CronSyntaxError(
                f"{text!r} has {len(parts)} fields; a cron expression has five: "
                "minute hour day-of-month month day-of-week, e.g. '0 9 * * mon-fri'")
        values = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in values[4])
        return cls(
            source=" ".join(parts), minutes=values[0], hours=values[1], days=values[2],
            months=values[3], weekdays=weekdays,
            days_restricted=not parts[2].startswith("*"),
            weekdays_restricted=not parts[4].startswith("*"),
        )

    def matches_day(self, when: datetime) -> bool:
        if when.month not in self.months:
            return False
        in_month = when.day in self.days
        in_week = (when.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def matches(self, when: datetime) -> bool:
        """True if the minute `when` (naive wall-clock time) is one this expression fires at."""
        return (when.minute in self.minutes and when.hour in self.hours
                and self.matches_day(when))

    def next_after(self, when: datetime, *, limit: timedelta = timedelta(days=400)
                   ) -> datetime | None:
        """The first matching minute strictly after `when` (naive), or None within `limit`.

        Skips whole days and hours that cannot match, so even a yearly expression takes a
        few hundred steps.
        """
        current = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = when + limit
        while current <= end:
            if not self.matches_day(current):
                current = (current + timedelta(days=1)).replace(hour=0, minute=0)
            elif current.hour not in self.hours:
                current = (current + timedelta(hours=1)).replace(minute=0)
            elif current.minute not in self.minutes:
                current += timedelta(minutes=1)
            else:
                return current
        return None

    def latest_at_or_before(self, when: datetime, *, within: timedelta) -> datetime | None:
        """The last matching minute in (`when` - `within`, `when`] (naive), or None."""
        current = when.replace(second=0, microsecond=0)
        start = when - within
        while current > start:
            if not self.matches_day(current):
                current = current.replace(hour=0, minute=0) - timedelta(minutes=1)
            elif current.hour not in self.hours:
                current = current.replace(minute=0) - timedelta(minutes=1)
            elif current.minute not in self.minutes:
                current -= timedelta(minutes=1)
            else:
                return current
        return None


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronSyntaxError(f"the {spec.name} field {text!r} has an empty list item")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise CronSyntaxError(
                    f"the {spec.name} field {text!r} has step {step_text!r}; "
                    "a step is a positive whole number, e.g. */15")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec, text), _value(last, spec, text)
            if low > high:
                raise CronSyntaxError(
                    f"the {spec.name} field {text!r} has range {base!r} that runs backwards; "
                    "write the smaller bound first")
        else:
            low = _value(base, spec, text)
            high = spec.high if step_text else low
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _value(token: str, spec: _Field, field_text: str) -> int:
    lowered = token.lower()
    if lowered in spec.names:
        return spec.names.index(lowered) + spec.name_base
    if lowered.isascii() and lowered.isdigit() and spec.low <= int(lowered) <= spec.high:
        return int(lowered)
    named = f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
    raise CronSyntaxError(
        f"the {spec.name} field {field_text!r} has {token!r}; expected "
        f"{spec.low}-{spec.high}{named}")
