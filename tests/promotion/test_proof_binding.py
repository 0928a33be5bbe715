"""The merged model is the proven model: attacks on the path from store to merge, each of
which got a model merged that was not the one promoter rendered or proved (issue #12).

Everything here runs on a real git repository and LocalForge; the evaluator is scripted where
the attack is on git or the forge, and real SavedModels are used where bytes are swapped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from promoter.domain.pull_requests import CommitStatus, PullRequestState, StatusState
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionState, ProposalOutcome
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, git

BACKDOOR = b"image: evil.example/backdoor:latest"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def _backdoored(world: World, commit: str) -> str:
    """A commit with `commit`'s parent and hydrator.metadata, and one image swapped."""
    repo = LocalGitRepository(world.root)
    files = {p: repo.read_file(commit, p) or b"" for p in repo.list_files(commit)}
    serving = next(p for p, data in files.items() if b"image: " in data and p.endswith(".yaml"))
    lines = files[serving].split(b"\n")
    files[serving] = b"\n".join(
        line[:line.index(b"image: ")] + BACKDOOR if b"image: " in line else line
        for line in lines)
    info = repo.commit_info(commit)
    return repo.create_commit(files=files, parents=list(info.parents), author=info.author,
                              message="Hydrate churn v2 for dev")


def _tree_has_backdoor(world: World, ref: str) -> bool:
    return BACKDOOR.decode() in git(world.root, "grep", "-h", "image:", ref, "--", ".") \
        if git(world.root, "ls-tree", "-r", "--name-only", ref) else False


def _plant_on_next(world: World, commit: str) -> None:
    repo = LocalGitRepository(world.root)
    current = repo.branch_head("environments/dev-next")
    repo.update_branch("environments/dev-next", commit, expected=current,
                       fast_forward_only=False)


def _genuine_closed_proposal(world: World) -> str:
    """dev runs v1; a proposal of v2 was opened and closed, leaving its commit on dev-next."""
    world.promote("dev", 1)
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.pull_request is not None
    assert result.commit is not None
    world.forge.close(result.pull_request.number, comment="not now")
    return result.commit


def test_propose_does_not_adopt_a_lookalike_commit_left_on_next(world: World) -> None:
    genuine = _genuine_closed_proposal(world)
    planted = _backdoored(world, genuine)
    _plant_on_next(world, planted)

    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.outcome is ProposalOutcome.OPENED
    assert result.commit != planted
    assert result.pull_request is not None
    assert result.pull_request.head_sha == result.commit
    assert not _tree_has_backdoor(world, "environments/dev-next")
    comments = {c.key: c.body for c in world.forge.list_comments(result.pull_request.number)}
    assert planted in comments["replaced-commit"]

    world.service.reconcile()
    assert world.metadata("environments/dev")["promoter"]["version"] == 2
    assert not _tree_has_backdoor(world, "environments/dev")


def test_propose_still_reuses_its_own_identical_commit(world: World) -> None:
    genuine = _genuine_closed_proposal(world)
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert (result.outcome, result.commit) == (ProposalOutcome.OPENED, genuine)


def test_reconcile_never_merges_a_head_that_is_not_the_render(world: World) -> None:
    """The forge's record of the head is forged (as a PR-body marker could be on GitHub):
    the head is promoter's to merge only if its tree is byte for byte promoter's render."""
    world.promote("dev", 1)
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.pull_request is not None
    assert result.commit is not None
    planted = _backdoored(world, result.commit)
    _plant_on_next(world, planted)
    # Forge the record: the PR now claims promoter wrote the planted commit.
    pull = world.forge.open_or_update_pull_request(
        head="environments/dev-next", base="environments/dev", title="t", body="b",
        author="mia", labels=["promoter", "env:dev", "model:churn"])
    assert pull.head_sha == planted

    [outcome] = world.service.reconcile()
    assert not _tree_has_backdoor(world, "environments/dev")
    if outcome.state is PromotionState.MERGED:
        assert world.metadata("environments/dev")["promoter"]["version"] == 2
        assert git(world.root, "rev-parse", "environments/dev^2") != planted
    comments = {c.key: c.body for c in world.forge.list_comments(pull.number)}
    assert planted in comments["replaced-commit"]


