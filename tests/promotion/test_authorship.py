"""Approvals that cannot be walked around by re-proposing (issue #13): whoever authored any
revision of a promotion cannot approve it, whatever the spelling of their name."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.domain.pull_requests import ReviewState, StatusState
from promoter.errors import ApprovalError, BadInputError
from promoter.gitops.local import LocalGitRepository
from promoter.promotion import PromotionState, ProposalOutcome
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, git


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path / "gitops", ScriptedEvaluator())
    w.promote("dev", 1)
    w.promote("staging", 1)
    w.promote("dev", 2)  # staging runs v1, dev v2: prod may get v1 now, v2 later
    return w


def _approvals(outcome: object) -> StatusState:
    gates = outcome.gates  # type: ignore[attr-defined]
    return next(g for g in gates if g.context == "promoter/approvals").state


def test_re_proposing_does_not_launder_authorship(world: World) -> None:
    first = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert first.pull_request is not None
    number = first.pull_request.number
    world.promote("staging", 2)
    again = world.service.propose(environment="prod", model="churn", version=2, author="rita")
    assert again.pull_request is not None
    assert again.pull_request.number == number
    assert again.pull_request.author == "mia"  # the PR keeps who opened it...
    with pytest.raises(ApprovalError, match="rita proposed a revision"):
        world.service.approve(number, user="rita")  # ...and rita is an author too
    # A review recorded on the forge directly (as GitHub would take it) does not count either.
    world.forge.submit_review(number, user="rita", state=ReviewState.APPROVED)
    outcome = world.service.reconcile_pull(number)
    assert outcome.state is PromotionState.WAITING
    assert _approvals(outcome) is StatusState.PENDING
    assert git(world.root, "log", "--format=%s", "environments/prod") == (
        "Start environment branch for prod")  # nothing merged into prod

    world.service.approve(number, user="sam")  # neither mia nor rita: counts
    assert world.service.reconcile_pull(number).state is PromotionState.MERGED


def test_the_same_version_proposed_by_someone_else_records_them(world: World) -> None:
    first = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    again = world.service.propose(environment="prod", model="churn", version=1, author="rita")
    assert again.outcome is ProposalOutcome.UPDATED
    assert again.commit != first.commit
    body = git(world.root, "log", "-1", "--format=%B", "environments/prod-next")
    assert "Proposed-by: mia" in body
    assert "Proposed-by: rita" in body


def test_names_compare_trimmed_and_case_insensitively(world: World) -> None:
    result = world.service.propose(environment="prod", model="churn", version=1,
                                   author=" Rita ")
    assert result.pull_request is not None
    for spelling in ("rita", "RITA", " rita"):
        with pytest.raises(ApprovalError, match="proposed a revision"):
            world.service.approve(result.pull_request.number, user=spelling)
    world.forge.submit_review(result.pull_request.number, user="rita",
                              state=ReviewState.APPROVED)
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert _approvals(outcome) is StatusState.PENDING


def test_an_approver_named_in_another_case_may_approve(world: World) -> None:
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    world.service.approve(result.pull_request.number, user="Sam")
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.MERGED


def test_a_copy_without_an_author_trailer_is_not_taken_over(world: World) -> None:
    """rita copies mia's open proposal commit, minus mia's trailer, onto prod-next, then
    re-proposes it: promoter must see a foreign push, not its own interrupted write."""
    first = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert first.commit is not None
    repo = LocalGitRepository(world.root)
    info = repo.commit_info(first.commit)
    files = {p: repo.read_file(first.commit, p) or b"" for p in repo.list_files(first.commit)}
    body = info.body.replace("Proposed-by: mia\n", "").replace("Proposed-by: mia", "")
    copy = repo.create_commit(files=files, parents=list(info.parents), author=info.author,
                              message=f"{info.subject}\n\n{body}\nProposed-by: rita\n")
    repo.update_branch("environments/prod-next", copy, expected=first.commit,
                       fast_forward_only=False)
    with pytest.raises(Exception, match="someone else pushed"):
        world.service.propose(environment="prod", model="churn", version=1, author="rita")


def test_a_name_with_a_newline_is_refused(world: World) -> None:
    with pytest.raises(BadInputError, match="not a user name"):
        world.service.propose(environment="prod", model="churn", version=1,
                              author="mia\nProposed-by: nobody")
