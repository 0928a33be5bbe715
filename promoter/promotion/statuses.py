"""Gate verdicts written as commit statuses, only where they changed.

Written by the reconciler for promotions and by the rollback gate for rollbacks: one place, so
both write a status only when its state or description changed (a reconcile that changes
nothing writes nothing, and a webhook storm does not flood the forge).
"""

from __future__ import annotations

from collections.abc import Iterable

from promoter.domain.pull_requests import CommitStatus
from promoter.forge.base import Forge
from promoter.policy import GateResult


def publish_gates(forge: Forge, sha: str, gates: Iterable[GateResult]) -> None:
    """Set each gate's status on `sha` where the latest one differs from it."""
    current = {s.context: s for s in forge.list_statuses(sha)}
    for gate in gates:
        old = current.get(gate.context)
        if old is None or (old.state, old.description) != (gate.state, gate.description):
            forge.set_status(sha, CommitStatus(gate.context, gate.state, gate.description))
