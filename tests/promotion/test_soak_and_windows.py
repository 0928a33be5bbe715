"""Soak time and change windows hold promotions on real git and the local forge, then let
them through when time has passed: the gates are re-derived on every reconcile, so the
periodic resync merges a waiting promotion without anybody pushing it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from promoter.cluster.port import RolloutPhase
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import StatusState
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from promoter.promotion.results import ReconcileOutcome
from tests.fakes.clock import ManualClock
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_10)


@pytest.fixture
def world(tmp_path: Path, clock: ManualClock) -> World:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    use(world, clock)
    return world


def use(world: World, clock: ManualClock,
        cluster: ScriptedCluster | None = None) -> PromotionService:
    """Every part dated by `clock`: commits, forge records and the gates' "now"."""
    repo = LocalGitRepository(world.root, clock=clock)
    world.forge = LocalForge(world.root / ".git" / "promoter" / "forge.sqlite", repo,
                             clock=clock)
    world.service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=world.forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator, clock=clock,
        cluster=cluster)
    return world.service


def gate(outcome: ReconcileOutcome, context: str):  # type: ignore[no-untyped-def]
    return next(g for g in outcome.gates if g.context == context)


def propose_staging(world: World) -> int:
    result = world.service.propose(environment="staging", model="churn", version=1,
                                   author="mia")
    assert result.pull_request is not None
    return result.pull_request.number


def add_soak(world: World, duration: str) -> None:
    world.commit_dry_change("policies/staging.yaml", "autoMerge: true",
                            f"soak:\n  duration: {duration}\nautoMerge: true")


def test_soak_holds_until_the_version_ran_long_enough_upstream(world: World,
                                                               clock: ManualClock) -> None:
    add_soak(world, "24h")
    world.promote("dev", 1)
    clock.advance(hours=1)
    number = propose_staging(world)
    waiting = world.service.reconcile_pull(number)
    assert waiting.state is PromotionState.WAITING
    soak = gate(waiting, "promoter/soak")
    assert soak.state is StatusState.PENDING
    assert soak.description == ("ran 1h0m of 24h in dev since its merge; "
                                "passes at 2026-11-24 10:00 UTC")
    # The status is on the PR's head, where branch protection and people see it.
    statuses = {s.context: s for s in world.forge.list_statuses(waiting_head(world, number))}
    assert statuses["promoter/soak"].state is StatusState.PENDING

    clock.advance(hours=22, minutes=59)
    assert world.service.reconcile_pull(number).state is PromotionState.WAITING
    clock.advance(minutes=1)
    merged = world.service.reconcile_pull(number)
    assert merged.state is PromotionState.MERGED
    assert gate(merged, "promoter/soak").description == (
        "ran 1d0h0m in dev since its merge (at least 24h)")
    assert world.metadata("environments/staging")["promoter"]["version"] == 1


def waiting_head(world: World, number: int) -> str:
    return world.forge.get_pull_request(number).head_sha


def test_a_re_render_of_the_same_version_keeps_the_soak_clock(world: World,
                                                              clock: ManualClock) -> None:
    add_soak(world, "24h")
    world.promote("dev", 1)
    clock.advance(hours=20)
    # A dry change re-renders dev with the same model version: a new merge, same version.
    world.commit_dry_change("environments/dev.yaml", "maxReplicas: 2", "maxReplicas: 3")
    world.promote("dev", 1)
    clock.advance(hours=4, minutes=1)
    merged = world.service.reconcile_pull(propose_staging(world))
    assert merged.state is PromotionState.MERGED, gate(merged, "promoter/soak")


def test_a_new_version_upstream_restarts_the_soak(world: World, clock: ManualClock) -> None:
    add_soak(world, "24h")
    world.promote("dev", 1)
    clock.advance(hours=30)
    world.promote("dev", 2)
    clock.advance(hours=1)
    result = world.service.propose(environment="staging", model="churn", version=2,
                                   author="mia")
    assert result.pull_request is not None
    waiting = world.service.reconcile_pull(result.pull_request.number)
    assert gate(waiting, "promoter/soak").description.startswith("ran 1h0m of 24h in dev")


