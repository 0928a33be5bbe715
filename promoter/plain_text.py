"""The promotion service's answers as plain text for people: the CLI prints these lines and
the demo narrates with them.

Outside `promoter.cli` so that the demo, which the CLI runs, can use them without importing
the CLI back (a cycle). The JSON answers are `promoter.server.answers` and the CLI's
documents. Every function takes an optional `style(text, role)` so the CLI can colour a
terminal's output without this module knowing about terminals; roles are `ok`, `bad`, `wait`,
`dim` and `title`.

One vocabulary everywhere: a promotion is named by its phase (`promoter.promotion.phase`:
`waiting_for_approval`, `blocked`, `merged`, ...) in `status` and in `reconcile` alike, and
gates are listed in pipeline order (`promoter.promotion.gate_order`) wherever they appear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from promoter.cluster.port import RolloutState
from promoter.domain.pull_requests import StatusState
from promoter.policy import (
    APPROVALS_CONTEXT,
    EVALUATION_CONTEXT,
    SOAK_CONTEXT,
    GateResult,
)
from promoter.promotion.gate_order import in_pipeline_order
from promoter.promotion.phase import CHANGE_WINDOW_CONTEXT, PromotionPhase
from promoter.promotion.results import (
    EnvironmentStatus,
    PromotionState,
    ProposalOutcome,
    ProposalResult,
    ReconcileOutcome,
)

Style = Callable[[str, str], str]
"""`style(text, role)`: `text` as it should be shown for `role`."""


def plain(text: str, role: str) -> str:
    """The default style: text unchanged."""
    return text


_MARK = {
    StatusState.SUCCESS: ("✔", "ok"),
    StatusState.PENDING: ("…", "wait"),
    StatusState.FAILURE: ("✘", "bad"),
    StatusState.ERROR: ("✘", "bad"),
}

_PHASE_ROLE = {
    PromotionPhase.READY: "ok", PromotionPhase.MERGED: "ok", PromotionPhase.HEALTHY: "ok",
    PromotionPhase.BLOCKED: "bad", PromotionPhase.FAILED: "bad",
    PromotionPhase.ROLLED_BACK: "bad", PromotionPhase.CLOSED: "dim",
}

ERROR_PHASE = "error"
"""What `reconcile` shows instead of a phase when promoter could not judge the promotion
(git, the forge or the configuration refused): there is no phase to tell."""


def phase_role(phase: str) -> str:
    if phase == ERROR_PHASE:
        return "bad"
    return _PHASE_ROLE.get(PromotionPhase(phase), "wait")


def format_gate(gate: GateResult, style: Style = plain) -> str:
    mark, role = _MARK[gate.state]
    return f"{style(mark, role)} {gate.context}: {gate.description}"


def format_proposal(result: ProposalResult, style: Style = plain) -> str:
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
    lines = [f"{style(f'PR #{pull.number}', 'title')} {verb}: promote {what}",
             f"  {pull.head_branch} -> {pull.base_branch} at {(result.commit or '')[:12]}"]
    if result.changed_files:
        lines.append("  changes: " + ", ".join(result.changed_files))
    return "\n".join(lines)


_WAITS = (
    (APPROVALS_CONTEXT, PromotionPhase.WAITING_FOR_APPROVAL),
    (SOAK_CONTEXT, PromotionPhase.WAITING_FOR_SOAK),
    (CHANGE_WINDOW_CONTEXT, PromotionPhase.WAITING_FOR_WINDOW),
)
"""Pending gates with a phase of their own, in `promoter.promotion.phase`'s order."""


def reconcile_phase(outcome: ReconcileOutcome) -> str:
    """The phase `promoter status` would show for the promotion after this reconcile (or
    `error` when promoter could not judge it): `waiting_for_approval`, not `waiting`, so a
    reader meets one name for one thing."""
    if outcome.error is not None and not outcome.gates:
        return ERROR_PHASE
    if outcome.state is PromotionState.MERGED:
        return PromotionPhase.MERGED.value
    if outcome.state is PromotionState.BLOCKED:
        return PromotionPhase.BLOCKED.value
    if outcome.state is PromotionState.READY:
        return PromotionPhase.READY.value
    pending = {g.context for g in outcome.gates if g.state is StatusState.PENDING}
    if EVALUATION_CONTEXT in pending:
        return PromotionPhase.EVALUATING.value
    for context, phase in _WAITS:
        if context in pending:
            return phase.value
    if not pending:  # every gate passed, and the merge was refused (see `error`)
        return PromotionPhase.READY.value
    return PromotionPhase.WAITING.value


def format_reconcile(outcomes: Sequence[ReconcileOutcome], style: Style = plain) -> str:
    if not outcomes:
        return "no open promotions"
    lines = []
    for outcome in outcomes:
        what = (f"{outcome.model} v{outcome.version}" if outcome.model is not None
                else "(model unknown)")
        phase = reconcile_phase(outcome)
        head = (f"{style(f'PR #{outcome.pull_number}', 'title')} {what} -> "
                f"{outcome.environment}: {style(phase, phase_role(phase))}")
        if outcome.state is PromotionState.MERGED and outcome.merge_sha:
            head += f" ({outcome.merge_sha[:12]})"
        lines.append(head)
        lines.extend(f"  {format_gate(g, style)}" for g in in_pipeline_order(outcome.gates))
        error = outcome.error
        if outcome.note and (error is None or outcome.note != error.message):
            lines.append(f"  note: {outcome.note}")
        if error is not None:
            lines.append(f"  {style('error:', 'bad')} {error.message}")
            if error.fix:
                lines.append(f"    fix: {error.fix}")
    return "\n".join(lines)


def format_status(environments: Sequence[EnvironmentStatus], style: Style = plain) -> str:
    lines = []
    for env in environments:
        if env.deployed:
            d = env.deployed
            running = f"{d.model} v{d.version} {d.digest[:19]}"
        else:
            running = "(nothing deployed)"
        head = env.head[:12] if env.head else "-"
        # Padded before styling: escape codes would count as width.
        lines.append(f"{style(f'{env.environment:<10}', 'title')} {running:<36} "
                     f"{env.branch}@{head}")
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
            phase = (f" ({style(env.phase.value, phase_role(env.phase.value))})"
                     if env.phase else "")
            lines.append(f"{'':<10} open: PR #{pull.number} {proposed}{phase}")
            lines.extend(f"{'':<12}{format_gate(g, style)}"
                         for g in in_pipeline_order(env.gates))
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
