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

Matching is done by the `cronsim` library (maintained, typed, no dependencies, written to
behave like Debian's cron). This module keeps what promoter adds around it:

- Syntax is checked here first, in ASCII only. cronsim accepts more than crontab(5) (a sixth,
  seconds field; `L`, `LW` and `#` in the day fields) and upper-cases the text before reading
  names, so `sat` spelt with U+017F (long s) would read as `SAT`; all of that is refused, as
  are superscript digits.
- A range with one value and a step (`12-12/5`) means that one value in crontab(5); cronsim
  reads it as `12/5` (12, 17, 22), so it is handed the value alone.
- A day of month that never occurs in the months given (`0 0 30 feb *`) is refused, as
  cronsim refuses it; such a window would never open.
- Times are naive wall-clock times in the schedule's time zone, and the caller converts
  (promoter.change_windows). cronsim's own daylight-saving rules, which apply to aware
  datetimes, are deliberately not used: like Debian's cron it runs a fixed-time job skipped
  by spring-forward at the end of the gap, and an `*`-hour job twice in the repeated hour of
  fall-back. A change window must not open at a time nobody wrote, so promoter skips a start
  the clock skipped and counts a repeated wall-clock start once, at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronsim import CronSim, CronSimError

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_VALUE = r"(?:[0-9]+|[a-z]{3})"
_ITEM = rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/[0-9]+)?"
_FIELD_SYNTAX = re.compile(rf"{_ITEM}(?:,{_ITEM})*", re.ASCII | re.IGNORECASE)
"""One field of crontab(5). re.ASCII: with IGNORECASE alone, U+017F (long s) would match
`s`."""

_SINGLE_RANGE_STEP = re.compile(rf"({_VALUE})-({_VALUE})/0*[1-9][0-9]*",
                                re.ASCII | re.IGNORECASE)
"""`a-b/n` with n of 1 or more (a step of 0 is left for cronsim to refuse)."""

_PROBE_START = datetime(2000, 1, 1)
"""Any naive time: cronsim checks an expression when it is constructed."""


class CronSyntaxError(ValueError):
    """The expression is not a five-field crontab(5) expression; the message says where."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0
    note: str = ""

    def value(self, token: str) -> int | None:
        """The number `token` stands for, or None if it is not a number or a name."""
        lowered = token.lower()
        if lowered in self.names:
            return self.names.index(lowered) + self.name_base
        try:
            return int(lowered)
        except ValueError:  # a name of another field, or a number over 4300 digits
            return None

    def error(self, text: str) -> CronSyntaxError:
        named = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return CronSyntaxError(
            f"the {self.name} field {text!r} is not valid; expected {self.low}-{self.high}"
            f"{named}{self.note}, * or a range a-b with the smaller bound first, each "
            "optionally with a step of 1 or more such as */15, or a comma-separated list "
            "of those")


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day of week", 0, 7, _DAYS, 0, " (0 and 7 are Sunday)"),
)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A checked expression and the queries change windows need."""

    source: str
    """The expression as written, with its fields separated by single spaces."""
    _library_form: str
    """What cronsim is given: `source` with single-value ranges collapsed (module doc)."""

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Check `text`; raise CronSyntaxError naming the field and what it may hold."""
        parts = text.split()
        if len(parts) != 5:
            raise CronSyntaxError(
                f"{text!r} has {len(parts)} fields; a cron expression has five: "
                "minute hour day-of-month month day-of-week, e.g. '0 9 * * mon-fri'")
        for part, spec in zip(parts, _FIELDS, strict=True):
            if _FIELD_SYNTAX.fullmatch(part) is None:
                raise spec.error(part)
        library_form = " ".join(_collapse_single_ranges(part, spec)
                                for part, spec in zip(parts, _FIELDS, strict=True))
        if not _accepted(library_form):
            raise _locate(parts)
        return cls(source=" ".join(parts), _library_form=library_form)

    def next_after(self, when: datetime, *, limit: timedelta = timedelta(days=400)
                   ) -> datetime | None:
        """The first matching minute strictly after `when` (naive), or None within `limit`."""
        _require_naive(when)
        try:
            found = next(CronSim(self._library_form, when))
        except StopIteration:  # cronsim gives up after 50 years without a match
            return None
        return found if found <= when + limit else None

    def latest_at_or_before(self, when: datetime, *, within: timedelta) -> datetime | None:
        """The last matching minute in (`when` - `within`, `when`] (naive), or None."""
        _require_naive(when)
        # Going backwards cronsim first steps back one second: start one second after the
        # minute so that the minute itself is a candidate.
        start = when.replace(second=0, microsecond=0) + timedelta(seconds=1)
        try:
            found = next(CronSim(self._library_form, start, reverse=True))
        except StopIteration:
            return None
        return found if found > when - within else None


def _collapse_single_ranges(part: str, spec: _Field) -> str:
    """`part` with every `a-a/n` item replaced by `a`, its crontab(5) meaning (module doc)."""
    items = []
    for item in part.split(","):
        match = _SINGLE_RANGE_STEP.fullmatch(item)
        if match is not None:
            low, high = spec.value(match[1]), spec.value(match[2])
            if low is not None and low == high:
                item = match[1]
        items.append(item)
    return ",".join(items)


def _accepted(expression: str) -> bool:
    try:
        CronSim(expression, _PROBE_START)
    except (CronSimError, ValueError):  # ValueError: int() of a number over 4300 digits
        return False
    return True


def _locate(parts: list[str]) -> CronSyntaxError:
    """Name the field cronsim refused: each alone among `*`s, then day of month with month."""
    for index, (part, spec) in enumerate(zip(parts, _FIELDS, strict=True)):
        probe = ["*"] * 5
        probe[index] = _collapse_single_ranges(part, spec)
        if not _accepted(" ".join(probe)):
            return spec.error(part)
    return CronSyntaxError(
        f"the day of month field {parts[2]!r} never occurs in the month field {parts[3]!r}, "
        "so this would never match; use days those months have")


def _require_naive(when: datetime) -> None:
    if when.tzinfo is not None:
        # cronsim would apply Debian's daylight-saving rules to an aware time (module doc).
        raise TypeError(f"cron times are naive wall-clock times, got {when.isoformat()}")
