"""The marker in promoter's PR descriptions is signed: an edit cannot change who proposed a
promotion or which head promoter wrote.

GitHub keeps neither fact (the PR's author is promoter's own login, and its head follows the
branch), so promoter keeps them in a hidden marker at the end of the description, which
anyone with write access can edit. Each test is an edit a person with write access could
make through the API (as `mallory`), and promoter must not believe it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from promoter.config.loader import load_settings
from promoter.domain.pull_requests import PullRequestState
from promoter.errors import UntrustedPullRequestError
from promoter.forge.github import GitHubForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from tests.fakes.scripted import ScriptedEvaluator
from tests.fixtures.git import push_commit
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import MARKER_KEY, running_fake, token_forge
from tests.github.scenario import BASE, HEAD, open_pr, propose
from tests.promotion.world import World, git

Untrusted = UntrustedPullRequestError
MARKER = re.compile(r"<!-- promoter:pull (\{.*?\}) -->")


def _github_service(world: World, repo: LocalGitRepository,
                    fake: FakeGitHub) -> PromotionService:
    """The promotion service over `world` with the fake GitHub as its forge."""
    return PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo,
        forge=token_forge(fake), store=LocalModelStore(world.root / "models"),
        evaluator=world.evaluator, identity=fake.bot)


def _edit_body(fake: FakeGitHub, number: int, edit: Callable[[str], str]) -> None:
    """`mallory`, who has write access, rewrites the description of PR `number`."""
    mallory = token_forge(fake, token=fake.add_user("mallory"), identity="mallory")
    raw = mallory._repo.get_pull(number)
    raw.edit(body=edit(raw.body))


def _marker(body: str) -> str:
    match = MARKER.search(body)
    assert match is not None, body
    return match.group(1)


def _refused(forge: GitHubForge, number: int) -> None:
    with pytest.raises(Untrusted, match=f"#{number}") as caught:
        forge.get_pull_request(number)
    assert caught.value.fix is not None
    with pytest.raises(Untrusted):
        forge.find_open_pull_request(head=HEAD, base=BASE)
    (listed,) = forge.list_open_pull_requests()
    assert (listed.number, listed.author, listed.head_sha) == (number, "", "")


def test_a_rewritten_author_is_not_believed(fake_github: FakeGitHub,
                                            gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge, author="mia")
    _edit_body(fake_github, pr.number,
               lambda body: body.replace('"author": "mia"', '"author": "rita"'))
    _refused(forge, pr.number)


def test_a_rewritten_head_does_not_hide_a_push(fake_github: FakeGitHub,
                                               gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    pushed = push_commit(gitops_repo, HEAD, {"serving.yaml": b"image: evil\n"})
    _edit_body(fake_github, pr.number, lambda body: body.replace(head, pushed))
    _refused(forge, pr.number)
    with pytest.raises(Untrusted):
        forge.merge(pr.number, expected_base=BASE, expected_head=pushed, message="m")
    assert forge._repo.get_pull(pr.number).merged is False


def test_an_unsigned_or_removed_marker_is_not_believed(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    unsigned = f'<!-- promoter:pull {{"author": "rita", "head": "{head}"}} -->'
    _edit_body(fake_github, pr.number, lambda body: MARKER.sub(unsigned, body))
    _refused(forge, pr.number)
    _edit_body(fake_github, pr.number, lambda body: MARKER.sub("", body))
    _refused(forge, pr.number)


def test_a_marker_signed_for_other_branches_does_not_verify(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    propose(gitops_repo)
    prod = open_pr(forge, author="mia")
    push_commit(gitops_repo, "environments/dev", {"serving.yaml": b"version: 1\n"}, onto="main")
    push_commit(gitops_repo, "environments/dev-next", {"serving.yaml": b"version: 2\n"},
                onto="environments/dev")
    dev = forge.open_or_update_pull_request(
        head="environments/dev-next", base="environments/dev", title="Promote v2 to dev",
        body="b", author="rita", labels=["promoter"])
    dev_marker = _marker(forge._repo.get_pull(dev.number).body)
    _edit_body(fake_github, prod.number,
               lambda body: body.replace(_marker(body), dev_marker))
    with pytest.raises(Untrusted):
        forge.get_pull_request(prod.number)
    assert forge.get_pull_request(dev.number).author == "rita"


def test_a_marker_signed_with_another_key_does_not_verify(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    propose(gitops_repo)
    pr = open_pr(token_forge(fake_github, marker_key=b"k" * 32))
    with pytest.raises(Untrusted):
        token_forge(fake_github).get_pull_request(pr.number)


def test_an_untrusted_pull_request_is_not_signed_again(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge, author="mia")
    _edit_body(fake_github, pr.number,
               lambda body: body.replace('"author": "mia"', '"author": "rita"'))
    edited = fake_github.pulls[pr.number]["body"]
    with pytest.raises(Untrusted):
        open_pr(forge, author="sam")
    assert fake_github.pulls[pr.number]["body"] == edited


def test_editing_the_text_around_the_marker_changes_nothing_else(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge, author="mia")
    _edit_body(fake_github, pr.number,
               lambda body: "Please look at this.\n" + body + "\n\ncc @sam")
    again = forge.get_pull_request(pr.number)
    assert (again.author, again.head_sha) == ("mia", head)
    assert again.body == "Please look at this.\nEvaluation pending.\n\ncc @sam"


def test_a_merged_pull_request_keeps_its_verified_head(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    merge_sha = forge.merge(pr.number, expected_base=BASE, expected_head=head, message="m")
    done = forge.get_pull_request(pr.number)
    assert (done.state, done.head_sha, done.merge_sha) == (PullRequestState.MERGED, head,
                                                           merge_sha)


def test_the_key_never_shows(fake_github: FakeGitHub, gitops_repo: LocalGitRepository,
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge)
    _edit_body(fake_github, pr.number, lambda body: MARKER.sub("", body))
    with pytest.raises(Untrusted) as caught:
        forge.get_pull_request(pr.number)
    key = MARKER_KEY.decode()
    seen = [repr(forge), str(caught.value), caplog.text, fake_github.pulls[pr.number]["body"]]
    assert not [text for text in seen if key in text]


def test_a_pushed_head_disguised_in_the_marker_halts_the_promotion(tmp_path: Path) -> None:
    """End to end: a person pushes to `<env>-next` and rewrites the marker's head to their
    commit, so that promoter would take the push for its own and merge it."""
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    with running_fake(world.root) as fake:
        repo = LocalGitRepository(world.root)
        service = _github_service(world, repo, fake)
        proposed = service.propose(environment="dev", model="churn", version=1, author="mia")
        assert proposed.pull_request is not None
        assert proposed.commit is not None
        dev_before = git(world.root, "rev-parse", "environments/dev")
        files = repo.list_files(proposed.commit)
        manifest = next(p for p in files if p.endswith(".yaml"))
        pushed = push_commit(repo, "environments/dev-next", {manifest: b"kind: Evil\n"})
        _edit_body(fake, proposed.pull_request.number,
                   lambda body: body.replace(proposed.commit, pushed))

        (outcome,) = service.reconcile()
        assert outcome.state is PromotionState.BLOCKED, outcome
        assert "marker" in (outcome.note or ""), outcome.note
        assert git(world.root, "rev-parse", "environments/dev") == dev_before
        assert world.evaluator.calls == []


def test_status_reports_every_environment_beside_an_untrusted_pull_request(
        tmp_path: Path) -> None:
    """A forged marker in one environment's PR is said there, not raised for the whole
    `promoter status`."""
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    with running_fake(world.root) as fake:
        repo = LocalGitRepository(world.root)
        service = _github_service(world, repo, fake)
        proposed = service.propose(environment="dev", model="churn", version=1, author="mia")
        assert proposed.pull_request is not None
        _edit_body(fake, proposed.pull_request.number,
                   lambda body: body.replace('"mia"', '"rita"'))
        statuses = {s.environment: s for s in service.status()}
        assert set(statuses) == {"dev", "staging", "prod"}
        assert statuses["dev"].open_promotion is None
        assert "marker" in (statuses["dev"].promotion_error or "")
        assert statuses["staging"].promotion_error is None


def test_a_closed_pull_request_with_a_rewritten_head_names_no_head(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    """Discovery holds a version back for a PR closed at promoter's render: an edit of the
    closed PR's marker must not point that record at another commit. It costs one request."""
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    forge.close(pr.number)
    before = len(fake_github.requests)
    closed = forge.find_last_closed_pull_request(head=HEAD, base=BASE)
    assert len(fake_github.requests) - before == 1
    assert closed is not None
    assert (closed.number, closed.state, closed.head_sha) == (
        pr.number, PullRequestState.CLOSED, head)
    planted = push_commit(gitops_repo, HEAD, {"serving.yaml": b"image: evil\n"})
    _edit_body(fake_github, pr.number, lambda body: body.replace(head, planted))
    edited = forge.find_last_closed_pull_request(head=HEAD, base=BASE)
    assert edited is not None
    assert (edited.number, edited.author, edited.head_sha) == (pr.number, "", "")
