"""The order the gates of a promotion are decided in, and so shown in: the PR's statuses,
`promoter status`, `reconcile`, and the REST API alike.

Forges list commit statuses by context name (`promoter/approvals` before
`promoter/upstream`); people read a pipeline in the order it runs, so every answer that lists
gates sorts them with `in_pipeline_order` (the promotion service does, for `status`, before
any caller sees them).
"""

from __future__ import annotations

from collections.abc import Iterable

from promoter.cluster.gate import ROLLOUT_CONTEXT, UPSTREAM_ROLLOUT_CONTEXT
from promoter.policy import (
    APPROVALS_CONTEXT,
    EVALUATION_CONTEXT,
    EXTERNAL_CHECKS_CONTEXT,
    PROPOSAL_CONTEXT,
    SOAK_CONTEXT,
    UPSTREAM_CONTEXT,
    GateResult,
)
from promoter.promotion.phase import CHANGE_WINDOW_CONTEXT

GATE_ORDER = (
    PROPOSAL_CONTEXT, UPSTREAM_CONTEXT, EVALUATION_CONTEXT, APPROVALS_CONTEXT,
    UPSTREAM_ROLLOUT_CONTEXT, SOAK_CONTEXT, CHANGE_WINDOW_CONTEXT, EXTERNAL_CHECKS_CONTEXT,
    ROLLOUT_CONTEXT,
)
"""The order `promoter.promotion.gates.GateRunner` decides the gates in (the proposal check
first: when it fails nothing else ran), then the rollout of the merge. Unknown contexts come
last, by name."""


def in_pipeline_order(gates: Iterable[GateResult]) -> tuple[GateResult, ...]:
    """`gates` sorted by `GATE_ORDER`."""
    rank = {context: index for index, context in enumerate(GATE_ORDER)}
    return tuple(sorted(gates, key=lambda g: (rank.get(g.context, len(rank)), g.context)))
