"""The change-window gate (pure): may promoter merge into an environment at this moment?

A policy's `schedule:` lists recurring or one-off `windows` (merges only inside one) and
`freezes` (no merges, whatever the windows say). Outside a window or inside a freeze the gate
is PENDING, not FAILURE: waiting helps, and the periodic resync merges the promotion at the
first reconcile after the window opens or the freeze ends.

Recurring spans start at each minute their cron expression matches in the schedule's time
zone (wall-clock time, so "09:00 Europe/Berlin" stays 09:00 across daylight-saving changes; a
start that does not exist on a spring-forward day is skipped) and last `duration` of real
time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from promoter.config.schema import SchedulePolicy, ScheduleWindow, span_seconds
from promoter.cron import CronExpression
from promoter.domain.pull_requests import StatusState
from promoter.policy import GateResult, fit_description

CHANGE_WINDOW_CONTEXT = "promoter/change-window"
_DST_SLACK = timedelta(hours=2)
_MAX_CHAIN = 50
"""How many back-to-back freezes or windows are followed to say when a wait ends."""


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One concrete span of a window or freeze, in absolute time."""

    start: datetime
    end: datetime
    reason: str | None


def occurrence_at(window: ScheduleWindow, now: datetime, zone: ZoneInfo) -> Occurrence | None:
    """The occurrence of `window` that contains `now` (aware), if any."""
    if window.cron is None:
        start, end = _fixed_span(window, zone)
        return Occurrence(start, end, window.reason) if start <= now < end else None
    length = timedelta(seconds=span_seconds(window.duration or "0s"))
    cron = CronExpression.parse(window.cron)
    local_now = now.astimezone(zone).replace(tzinfo=None)
    earliest = local_now - length - _DST_SLACK
    # The latest start decides (same length: the latest start ends last), unless the clock
    # skipped it; then the one before.
    naive = cron.latest_at_or_before(local_now, within=local_now - earliest)
    while naive is not None:
        begins = _aware(naive, zone)
        if begins is not None and begins <= now:
            end = begins + length
            return Occurrence(begins, end, window.reason) if now < end else None
        before = naive - timedelta(minutes=1)
        naive = cron.latest_at_or_before(before, within=before - earliest)
    return None


def next_start(window: ScheduleWindow, after: datetime, zone: ZoneInfo) -> datetime | None:
    """When the first occurrence of `window` starting after `after` (aware) begins."""
    if window.cron is None:
        start, _ = _fixed_span(window, zone)
        return start if start > after else None
    cron = CronExpression.parse(window.cron)
    naive = after.astimezone(zone).replace(tzinfo=None)
    for _ in range(_MAX_CHAIN):
        found = cron.next_after(naive)
        if found is None:
            return None
        begins = _aware(found, zone)
        if begins is not None and begins > after:
            return begins
        naive = found
    return None


def decide_change_window(schedule: SchedulePolicy, now: datetime) -> GateResult:
    """SUCCESS inside a window (or with no windows) and outside every freeze; else PENDING
    saying until when, in the schedule's time zone."""
    zone = ZoneInfo(schedule.timezone)
    frozen = _active(schedule.freezes, now, zone)
    if frozen:
        until = _end_of_chain(schedule.freezes, now, zone)
        reason = next((o.reason for o in frozen if o.reason), None)
        return _pending(f"frozen until {_show(until, zone)}" + (f": {reason}" if reason else ""))
    if not schedule.windows:
        return GateResult(CHANGE_WINDOW_CONTEXT, StatusState.SUCCESS, "no freeze now")
    open_now = _active(schedule.windows, now, zone)
    if open_now:
        closes = max(o.end for o in open_now)
        return GateResult(CHANGE_WINDOW_CONTEXT, StatusState.SUCCESS, fit_description(
            f"inside a change window until {_show(closes, zone)}"))
    opens = _next_opening(schedule, now, zone)
    if opens is None:
        return _pending("outside change windows, and none opens within a year")
    return _pending(f"outside change windows; next opens {_show(opens, zone)}")


def _next_opening(schedule: SchedulePolicy, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The first moment after `now` inside a window and outside every freeze."""
    moment = now
    for _ in range(_MAX_CHAIN):
        starts = [s for s in (next_start(w, moment, zone) for w in schedule.windows)
                  if s is not None]
        if not starts:
            return None
        moment = min(starts)
        if not _active(schedule.freezes, moment, zone):
            return moment
        thaw = _end_of_chain(schedule.freezes, moment, zone)
        if _active(schedule.windows, thaw, zone):
            return thaw
        moment = thaw
    return None


def _active(spans: Iterable[ScheduleWindow], now: datetime, zone: ZoneInfo) -> list[Occurrence]:
    return [o for o in (occurrence_at(w, now, zone) for w in spans) if o is not None]


def _end_of_chain(spans: tuple[ScheduleWindow, ...], now: datetime, zone: ZoneInfo) -> datetime:
    """When the spans active at `now` end, following any that start before the last ends."""
    moment = now
    for _ in range(_MAX_CHAIN):
        active = _active(spans, moment, zone)
        if not active:
            return moment
        moment = max(o.end for o in active)
    return moment


def _fixed_span(window: ScheduleWindow, zone: ZoneInfo) -> tuple[datetime, datetime]:
    assert window.start is not None
    assert window.end is not None
    return _localize(window.start, zone), _localize(window.end, zone)


def _localize(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _aware(naive: datetime, zone: ZoneInfo) -> datetime | None:
    """`naive` wall-clock time in `zone`, or None if the clock skipped it (spring forward)."""
    aware = naive.replace(tzinfo=zone)
    round_trip = aware.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)
    return aware if round_trip == naive else None


def _show(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _pending(text: str) -> GateResult:
    return GateResult(CHANGE_WINDOW_CONTEXT, StatusState.PENDING, fit_description(text))
