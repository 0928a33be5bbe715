"""A write that a crash cut short is finished, never mistaken for someone else's.

`propose` (and a rollback) moves `<env>-next`, then updates the pull request. Killed in
between, the branch is ahead of the PR's recorded head: exactly what a person's push looks
like. The next propose or reconcile must take promoter's own commit over (it is byte for byte
what promoter would write) and still refuse anything else. The crash is simulated in-process
here (an exception nothing catches, raised where the PR update would start);
`test_crash_safety.py` kills real processes at every write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from promoter.cluster.port import RolloutPhase, RolloutState
from promoter.config.loader import load_settings
from promoter.config.schema import EnvironmentSpec
from promoter.domain.pull_requests import PullRequestState
from promoter.errors import PromotionError
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState, ProposalOutcome
from promoter.promotion.rollback import RollbackService
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World, git


class Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing after the raise runs, nothing catches it."""


def interrupted_update(world: World) -> str:
    """Propose v1 (blocked), then v2 dying after `<env>-next` moved; return that commit."""
    world.evaluator.failing_versions.add(1)
    world.service.propose(environment="dev", model="churn", version=1, author="mia")
    world.service.reconcile()

    def die(**_: object) -> object:
        raise Killed
    forge = cast(Any, world.forge)
    forge.open_or_update_pull_request, update = die, forge.open_or_update_pull_request
    with pytest.raises(Killed):
        world.service.propose(environment="dev", model="churn", version=2, author="mia")
    forge.open_or_update_pull_request = update
    return git(world.root, "rev-parse", "environments/dev-next")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def test_proposing_again_takes_over_the_interrupted_commit(world: World) -> None:
    written = interrupted_update(world)
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert (result.outcome, result.commit) == (ProposalOutcome.UPDATED, written)
    assert result.pull_request is not None
    assert result.pull_request.head_sha == written
    assert [c.key for c in world.forge.list_comments(result.pull_request.number)] == [
        "evaluation-report"]


def test_a_reconcile_takes_over_the_interrupted_commit(world: World) -> None:
    written = interrupted_update(world)
    [outcome] = world.service.reconcile()
    assert outcome.state is PromotionState.MERGED, outcome
    assert outcome.version == 2
    assert git(world.root, "rev-parse", "environments/dev^2") == written


def test_a_lookalike_push_is_still_a_foreign_push(world: World) -> None:
    """Same parent, same hydrator.metadata, one manifest changed: not promoter's commit."""
    written = interrupted_update(world)
    repo = LocalGitRepository(world.root)
    files = {path: repo.read_file(written, path) or b"" for path in repo.list_files(written)}
    files["kustomization.yaml"] += b"# edited by hand\n"
    info = repo.commit_info(written)
    lookalike = repo.create_commit(files=files, parents=list(info.parents), message="edit",
                                   author=info.author)
    repo.update_branch("environments/dev-next", lookalike, expected=written,
                       fast_forward_only=False)
    with pytest.raises(PromotionError, match="someone else pushed"):
        world.service.propose(environment="dev", model="churn", version=2, author="mia")
    [outcome] = world.service.reconcile()
    assert outcome.state is PromotionState.BLOCKED
    assert "outside promoter" in (outcome.note or "")
    assert git(world.root, "rev-parse", "environments/dev-next") == lookalike


@dataclass
class CommitCluster(ScriptedCluster):
    """Every rollout is healthy except those of the `failing` commits."""

    failing: set[str] = field(default_factory=set)

    def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
        phase = RolloutPhase.FAILED if commit in self.failing else RolloutPhase.HEALTHY
        return RolloutState(environment=env.name, commit=commit, phase=phase,
                            reason=f"scripted {phase}")


def test_an_interrupted_rollback_is_finished_by_the_next_reconcile(world: World) -> None:
    """A failed rollout closes the open promotion PR and opens its rollback; killed after
    `<env>-next` moved, the next reconcile must finish the rollback, not call it a foreign
    push (which would also stop every other promotion's reconcile)."""
    cluster = CommitCluster()
    repo = LocalGitRepository(world.root)
    service = world.service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=world.forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
        cluster=cluster, rollbacks=RollbackService(repo=repo, forge=world.forge))
    world.promote("dev", 1)
    world.promote("dev", 2)
    service.propose(environment="dev", model="churn", version=3, author="mia")
    cluster.failing.add(git(world.root, "rev-parse", "environments/dev"))

    def die(**_: object) -> object:
        raise Killed
    forge = cast(Any, world.forge)
    forge.open_or_update_pull_request, update = die, forge.open_or_update_pull_request
    with pytest.raises(Killed):
        service.reconcile()  # the rollout check opens the rollback
    forge.open_or_update_pull_request = update

    service.reconcile()
    assert world.metadata("environments/dev")["promoter"]["version"] == 1
    assert world.forge.list_open_pull_requests() == []
    promotion = world.forge.get_pull_request(3)  # the promotion of v3: closed, superseded
    assert promotion.state is PullRequestState.CLOSED
    assert "rollback" not in promotion.labels
    rollback = world.forge.get_pull_request(4)  # the rollback's own PR
    assert rollback.state is PullRequestState.MERGED
    assert "rollback" in rollback.labels
    assert [c.key for c in world.forge.list_comments(4)] == []
