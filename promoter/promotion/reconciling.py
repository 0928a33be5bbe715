"""Reconciling: run the gates of open promotions, record them as commit statuses, and merge
those that pass.

Gates are written as statuses on the proposal head only when they change, and the forge merges
only if the head is still the commit the gates saw. Environment branches only ever move
forward, through the forge's merge.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from promoter.config.schema import EnvironmentSpec
from promoter.domain.pull_requests import PullRequest, PullRequestState, StatusState
from promoter.errors import (
    BadInputError,
    NotMergeableError,
    PromoterError,
    PromotionError,
    StaleHeadError,
)
from promoter.policy import PROPOSAL_CONTEXT, GateResult, decide, fit_description
from promoter.promotion.context import PromotionContext, Target
from promoter.promotion.conventions import PROMOTER_LABEL, ROLLBACK_LABEL
from promoter.promotion.gates import GateRunner
from promoter.promotion.merging import EnvironmentMerger, MergeRequest
from promoter.promotion.proposing import REPLACED_COMMENT_KEY, Proposer
from promoter.promotion.results import OutcomeError, PromotionState, ReconcileOutcome
from promoter.promotion.rollback_commits import is_rollback_commit
from promoter.promotion.rollback_gate import RollbackGate
from promoter.promotion.rollouts import RolloutWatcher
from promoter.promotion.statuses import publish_gates
from promoter.render.metadata import DeployedModel, MetadataError

log = logging.getLogger(__name__)

_MAX_PASSES = 4
"""Re-proposals one reconcile of a PR follows at most (the environment moved, an interrupted
proposal was taken over). One is the rule; more means something keeps moving the branches."""


class Reconciler:
    """Drives open promotions to a verdict and merges the ones that pass."""

    def __init__(self, context: PromotionContext, proposer: Proposer, gates: GateRunner,
                 rollouts: RolloutWatcher, rollbacks: RollbackGate,
                 merger: EnvironmentMerger) -> None:
        self._ctx = context
        self._merger = merger
        self._proposer = proposer
        self._gates = gates
        self._rollouts = rollouts
        self._rollbacks = rollbacks

    def reconcile(self) -> list[ReconcileOutcome]:
        """Run the gates of every open promotion and merge those that pass.

        Idempotent: gates are re-derived from git, the forge and the store; statuses and the
        report comment are written only when they change, and a model is scored again only
        when the candidate, baseline, holdout or policy changed.
        """
        ctx = self._ctx
        _, dry = ctx.dry_config()
        for check in self._rollouts.check_rollouts():
            if check.state is not None:
                log.info("rollout of %s@%s: %s", check.environment, check.commit[:12],
                         check.state.phase)
        by_branch = {env.branch: env for env in dry.environments.values()}
        outcomes = []
        for pull in ctx.forge.list_open_pull_requests(label=PROMOTER_LABEL):
            env = by_branch.get(pull.base_branch)
            if env is None or pull.head_branch != env.proposal_branch:
                log.warning("PR #%s targets %s, which no environment uses; skipped",
                            pull.number, pull.base_branch)
                continue
            try:
                outcomes.append(self.reconcile_pull(pull.number))
            except PromoterError as exc:
                # One broken promotion must not stop the others; its error is on the PR.
                log.error("reconcile of PR #%s failed: %s", pull.number, exc.message)
                outcomes.append(ReconcileOutcome(
                    pull_number=pull.number, environment=env.name, model=None, version=None,
                    state=PromotionState.BLOCKED, gates=(),
                    note=f"reconcile failed: {exc.message}",
                    error=OutcomeError.of(exc, prefix="reconcile failed: ")))
        return outcomes

    def reconcile_pull(self, number: int) -> ReconcileOutcome:
        """Run one promotion's gates, record them as statuses, and merge when they pass.

        When the proposal must be written again first (the environment moved under it, or a
        killed `propose` left its commit unrecorded), it is re-proposed and the resulting PR
        is reconciled in the same call.
        """
        for _ in range(_MAX_PASSES):
            step = self._reconcile_once(number)
            if isinstance(step, ReconcileOutcome):
                return step
            number = step
        raise PromotionError(
            f"PR #{number}: its branches kept moving while it was reconciled "
            f"({_MAX_PASSES} re-proposals)",
            fix="find what writes to the environment or proposal branch besides promoter; "
                "reconcile again once it stops")

    def _reconcile_once(self, number: int) -> ReconcileOutcome | int:
        """One pass: the outcome, or the number of the PR to reconcile next."""
        ctx = self._ctx
        pull = ctx.forge.get_pull_request(number)
        target = ctx.target_for_branch(pull.base_branch)
        if target is None:
            raise PromotionError(f"PR #{number} does not target an environment branch")
        env = target.environment
        if pull.state is not PullRequestState.OPEN:
            # A webhook's job may run after a resync already merged (or a person closed) the
            # PR: there is nothing left to do, and that is not an error.
            return self._finished(pull, env)
        # A rollback head commit goes to the rollback gate whatever the labels say (anyone who
        # may label a PR can remove `rollback`, which must not get a rollback judged as a
        # promotion). The label alone sends a PR there too: that gate merges only a head that
        # verifies as a rollback commit, so adding it can only block a PR, as closing it can.
        if ROLLBACK_LABEL in pull.labels or is_rollback_commit(ctx.repo, pull.head_sha):
            return self._rollbacks.reconcile(target, pull)
        proposed = ctx.metadata_at(pull.head_sha, where=pull.head_branch)
        if proposed is None:
            return self._halt(pull, env, "the proposal has no hydrator.metadata")
        promo = proposed.deployed

        head_now = ctx.repo.branch_head(pull.head_branch)
        if head_now != pull.head_sha:
            taken_over = self._take_over_interrupted_proposal(pull, env, head_now)
            if taken_over is not None:
                return taken_over
            return self._halt(pull, env, f"{pull.head_branch} moved to "
                              f"{(head_now or 'nothing')[:12]} outside promoter", promo)
        env_head = ctx.repo.branch_head(env.branch)
        if env_head is None or not ctx.repo.is_ancestor(env_head, pull.head_sha):
            # The environment moved (another merge, a rollback): re-render on top of it, so
            # the gates judge what would really be merged.
            result = self._proposer.propose(environment=env.name, model=promo.model,
                                            version=promo.version, author=pull.author)
            if result.pull_request is None:
                ctx.forge.close(number, comment=f"{env.name} already runs this version.")
                return ReconcileOutcome(
                    pull_number=number, environment=env.name, model=promo.model,
                    version=promo.version, state=PromotionState.MERGED, gates=(),
                    note="already deployed")
            return result.pull_request.number
        try:
            files = self._proposer.own.expected_files(target, model=promo.model,
                                                      version=promo.version)
        except BadInputError as exc:
            # The version no longer renders (removed from the store, a template now broken):
            # nothing is promoter's render, so nothing is merged; the reason goes on the PR.
            return self._halt(pull, env, f"{promo.model} v{promo.version} no longer renders: "
                              f"{exc.message}", promo)
        if not self._proposer.own.holds_exactly(pull.head_sha, env_head, files):
            # Whatever the forge says promoter wrote, only promoter's render is merged: write
            # it again (the proposal's history says what was replaced) and judge that.
            ctx.forge.upsert_comment(number, key=REPLACED_COMMENT_KEY, body=(
                f"⚠️ The head `{pull.head_sha}` is not byte for byte what promoter renders "
                f"for {promo.model} v{promo.version} from the dry source at "
                f"`{target.dry_sha}`; promoter will not merge it and proposes its own render."))
            result = self._proposer.propose(environment=env.name, model=promo.model,
                                            version=promo.version, author=pull.author)
            if result.pull_request is None:
                return self._halt(pull, env, "the head is not promoter's render", promo)
            return result.pull_request.number
        return self._gate_and_merge(target, pull, promo)

    def _gate_and_merge(self, target: Target, pull: PullRequest,
                        promo: DeployedModel) -> ReconcileOutcome:
        env, number = target.environment, pull.number
        run = self._gates.run(target, pull, promo)
        decision = decide(list(run.gates), auto_merge=target.policy.auto_merge)
        publish_gates(self._ctx.forge, pull.head_sha, run.gates)
        waiting = ReconcileOutcome(
            pull_number=number, environment=env.name, model=promo.model,
            version=promo.version, state=PromotionState.WAITING, gates=run.gates,
            evaluated=run.evaluated)
        if not decision.should_merge:
            state = (PromotionState.BLOCKED if decision.blocked
                     else PromotionState.READY if decision.all_passed else PromotionState.WAITING)
            return replace(waiting, state=state)
        try:
            # The merger asks the environment's controller to sync now.
            merge_sha = self._merger.merge(env, MergeRequest(
                number, expected_head=pull.head_sha,
                message=f"Promote {promo.model} v{promo.version} to {env.name} "
                        f"(#{number})\n\nDigest: {promo.digest}\n"))
        except (StaleHeadError, NotMergeableError) as exc:
            # Not retried blindly: the next reconcile re-evaluates whatever is there now.
            log.warning("PR #%s not merged: %s", number, exc)
            return replace(waiting, note=f"not merged: {exc.message}",
                           error=OutcomeError.of(exc, prefix="not merged: "))
        log.info("merged PR #%s: %s v%s is now in %s", number, promo.model,
                 promo.version, env.name)
        return replace(waiting, state=PromotionState.MERGED, merge_sha=merge_sha,
                       proposed_at=pull.created_at)

    def _take_over_interrupted_proposal(self, pull: PullRequest, env: EnvironmentSpec,
                                        head_now: str | None) -> int | None:
        """The PR to reconcile after taking over the proposal a killed `propose` left on
        `pull`'s head branch, if that is what moved the branch; None if it holds anything
        else (the caller halts).

        `propose` moves `<env>-next`, then updates the PR: a crash in between leaves the
        branch ahead of the PR with no one to re-run the command when the proposal came from
        a reconcile (the environment moved) or a webhook. Proposing the version that commit
        names again takes the commit over only if it is byte for byte what promoter writes;
        otherwise propose refuses, as for any foreign push.
        """
        ctx = self._ctx
        if head_now is None:
            return None
        env_head = ctx.repo.branch_head(env.branch)
        if env_head is None or ctx.repo.commit_info(head_now).parents != (env_head,):
            return None  # not a proposal on the environment as it is now: a person's commits
        try:
            meta = ctx.metadata_at(head_now, where=pull.head_branch)
        except MetadataError:
            return None
        if meta is None:
            return None
        try:
            result = self._proposer.propose(environment=env.name, model=meta.deployed.model,
                                            version=meta.deployed.version, author=pull.author)
        except PromotionError as exc:
            log.warning("PR #%s: %s", pull.number, exc.message)
            return None
        if result.pull_request is None or result.pull_request.head_sha != head_now:
            return None
        log.info("PR #%s: took over %s, which an interrupted proposal wrote", pull.number,
                 head_now[:12])
        return result.pull_request.number


    def _finished(self, pull: PullRequest, env: EnvironmentSpec) -> ReconcileOutcome:
        try:
            meta = self._ctx.metadata_at(pull.head_sha, where=pull.head_branch)
        except MetadataError:
            meta = None
        merged = pull.state is PullRequestState.MERGED
        return ReconcileOutcome(
            pull_number=pull.number, environment=env.name,
            model=meta.deployed.model if meta else None,
            version=meta.deployed.version if meta else None,
            state=PromotionState.MERGED if merged else PromotionState.BLOCKED, gates=(),
            note="already merged" if merged else "closed without merging")

    def _halt(self, pull: PullRequest, env: EnvironmentSpec, reason: str,
              promo: DeployedModel | None = None) -> ReconcileOutcome:
        log.warning("PR #%s halted: %s", pull.number, reason)
        gate = GateResult(PROPOSAL_CONTEXT, StatusState.ERROR, fit_description(reason))
        publish_gates(self._ctx.forge, pull.head_sha, (gate,))
        return ReconcileOutcome(
            pull_number=pull.number, environment=env.name,
            model=promo.model if promo else None, version=promo.version if promo else None,
            state=PromotionState.BLOCKED, gates=(gate,), note=reason)
