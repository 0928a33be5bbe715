"""Rollback PRs on real git repositories with LocalForge, through the ports only.

The world is the example dry source (tests/promotion/world.py): dev promotes churn v1, v2, v3
through real proposals and guarded merges, then rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from promoter.cluster import RolloutPhase, RolloutState
from promoter.config import EnvironmentSpec
from promoter.domain.pull_requests import PullRequestState
from promoter.errors import PromotionError
from promoter.gitops.local import LocalGitRepository
from promoter.promotion.conventions import RESTORES, ROLLBACK_OF
from promoter.promotion.merging import EnvironmentMerger
from promoter.promotion.rollback import RollbackOutcome, RollbackResult, RollbackService
from promoter.promotion.rollback_commits import is_rollback_commit
from tests.fixtures.git import push_commit, run_git
from tests.promotion.world import World

BRANCH = "environments/dev"
NEXT = "environments/dev-next"


@pytest.fixture
def world(world_at: Callable[..., World]) -> World:
    """dev after promoting v1, v2 and v3 (tests call `at(...)` for an earlier state)."""
    return world_at(1, 2, 3)


@pytest.fixture
def repo(world: World) -> LocalGitRepository:
    return LocalGitRepository(world.root)


@pytest.fixture
def rollback(world: World, repo: LocalGitRepository) -> RollbackService:
    return RollbackService(repo=repo, forge=world.forge)


@pytest.fixture
def at(world_at: Callable[..., World]) -> Callable[..., tuple[World, RollbackService]]:
    """A world where dev has had only `versions` promoted, and its rollback service."""
    def make(*versions: int) -> tuple[World, RollbackService]:
        world = world_at(*versions)
        return world, RollbackService(repo=LocalGitRepository(world.root), forge=world.forge)
    return make


def merger(world: World) -> EnvironmentMerger:
    """Merges on `world`'s forge, with no cluster to ask for a sync (tests/rollback/test_sync.py
    has one)."""
    return EnvironmentMerger(world.forge, None, lambda: datetime.now(UTC))


def dev(world: World, **delivery: object) -> EnvironmentSpec:
    env = world.service.dry_config()[1].environment("dev")
    if not delivery:
        return env
    data = env.model_dump(by_alias=True)
    data["delivery"] = {**data["delivery"], **delivery}
    return EnvironmentSpec.model_validate(data)


def promote(world: World, *versions: int) -> dict[int, str]:
    """Promote each version to dev; return the environment branch head after each."""
    heads = {}
    for version in versions:
        world.promote("dev", version)
        heads[version] = run_git(world.root, "rev-parse", BRANCH)
    return heads


def version_at(world: World, ref: str) -> int:
    return world.metadata(ref)["promoter"]["version"]


def test_rollback_restores_the_previous_tree_as_a_new_commit(heads: dict[int, str],
        world: World, repo: LocalGitRepository, rollback: RollbackService) -> None:
    result = rollback.propose(dev(world), reason="Rollout failed: HealthCheckFailed",
                              author="oncall")
    assert result.outcome is RollbackOutcome.OPENED
    assert result.plan.current == heads[3]
    assert result.plan.target == heads[2]
    # A new commit on <env>-next on top of the environment branch, with the old tree.
    assert repo.branch_head(NEXT) == result.commit
    assert repo.commit_info(result.commit).parents == (heads[3],)
    assert repo.tree_id(result.commit) == repo.tree_id(heads[2])
    # Nothing moved the environment branch yet.
    assert repo.branch_head(BRANCH) == heads[3]
    message = run_git(world.root, "log", "-1", "--format=%B", result.commit)
    assert f"{ROLLBACK_OF}: {heads[3]}" in message
    assert f"{RESTORES}: {heads[2]}" in message
    assert "Rollout failed: HealthCheckFailed" in message
    pull = result.pull_request
    assert pull.title == "Roll back dev to churn v2"
    assert set(pull.labels) == {"promoter", "rollback", "env:dev", "model:churn"}
    assert pull.author == "oncall"
    assert (pull.head_branch, pull.base_branch) == (NEXT, BRANCH)
    assert "churn v3" in pull.body


def test_a_rollback_is_told_by_its_commit_not_by_a_label(heads: dict[int, str],
        world: World, repo: LocalGitRepository, rollback: RollbackService) -> None:
    """Anyone who may label a PR can add or remove `rollback`; the head commit promoter
    recorded is what says a PR is a rollback: its trailers, its parent and its tree."""
    result = rollback.propose(dev(world), reason="x", author="oncall")
    assert is_rollback_commit(repo, result.commit)
    info = repo.commit_info(result.commit)
    files = {p: repo.read_file(result.commit, p) or b"" for p in repo.list_files(result.commit)}
    message = f"{info.subject}\n\n{info.body}\n"
    # Its message (trailers and all) over another tree, or over another parent: no rollback.
    other_tree = repo.create_commit(files={**files, "extra.yaml": b"kind: Secret\n"},
                                    parents=[heads[3]], message=message, author=info.author)
    other_parent = repo.create_commit(files=files, parents=[heads[1]], message=message,
                                      author=info.author)
    assert not is_rollback_commit(repo, other_tree)
    assert not is_rollback_commit(repo, other_parent)
    assert not is_rollback_commit(repo, heads[3])  # a promotion's merge
    assert not is_rollback_commit(repo, "0" * 40)  # not in this repository
    # The label removed by a person: still a rollback, merged as one.
    pull = result.pull_request
    relabelled = world.forge.open_or_update_pull_request(
        head=pull.head_branch, base=pull.base_branch, title=pull.title, body=pull.body,
        author=pull.author, labels=["promoter"])
    assert rollback.is_rollback(relabelled)
    merged = rollback.merge(dev(world), RollbackResult(
        plan=result.plan, outcome=result.outcome, commit=result.commit,
        pull_request=relabelled), merger=merger(world))
    assert merged.merge_sha is not None
    assert version_at(world, BRANCH) == 2


def test_merged_rollback_moves_the_branch_forward_only(heads: dict[int, str],
        world: World, repo: LocalGitRepository, rollback: RollbackService) -> None:
    env = dev(world)
    merged = rollback.merge(env, rollback.propose(env, reason="manual", author="oncall"),
                            merger=merger(world))
    assert merged.merge_sha is not None
    head = repo.branch_head(BRANCH)
    assert head == merged.merge_sha
    assert repo.is_ancestor(heads[3], head)  # no history rewritten
    assert repo.tree_id(head) == repo.tree_id(heads[2])
    assert version_at(world, BRANCH) == 2
    assert world.service.deployed(env).version == 2
    assert world.forge.get_pull_request(merged.pull_request.number).state is (
        PullRequestState.MERGED)
    # Every old commit is still reachable from the environment branch.
    for sha in heads.values():
        assert repo.is_ancestor(sha, head)


def test_rolling_back_twice_goes_further_back(heads: dict[int, str], world: World,
                                             rollback: RollbackService) -> None:
    env = dev(world)
    rollback.merge(env, rollback.propose(env, reason="v3 failed", author="oncall"),
                   merger=merger(world))
    assert version_at(world, BRANCH) == 2
    second = rollback.propose(env, reason="v2 failed too", author="oncall")
    assert second.plan.target == heads[1]
    rollback.merge(env, second, merger=merger(world))
    assert version_at(world, BRANCH) == 1


def test_rollback_to_a_named_version(heads: dict[int, str], world: World, repo: LocalGitRepository,
                                     rollback: RollbackService) -> None:
    result = rollback.propose(dev(world), to_version=1, reason="back to v1", author="oncall")
    assert result.plan.target == heads[1]
    assert repo.tree_id(result.commit) == repo.tree_id(heads[1])
    assert result.pull_request.title == "Roll back dev to churn v1"


def test_rollback_is_idempotent(at: Callable[..., tuple[World, RollbackService]]) -> None:
    world, rollback = at(1, 2)
    env = dev(world)
    first = rollback.propose(env, reason="failed", author="oncall")
    again = rollback.propose(env, reason="failed", author="oncall")
    assert again.outcome is RollbackOutcome.UNCHANGED
    assert again.commit == first.commit
    assert again.pull_request.number == first.pull_request.number
    assert len(world.forge.list_open_pull_requests(label="rollback")) == 1


@pytest.mark.parametrize("labels", ["as promoter wrote them", "with `rollback` added"])
def test_rollback_never_takes_over_an_open_promotion(
        at: Callable[..., tuple[World, RollbackService]], heads: dict[int, str],
        labels: str) -> None:
    """mia's open promotion is closed as superseded, with a comment; the rollback gets a PR
    of its own, under the requester's name, with no promotion report. A `rollback` label
    someone added to the promotion PR changes nothing: its head commit is no rollback."""
    world, rollback = at(1, 2)
    repo = LocalGitRepository(world.root)
    proposal = world.service.propose(environment="dev", model="churn", version=3,
                                     author="mia")
    assert proposal.pull_request is not None
    if labels != "as promoter wrote them":
        pull = proposal.pull_request
        world.forge.open_or_update_pull_request(
            head=pull.head_branch, base=pull.base_branch, title=pull.title, body=pull.body,
            author=pull.author, labels=[*pull.labels, "rollback"])
    result = rollback.propose(dev(world), reason="v2 is failing", author="oncall")
    assert result.outcome is RollbackOutcome.OPENED
    assert result.pull_request.number != proposal.pull_request.number
    assert result.pull_request.author == "oncall"
    assert result.pull_request.title.startswith("Roll back dev")
    assert world.forge.list_comments(result.pull_request.number) == []
    closed = world.forge.get_pull_request(proposal.pull_request.number)
    assert closed.state is PullRequestState.CLOSED
    assert closed.title == "Promote churn v3 to dev"
    assert repo.tree_id(result.commit) == repo.tree_id(heads[1])


def test_rollback_is_rebuilt_when_the_environment_moved(
        at: Callable[..., tuple[World, RollbackService]]) -> None:
    world, rollback = at(1, 2)
    repo = LocalGitRepository(world.root)
    env = dev(world)
    first = rollback.propose(env, reason="v2 failed", author="oncall")
    world.forge.close(first.pull_request.number)
    heads = promote(world, 3)
    second = rollback.propose(env, reason="v3 failed", author="oncall")
    assert second.commit != first.commit
    assert repo.commit_info(second.commit).parents == (heads[3],)
    assert second.pull_request.number != first.pull_request.number


@pytest.mark.parametrize(("versions", "to_version", "message"), [
    ((), None, "deploys nothing yet"),
    ((1,), None, "no earlier deployment"),
    ((1, 2), 2, "already runs churn v2"),
    ((1, 2), 7, "ever deployed version 7"),
])
def test_nothing_to_roll_back_to(at: Callable[..., tuple[World, RollbackService]],
                                 versions: tuple[int, ...], to_version: int | None,
                                 message: str) -> None:
    world, rollback = at(*versions)
    before = run_git(world.root, "for-each-ref")
    with pytest.raises(PromotionError, match=message) as caught:
        rollback.propose(dev(world), to_version=to_version, reason="x", author="oncall")
    assert caught.value.exit_code == 2
    assert run_git(world.root, "for-each-ref") == before


def test_a_foreign_push_to_next_is_never_overwritten(
        at: Callable[..., tuple[World, RollbackService]]) -> None:
    world, rollback = at(1, 2)
    repo = LocalGitRepository(world.root)
    env = dev(world)
    rollback.propose(env, reason="failed", author="oncall")
    foreign = push_commit(repo, NEXT, {"hotfix.yaml": b"x: 1\n"})
    with pytest.raises(PromotionError, match="someone else pushed"):
        rollback.propose(env, reason="failed", author="oncall")
    assert repo.branch_head(NEXT) == foreign


# --- automatic rollback after a rollout ------------------------------------------------------


def _state(commit: str, phase: RolloutPhase) -> RolloutState:
    return RolloutState(environment="dev", commit=commit, phase=phase,
                        reason="Kustomization promoter-dev: Ready=False (HealthCheckFailed)")


def test_failed_rollout_is_rolled_back_and_merged(
        at: Callable[..., tuple[World, RollbackService]], heads: dict[int, str]) -> None:
    world, rollback = at(1, 2)
    result = rollback.after_rollout(dev(world), _state(heads[2], RolloutPhase.FAILED),
                                    merger=merger(world))
    assert result is not None
    assert result.merge_sha is not None
    assert version_at(world, BRANCH) == 1
    assert "HealthCheckFailed" in result.pull_request.body


def test_timed_out_rollout_without_auto_merge_only_opens_the_pr(
        at: Callable[..., tuple[World, RollbackService]], heads: dict[int, str]) -> None:
    world, rollback = at(1, 2)
    repo = LocalGitRepository(world.root)
    env = dev(world, autoMergeRollback=False)
    result = rollback.after_rollout(env, _state(heads[2], RolloutPhase.TIMED_OUT),
                                    merger=merger(world))
    assert result is not None
    assert result.merge_sha is None
    assert "timed out" in result.pull_request.body
    assert repo.branch_head(BRANCH) == heads[2]


@pytest.mark.parametrize("case", ["healthy", "progressing", "not the head", "disabled"])
def test_no_rollback_when_it_is_not_called_for(
        at: Callable[..., tuple[World, RollbackService]], heads: dict[int, str],
        case: str) -> None:
    world, rollback = at(1, 2)
    repo = LocalGitRepository(world.root)
    env = dev(world, autoRollback=case != "disabled")
    state = {
        "healthy": _state(heads[2], RolloutPhase.HEALTHY),
        "progressing": _state(heads[2], RolloutPhase.PROGRESSING),
        "not the head": _state(heads[1], RolloutPhase.FAILED),
        "disabled": _state(heads[2], RolloutPhase.FAILED),
    }[case]
    assert rollback.after_rollout(env, state, merger=merger(world)) is None
    assert repo.branch_head(NEXT) is None or not world.forge.list_open_pull_requests(
        label="rollback")
    assert repo.branch_head(BRANCH) == heads[2]


def test_a_promotion_never_overwrites_an_open_rollback_whose_label_was_removed(
        at: Callable[..., tuple[World, RollbackService]]) -> None:
    """`promoter propose` refuses to push over an open rollback, told by its head commit: a
    person removing the `rollback` label does not make the rollback a proposal to replace."""
    world, rollback = at(1, 2)
    result = rollback.propose(dev(world), reason="v2 is failing", author="oncall")
    pull = result.pull_request
    world.forge.open_or_update_pull_request(
        head=pull.head_branch, base=pull.base_branch, title=pull.title, body=pull.body,
        author=pull.author, labels=["promoter"])
    with pytest.raises(PromotionError, match="a rollback of dev is open"):
        world.service.propose(environment="dev", model="churn", version=3, author="mia")
    still = world.forge.get_pull_request(pull.number)
    assert still.state is PullRequestState.OPEN
    assert still.head_sha == result.commit
