"""Guarded merges (409 head moved, 405 not mergeable) and required external checks."""

from __future__ import annotations

import pytest

from promoter.domain.pull_requests import CommitStatus, PullRequestState, StatusState
from promoter.errors import NotMergeableError, StaleHeadError
from promoter.forge.capabilities import ExternalChecksReader
from promoter.gitops.local import LocalGitRepository
from tests.fixtures.git import push_commit
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import token_forge
from tests.github.scenario import BASE, HEAD, open_pr, propose


def test_head_moving_just_before_the_merge_is_a_409_stale_head(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository,
        monkeypatch: pytest.MonkeyPatch) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    base_before = gitops_repo.branch_head(BASE)
    compare = forge._repo.compare

    def push_during_checks(base: str, head_sha: str):  # a person pushes in the race window
        result = compare(base, head_sha)
        push_commit(gitops_repo, HEAD, {"serving.yaml": b"version: 3\n"})
        return result

    monkeypatch.setattr(forge._repo, "compare", push_during_checks)
    with pytest.raises(StaleHeadError, match="moved before GitHub merged") as caught:
        forge.merge(pr.number, expected_base=BASE, expected_head=head, message="Promote v2")
    assert caught.value.__cause__ is not None  # the GithubException, chained
    assert ("PUT", f"/repos/acme/gitops/pulls/{pr.number}/merge") in fake_github.requests
    assert gitops_repo.branch_head(BASE) == base_before


def test_required_check_missing_is_a_405_not_mergeable(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    fake_github.required_checks[BASE] = ["ci/policy-scan"]
    with pytest.raises(NotMergeableError, match=r"not mergeable|is expected"):
        forge.merge(pr.number, expected_base=BASE, expected_head=head, message="m")
    assert forge.get_pull_request(pr.number).state is PullRequestState.OPEN


def test_merge_uses_the_configured_method(fake_github: FakeGitHub,
                                          gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github, merge_method="squash")
    head = propose(gitops_repo)
    base_before = gitops_repo.branch_head(BASE)
    pr = open_pr(forge)
    sha = forge.merge(pr.number, expected_base=BASE,
                      expected_head=head, message="Promote v2\n\nDigest: x")
    info = gitops_repo.commit_info(sha)
    assert info.parents == (base_before,)
    assert (info.subject, info.body) == ("Promote v2", "Digest: x")


def test_external_checks(fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    assert isinstance(forge, ExternalChecksReader)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    assert forge.external_checks_state(pr).state is StatusState.SUCCESS  # unprotected

    fake_github.required_checks[BASE] = ["ci/policy-scan", "security/trivy",
                                         "promoter/evaluation"]
    forge.set_status(head, CommitStatus("promoter/evaluation", StatusState.PENDING, "x"))
    state = forge.external_checks_state(pr)
    assert state.state is StatusState.PENDING
    assert state.pending == ("ci/policy-scan", "security/trivy")  # promoter's own excluded

    fake_github.add_external_status(head, context="ci/policy-scan", state="success")
    fake_github.add_check_run(head, name="security/trivy", conclusion="failure")
    state = forge.external_checks_state(pr)
    assert (state.state, state.failing) == (StatusState.FAILURE, ("security/trivy",))
    assert "security/trivy" in state.description

    fake_github.add_check_run(head, name="security/trivy", status="in_progress")
    assert forge.external_checks_state(pr).state is StatusState.FAILURE  # a failed run stays

    fake_github.check_runs.clear()
    fake_github.add_check_run(head, name="security/trivy", conclusion="success")
    assert forge.external_checks_state(pr).state is StatusState.SUCCESS
    forge.set_status(head, CommitStatus("promoter/evaluation", StatusState.SUCCESS, "ok"))
    assert forge.merge(pr.number, expected_base=BASE,
                       expected_head=head, message="m") == gitops_repo.branch_head(
        BASE)
