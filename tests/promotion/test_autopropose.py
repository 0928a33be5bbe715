"""Automatic proposals on a real git repository and LocalForge: a version dropped into the model
store becomes one pull request on the first environment, moves on once upstream runs it, and
a second pass writes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promoter.cluster.port import RolloutPhase
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import PullRequestState
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, ProposalOutcome
from promoter.promotion.autopropose import AutoProposer
from promoter.promotion.merging import EnvironmentMerger
from promoter.promotion.rollback import RollbackService
from promoter.server.jobs import ReconcileJobs
from promoter.server.metrics import ServerMetrics
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World, fake_saved_model, git, refs


class Clock:
    """Wall time plus `offset`: the store's files carry real times."""

    def __init__(self, offset_s: float = 120.0) -> None:
        self.offset = timedelta(seconds=offset_s)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def auto_world(root: Path, *, auto: str = "[dev]", settle: float = 60.0) -> World:
    """The example world with `models[0].promotion` set (committed to the dry branch too)."""
    world = World(root, ScriptedEvaluator())
    world.commit_dry_change(
        "promoter.yaml", "    labelColumn: churned\n",
        f"    labelColumn: churned\n    promotion:\n      autoPropose: {auto}\n"
        f"      settleSeconds: {settle}\n")
    world.service = world.build()
    return world


def proposer(world: World, *, clock: Clock | None = None,
             service: PromotionService | None = None) -> AutoProposer:
    repo = LocalGitRepository(world.root)
    return AutoProposer(service=service or world.service,
                        store=LocalModelStore(world.root / "models"),
                        settings=load_settings(world.root / "promoter.yaml").settings,
                        rollbacks=RollbackService(repo=repo, forge=world.forge),
                        clock=clock or Clock())


def with_cluster(world: World, cluster: ScriptedCluster) -> PromotionService:
    repo = LocalGitRepository(world.root)
    return PromotionService(settings=load_settings(world.root / "promoter.yaml"), repo=repo,
                            forge=world.forge, store=LocalModelStore(world.root / "models"),
                            evaluator=world.evaluator, cluster=cluster,
                            rollbacks=RollbackService(repo=repo, forge=world.forge))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return auto_world(tmp_path / "gitops")


def test_a_new_version_becomes_one_pull_request_and_a_second_pass_writes_nothing(
        world: World) -> None:
    auto = proposer(world)
    run = auto.run()
    [attempt] = run.attempts
    assert attempt.result is not None
    assert attempt.result.outcome is ProposalOutcome.OPENED
    assert (attempt.proposal.environment, attempt.proposal.version) == ("dev", 3)
    [pull] = world.forge.list_open_pull_requests()
    assert (pull.base_branch, pull.author) == ("environments/dev", "promoter")
    assert world.metadata("environments/dev-next")["promoter"]["version"] == 3

    before = refs(world.root)
    again = auto.run()
    assert again.attempts == ()
    assert [h.reason for h in again.plan.held] == ["PR #1 already proposes churn v3"]
    assert refs(world.root) == before
    assert len(world.forge.list_open_pull_requests()) == 1

    # A newer version replaces the proposal in place: still one pull request.
    fake_saved_model(world.root / "models" / "churn" / "4", "graph v4")
    [newer] = auto.run().attempts
    assert newer.result is not None
    assert newer.result.outcome is ProposalOutcome.UPDATED
    assert [p.number for p in world.forge.list_open_pull_requests()] == [pull.number]
    assert world.metadata("environments/dev-next")["promoter"]["version"] == 4


def test_a_version_still_changing_waits_for_the_settle_period(world: World) -> None:
    auto = proposer(world, clock=Clock(offset_s=0.0))  # the versions were written just now
    before = refs(world.root)
    run = auto.run()
    assert run.attempts == ()
    [held] = run.plan.held
    assert held.version == 3
    assert held.reason.endswith("ago; waiting until it is unchanged for 60 s")
    assert refs(world.root) == before
    assert [a.proposal.version for a in proposer(world, clock=Clock(61.0)).run().attempts] == [3]


