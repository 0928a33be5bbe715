"""Approvals on GitHub: reviews mapped from the API, judged with the approver team."""

from __future__ import annotations

from promoter.config.schema import ApprovalPolicy
from promoter.domain.pull_requests import ReviewState, StatusState
from promoter.forge.capabilities import TeamDirectory
from promoter.gitops.local import LocalGitRepository
from promoter.policy import decide_approvals
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import token_forge
from tests.github.scenario import open_pr, propose


def _gate(forge, pr, *, team: str = "acme/release-managers"):
    reviews = forge.list_reviews(pr.number)
    members = forge.team_members_among({r.user for r in reviews}, team=team)
    policy = ApprovalPolicy(required=1, approvers=tuple(sorted(members)))
    return decide_approvals(policy, reviews=reviews, author=pr.author, head_sha=pr.head_sha,
                            ignored_users=[forge_identity(forge)]) if members else None


def forge_identity(forge) -> str:
    return forge._identity


def test_reviews_map_users_states_and_commits(fake_github: FakeGitHub,
                                              gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    fake_github.add_review(pr.number, user="rita", state="COMMENTED")
    fake_github.add_review(pr.number, user="sam", state="APPROVED", commit="a" * 40)
    reviews = forge.list_reviews(pr.number)
    assert [(r.user, r.state, r.commit_sha) for r in reviews] == [
        ("rita", ReviewState.COMMENTED, head), ("sam", ReviewState.APPROVED, "a" * 40)]
    assert all(r.submitted_at.tzinfo is not None for r in reviews)


def test_team_membership_counts_only_active_members(fake_github: FakeGitHub) -> None:
    fake_github.set_team("acme", "release-managers", {"rita": "active", "sam": "pending"})
    forge = token_forge(fake_github, approver_team="acme/release-managers")
    assert isinstance(forge, TeamDirectory)
    assert forge.team_members_among(["rita", "sam", "mallory"]) == {"rita"}
    assert ("GET", "/orgs/acme/teams/release-managers/memberships/rita") in fake_github.requests
    assert not any(path.startswith("/teams/") for _, path in fake_github.requests)


def test_team_membership_ignores_the_case_of_logins(fake_github: FakeGitHub) -> None:
    fake_github.set_team("acme", "release-managers", {"Rita": "active", "sam": "pending"})
    forge = token_forge(fake_github, approver_team="acme/release-managers")
    assert forge.team_members_among(["rita", "RITA ", "Sam", " "]) == {"rita", "RITA "}
    asked = [p for _, p in fake_github.requests if "/memberships/" in p]
    assert len(asked) == 2  # one per login, not per spelling


def test_approval_rules(fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    fake_github.set_team("acme", "release-managers",
                         {"rita": "active", "sam": "active", "mia": "active"})
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge, author="mia")

    fake_github.add_review(pr.number, user="mallory", state="APPROVED")  # not a member
    fake_github.add_review(pr.number, user="mia", state="APPROVED")  # the author
    gate = _gate(forge, pr)
    assert gate is not None
    assert gate.state is StatusState.PENDING

    fake_github.add_review(pr.number, user="rita", state="APPROVED")
    gate = _gate(forge, pr)
    assert gate is not None
    assert (gate.state, gate.description) == (StatusState.SUCCESS,
                                                                   "approved by rita")

    propose(gitops_repo, b"version: 3\n")  # a new head: rita's approval is stale
    pr = open_pr(forge)
    gate = _gate(forge, pr)
    assert gate is not None
    assert gate.state is StatusState.PENDING

    fake_github.add_review(pr.number, user="rita", state="APPROVED")
    fake_github.add_review(pr.number, user="sam", state="CHANGES_REQUESTED")
    gate = _gate(forge, pr)
    assert gate is not None
    assert gate.state is StatusState.FAILURE
    assert "sam" in gate.description


def test_the_proposer_cannot_approve_in_another_case(fake_github: FakeGitHub,
                                                      gitops_repo: LocalGitRepository) -> None:
    """GitHub logins are case-insensitive: `rita` approving a PR `Rita` proposed is the
    proposer approving her own promotion, and promoter's identity never approves either."""
    fake_github.set_team("acme", "release-managers",
                         {"rita": "active", "Promoter-Bot": "active", "sam": "active"})
    forge = token_forge(fake_github)
    propose(gitops_repo)
    pr = open_pr(forge, author="Rita")
    assert pr.author == "Rita"

    fake_github.add_review(pr.number, user="rita", state="APPROVED")
    fake_github.add_review(pr.number, user="Promoter-Bot", state="APPROVED")
    gate = _gate(forge, pr)
    assert gate is not None
    assert gate.state is StatusState.PENDING, gate.description

    fake_github.add_review(pr.number, user="sam", state="APPROVED")
    gate = _gate(forge, pr)
    assert gate is not None
    assert (gate.state, gate.description) == (StatusState.SUCCESS, "approved by sam")
