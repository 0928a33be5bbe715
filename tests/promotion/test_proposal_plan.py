"""`Proposer.plan` says what `propose` does, and `propose` does exactly that.

`propose` carries out the plan it asks for, and `propose --dry-run` prints the same plan; so
each case here plans, checks that planning wrote nothing, proposes for real, and compares:
a new PR, an update to another version, a PR already at this render, a byte-identical commit
left by an interrupted propose (adopted), a look-alike commit on the proposal branch
(replaced, and said so), a version the environment already runs, a new environment branch,
and a foreign push (refused by both; only propose comments).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from promoter.gitops.local import LocalGitRepository
from promoter.promotion import ProposalOutcome
from promoter.promotion.proposing import REPLACED_COMMENT_KEY, ForeignPushError
from promoter.promotion.results import ProposalPlan, ProposalResult
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.test_interrupted_writes import interrupted_update
from tests.promotion.world import World, git, refs


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def _state(world: World) -> tuple[dict[str, str], list[str]]:
    with sqlite3.connect(world.forge.db_path) as db:
        return refs(world.root), list(db.iterdump())


def _plan_then_propose(world: World, version: int, *, env: str = "dev"
                       ) -> tuple[ProposalPlan, ProposalResult]:
    before = _state(world)
    plan = world.service.plan_proposal(environment=env, model="churn", version=version,
                                       author="mia")
    assert _state(world) == before, "planning wrote something"
    result = world.service.propose(environment=env, model="churn", version=version,
                                   author="mia")
    assert (plan.environment, plan.model, plan.version, plan.digest) == (
        result.environment, result.model, result.version, result.digest)
    assert plan.outcome is result.outcome
    assert plan.changed_files == result.changed_files
    moved = refs(world.root) != before[0]
    assert moved is plan.writes_commit
    if plan.outcome is ProposalOutcome.ALREADY_DEPLOYED:
        assert (result.pull_request, result.commit) == (None, None)
        return plan, result
    assert result.pull_request is not None
    if plan.pull_request is not None:
        assert result.pull_request.number == plan.pull_request
    else:
        assert plan.outcome is ProposalOutcome.OPENED
    if plan.commit is not None:
        assert result.commit == plan.commit
    else:
        assert result.commit not in (None, plan.proposal_head)
    assert git(world.root, "rev-parse", plan.head_branch) == result.commit
    if plan.base_head is not None:
        assert git(world.root, "rev-parse", f"{result.commit}^") == plan.base_head
    return plan, result


def test_a_new_pull_request(world: World) -> None:
    world.promote("dev", 1)
    plan, _result = _plan_then_propose(world, 2)
    assert (plan.outcome, plan.pull_request, plan.commit) == (ProposalOutcome.OPENED, None,
                                                              None)
    assert "serving/configmap.yaml" in plan.changed_files


def test_the_first_proposal_creates_the_environment_branch(world: World) -> None:
    plan, result = _plan_then_propose(world, 1)
    assert plan.base_head is None
    assert plan.outcome is ProposalOutcome.OPENED
    assert result.commit is not None
    assert git(world.root, "rev-parse", f"{result.commit}^") == git(
        world.root, "rev-parse", "environments/dev")


def test_another_version_updates_the_pull_request(world: World) -> None:
    first = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert first.pull_request is not None
    plan, _ = _plan_then_propose(world, 2)
    assert (plan.outcome, plan.pull_request) == (ProposalOutcome.UPDATED,
                                                 first.pull_request.number)


def test_a_pull_request_already_at_this_render_is_left_alone(world: World) -> None:
    first = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    plan, _ = _plan_then_propose(world, 1)
    assert (plan.outcome, plan.commit) == (ProposalOutcome.UNCHANGED, first.commit)


def test_a_byte_identical_commit_is_adopted(world: World) -> None:
    written = interrupted_update(world)
    plan, result = _plan_then_propose(world, 2)
    assert (plan.outcome, plan.commit, result.commit) == (ProposalOutcome.UPDATED, written,
                                                          written)


def test_a_lookalike_commit_is_replaced_and_said_so(world: World) -> None:
    world.promote("dev", 1)
    repo = LocalGitRepository(world.root)
    env_head = git(world.root, "rev-parse", "environments/dev")
    next_head = git(world.root, "rev-parse", "environments/dev-next")
    files = {p: repo.read_file(next_head, p) or b"" for p in repo.list_files(next_head)}
    files["kustomization.yaml"] += b"# edited by hand\n"
    lookalike = repo.create_commit(files=files, parents=[env_head], message="v2, by hand",
                                   author=repo.commit_info(next_head).author)
    repo.update_branch("environments/dev-next", lookalike, expected=next_head,
                       fast_forward_only=False)
    plan, result = _plan_then_propose(world, 2)
    assert (plan.outcome, plan.replaces, plan.commit) == (ProposalOutcome.OPENED, lookalike,
                                                          None)
    assert result.pull_request is not None
    replaced = [c for c in world.forge.list_comments(result.pull_request.number)
                if c.key == REPLACED_COMMENT_KEY]
    assert len(replaced) == 1
    assert lookalike in replaced[0].body


def test_nothing_to_do_for_the_version_the_environment_runs(world: World) -> None:
    world.promote("dev", 1)
    plan, _ = _plan_then_propose(world, 1)
    assert plan.outcome is ProposalOutcome.ALREADY_DEPLOYED
    assert not plan.writes_commit


def test_a_foreign_push_is_refused_by_both_and_only_propose_comments(world: World) -> None:
    first = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert first.pull_request is not None
    git(world.root, "branch", "-f", "environments/dev-next", "main")  # a person's push
    before = _state(world)
    with pytest.raises(ForeignPushError, match="someone else pushed"):
        world.service.plan_proposal(environment="dev", model="churn", version=2,
                                    author="mia")
    assert _state(world) == before
    with pytest.raises(ForeignPushError, match="someone else pushed"):
        world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert refs(world.root) == before[0]
    assert [c.key for c in world.forge.list_comments(first.pull_request.number)
            ].count("foreign-push") == 1
