"""The gate of rollback pull requests: who may ask for one, and when one merges.

A rollback restores a tree the environment ran before, which passed its gates then: it is not
evaluated again, nor held by soak or change windows. It is held by people: only the policy's
`rollback.requesters` (default: its approvers) may ask for one, and it merges once the
policy's rollback approvals (default: as many as a promotion needs) come from approvers who
did not ask for it. An automatic rollback after a failed rollout, asked for by promoter
itself, merges at once where `delivery.autoMergeRollback` is on (the rollout watcher merges
it), and otherwise waits here for the same approvals.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from promoter.domain.pull_requests import PullRequest, StatusState, login_key
from promoter.errors import ApprovalError, NotMergeableError, PromoterError, StaleHeadError
from promoter.policy import (
    APPROVALS_CONTEXT,
    PROPOSAL_CONTEXT,
    GateResult,
    decide_approvals,
    fit_description,
)
from promoter.promotion.authorship import authors_of, require_author_name
from promoter.promotion.context import PromotionContext, Target
from promoter.promotion.merging import EnvironmentMerger
from promoter.promotion.results import OutcomeError, PromotionState, ReconcileOutcome
from promoter.promotion.rollback import RollbackOutcome, RollbackResult, RollbackService
from promoter.promotion.statuses import publish_gates

log = logging.getLogger(__name__)


class RollbackGate:
    """Requests rollbacks on a person's behalf, and reconciles open rollback PRs."""

    def __init__(self, context: PromotionContext, rollbacks: RollbackService | None,
                 merger: EnvironmentMerger) -> None:
        self._ctx = context
        self._rollbacks = rollbacks
        self._merger = merger

    def request(self, environment: str, *, to_version: int | None, reason: str,
                author: str) -> RollbackResult:
        """Open (or refresh) the rollback PR of `environment` for `author`.

        Raises ApprovalError, writing nothing, when the policy does not let `author` ask for
        a rollback; PromotionError when there is nothing to roll back to."""
        rollbacks = self._require_rollbacks()
        author = require_author_name(author)
        target = self._ctx.target(environment)
        env, policy = target.environment, target.policy
        if not policy.may_request_rollback(author):
            allowed = policy.rollback.requesters or policy.approvals.approvers
            raise ApprovalError(
                f"{author} may not roll back {env.name}",
                fix=f"policies/{env.policy}.yaml allows: {', '.join(allowed)} "
                    "(rollback.requesters, else approvals.approvers)")
        return rollbacks.propose(env, to_version=to_version, reason=reason, author=author)

    def reconcile(self, target: Target, pull: PullRequest) -> ReconcileOutcome:
        """Publish the rollback PR's gates and merge it once they pass."""
        rollbacks = self._require_rollbacks()
        env = target.environment
        try:
            plan = rollbacks.verify(env, pull)
        except PromoterError as exc:
            gate = GateResult(PROPOSAL_CONTEXT, StatusState.ERROR, fit_description(exc.message))
            publish_gates(self._ctx.forge, pull.head_sha, (gate,))
            return ReconcileOutcome(pull_number=pull.number, environment=env.name, model=None,
                                    version=None, state=PromotionState.BLOCKED, gates=(gate,),
                                    note=exc.message)
        restored = plan.target_metadata.deployed
        gates = (self._approvals(target, pull),)
        publish_gates(self._ctx.forge, pull.head_sha, gates)
        outcome = ReconcileOutcome(
            pull_number=pull.number, environment=env.name, model=restored.model,
            version=restored.version, state=PromotionState.WAITING, gates=gates,
            note="rollback")
        if gates[0].state is StatusState.FAILURE:
            return replace(outcome, state=PromotionState.BLOCKED)
        if gates[0].state is not StatusState.SUCCESS:
            return outcome
        result = RollbackResult(plan=plan, outcome=RollbackOutcome.UNCHANGED,
                                commit=pull.head_sha, pull_request=pull)
        try:
            merged = rollbacks.merge(env, result, merger=self._merger)
        except (StaleHeadError, NotMergeableError) as exc:
            log.warning("rollback PR #%s not merged: %s", pull.number, exc.message)
            return replace(outcome, note=f"not merged: {exc.message}",
                           error=OutcomeError.of(exc, prefix="not merged: "))
        return replace(outcome, state=PromotionState.MERGED, merge_sha=merged.merge_sha,
                       proposed_at=pull.created_at)

    def _approvals(self, target: Target, pull: PullRequest) -> GateResult:
        ctx, env, policy = self._ctx, target.environment, target.policy
        authors = authors_of(ctx.repo, pull)
        automatic = {login_key(a) for a in authors} == {login_key(ctx.identity)}
        if automatic and env.delivery.auto_merge_rollback:
            return GateResult(APPROVALS_CONTEXT, StatusState.SUCCESS,
                              "automatic rollback (delivery.autoMergeRollback)")
        required = policy.rollback_approvals
        rollback_policy = policy.approvals.model_copy(update={"required": required})
        return decide_approvals(rollback_policy, reviews=ctx.forge.list_reviews(pull.number),
                                author=pull.author, head_sha=pull.head_sha,
                                ignored_users=[ctx.identity, *authors])


    def _require_rollbacks(self) -> RollbackService:
        if self._rollbacks is None:
            raise PromoterError("this promotion service was built without rollbacks",
                                fix="build it through promoter.wiring")
        return self._rollbacks

