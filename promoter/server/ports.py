"""What the server needs from the promotion service: `PromotionService` satisfies it, and so
do the fakes of the tests and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from promoter.config.loader import DryConfig
from promoter.domain.pull_requests import Review
from promoter.promotion.dora import DoraFigures
from promoter.promotion.history import EnvironmentHistory
from promoter.promotion.results import EnvironmentStatus, ReconcileOutcome


class PromotionPort(Protocol):
    def dry_config(self) -> tuple[str, DryConfig]:
        """Environments and policies from the head of the dry branch (ConfigError if broken)."""
        ...

    def status(self) -> Sequence[EnvironmentStatus]: ...

    def reconcile(self) -> Sequence[ReconcileOutcome]: ...

    def reconcile_pull(self, number: int) -> ReconcileOutcome: ...

    def evaluation_report(self, number: int) -> str | None: ...

    def approve(self, number: int, *, user: str, reject: bool = False) -> Review: ...

    def history(self, *, environment: str | None = None,
                limit: int = ...) -> Sequence[EnvironmentHistory]: ...

    def dora(self, *, window: timedelta, end: datetime | None = None,
             environment: str | None = None) -> Sequence[DoraFigures]: ...
