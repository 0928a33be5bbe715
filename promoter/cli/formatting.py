"""Human-readable and JSON renderings of the service's answers, for the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promoter.cluster.port import RolloutState
from promoter.forge.base import StatusState
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


def status_as_json(environments: Sequence[EnvironmentStatus], *,
                   rollouts: bool = False) -> dict[str, Any]:
    """The status as JSON; with `rollouts`, each environment also has `rollout` (the reading,
    or `{"error": ...}`, or None without a cluster)."""
    out: dict[str, Any] = {"environments": []}
    for env in environments:
        pull = env.open_promotion
        extra: dict[str, Any] = {}
        if rollouts:
            extra["rollout"] = (rollout_as_json(env.rollout) if env.rollout
                                else {"error": env.rollout_error} if env.rollout_error
                                else None)
        out["environments"].append({
            "name": env.environment,
            "branch": env.branch,
            "head": env.head,
            "deployed": None if env.deployed is None else {
                "model": env.deployed.model,
                "version": env.deployed.version,
                "digest": env.deployed.digest,
                "promotedFrom": env.deployed.promoted_from,
            },
            "openPromotion": None if pull is None else {
                "number": pull.number,
                "head": pull.head_sha,
                "author": pull.author,
                "phase": None if env.phase is None else str(env.phase),
                "model": env.proposed.model if env.proposed else None,
                "version": env.proposed.version if env.proposed else None,
                "gates": [{"context": g.context, "state": str(g.state),
                           "description": g.description} for g in env.gates],
            },
            **extra,
        })
    return out
