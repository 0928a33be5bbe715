"""`ManualClock`: the clock a test holds and moves, for every port that takes `clock=`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """Returns `now` until the test changes it (assign `now`, or `advance(hours=2)`)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now if now is not None else datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward by `timedelta(**delta)`."""
        self.now += timedelta(**delta)
