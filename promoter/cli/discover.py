"""`promoter discover`: one discovery pass, the same one `promoter serve` runs before each
resync, for cron jobs and for seeing why a version was (not) proposed.

Expects the `promoter` group's context object (`ctx.obj.settings()`); the group registers it
with `main.add_command(discover)`.

Exit codes: 0 the pass ran (whether or not it proposed anything), 1 some proposal was refused
(the others were still made), 2 bad input (configuration). `--dry-run` exits as the pass
would: 1 when propose would refuse some proposal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from promoter.cli.errors import handle_errors
from promoter.cli.output import emit, emit_error, reports

if TYPE_CHECKING:
    from promoter.errors import PromoterError
    from promoter.promotion.autopropose import PlannedProposal, ProposalAttempt
    from promoter.promotion.discovery import AutoProposal


@reports
@click.command("discover")
@click.option("--dry-run", is_flag=True,
              help="Say what would be proposed, and why the rest waits; write nothing.")
@click.pass_obj
@handle_errors
def discover(obj: Any, dry_run: bool) -> None:
    """Propose new complete model versions to the environments in promotion.autoPropose.

    The first environment gets the newest complete version in the model store (saved_model.pb
    and variables/, unchanged for settleSeconds); a later one gets what its upstream
    environment runs (healthy, with a cluster). Proposals still pass every gate.
    """
    from promoter.wiring import build_adapters, build_auto_proposer, build_service

    loaded = obj.settings()  # promoter.cli.Context
    adapters = build_adapters(loaded)
    proposer = build_auto_proposer(loaded, adapters=adapters,
                                   service=build_service(loaded, adapters=adapters))
    if not proposer.enabled:
        emit({"enabled": False, "dryRun": dry_run, "proposals": [], "held": []},
             f"no model lists environments in promotion.autoPropose ({loaded.path}); "
             "nothing to discover")
        return
    if dry_run:
        preview = proposer.preview()
        plan = preview.plan
        lines, proposals, failed = _previewed(preview.proposals)
    else:
        run = proposer.run()
        plan = run.plan
        lines, proposals, failed = _proposed(run.attempts)
    held = []
    for waiting in plan.held:
        version = f" v{waiting.version}" if waiting.version is not None else ""
        lines.append(f"waiting: {waiting.model}{version} for {waiting.environment}: "
                     f"{waiting.reason}")
        held.append({"environment": waiting.environment, "model": waiting.model,
                     "version": waiting.version, "reason": waiting.reason})
    if not plan.proposals:
        lines.append("nothing to propose")
    emit({"enabled": True, "dryRun": dry_run, "proposals": proposals, "held": held},
         "\n".join(lines))
    for p, error in failed:
        emit_error(f"proposing {p.model} v{p.version} to {p.environment}: {error.message}",
                   fix=error.fix, kind=type(error).__name__, exit_code=1)
    if failed:
        sys.exit(1)


Reported = tuple[list[str], list[dict[str, Any]], list[tuple["AutoProposal", "PromoterError"]]]
"""Text lines, one document per proposal, and the refused proposals with their errors."""


def _previewed(planned_proposals: Sequence[PlannedProposal]) -> Reported:
    from promoter.cli.plans import describe_plan, plan_document

    lines: list[str] = []
    proposals: list[dict[str, Any]] = []
    failed: list[tuple[AutoProposal, PromoterError]] = []
    for planned in planned_proposals:
        proposal = planned.proposal
        lines.append(f"would propose {proposal.model} v{proposal.version} to "
                     f"{proposal.environment}: {proposal.reason}")
        document = _proposal_document(proposal)
        if planned.plan is not None:
            lines.append("  " + describe_plan(planned.plan).splitlines()[0]
                         .removeprefix("dry run: "))
            document["plan"] = plan_document(planned.plan)
        if planned.error is not None:
            document["error"] = {"error": planned.error.message, "fix": planned.error.fix}
            failed.append((proposal, planned.error))
        proposals.append(document)
    return lines, proposals, failed


def _proposed(attempts: Sequence[ProposalAttempt]) -> Reported:
    lines: list[str] = []
    proposals: list[dict[str, Any]] = []
    failed: list[tuple[AutoProposal, PromoterError]] = []
    for attempt in attempts:
        p, result = attempt.proposal, attempt.result
        document = _proposal_document(p)
        if result is not None:
            document["outcome"] = str(result.outcome)
            document["pullRequest"] = (result.pull_request.number
                                       if result.pull_request else None)
        if attempt.error is not None:
            document["error"] = {"error": attempt.error.message, "fix": attempt.error.fix}
            failed.append((p, attempt.error))
        proposals.append(document)
        if result is None:
            continue
        pull = (f"PR #{result.pull_request.number} {result.outcome}"
                if result.pull_request else str(result.outcome))
        lines.append(f"proposed {p.model} v{p.version} to {p.environment} ({pull}): "
                     f"{p.reason}")
    return lines, proposals, failed


def _proposal_document(proposal: AutoProposal) -> dict[str, Any]:
    return {"environment": proposal.environment, "model": proposal.model,
            "version": proposal.version, "reason": proposal.reason}
