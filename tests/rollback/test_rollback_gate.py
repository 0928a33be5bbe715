"""Rollbacks that cannot be walked around (issue #13): who may ask for one, what it needs
before it merges, and that it merges through `reconcile` like any other pull request."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from promoter.cli.rollback import rollback
from promoter.config.loader import LoadedSettings, load_settings
from promoter.domain.pull_requests import PullRequestState, ReviewState
from promoter.errors import ApprovalError
from promoter.promotion import PromotionState
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, refs


class Obj:
    def __init__(self, root: Path) -> None:
        self.root = root

    def settings(self) -> LoadedSettings:
        return load_settings(self.root / "promoter.yaml")


@pytest.fixture
def world(tmp_path: Path) -> World:
    """prod ran v1, then v2 (each approved by a release manager)."""
    w = World(tmp_path / "gitops", ScriptedEvaluator())
    for version, approver in ((1, "rita"), (2, "sam")):
        w.promote("dev", version)
        w.promote("staging", version)
        w.promote("prod", version, approver=approver)
    return w


def _prod_version(world: World) -> int:
    return int(world.metadata("environments/prod")["promoter"]["version"])


def test_someone_the_policy_does_not_name_cannot_roll_back(world: World) -> None:
    before = refs(world.root)
    with pytest.raises(ApprovalError, match="ops may not roll back prod"):
        world.service.request_rollback("prod", to_version=1, reason="x", author="ops")
    result = CliRunner().invoke(rollback, ["--env", "prod", "--to", "1", "--merge", "--as",
                                           "ops"], obj=Obj(world.root))
    assert result.exit_code == 2, result.output
    assert "ops may not roll back prod" in result.output
    assert refs(world.root) == before
    assert world.forge.list_open_pull_requests() == []


def test_a_manual_prod_rollback_waits_for_another_release_manager(world: World) -> None:
    result = CliRunner().invoke(rollback, ["--env", "prod", "--to", "1", "--merge", "--as",
                                           "rita"], obj=Obj(world.root))
    assert result.exit_code == 1, result.output
    assert "not merged" in result.output
    assert _prod_version(world) == 2
    [pull] = world.forge.list_open_pull_requests(label="rollback")
    assert pull.author == "rita"
    with pytest.raises(ApprovalError, match="rita proposed a revision"):
        world.service.approve(pull.number, user="rita")
    world.forge.submit_review(pull.number, user="rita", state=ReviewState.APPROVED)
    [waiting] = world.service.reconcile()
    assert waiting.state is PromotionState.WAITING
    assert _prod_version(world) == 2

    world.service.approve(pull.number, user="sam")
    [merged] = world.service.reconcile()
    assert merged.state is PromotionState.MERGED, merged
    assert _prod_version(world) == 1
    assert world.forge.get_pull_request(pull.number).state is PullRequestState.MERGED


def test_the_policy_may_let_on_call_roll_back_at_once(world: World) -> None:
    world.commit_dry_change("policies/prod.yaml", "autoMerge: true",
                            "autoMerge: true\nrollback:\n  requesters: [ops]\n  approvals: 0")
    world.service = world.build()
    result = world.service.request_rollback("prod", to_version=1, reason="pager",
                                            author="OPS")
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.MERGED, outcome
    assert _prod_version(world) == 1


def test_a_rollback_closes_the_open_promotion_instead_of_taking_it_over(world: World) -> None:
    world.promote("dev", 3)
    world.promote("staging", 3)
    promotion = world.service.propose(environment="prod", model="churn", version=3,
                                      author="mia")
    assert promotion.pull_request is not None
    result = world.service.request_rollback("prod", to_version=1, reason="x", author="rita")
    assert result.pull_request.number != promotion.pull_request.number
    closed = world.forge.get_pull_request(promotion.pull_request.number)
    assert closed.state is PullRequestState.CLOSED
    assert closed.author == "mia"
    assert closed.title == "Promote churn v3 to prod"
    comments = [c.body for c in world.forge.list_comments(promotion.pull_request.number)]
    assert any("rolled back" in body for body in comments)
    # The rollback carries none of the promotion's report or approvals.
    assert world.service.evaluation_report(result.pull_request.number) is None


def test_an_edited_rollback_head_is_not_merged(world: World) -> None:
    """A rollback merges only a head that restores an earlier tree of the branch."""
    from promoter.gitops.local import LocalGitRepository

    world.commit_dry_change("policies/prod.yaml", "autoMerge: true",
                            "autoMerge: true\nrollback:\n  requesters: [ops]\n  approvals: 0")
    world.service = world.build()
    result = world.service.request_rollback("prod", to_version=1, reason="x", author="ops")
    repo = LocalGitRepository(world.root)
    info = repo.commit_info(result.commit)
    files = {p: repo.read_file(result.commit, p) or b"" for p in repo.list_files(result.commit)}
    files["extra.yaml"] = b"kind: Secret\n"
    edited = repo.create_commit(files=files, parents=list(info.parents), author=info.author,
                                message=f"{info.subject}\n\n{info.body}\n")
    repo.update_branch("environments/prod-next", edited, expected=result.commit,
                       fast_forward_only=False)
    world.forge.open_or_update_pull_request(  # the forge's record follows the push
        head="environments/prod-next", base="environments/prod", title="t", body="b",
        author="ops", labels=["promoter", "rollback", "env:prod"])
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    assert _prod_version(world) == 2


def test_an_automatic_rollback_without_auto_merge_merges_after_an_approval(
        world: World) -> None:
    from promoter.cluster.port import RolloutPhase
    from promoter.gitops.local import LocalGitRepository
    from promoter.model_store import LocalModelStore
    from promoter.promotion import PromotionService
    from promoter.promotion.rollback import RollbackService
    from tests.fakes.scripted import ScriptedCluster

    world.commit_dry_change("environments/prod.yaml", "namespace:",
                            "delivery:\n  autoMergeRollback: false\nnamespace:")
    repo = LocalGitRepository(world.root)
    cluster = ScriptedCluster(phases={"prod": RolloutPhase.FAILED})
    service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=world.forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
        cluster=cluster, rollbacks=RollbackService(repo=repo, forge=world.forge))
    service.reconcile()  # the failed rollout opens the rollback; it waits
    [pull] = world.forge.list_open_pull_requests(label="rollback")
    assert _prod_version(world) == 2
    cluster.phases.clear()
    service.approve(pull.number, user="rita")
    outcomes = service.reconcile()
    assert [o.state for o in outcomes] == [PromotionState.MERGED], outcomes
    assert _prod_version(world) == 1
