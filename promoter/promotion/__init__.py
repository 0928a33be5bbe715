"""Promotions: the service that proposes, gates and merges model versions per environment."""

from promoter.promotion.results import (
    EnvironmentStatus,
    PromotionState,
    ProposalOutcome,
    ProposalResult,
    ReconcileOutcome,
)
from promoter.promotion.service import PromotionService

__all__ = [
    "EnvironmentStatus",
    "PromotionService",
    "PromotionState",
    "ProposalOutcome",
    "ProposalResult",
    "ReconcileOutcome",
]
