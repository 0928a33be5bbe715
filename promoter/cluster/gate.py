"""Rollout verdicts as gates and commit statuses (pure), for the promotion service.

- `decide_upstream_rollout`: the "previous environment healthy" gate of a promotion: the
  version may move on only once the environment it comes from runs it healthy.
- `rollout_status`: the commit status to set on an environment branch commit, so the forge
  shows whether a merge rolled out (Flux users also get Flux's own statuses from the Alert;
  Argo CD users get only this one).
"""

from __future__ import annotations

from promoter.cluster.port import RolloutPhase, RolloutState
from promoter.domain.pull_requests import CommitStatus, StatusState
from promoter.policy import GateResult, fit_description

UPSTREAM_ROLLOUT_CONTEXT = "promoter/upstream-rollout"
ROLLOUT_CONTEXT = "promoter/rollout"

_STATES = {
    RolloutPhase.HEALTHY: StatusState.SUCCESS,
    RolloutPhase.PENDING: StatusState.PENDING,
    RolloutPhase.PROGRESSING: StatusState.PENDING,
    RolloutPhase.FAILED: StatusState.FAILURE,
    RolloutPhase.TIMED_OUT: StatusState.FAILURE,
}


def decide_upstream_rollout(upstream: RolloutState | None) -> GateResult:
    """Pass when the upstream environment's rollout of its branch head is HEALTHY.

    `upstream` is None for the first environment (nothing to wait for). Pending or
    progressing waits (PENDING); failed or timed out blocks (FAILURE).
    """
    if upstream is None:
        return GateResult(UPSTREAM_ROLLOUT_CONTEXT, StatusState.SUCCESS,
                          "first environment: no upstream rollout to wait for")
    state = _STATES[upstream.phase]
    verdict = {
        StatusState.SUCCESS: "healthy",
        StatusState.PENDING: "not healthy yet",
        StatusState.FAILURE: "failed",
    }[state]
    return GateResult(UPSTREAM_ROLLOUT_CONTEXT, state, fit_description(
        f"{upstream.environment} @{upstream.commit[:12]} {verdict}: {upstream.reason}"))


def rollout_status(state: RolloutState) -> CommitStatus:
    """The commit status `promoter/rollout` for the environment branch commit in `state`."""
    return CommitStatus(ROLLOUT_CONTEXT, _STATES[state.phase],
                        fit_description(f"{state.environment}: {state.phase}: {state.reason}"))
