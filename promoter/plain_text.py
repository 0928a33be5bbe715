"""The promotion service's answers as plain text for people: the CLI prints these lines and
the demo narrates with them.

Outside `promoter.cli` so that the demo, which the CLI runs, can use them without importing
the CLI back (a cycle). The JSON answers are `promoter.server.answers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promoter.cluster.port import RolloutState
from promoter.domain.pull_requests import StatusState
from promoter.policy import GateResult
from promoter.promotion.results import (
    EnvironmentStatus,
    PromotionState,
    ProposalOutcome,
    ProposalResult,
    ReconcileOutcome,
)

_MARK = {
    StatusState.SUCCESS: "✔",
    StatusState.PENDING: "…",
    StatusState.FAILURE: "✘",
    StatusState.ERROR: "✘",
}


def format_gate(gate: GateResult) -> str:
    return f"{_MARK[gate.state]} {gate.context}: {gate.description}"


def format_proposal(result: ProposalResult) -> str:
    what = f"{result.model} v{result.version} ({result.digest[:19]}) to {result.environment}"
    if result.outcome is ProposalOutcome.ALREADY_DEPLOYED:
        return f"{result.environment} already runs {what.split(' to ')[0]}; nothing to propose"
    pull = result.pull_request
    assert pull is not None  # only ALREADY_DEPLOYED has no pull request
    verb = {
        ProposalOutcome.OPENED: "opened",
        ProposalOutcome.UPDATED: "updated",
        ProposalOutcome.UNCHANGED: "unchanged",
    }[result.outcome]
    lines = [f"PR #{pull.number} {verb}: promote {what}",
             f"  {pull.head_branch} -> {pull.base_branch} at {(result.commit or '')[:12]}"]
    if result.changed_files:
        lines.append("  changes: " + ", ".join(result.changed_files))
    return "\n".join(lines)


def format_reconcile(outcomes: Sequence[ReconcileOutcome]) -> str:
    if not outcomes:
        return "no open promotions"
    lines = []
    for outcome in outcomes:
        what = (f"{outcome.model} v{outcome.version}" if outcome.model is not None
                else "(model unknown)")
        head = f"PR #{outcome.pull_number} {what} -> {outcome.environment}: {outcome.state}"
        if outcome.state is PromotionState.MERGED and outcome.merge_sha:
            head += f" ({outcome.merge_sha[:12]})"
        lines.append(head)
        lines.extend(f"  {format_gate(g)}" for g in outcome.gates)
        if outcome.note:
            lines.append(f"  note: {outcome.note}")
    return "\n".join(lines)


def format_status(environments: Sequence[EnvironmentStatus]) -> str:
    lines = []
    for env in environments:
        if env.deployed:
            d = env.deployed
            running = f"{d.model} v{d.version} {d.digest[:19]}"
        else:
            running = "(nothing deployed)"
        head = env.head[:12] if env.head else "-"
        lines.append(f"{env.environment:<10} {running:<36} {env.branch}@{head}")
        if env.promotion_error:
            lines.append(f"{'':<10} open promotion unreadable: {env.promotion_error}")
        if env.rollout_error:
            lines.append(f"{'':<10} rollout: unreadable: {env.rollout_error}")
        if env.rollout:
            lines.append(f"{'':<10} rollout: {env.rollout.phase}: {env.rollout.reason}")
            if env.rollout.training:
                training = env.rollout.training
                lines.append(f"{'':<10} training: {training.phase}: {training.reason}")
        if env.open_promotion:
            pull = env.open_promotion
            proposed = (f"{env.proposed.model} v{env.proposed.version}" if env.proposed
                        else "?")
            phase = f" ({env.phase})" if env.phase else ""
            lines.append(f"{'':<10} open: PR #{pull.number} {proposed}{phase}")
            lines.extend(f"{'':<12}{format_gate(g)}" for g in env.gates)
    return "\n".join(lines)


def rollout_as_json(state: RolloutState) -> dict[str, Any]:
    """One rollout reading: serving's verdict (`phase`) and training's state beside it."""
    training = state.training
    return {
        "environment": state.environment, "commit": state.commit, "phase": str(state.phase),
        "reason": state.reason, "observedRevision": state.observed_revision,
        "training": None if training is None else {"phase": str(training.phase),
                                                   "reason": training.reason},
    }
