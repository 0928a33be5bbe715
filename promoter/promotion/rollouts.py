"""Rollouts: read each environment's rollout of its branch head back from the cluster, publish
it as the `promoter/rollout` status, and roll back a failed one (merged through the
`EnvironmentMerger`, which asks the controller to sync now).

Without a cluster reader (the demo) every method is a quiet no-op: promotions then gate on git
and the forge only.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from promoter.cluster.errors import ClusterError
from promoter.cluster.gate import rollout_status
from promoter.cluster.port import RolloutPhase, RolloutState
from promoter.config.schema import EnvironmentSpec
from promoter.errors import PromoterError
from promoter.promotion.context import PromotionContext
from promoter.promotion.merging import EnvironmentMerger
from promoter.promotion.results import RolloutCheck
from promoter.promotion.rollback import RollbackService

log = logging.getLogger(__name__)


class RolloutWatcher:
    """Rollout health per environment, and what promoter does about it."""

    def __init__(self, context: PromotionContext, rollbacks: RollbackService | None,
                 merger: EnvironmentMerger) -> None:
        self._ctx = context
        self._rollbacks = rollbacks
        self._merger = merger

    def check_rollouts(self) -> list[RolloutCheck]:
        """Read every environment's rollout of its branch head back from the cluster, publish
        it as the `promoter/rollout` status on that commit, and roll back a failed or
        timed-out one (per the environment's `delivery` settings).

        A rollout still progressing after `delivery.healthTimeoutSeconds` since the commit
        counts as timed out. An unreadable cluster is reported, never a reason to roll back.
        """
        ctx = self._ctx
        if ctx.cluster is None:
            return []
        _, dry = ctx.dry_config()
        checks = []
        for env in dry.environments.values():
            head = ctx.repo.branch_head(env.branch)
            if head is None or ctx.deployed(env) is None:
                continue
            try:
                state = ctx.cluster.rollout_state(env, commit=head)
            except ClusterError as exc:
                log.warning("rollout of %s@%s unreadable: %s", env.branch, head[:12],
                            exc.message)
                checks.append(RolloutCheck(env.name, head, None, None, exc.message))
                continue
            state = self._with_deadline(env, state)
            status = rollout_status(state)
            current = {s.context: s for s in ctx.forge.list_statuses(head)}
            if current.get(status.context) != status:
                ctx.forge.set_status(head, status)
            rollback, error = None, None
            if state.phase in (RolloutPhase.FAILED, RolloutPhase.TIMED_OUT) and self._rollbacks:
                try:
                    rollback = self._rollbacks.after_rollout(env, state, merger=self._merger,
                                                             author=ctx.identity)
                except PromoterError as exc:
                    # E.g. the first deployment failed: nothing earlier to restore. A person
                    # must act; the other environments' promotions must still go on.
                    error = f"automatic rollback not possible: {exc.message}"
                    log.error("%s: rollout of %s %s; %s", env.name, head[:12], state.phase,
                              error)
            checks.append(RolloutCheck(env.name, head, state, rollback, error))
        return checks

    def rollout_of(self, environment: EnvironmentSpec) -> RolloutState | None:
        """The cluster's reading of `environment`'s branch head (TIMED_OUT once past its
        `healthTimeoutSeconds`), for the upstream-rollout gate and discovery; None without a
        cluster reader or an environment branch. Raises ClusterError when it cannot tell."""
        ctx = self._ctx
        head = ctx.repo.branch_head(environment.branch)
        if ctx.cluster is None or head is None:
            return None
        return self._with_deadline(environment,
                                   ctx.cluster.rollout_state(environment, commit=head))

    def _with_deadline(self, env: EnvironmentSpec, state: RolloutState) -> RolloutState:
        if state.done:
            return state
        since = self._ctx.repo.commit_info(state.commit).authored_at
        waited = (self._ctx.clock() - since).total_seconds()
        limit = env.delivery.health_timeout_seconds
        if waited <= limit:
            return state
        return replace(state, phase=RolloutPhase.TIMED_OUT,
                       reason=f"not healthy {int(waited)} s after the merge (limit {limit} s): "
                              f"{state.reason}")
