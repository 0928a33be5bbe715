"""The CLI's answers as documents for `-o json` and `-o yaml`: plain JSON values.

Keys are camelCase like the REST API's (`promoter.server.answers`), and where the API has an
answer for the same thing (`status`, `approve`) the CLI prints that answer unchanged. Phases
and gate order are those of the text (`promoter.plain_text`), so a script and a person read
the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promoter.domain.pull_requests import PullRequest
from promoter.plain_text import reconcile_phase
from promoter.policy import GateResult
from promoter.promotion.gate_order import in_pipeline_order
from promoter.promotion.results import ProposalResult, ReconcileOutcome

Document = dict[str, Any]


def gate_document(gate: GateResult) -> Document:
    return {"context": gate.context, "state": gate.state.value,
            "description": gate.description}


def pull_request_document(pull: PullRequest) -> Document:
    return {"number": pull.number, "head": pull.head_sha, "headBranch": pull.head_branch,
            "baseBranch": pull.base_branch, "author": pull.author, "state": pull.state.value}


def proposal_document(result: ProposalResult) -> Document:
    pull = result.pull_request
    return {"environment": result.environment, "model": result.model,
            "version": result.version, "digest": result.digest,
            "outcome": result.outcome.value,
            "pullRequest": None if pull is None else pull_request_document(pull),
            "commit": result.commit, "changedFiles": list(result.changed_files)}


def reconcile_document(outcomes: Sequence[ReconcileOutcome]) -> Document:
    return {"promotions": [outcome_document(o) for o in outcomes]}


def outcome_document(outcome: ReconcileOutcome) -> Document:
    error = outcome.error
    return {
        "pullRequest": outcome.pull_number, "environment": outcome.environment,
        "model": outcome.model, "version": outcome.version,
        "phase": reconcile_phase(outcome),
        "gates": [gate_document(g) for g in in_pipeline_order(outcome.gates)],
        "mergeCommit": outcome.merge_sha, "evaluated": outcome.evaluated,
        "note": outcome.note,
        "error": None if error is None else {"error": error.message, "fix": error.fix,
                                             "exitCode": error.exit_code},
    }