def test_with_a_cluster_the_soak_counts_from_healthy(world: World, clock: ManualClock) -> None:
    add_soak(world, "2h")
    cluster = ScriptedCluster(phases={"dev": RolloutPhase.PROGRESSING})
    use(world, clock, cluster)
    world.promote("dev", 1)
    clock.advance(minutes=5)
    number = propose_staging(world)
    not_started = world.service.reconcile_pull(number)
    assert gate(not_started, "promoter/soak").description == (
        "soak of 2h in dev has not started: its rollout is progressing")

    # Healthy from now on: the five minutes since the merge do not count.
    cluster.phases["dev"] = RolloutPhase.HEALTHY
    cluster.healthy_since["dev"] = clock.now
    clock.advance(hours=1)
    soaking = world.service.reconcile_pull(number)
    assert soaking.state is PromotionState.WAITING
    assert gate(soaking, "promoter/soak").description.startswith(
        "ran 1h0m of 2h in dev since healthy")
    clock.advance(hours=1)
    assert world.service.reconcile_pull(number).state is PromotionState.MERGED


def test_unreadable_cluster_holds_the_soak(world: World, clock: ManualClock) -> None:
    add_soak(world, "2h")
    cluster = ScriptedCluster()
    use(world, clock, cluster)
    world.promote("dev", 1)
    clock.advance(hours=3)
    cluster.unreachable = True
    waiting = world.service.reconcile_pull(propose_staging(world))
    assert waiting.state is PromotionState.WAITING
    assert "its rollout cannot be read: connection refused" in gate(
        waiting, "promoter/soak").description


OFFICE_HOURS = """schedule:
  timezone: Europe/Berlin
  windows:
    - cron: "0 9 * * mon-thu"
      duration: 7h
  freezes:
    - start: 2026-12-20T00:00:00
      end: 2027-01-04T00:00:00
      reason: year-end freeze
autoMerge: true"""


def test_change_window_holds_a_promotion_until_it_opens(world: World, clock: ManualClock) -> None:
    world.commit_dry_change("policies/staging.yaml", "autoMerge: true", OFFICE_HOURS)
    clock.now = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # Thursday 17:00 in Berlin
    world.promote("dev", 1)
    number = propose_staging(world)
    closed = world.service.reconcile_pull(number)
    assert closed.state is PromotionState.WAITING
    window = gate(closed, "promoter/change-window")
    assert window.state is StatusState.PENDING
    assert window.description == "outside change windows; next opens Mon 2026-11-30 09:00 CET"
    # The resync over the weekend finds it still closed; on Monday it merges.
    clock.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert world.service.reconcile()[0].state is PromotionState.WAITING
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    merged = world.service.reconcile()
    assert [o.state for o in merged] == [PromotionState.MERGED]
    assert gate(merged[0], "promoter/change-window").state is StatusState.SUCCESS


def test_freeze_holds_even_inside_a_window(world: World, clock: ManualClock) -> None:
    world.commit_dry_change("policies/staging.yaml", "autoMerge: true", OFFICE_HOURS)
    clock.now = datetime(2026, 12, 21, 10, 0, tzinfo=UTC)  # a Monday, in the freeze
    world.promote("dev", 1)
    frozen = world.service.reconcile_pull(propose_staging(world))
    assert frozen.state is PromotionState.WAITING
    assert gate(frozen, "promoter/change-window").description == (
        "frozen until Mon 2027-01-04 00:00 CET: year-end freeze")


def test_environments_without_a_schedule_have_no_such_gate(world: World) -> None:
    world.promote("dev", 1)
    merged = world.service.reconcile_pull(propose_staging(world))
    assert merged.state is PromotionState.MERGED
    contexts = {g.context for g in merged.gates}
    assert "promoter/change-window" not in contexts
    assert "promoter/soak" not in contexts

