"""Retries with backoff on 5xx and rate limits, no blind POST retries, and the call budget."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from promoter.config.loader import load_settings
from promoter.domain.pull_requests import PullRequestState
from promoter.errors import ForgeError
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from tests.fakes.scripted import ScriptedEvaluator
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import running_fake, token_forge
from tests.github.scenario import open_pr, propose
from tests.promotion.world import World

PULLS = r"^/repos/acme/gitops/pulls$"


def test_502_then_success(fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    propose(gitops_repo)
    fake_github.fail_next("GET", PULLS, 502, message="Bad Gateway")
    pr = open_pr(forge)
    assert pr.state is PullRequestState.OPEN
    assert fake_github.requests.count(("GET", "/repos/acme/gitops/pulls")) == 2


def test_5xx_until_retries_run_out_is_a_forge_error(fake_github: FakeGitHub) -> None:
    forge = token_forge(fake_github)
    fake_github.fail_next("GET", PULLS, 503, message="Unavailable", times=10)
    with pytest.raises(ForgeError, match="listing open pull requests") as caught:
        forge.list_open_pull_requests()
    assert caught.value.__cause__ is not None
    assert fake_github.count("GET") == 4  # the first try and 3 retries (FAST_RETRY.total)


def test_a_post_that_failed_with_5xx_is_not_resent(fake_github: FakeGitHub,
                                                   gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge)
    fake_github.fail_next("POST", r"/issues/\d+/comments$", 500)
    with pytest.raises(ForgeError):
        forge.upsert_comment(pr.number, key="evaluation-report", body="AUC 0.91")
    comment_posts = [r for r in fake_github.requests
                     if r == ("POST", f"/repos/acme/gitops/issues/{pr.number}/comments")]
    assert len(comment_posts) == 1  # not re-sent: it may have been done
    comment = forge.upsert_comment(pr.number, key="evaluation-report", body="AUC 0.91")
    assert forge.list_comments(pr.number) == [comment]


def test_secondary_rate_limit_with_retry_after(fake_github: FakeGitHub,
                                               gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge)
    fake_github.fail_next("POST", r"/issues/\d+/comments$", 403, headers={"Retry-After": "0"},
                          message="You have exceeded a secondary rate limit. Please wait a "
                                  "few minutes before you try again.")
    forge.upsert_comment(pr.number, key="k", body="b")  # a rate-limited POST was not done
    assert len(forge.list_comments(pr.number)) == 1


def test_secondary_rate_limit_without_retry_after_waits(fake_github: FakeGitHub) -> None:
    forge = token_forge(fake_github)
    fake_github.fail_next("GET", PULLS, 403,
                          message="You have exceeded a secondary rate limit and have been "
                                  "temporarily blocked from content creation.")
    started = time.monotonic()
    assert forge.list_open_pull_requests() == []
    assert time.monotonic() - started < 5  # FAST_RETRY's secondary wait is 10 ms
    assert fake_github.count("GET") == 2


def test_a_plain_403_is_not_retried(fake_github: FakeGitHub) -> None:
    forge = token_forge(fake_github)
    fake_github.fail_next("GET", PULLS, 403, message="Resource not accessible by integration")
    with pytest.raises(ForgeError, match="403") as caught:
        forge.list_open_pull_requests()
    assert caught.value.fix is not None
    assert "credentials" in caught.value.fix
    assert fake_github.count("GET") == 1


def test_comment_is_edited_not_duplicated(fake_github: FakeGitHub,
                                          gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge)
    first = forge.upsert_comment(pr.number, key="evaluation-report", body="pending")
    posts = fake_github.count("POST")
    again = forge.upsert_comment(pr.number, key="evaluation-report", body="pending")
    assert again == first
    assert fake_github.count("PATCH") == 0
    edited = forge.upsert_comment(pr.number, key="evaluation-report", body="AUC 0.91")
    assert (edited.id, edited.body) == (first.id, "AUC 0.91")
    assert fake_github.count("POST") == posts
    assert fake_github.count("PATCH") == 1
    stored = [c["body"] for c in fake_github.comments.values()]
    assert stored == ["AUC 0.91\n\n<!-- promoter:key=evaluation-report -->"]
    # A person's comment is not promoter's: not listed, never edited.
    fake_github.comments[999] = {**next(iter(fake_github.comments.values())), "id": 999,
                                 "body": "LGTM", "user": "rita"}
    assert forge.list_comments(pr.number) == [edited]


def test_merge_whose_answer_was_lost_is_not_reported_as_a_failure(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    # GitHub merges, then the 502 reaches us; PyGithub re-sends the PUT, which now answers
    # 405 (already merged): the adapter sees its own merge and returns it.
    fake_github.fail_next("PUT", r"/merge$", 502, after_doing_it=True)
    merge_sha = forge.merge(pr.number, expected_base="environments/prod",
                            expected_head=head, message="m")
    assert gitops_repo.branch_head("environments/prod") == merge_sha
    assert fake_github.count("PUT") == 2


def test_outage_during_a_promotion_resumes_without_duplicates(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    with running_fake(world.root) as fake:
        service = PromotionService(
            settings=load_settings(world.root / "promoter.yaml"),
            repo=LocalGitRepository(world.root), forge=token_forge(fake),
            store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
            identity=fake.bot)
        # The PR is created on GitHub but the answer is lost: POSTs are not re-sent.
        fake.fail_next("POST", r"/pulls$", 502, after_doing_it=True)
        with pytest.raises(ForgeError):
            service.propose(environment="dev", model="churn", version=1, author="mia")
        # Its labels were never added, so reconcile does not see it yet; propose again
        # finds the PR (no second one) and labels it.
        assert service.reconcile() == []
        result = service.propose(environment="dev", model="churn", version=1, author="mia")
        assert result.pull_request is not None
        assert len(fake.pulls) == 1
        fake.fail_next("POST", r"/statuses/", 503)
        (failed,) = service.reconcile()  # GitHub down while reconciling: nothing merged
        assert failed.state is PromotionState.BLOCKED
        assert "503" in (failed.note or "")
        assert fake.pulls[1]["state"] == "open"
        (outcome,) = service.reconcile()
        assert outcome.state is PromotionState.MERGED
        assert len(fake.comments) == 1
