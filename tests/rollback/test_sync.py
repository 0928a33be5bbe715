"""A merged rollback asks Flux / Argo CD to sync now, as a merged promotion does, and the
rollout promoter then tracks is the rollback's: real git, the local forge, the real
`kubernetes` client on the fake API server.

The failed rollout is what a rollback answers, so waiting for the controller's interval
(10 minutes in the objects `promoter flux`/`argo` write) is the worst time to wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from promoter.cluster import RolloutPhase
from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.cluster.port import ARGO_REFRESH_ANNOTATION, FLUX_RECONCILE_ANNOTATION
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import StatusState
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from promoter.promotion.rollback import RollbackService
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import (
    application,
    synced_application,
)
from tests.deploy.test_deploy import _build, _granted, _rule
from tests.fakes.clock import ManualClock
from tests.fixtures.git import run_git
from tests.promotion.world import World
from tests.rollback.conftest import dev_target, flux_reports

BRANCH = "environments/dev"


def _service(world: World, reader: KubernetesClusterReader, clock: ManualClock) -> PromotionService:
    repo = LocalGitRepository(world.root, clock=clock)
    forge = LocalForge(world.root / ".git" / "promoter" / "forge.sqlite", repo, clock=clock)
    return PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
        clock=clock, cluster=reader, rollbacks=RollbackService(repo=repo, forge=forge))


def _assert_rbac_allows(api: FakeKubernetesApi, overlay: str) -> None:
    """Every request of the flow, the sync request included, is one the Role that deploy/
    ships for `overlay` allows (tests/deploy holds the Role to the reader's own calls)."""
    used = {_rule(request) for request in api.audit}
    assert used
    assert used - _granted(_build(overlay)) == set(), "used but not granted"


def _version(world: World) -> int:
    return int(world.metadata(BRANCH)["promoter"]["version"])


def test_an_automatic_flux_rollback_asks_flux_to_sync_now(
        world_at: Callable[..., World], api: FakeKubernetesApi,
        reader: KubernetesClusterReader) -> None:
    world = world_at(1, 2)
    flux_reports(world, api, serving_failed=True)
    target = dev_target(world)
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))

    (check,) = [c for c in _service(world, reader, clock).check_rollouts()
                if c.environment == "dev"]

    assert check.rollback is not None
    assert check.rollback.merge_sha is not None
    assert _version(world) == 1
    # One request, on dev's GitRepository (both of dev's Kustomizations follow it); the
    # training Kustomization, which did not fail, is not what is asked.
    assert [(path, body) for path, _, body in api.patches] == [
        (target.git_repository.path,
         {"metadata": {"annotations": {FLUX_RECONCILE_ANNOTATION: clock.now.isoformat()}}})]
    assert api.current(target.git_repository)["metadata"]["annotations"] == {
        FLUX_RECONCILE_ANNOTATION: clock.now.isoformat()}
    _assert_rbac_allows(api, "github-app")


def test_an_approved_argo_rollback_asks_argo_to_refresh_and_is_tracked_from_its_merge(
        world_at: Callable[..., World], api: FakeKubernetesApi,
        reader: KubernetesClusterReader) -> None:
    """The rollback waits (autoMergeRollback off) and merges two hours later through
    reconcile: that merge refreshes the serving Application, and the rollout promoter tracks
    next is the merge's, with its own deadline, not a second rollback."""
    world = world_at(1, 2)
    world.commit_dry_change("environments/dev.yaml", "policy: dev\n",
                            "policy: dev\ndelivery:\n  tool: argo\n  autoMergeRollback: false\n")
    head = run_git(world.root, "rev-parse", BRANCH)
    target = dev_target(world)
    assert target.tool == "argo"
    assert target.training is not None
    failed = application(sync_revision=head, op_phase="Failed", op_revision=head,
                         finished_at="2024-05-01T12:01:00Z", message="one or more objects "
                         "failed to apply")
    api.put(target.application, failed)
    api.put(target.training, synced_application(head, health="Healthy",
                                                name=target.training.name))
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(world, reader, clock)

    (check,) = [c for c in service.check_rollouts() if c.environment == "dev"]
    assert check.rollback is not None
    assert check.rollback.merge_sha is None  # it waits
    assert api.patches == []  # nothing merged, nothing to sync
    written = LocalGitRepository(world.root).commit_info(check.rollback.commit).authored_at

    clock.now += timedelta(hours=2)
    outcomes = service.reconcile()
    assert [(o.state, o.note) for o in outcomes] == [(PromotionState.MERGED, "rollback")]
    merge = outcomes[0].merge_sha
    assert merge is not None
    assert run_git(world.root, "rev-parse", BRANCH) == merge
    assert _version(world) == 1
    merged_at = LocalGitRepository(world.root).commit_info(merge).authored_at
    assert merged_at - written == timedelta(hours=2)
    paths = [path for path, _, _ in api.patches]
    assert paths[0] == target.application.path  # serving's Application first
    assert set(paths) <= {target.application.path, target.training.path}
    assert api.current(target.application)["metadata"]["annotations"] == {
        ARGO_REFRESH_ANNOTATION: "normal"}

    # Argo CD has not synced the merge yet and still shows v2's failure: that is the old
    # commit's, so the rollback's rollout is pending, not failed, and nothing rolls back.
    # Its deadline runs from the merge: 599 s after it is in time, although the rollback
    # commit was written 2 h before (healthTimeoutSeconds is 600).
    clock.now += timedelta(seconds=599)
    (check,) = [c for c in service.check_rollouts() if c.environment == "dev"]
    assert check.commit == merge
    assert check.state is not None
    assert check.state.phase is RolloutPhase.PENDING
    assert check.rollback is None
    assert check.error is None
    assert world.forge.list_open_pull_requests(label="rollback") == []
    statuses = {s.context: s.state for s in world.forge.list_statuses(merge)}
    assert statuses["promoter/rollout"] is StatusState.PENDING

    api.put(target.application, synced_application(merge, health="Healthy"))
    (check,) = [c for c in service.check_rollouts() if c.environment == "dev"]
    assert check.state is not None
    assert check.state.phase is RolloutPhase.HEALTHY
    assert {s.context: s.state for s in world.forge.list_statuses(merge)}[
        "promoter/rollout"] is StatusState.SUCCESS
    assert run_git(world.root, "rev-parse", BRANCH) == merge
    _assert_rbac_allows(api, "github-app-argocd")
