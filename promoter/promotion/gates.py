"""The gates of one promotion: upstream, evaluation, approvals, upstream rollout, soak, change
window and other tools' checks, in pipeline order.

Each gate is decided by the pure functions of `promoter.policy`, `promoter.change_windows` and
`promoter.cluster.gate`; this module only gathers what they need from git, the forge and the
cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from promoter.change_windows import decide_change_window
from promoter.cluster.errors import ClusterError
from promoter.cluster.gate import UPSTREAM_ROLLOUT_CONTEXT, decide_upstream_rollout
from promoter.cluster.port import RolloutPhase, RolloutState
from promoter.config.schema import EnvironmentSpec, SoakPolicy
from promoter.domain.pull_requests import PullRequest, StatusState
from promoter.policy import (
    EXTERNAL_CHECKS_CONTEXT,
    GateResult,
    decide_approvals,
    decide_soak,
    decide_upstream,
    fit_description,
)
from promoter.promotion.authorship import authors_of
from promoter.promotion.context import PromotionContext, Target
from promoter.promotion.evaluation_gate import EvaluationGate
from promoter.promotion.rollouts import RolloutWatcher
from promoter.render.metadata import DeployedModel

_SOAK_HISTORY_LIMIT = 200
"""First-parent commits walked at most to find when a version first reached an environment."""


@dataclass(frozen=True, slots=True)
class GateRun:
    """Every gate of one proposal head, in pipeline order."""

    gates: tuple[GateResult, ...]
    evaluated: bool
    """True when the model was scored in this run (not reused from an earlier one)."""


class GateRunner:
    """Decides every gate of a proposal; writes nothing but the evaluation report."""

    def __init__(self, context: PromotionContext, evaluation: EvaluationGate,
                 rollouts: RolloutWatcher) -> None:
        self._ctx = context
        self._evaluation = evaluation
        self._rollouts = rollouts

    def run(self, target: Target, pull: PullRequest, promo: DeployedModel) -> GateRun:
        ctx = self._ctx
        env = target.environment
        upstream_env = target.upstream
        upstream = decide_upstream(
            model=promo.model, version=promo.version, digest=promo.digest,
            promotes_from=env.promotes_from,
            upstream=ctx.deployed(upstream_env) if upstream_env else None,
        )
        verdict = self._evaluation.judge(target, pull, promo)
        gates = [upstream, verdict.gate,
                 self._approvals_gate(target, pull, needs_approval=verdict.needs_approval)]
        upstream_rollout: RolloutState | str | None = None
        if ctx.cluster is not None and upstream_env is not None:
            rollout_gate, upstream_rollout = self._upstream_rollout_gate(upstream_env)
            gates.append(rollout_gate)
        if target.policy.soak is not None:
            gates.append(self._soak_gate(target.policy.soak, upstream_env, promo,
                                         upstream_rollout))
        if target.policy.schedule is not None:
            gates.append(decide_change_window(target.policy.schedule, ctx.clock()))
        external = ctx.forge.capabilities.external_checks
        if external is not None:
            # Other tools' required checks: promoter never merges past a failing or pending one.
            checks = external.external_checks_state(pull)
            gates.append(GateResult(EXTERNAL_CHECKS_CONTEXT, checks.state,
                                    fit_description(checks.description)))
        return GateRun(tuple(gates), evaluated=verdict.evaluated)

    def _approvals_gate(self, target: Target, pull: PullRequest, *,
                        needs_approval: bool) -> GateResult:
        forge = self._ctx.forge
        reviews = forge.list_reviews(pull.number)
        policy = target.policy.approvals
        if needs_approval and policy.required == 0:
            # The evaluation was inconclusive and the policy lets a person decide.
            policy = policy.model_copy(update={"required": 1})
        directory = forge.capabilities.team_directory
        if directory is not None and reviews:
            # Members of the forge's approver team count as named approvers.
            team = directory.team_members_among({r.user for r in reviews})
            policy = policy.model_copy(
                update={"approvers": tuple(sorted(set(policy.approvers) | team))})
        # Every author of any revision is excluded, not only who opened the PR.
        authors = authors_of(self._ctx.repo, pull)
        return decide_approvals(policy, reviews=reviews, author=pull.author,
                                head_sha=pull.head_sha,
                                ignored_users=[self._ctx.identity, *authors])

    def _upstream_rollout_gate(self, upstream_env: EnvironmentSpec
                               ) -> tuple[GateResult, RolloutState | str | None]:
        """The upstream-rollout gate, and what it read: the state, or why it could not."""
        try:
            state = self._rollouts.rollout_of(upstream_env)
        except ClusterError as exc:
            # Not knowing is not a failure of the model: wait, and say why.
            return GateResult(UPSTREAM_ROLLOUT_CONTEXT, StatusState.PENDING,
                              fit_description(f"cannot read {upstream_env.name}'s rollout: "
                                              f"{exc.message}")), exc.message
        return decide_upstream_rollout(state), state

    def _soak_gate(self, policy: SoakPolicy, upstream_env: EnvironmentSpec | None,
                   promo: DeployedModel, rollout: RolloutState | str | None) -> GateResult:
        """How long `promo` has run in the upstream environment.

        Counted from the merge that brought this exact version (same digest) there, found by
        walking the upstream branch's first parents; re-renders of the same version keep the
        clock running. With a cluster, also from when the rollout there last became healthy:
        a version that was unhealthy for a while has not soaked meanwhile.
        """
        now = self._ctx.clock()
        if upstream_env is None:
            return decide_soak(policy, promotes_from=None, since=None, basis="", now=now)
        merged_at = self._first_merge_of(upstream_env, promo)
        name = upstream_env.name
        if merged_at is None:
            return decide_soak(policy, promotes_from=name, since=None, now=now,
                               basis=f"{promo.model} v{promo.version} does not run there")
        if self._ctx.cluster is None:
            return decide_soak(policy, promotes_from=name, since=merged_at, now=now,
                               basis="since its merge")
        if isinstance(rollout, str) or rollout is None:
            return decide_soak(policy, promotes_from=name, since=None, now=now,
                               basis=f"its rollout cannot be read: {rollout or 'no commit'}")
        if rollout.phase is not RolloutPhase.HEALTHY:
            return decide_soak(policy, promotes_from=name, since=None, now=now,
                               basis=f"its rollout is {rollout.phase}")
        since = max(merged_at, rollout.healthy_since or merged_at)
        return decide_soak(policy, promotes_from=name, since=since, now=now,
                           basis="since healthy")

    def _first_merge_of(self, env: EnvironmentSpec, promo: DeployedModel) -> datetime | None:
        """When `env`'s branch first rendered `promo` in its current, unbroken run."""
        ctx = self._ctx
        wanted = (promo.model, promo.version, promo.digest)
        sha = ctx.repo.branch_head(env.branch)
        since = None
        for _ in range(_SOAK_HISTORY_LIMIT):
            if sha is None:
                break
            meta = ctx.metadata_at(sha, where=env.branch)
            if meta is None or (meta.deployed.model, meta.deployed.version,
                                meta.deployed.digest) != wanted:
                break
            info = ctx.repo.commit_info(sha)
            since = info.committed_at
            sha = info.parents[0] if info.parents else None
        return since
