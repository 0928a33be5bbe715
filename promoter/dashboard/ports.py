"""What the dashboard needs from the promotion service (`PromotionService` satisfies it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from promoter.config.loader import DryConfig
from promoter.domain.pull_requests import Review
from promoter.promotion.dora import DoraFigures
from promoter.promotion.history import EnvironmentHistory
from promoter.promotion.results import EnvironmentStatus, PromotionRecord


class DashboardPort(Protocol):
    def dry_config(self) -> tuple[str, DryConfig]:
        """Environments and policies from the head of the dry branch (ConfigError if broken)."""
        ...

    def pipelines(self) -> Sequence[EnvironmentStatus]:
        """`status()` with each branch head's rollout health: the pipelines page."""
        ...

    def promotion(self, number: int) -> PromotionRecord:
        """One pull request, open or not (PullRequestNotFoundError if unknown)."""
        ...

    def approve(self, number: int, *, user: str, reject: bool = False) -> Review: ...

    def history(self, *, environment: str | None = None,
                limit: int = ...) -> Sequence[EnvironmentHistory]:
        """Every merge and rollback per environment, newest first (`promoter.promotion.history`)."""
        ...

    def dora(self, *, window: timedelta, end: datetime | None = None,
             environment: str | None = None) -> Sequence[DoraFigures]:
        """DORA figures per model and environment (`promoter.promotion.dora`)."""
        ...
