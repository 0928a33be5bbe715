"""`promoter propose --dry-run`: the proposer's own plan (`Proposer.plan`), as text and as a
document.

`propose` carries out exactly the plan `Proposer.plan` returns, so what this prints is what
`propose` would do, with the same errors for bad input and for a foreign push. The proposal
commit's sha cannot be known without writing it (it carries the time it is written); a
commit already on the proposal branch that propose would use as it is is named.
"""

from __future__ import annotations

from typing import Any

from promoter.promotion.results import ProposalOutcome, ProposalPlan

_ACTIONS = {ProposalOutcome.OPENED: "open", ProposalOutcome.UPDATED: "update",
            ProposalOutcome.UNCHANGED: "unchanged", ProposalOutcome.ALREADY_DEPLOYED: "none"}
"""The document's `action` per outcome."""


def describe_plan(plan: ProposalPlan) -> str:
    what = f"{plan.model} v{plan.version} ({plan.digest[:19]}) to {plan.environment}"
    if plan.outcome is ProposalOutcome.ALREADY_DEPLOYED:
        return (f"dry run: {plan.environment} already runs {plan.model} v{plan.version}; "
                "propose would write nothing")
    verb = {ProposalOutcome.OPENED: "open a PR",
            ProposalOutcome.UPDATED: f"update PR #{plan.pull_request}",
            ProposalOutcome.UNCHANGED: f"leave PR #{plan.pull_request} as it is"}[plan.outcome]
    base = (f"{plan.base_branch}@{plan.base_head[:12]}" if plan.base_head
            else f"{plan.base_branch} (created first, with a README)")
    lines = [f"dry run: propose would {verb}: promote {what}"]
    if plan.writes_commit:
        lines.append(f"  one commit on {plan.head_branch}, on top of {base}")
    elif plan.commit is not None and plan.outcome is not ProposalOutcome.UNCHANGED:
        lines.append(f"  with the commit already on {plan.head_branch} "
                     f"({plan.commit[:12]}: byte for byte its render)")
    if plan.replaces is not None:
        lines.append(f"  replacing {plan.replaces[:12]} on {plan.head_branch}, which is not "
                     "promoter's render (said so on the PR)")
    if plan.changed_files:
        lines.append("  changes: " + ", ".join(plan.changed_files))
    lines.append("  nothing was written")
    return "\n".join(lines)


def plan_document(plan: ProposalPlan) -> dict[str, Any]:
    return {"dryRun": True, "environment": plan.environment, "model": plan.model,
            "version": plan.version, "digest": plan.digest, "action": _ACTIONS[plan.outcome],
            "outcome": plan.outcome.value, "headBranch": plan.head_branch,
            "baseBranch": plan.base_branch, "baseHead": plan.base_head,
            "pullRequest": plan.pull_request, "writesCommit": plan.writes_commit,
            "reusesCommit": plan.commit, "replaces": plan.replaces,
            "changedFiles": list(plan.changed_files)}