def test_incomplete_and_odd_directories_are_passed_over(world: World,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    store = world.root / "models" / "churn"
    (store / "4").mkdir()
    (store / "4" / "saved_model.pb").write_text("uploading")
    (store / "upload-tmp").mkdir()
    (store / "9").write_text("not a directory")
    with caplog.at_level(logging.DEBUG):
        run = proposer(world).run()
    assert [a.proposal.version for a in run.attempts] == [3]
    assert [(h.version, h.reason) for h in run.plan.held] == [
        (4, "not a complete SavedModel yet: no variables/")]
    assert "upload-tmp is not a version number" in caplog.text
    assert "churn/9 is not a directory" in caplog.text


def test_a_deployed_version_is_not_proposed_again(world: World) -> None:
    world.promote("dev", 3)
    before = refs(world.root)
    run = proposer(world).run()
    assert run.attempts == ()
    assert [h.reason for h in run.plan.held] == ["dev already runs churn v3"]
    assert refs(world.root) == before


def test_a_later_environment_gets_what_its_upstream_runs(tmp_path: Path) -> None:
    world = auto_world(tmp_path / "gitops", auto="[dev, staging]")
    world.promote("dev", 1)
    run = proposer(world).run()
    assert [(a.proposal.environment, a.proposal.version) for a in run.attempts] == [
        ("dev", 3), ("staging", 1)]
    assert {p.base_branch for p in world.forge.list_open_pull_requests()} == {
        "environments/dev", "environments/staging"}
    assert run.attempts[1].proposal.reason == "dev runs churn v1"


def test_with_a_cluster_a_later_environment_waits_for_a_healthy_upstream(
        tmp_path: Path) -> None:
    world = auto_world(tmp_path / "gitops", auto="[staging]")
    world.promote("dev", 1)
    cluster = ScriptedCluster(phases={"dev": RolloutPhase.PROGRESSING})
    service = with_cluster(world, cluster)
    run = proposer(world, service=service).run()
    assert run.attempts == ()
    assert [h.reason for h in run.plan.held] == [
        "dev's rollout is not healthy: progressing: scripted progressing"]
    cluster.unreachable = True
    assert "cannot read it: connection refused" in proposer(
        world, service=service).plan().held[0].reason
    cluster.unreachable = False
    cluster.phases["dev"] = RolloutPhase.HEALTHY
    [attempt] = proposer(world, service=service).run().attempts
    assert (attempt.proposal.environment, attempt.proposal.version) == ("staging", 1)
    assert attempt.proposal.reason == "dev runs churn v1 (rollout healthy)"


def test_a_rolled_back_version_is_not_proposed_again(world: World) -> None:
    world.promote("dev", 2)
    world.promote("dev", 3)
    repo = LocalGitRepository(world.root)
    rollbacks = RollbackService(repo=repo, forge=world.forge)
    env = world.service.dry_config()[1].environment("dev")
    rollbacks.merge(env, rollbacks.propose(env, reason="v3 failed", author="ops"),
                    merger=EnvironmentMerger(world.forge, None, lambda: datetime.now(UTC)))
    assert world.metadata("environments/dev")["promoter"]["version"] == 2
    before = refs(world.root)
    run = proposer(world).run()
    assert run.attempts == ()
    assert "churn v3 was rolled back out of dev" in run.plan.held[0].reason
    assert refs(world.root) == before
    # A new version is a new chance.
    fake_saved_model(world.root / "models" / "churn" / "4", "graph v4")
    assert [a.proposal.version for a in proposer(world).run().attempts] == [4]


@pytest.mark.parametrize("label", ["kept", "removed by a person"])
def test_an_open_rollback_is_left_alone(world: World, label: str) -> None:
    """Told by its head commit: a person who removes the `rollback` label (anyone who may
    label a PR can) does not get discovery to propose over the rollback."""
    world.promote("dev", 1)
    world.promote("dev", 2)
    repo = LocalGitRepository(world.root)
    env = world.service.dry_config()[1].environment("dev")
    pending = RollbackService(repo=repo, forge=world.forge).propose(env, reason="x",
                                                                    author="ops")
    if label != "kept":
        pull = pending.pull_request
        relabelled = world.forge.open_or_update_pull_request(
            head=pull.head_branch, base=pull.base_branch, title=pull.title, body=pull.body,
            author=pull.author, labels=["promoter", "env:dev"])
        assert "rollback" not in relabelled.labels
    before = refs(world.root)
    run = proposer(world).run()
    assert run.attempts == ()
    assert run.plan.held[0].reason == (f"PR #{pending.pull_request.number} is rolling dev "
                                       "back; promoter does not propose over it")
    assert refs(world.root) == before


def test_a_proposal_a_person_closed_is_not_reopened(world: World) -> None:
    [attempt] = proposer(world).run().attempts
    assert attempt.result is not None
    assert attempt.result.pull_request is not None
    world.forge.close(attempt.result.pull_request.number, comment="not this one")
    before = refs(world.root)
    run = proposer(world).run()
    assert run.attempts == ()
    assert "closed without merging" in run.plan.held[0].reason
    assert refs(world.root) == before
    assert world.forge.get_pull_request(1).state is PullRequestState.CLOSED


def test_one_failing_proposal_does_not_stop_the_others(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world = auto_world(tmp_path / "gitops", auto="[dev, staging]")
    world.promote("dev", 1)
    world.service.propose(environment="dev", model="churn", version=3, author="mia")
    # Someone pushes to dev's proposal branch: promoter must not overwrite their commit.
    next_head = git(world.root, "rev-parse", "environments/dev-next")
    tree = git(world.root, "rev-parse", f"{next_head}^{{tree}}")
    theirs = git(world.root, "commit-tree", tree, "-p", next_head, "-m", "hotfix")
    git(world.root, "update-ref", "refs/heads/environments/dev-next", theirs)
    fake_saved_model(world.root / "models" / "churn" / "4", "graph v4")
    with caplog.at_level(logging.ERROR):
        run = proposer(world).run()
    assert [(a.proposal.environment, a.proposal.version, a.error is None)
            for a in run.attempts] == [("dev", 4, False), ("staging", 1, True)]
    assert [f.proposal.environment for f in run.failed] == ["dev"]
    assert git(world.root, "rev-parse", "environments/dev-next") == theirs
    assert "automatic proposal of churn v4 to dev failed" in caplog.text
    assert "someone else pushed to the proposal branch" in caplog.text


def test_the_service_resync_runs_discovery_first(world: World) -> None:
    """`promoter serve`'s periodic resync proposes new versions, then reconciles them."""
    jobs = ReconcileJobs(world.service, ServerMetrics(), discover=proposer(world).run)
    jobs.resync().run()
    # dev's policy auto-merges what passes: v3 went from the store to dev in one resync.
    assert world.metadata("environments/dev")["promoter"]["version"] == 3
    assert world.forge.list_open_pull_requests() == []
