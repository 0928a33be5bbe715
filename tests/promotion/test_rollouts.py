"""Promotions that read rollouts back: upstream health gates the next environment, merges
ask the controller to sync, and a failed or timed-out rollout is rolled back by a PR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promoter.cluster.port import RolloutPhase
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import StatusState
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from promoter.promotion.rollback import RollbackService
from tests.fakes.clock import ManualClock
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World, git


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def with_cluster(world: World, cluster: ScriptedCluster, clock: ManualClock, *,
                 rollbacks: bool = True) -> PromotionService:
    repo = LocalGitRepository(world.root)
    service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=world.forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
        clock=clock, cluster=cluster,
        rollbacks=RollbackService(repo=repo, forge=world.forge) if rollbacks else None)
    world.service = service
    return service


def gate(outcome, context: str):  # type: ignore[no-untyped-def]
    return next(g for g in outcome.gates if g.context == context)


def test_next_environment_waits_for_a_healthy_upstream_rollout(world: World) -> None:
    cluster = ScriptedCluster(phases={"dev": RolloutPhase.PROGRESSING})
    service = with_cluster(world, cluster, ManualClock())
    world.promote("dev", 1)
    assert cluster.reconcile_requests == ["dev"]  # the merge asked Flux to sync now
    result = service.propose(environment="staging", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    waiting = service.reconcile_pull(result.pull_request.number)
    assert waiting.state is PromotionState.WAITING
    assert gate(waiting, "promoter/upstream-rollout").state is StatusState.PENDING
    cluster.phases["dev"] = RolloutPhase.HEALTHY
    assert service.reconcile_pull(result.pull_request.number).state is PromotionState.MERGED


def test_failed_upstream_rollout_blocks(world: World) -> None:
    cluster = ScriptedCluster()
    service = with_cluster(world, cluster, ManualClock())
    world.promote("dev", 1)
    cluster.phases["dev"] = RolloutPhase.FAILED
    # Judge the gate alone, without the automatic rollback.
    service = with_cluster(world, cluster, ManualClock(), rollbacks=False)
    result = service.propose(environment="staging", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    outcome = service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    assert gate(outcome, "promoter/upstream-rollout").state is StatusState.FAILURE


def test_unreadable_cluster_waits_and_never_rolls_back(world: World) -> None:
    cluster = ScriptedCluster()
    service = with_cluster(world, cluster, ManualClock())
    world.promote("dev", 1)
    cluster.unreachable = True
    before = git(world.root, "rev-parse", "environments/dev")
    checks = service.check_rollouts()
    assert [c.error for c in checks] == ["connection refused by 127.0.0.1:1"]
    result = service.propose(environment="staging", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    outcome = service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.WAITING
    assert "cannot read dev's rollout" in gate(outcome, "promoter/upstream-rollout").description
    assert git(world.root, "rev-parse", "environments/dev") == before


def test_failed_rollout_is_rolled_back_by_a_merged_pr(world: World) -> None:
    cluster = ScriptedCluster()
    service = with_cluster(world, cluster, ManualClock())
    world.promote("dev", 1)
    world.promote("dev", 2)
    cluster.phases["dev"] = RolloutPhase.FAILED
    requests = len(cluster.reconcile_requests)
    checks = service.check_rollouts()
    assert [c.state.phase for c in checks if c.state] == [RolloutPhase.FAILED]
    failed_head = checks[0].commit
    # The rollback's merge asked dev's controller to sync now, as a promotion's does.
    assert cluster.reconcile_requests[requests:] == ["dev"]
    statuses = {s.context: s.state for s in world.forge.list_statuses(failed_head)}
    assert statuses["promoter/rollout"] is StatusState.FAILURE
    # autoRollback and autoMergeRollback default to true: dev renders v1 again, by a new
    # commit on top (no force-push).
    assert world.metadata("environments/dev")["promoter"]["version"] == 1
    assert git(world.root, "merge-base", "--is-ancestor", failed_head,
               "environments/dev") == ""


def test_rollout_that_never_becomes_healthy_times_out(world: World) -> None:
    clock = ManualClock()
    cluster = ScriptedCluster()
    service = with_cluster(world, cluster, clock)
    world.promote("dev", 1)
    world.promote("dev", 2)
    cluster.phases["dev"] = RolloutPhase.PROGRESSING
    assert [c.state.phase for c in service.check_rollouts() if c.state] == [
        RolloutPhase.PROGRESSING]
    # dev's delivery.healthTimeoutSeconds is 600; the merge happened just now.
    clock.now = datetime.now(UTC) + timedelta(seconds=601)
    timed_out = service.check_rollouts()
    assert timed_out[0].state is not None
    assert timed_out[0].state.phase is RolloutPhase.TIMED_OUT
    assert world.metadata("environments/dev")["promoter"]["version"] == 1


def test_a_rollback_that_cannot_be_made_is_reported_not_raised(world: World) -> None:
    """The first deployment failing has nothing to roll back to: the check says so, and the
    other environments' promotions are still reconciled."""
    cluster = ScriptedCluster()
    service = with_cluster(world, cluster, ManualClock())
    world.promote("dev", 1)
    cluster.phases["dev"] = RolloutPhase.FAILED
    checks = service.check_rollouts()
    assert len(checks) == 1
    assert checks[0].state is not None
    assert checks[0].state.phase is RolloutPhase.FAILED
    assert checks[0].rollback is None
    assert checks[0].error is not None
    assert "rollback" in checks[0].error
    statuses = {s.context: s.state for s in world.forge.list_statuses(checks[0].commit)}
    assert statuses["promoter/rollout"] is StatusState.FAILURE
    assert service.reconcile() == []  # no exception: the reconcile goes on
