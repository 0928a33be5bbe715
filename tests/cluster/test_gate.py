"""Rollout verdicts as the "previous environment healthy" gate and as commit statuses."""

from __future__ import annotations

import pytest

from promoter.cluster import RolloutPhase, RolloutState
from promoter.cluster.gate import (
    ROLLOUT_CONTEXT,
    UPSTREAM_ROLLOUT_CONTEXT,
    decide_upstream_rollout,
    rollout_status,
)
from promoter.domain.pull_requests import StatusState
from tests.cluster.objects import COMMIT


def _state(phase: RolloutPhase, reason: str = "Kustomization promoter-dev: ok") -> RolloutState:
    return RolloutState(environment="dev", commit=COMMIT, phase=phase, reason=reason)


@pytest.mark.parametrize(("phase", "status", "word"), [
    (RolloutPhase.HEALTHY, StatusState.SUCCESS, "healthy"),
    (RolloutPhase.PENDING, StatusState.PENDING, "not healthy yet"),
    (RolloutPhase.PROGRESSING, StatusState.PENDING, "not healthy yet"),
    (RolloutPhase.FAILED, StatusState.FAILURE, "failed"),
    (RolloutPhase.TIMED_OUT, StatusState.FAILURE, "failed"),
])
def test_upstream_rollout_gate(phase: RolloutPhase, status: StatusState, word: str) -> None:
    gate = decide_upstream_rollout(_state(phase))
    assert gate.context == UPSTREAM_ROLLOUT_CONTEXT
    assert gate.state is status
    assert gate.description.startswith(f"dev @{COMMIT[:12]} {word}: ")
    assert gate.passed is (status is StatusState.SUCCESS)


def test_first_environment_passes() -> None:
    assert decide_upstream_rollout(None).passed


def test_rollout_status_fits_a_commit_status() -> None:
    status = rollout_status(_state(RolloutPhase.FAILED, reason="x" * 500))
    assert status.context == ROLLOUT_CONTEXT
    assert status.state is StatusState.FAILURE
    assert len(status.description) == 140
    assert status.description.startswith("dev: failed: xxx")