def test_discovery_does_not_adopt_a_lookalike_commit(world: World) -> None:
    """As discovery proposes v3, someone plants on dev-next a commit with exactly the
    hydrator.metadata promoter would write (it is deterministic) and a swapped image."""
    from promoter.promotion.conventions import BOT
    from tests.promotion.test_autopropose import auto_world, proposer

    auto = auto_world(world.root.parent / "auto", auto="[dev]", settle=0.0)
    auto.promote("dev", 1)
    repo = LocalGitRepository(auto.root)
    proposer_part = auto.service._proposer.own  # the files promoter writes, as an attacker
    files = proposer_part.expected_files(auto.service._ctx.target("dev"), model="churn",
                                         version=3)
    env_head = repo.branch_head("environments/dev")
    assert env_head is not None
    genuine = repo.create_commit(files=files, parents=[env_head], author=BOT,
                                 message="Hydrate churn v3 for dev")
    planted = _backdoored(auto, genuine)
    discovery = proposer(auto)
    plan = discovery.plan

    def plan_then_plant() -> object:
        # Planted after discovery looked (a look-alike seen earlier makes it hold the
        # version as "closed"): the race an attacker wins by pushing at the right moment.
        planned = plan()
        _plant_on_next(auto, planted)
        return planned
    discovery.plan = plan_then_plant  # type: ignore[method-assign]

    run = discovery.run()
    assert [a.proposal.version for a in run.attempts] == [3], run.plan.held
    assert git(auto.root, "rev-parse", "environments/dev-next") != planted
    assert not _tree_has_backdoor(auto, "environments/dev-next")


def test_a_tampered_baseline_fails_the_gate_instead_of_skipping_it(world: World) -> None:
    world.promote("dev", 1)
    (world.root / "models" / "churn" / "1" / "extra.txt").write_text("one more file")
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.pull_request is not None
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    evaluation = next(g for g in outcome.gates if g.context == "promoter/evaluation")
    assert evaluation.state is StatusState.FAILURE
    assert "baseline" in evaluation.description
    assert "v1" in evaluation.description
    assert [call for call in world.evaluator.calls if call[0] == 2] == []


def test_a_foreign_success_status_does_not_reverse_a_failed_evaluation(world: World) -> None:
    world.evaluator.failing_versions.add(2)
    world.promote("dev", 1)
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.pull_request is not None
    assert result.commit is not None
    first = world.service.reconcile_pull(result.pull_request.number)
    assert first.state is PromotionState.BLOCKED
    world.forge.set_status(result.commit, CommitStatus(
        "promoter/evaluation", StatusState.SUCCESS, "looks great"))

    again = world.service.reconcile_pull(result.pull_request.number)
    assert again.state is PromotionState.BLOCKED
    assert world.forge.get_pull_request(result.pull_request.number).state \
        is PullRequestState.OPEN
    assert world.metadata("environments/dev")["promoter"]["version"] == 1


def test_changed_model_settings_on_the_dry_branch_are_evaluated_again(world: World) -> None:
    world.promote("dev", 1)
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.pull_request is not None
    world.evaluator.failing_versions.add(2)  # would fail if scored again
    world.service.reconcile_pull(result.pull_request.number)
    calls = len(world.evaluator.calls)
    world.commit_dry_change("promoter.yaml", "labelColumn: churned",
                            "labelColumn: churned\n    threshold: 0.7")
    world.service = world.build()
    world.service.reconcile_pull(result.pull_request.number)
    assert len(world.evaluator.calls) > calls


def test_the_digest_cache_sees_a_same_size_rewrite_with_the_mtime_restored(
        tmp_path: Path) -> None:
    version = tmp_path / "churn" / "1"
    (version / "variables").mkdir(parents=True)
    graph = version / "saved_model.pb"
    graph.write_bytes(b"graph-A")
    store = LocalModelStore(tmp_path)
    before = store.get("churn", 1).digest
    stat = graph.stat()
    graph.write_bytes(b"graph-B")
    os.utime(graph, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert store.get("churn", 1).digest != before
