"""Commit statuses on GitHub: promoter's own contexts count only when promoter wrote them.

Anyone with write access can post a status with any context, `promoter/evaluation` too. The
fake records who created each status (the login of the token that posted it), and the adapter
reads the listing that says so (`GET .../commits/{ref}/statuses`, validated like every other
answer against GitHub's description).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.config.loader import load_settings
from promoter.domain.pull_requests import CommitStatus, StatusState
from promoter.errors import ForgeError
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from tests.fakes.scripted import ScriptedEvaluator
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import running_fake, token_forge
from tests.github.scenario import propose
from tests.promotion.world import World, git

EVALUATION = "promoter/evaluation"


def test_a_promoter_context_posted_by_someone_else_is_ignored(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    mallory = token_forge(fake_github, token=fake_github.add_user("mallory"),
                          identity="mallory")
    mallory.set_status(head, CommitStatus(EVALUATION, StatusState.SUCCESS, "forged"))
    assert fake_github.statuses[head][0]["creator"] == "mallory"
    assert forge.list_statuses(head) == []

    own = CommitStatus(EVALUATION, StatusState.PENDING, "evaluating", "https://ci/1")
    forge.set_status(head, own)
    mallory.set_status(head, CommitStatus(EVALUATION, StatusState.SUCCESS, "forged again"))
    mallory.set_status(head, CommitStatus("promoter/approvals", StatusState.SUCCESS, "forged"))
    assert forge.list_statuses(head) == [own]  # the latest of promoter's own, not the newest


def test_other_tools_contexts_are_listed_whoever_set_them(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    fake_github.add_external_status(head, context="ci/lint", state="success")
    forge.set_status(head, CommitStatus(EVALUATION, StatusState.SUCCESS, "auc 0.91"))
    assert [(s.context, s.state) for s in forge.list_statuses(head)] == [
        ("ci/lint", StatusState.SUCCESS), (EVALUATION, StatusState.SUCCESS)]


def test_the_creator_is_compared_trimmed_and_case_insensitively(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github, identity=" Promoter-Bot")  # the login is promoter-bot
    head = propose(gitops_repo)
    forge.set_status(head, CommitStatus(EVALUATION, StatusState.SUCCESS, "auc 0.91"))
    assert [s.description for s in forge.list_statuses(head)] == ["auc 0.91"]


def test_promoters_status_is_found_under_pages_of_foreign_ones(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    forge.set_status(head, CommitStatus(EVALUATION, StatusState.FAILURE, "auc 0.61"))
    for n in range(130):  # more than one page of 100
        fake_github.add_external_status(head, context=EVALUATION, state="success",
                                        creator=f"mallory{n % 3}")
    assert [(s.state, s.description) for s in forge.list_statuses(head)] == [
        (StatusState.FAILURE, "auc 0.61")]
    pages = [p for _, p in fake_github.requests if p.endswith(f"/commits/{head}/statuses")]
    assert len(pages) == 2


def test_statuses_of_an_unknown_commit_are_none(fake_github: FakeGitHub) -> None:
    assert token_forge(fake_github).list_statuses("0" * 40) == []


def test_credentials_of_another_login_than_the_identity_are_refused(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    """Promoter would never see its own statuses again: say so at the first write."""
    forge = token_forge(fake_github, identity="promoter")
    head = propose(gitops_repo)
    with pytest.raises(ForgeError, match="promoter-bot") as caught:
        forge.set_status(head, CommitStatus(EVALUATION, StatusState.PENDING, "evaluating"))
    assert "forge.github.identity" in (caught.value.fix or "")


def test_a_forged_evaluation_status_does_not_merge_a_failed_model(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator(failing_versions={1}))
    with running_fake(world.root) as fake:
        service = PromotionService(
            settings=load_settings(world.root / "promoter.yaml"),
            repo=LocalGitRepository(world.root), forge=token_forge(fake),
            store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
            identity=fake.bot)
        proposed = service.propose(environment="dev", model="churn", version=1, author="mia")
        assert proposed.commit is not None
        (first,) = service.reconcile()
        assert first.state is PromotionState.BLOCKED
        dev_before = git(world.root, "rev-parse", "environments/dev")

        # Someone with write access marks the evaluation as passed.
        mallory = token_forge(fake, token=fake.add_user("mallory"), identity="mallory")
        mallory.set_status(proposed.commit, CommitStatus(
            EVALUATION, StatusState.SUCCESS, "Evaluation passed (v1)"))
        (again,) = service.reconcile()
        assert again.state is PromotionState.BLOCKED, again
        assert git(world.root, "rev-parse", "environments/dev") == dev_before
        assert len(world.evaluator.calls) == 1  # the verdict was reused, not forged
