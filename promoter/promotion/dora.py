"""DORA metrics per model and environment, from the deployment history. Pure.

Over a window [start, end), for each (model, environment) that any deployment in the
environment's history names:

- **deployment frequency**: promotions merged in the window, and that count per day of the
  window. Rollbacks are not deployments here (they restore; they are counted apart). A window
  with none gives 0 and 0.0: a count over a known window, not an unknown.
- **lead time for changes**: median of "version complete in the store -> rollout seen healthy"
  over the window's promotions that changed the version (a re-render of the same version is
  no new change) and whose completion time and healthy time are both known. None without
  such a promotion; `lead_time_samples` says how many there were.
- **change failure rate**: promotions in the window whose rollout failed or that a rollback
  took out, over the promotions in the window. None without promotions (0/0 is no rate).
- **time to restore**: median, over those failures, of "failure -> the next deployment of the
  environment (rollback or promotion) seen healthy". The failure's time is when promoter saw
  the rollout fail, else when the rollback that took it out was proposed; a failure with
  neither, or not restored yet, is counted in `unmeasured_failures` / `unrestored`, never as
  0. None without a measured restoration.

Times are promoter's readings (see `history`): the healthy time is when promoter recorded
the `promoter/rollout` status, and a version's completion time is the store's (its newest
change). When an environment's history was truncated before the window's start, `complete`
is False: older merges in the window were not read and the figures undercount.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from promoter.errors import BadInputError
from promoter.promotion.history import Deployment, DeploymentKind, EnvironmentHistory

_WINDOW = re.compile(r"^(?P<count>[1-9][0-9]{0,4})(?P<unit>[hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
DEFAULT_WINDOW = "30d"


def parse_window(text: str) -> timedelta:
    """`30d`, `12h`, `2w` as a duration; BadInputError (naming the fix) for anything else."""
    match = _WINDOW.match(text.strip())
    if match is None:
        raise BadInputError(f"window {text!r} is not a duration like 30d, 12h or 2w",
                            fix="pass --window N followed by h (hours), d (days) or w (weeks)")
    return int(match["count"]) * _UNITS[match["unit"]]


def parse_until(text: str) -> datetime:
    """An RFC 3339 time with its offset (`2026-12-01T00:00:00Z`) as the window's end;
    BadInputError for anything else (a time without an offset would depend on the machine)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadInputError(f"{text!r} is not a time with its UTC offset",
                            fix="pass --until like 2026-12-01T00:00:00Z")
    return moment


@dataclass(frozen=True, slots=True)
class Window:
    """The time span figures are computed over: start inclusive, end exclusive."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, end: datetime, length: timedelta) -> Window:
        return cls(start=end - length, end=end)

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class DoraFigures:
    """The four DORA figures of one model in one environment over `window`."""

    model: str
    environment: str
    window: Window
    deployments: int
    """Promotions merged in the window."""
    deployments_per_day: float
    rollbacks: int
    """Rollbacks merged in the window (not counted as deployments)."""
    lead_time_seconds: float | None
    """Median version-complete -> healthy; None without a measured promotion."""
    lead_time_samples: int
    change_failures: int
    change_failure_rate: float | None
    """change_failures / deployments; None without deployments."""
    time_to_restore_seconds: float | None
    """Median failure -> healthy again; None without a measured restoration."""
    restore_samples: int
    unrestored: int
    """Failures in the window with no later healthy deployment (yet)."""
    unmeasured_failures: int
    """Failures whose start time is unknown (no failed rollout status, no rollback PR)."""
    complete: bool
    """False when the history read stops after the window's start (figures undercount)."""


def dora_figures(histories: Sequence[EnvironmentHistory], *,
                 completed: Mapping[tuple[str, int], datetime],
                 window: Window) -> list[DoraFigures]:
    """Figures for every (model, environment) in `histories`, in the order environments are
    given and models first appear in them. Each history's deployments are newest first, in
    the branch's order, as `history` gives them. `completed` maps (model, version) to when
    the version was complete in the store."""
    figures = []
    for history in histories:
        oldest = history.deployments[-1].merged_at if history.deployments else None
        complete = not history.truncated or (oldest is not None and oldest < window.start)
        models = dict.fromkeys(d.model for d in history.deployments)
        for model in models:
            figures.append(_figures(model, history.environment, history.deployments,
                                    completed=completed, window=window, complete=complete))
    return figures


def _figures(model: str, environment: str, deployments: Sequence[Deployment], *,
             completed: Mapping[tuple[str, int], datetime], window: Window,
             complete: bool) -> DoraFigures:
    # Oldest first from here on, in the branch's own order (git's, not the clock's: two
    # merges within one second keep their order).
    everything = list(reversed(deployments))
    mine = [d for d in everything if d.model == model and d.merged_at in window]
    promotions = [d for d in mine if d.kind is DeploymentKind.PROMOTION]
    rollbacks = [d for d in mine if d.kind is DeploymentKind.ROLLBACK]
    lead_times = []
    for d in promotions:
        done = completed.get((d.model, d.version))
        healthy = d.healthy_at
        if d.version != d.previous_version and done is not None and healthy is not None:
            lead_times.append((healthy - done).total_seconds())
    failures = [d for d in promotions if d.failed]
    by_sha = {d.merge_sha: d for d in everything}
    position = {d.merge_sha: i for i, d in enumerate(everything)}
    restores, unrestored, unmeasured = [], 0, 0
    for failure in failures:
        rollback = by_sha.get(failure.rolled_back_by) if failure.rolled_back_by else None
        started = failure.failed_at or (rollback.proposed_at if rollback else None)
        if started is None:
            unmeasured += 1
            continue
        restored = next((d.healthy_at for d in everything[position[failure.merge_sha] + 1:]
                         if d.healthy_at is not None), None)
        if restored is None:
            unrestored += 1
        else:
            restores.append((restored - started).total_seconds())
    count = len(promotions)
    return DoraFigures(
        model=model, environment=environment, window=window, deployments=count,
        deployments_per_day=count / window.days if window.days > 0 else 0.0,
        rollbacks=len(rollbacks),
        lead_time_seconds=statistics.median(lead_times) if lead_times else None,
        lead_time_samples=len(lead_times), change_failures=len(failures),
        change_failure_rate=len(failures) / count if count else None,
        time_to_restore_seconds=statistics.median(restores) if restores else None,
        restore_samples=len(restores), unrestored=unrestored, unmeasured_failures=unmeasured,
        complete=complete)
