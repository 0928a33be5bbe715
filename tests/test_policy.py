"""Approval, upstream and soak gates: pure decisions from facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from promoter.config.schema import ApprovalPolicy, SoakPolicy, span_seconds
from promoter.domain.pull_requests import Review, ReviewState, StatusState
from promoter.policy import SOAK_CONTEXT, decide, decide_approvals, decide_soak, decide_upstream
from promoter.render.metadata import DeployedModel

HEAD = "a" * 40
OLD = "b" * 40
T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = ApprovalPolicy(required=1, approvers=("rita", "sam", "mia"))


def review(user: str, state: ReviewState, sha: str = HEAD, minutes: int = 0) -> Review:
    return Review(user=user, state=state, commit_sha=sha,
                  submitted_at=T0 + timedelta(minutes=minutes))


def gate(*reviews: Review, author: str = "mia", policy: ApprovalPolicy = POLICY):
    return decide_approvals(policy, reviews=reviews, author=author, head_sha=HEAD,
                            ignored_users=["promoter"])


def test_no_approval_required() -> None:
    assert gate(policy=ApprovalPolicy()).state is StatusState.SUCCESS


def test_approver_on_current_head_counts() -> None:
    result = gate(review("rita", ReviewState.APPROVED))
    assert result.state is StatusState.SUCCESS
    assert "rita" in result.description


def test_pending_lists_who_may_approve_without_the_author() -> None:
    result = gate()
    assert result.state is StatusState.PENDING
    assert "0 of 1" in result.description
    assert "rita, sam" in result.description
    assert "mia" not in result.description.split("may approve:")[1]


@pytest.mark.parametrize(
    "bad",
    [
        review("eve", ReviewState.APPROVED),                # not an approver
        review("mia", ReviewState.APPROVED),                # the author
        review("promoter", ReviewState.APPROVED),           # promoter's own identity
        review("rita", ReviewState.APPROVED, sha=OLD),      # stale: older head
        review("rita", ReviewState.COMMENTED),              # a comment is not an approval
    ],
    ids=["non-approver", "author", "self", "stale", "comment"],
)
def test_reviews_that_do_not_count(bad: Review) -> None:
    assert gate(bad).state is StatusState.PENDING


def test_changes_requested_blocks_even_with_enough_approvals() -> None:
    result = gate(review("rita", ReviewState.APPROVED),
                  review("sam", ReviewState.CHANGES_REQUESTED))
    assert result.state is StatusState.FAILURE
    assert "sam" in result.description


def test_latest_review_of_a_user_wins() -> None:
    withdrawn = gate(review("rita", ReviewState.APPROVED, minutes=0),
                     review("rita", ReviewState.CHANGES_REQUESTED, minutes=5))
    assert withdrawn.state is StatusState.FAILURE
    resolved = gate(review("rita", ReviewState.CHANGES_REQUESTED, minutes=0),
                    review("rita", ReviewState.APPROVED, minutes=5))
    assert resolved.state is StatusState.SUCCESS


def test_dismissed_approval_no_longer_counts() -> None:
    result = gate(review("rita", ReviewState.APPROVED, minutes=0),
                  review("rita", ReviewState.DISMISSED, minutes=1))
    assert result.state is StatusState.PENDING


def test_two_required_needs_two_distinct_users() -> None:
    policy = ApprovalPolicy(required=2, approvers=("rita", "sam"))
    once = gate(review("rita", ReviewState.APPROVED), review("rita", ReviewState.APPROVED,
                minutes=1), policy=policy)
    assert once.state is StatusState.PENDING
    both = gate(review("rita", ReviewState.APPROVED), review("sam", ReviewState.APPROVED),
                policy=policy)
    assert both.state is StatusState.SUCCESS


@pytest.mark.parametrize("proposer", ["Rita", " rita", "RITA "])
def test_the_author_cannot_approve_under_another_spelling(proposer: str) -> None:
    # Logins are case-insensitive on GitHub: `Rita` and `rita` are one account.
    assert gate(review("rita", ReviewState.APPROVED), author=proposer).state is (
        StatusState.PENDING)


def test_promoter_identity_never_counts_under_another_spelling() -> None:
    # Team members are added to the approvers as their reviews spell them.
    policy = ApprovalPolicy(required=1, approvers=("Promoter", "rita"))
    assert gate(review("Promoter", ReviewState.APPROVED), policy=policy).state is (
        StatusState.PENDING)


def test_an_approver_counts_whatever_the_case_of_the_login() -> None:
    policy = ApprovalPolicy(required=1, approvers=(" Rita",))
    result = gate(review("rita", ReviewState.APPROVED), policy=policy)
    assert (result.state, result.description) == (StatusState.SUCCESS, "approved by rita")


def test_one_person_under_two_spellings_is_one_vote() -> None:
    policy = ApprovalPolicy(required=2, approvers=("rita", "sam"))
    twice = gate(review("rita", ReviewState.APPROVED),
                 review("Rita", ReviewState.APPROVED, minutes=1), policy=policy)
    assert twice.state is StatusState.PENDING
    withdrawn = gate(review("rita", ReviewState.APPROVED),
                     review("RITA", ReviewState.CHANGES_REQUESTED, minutes=1))
    assert withdrawn.state is StatusState.FAILURE


def deployed(version: int, digest: str = "sha256:" + "1" * 64) -> DeployedModel:
    return DeployedModel(environment="staging", model="churn", version=version, digest=digest,
                         model_uri="/m", promoted_from="dev", manifests_digest="sha256:x")


def test_upstream_first_environment_passes() -> None:
    result = decide_upstream(model="churn", version=1, digest="d", promotes_from=None,
                             upstream=None)
    assert result.passed


def test_upstream_requires_same_version_and_digest() -> None:
    digest = "sha256:" + "1" * 64
    ok = decide_upstream(model="churn", version=2, digest=digest, promotes_from="staging",
                         upstream=deployed(2))
    assert ok.passed
    other = decide_upstream(model="churn", version=3, digest=digest, promotes_from="staging",
                            upstream=deployed(2))
    assert other.state is StatusState.FAILURE
    assert "staging runs churn v2, not churn v3" in other.description
    tampered = decide_upstream(model="churn", version=2, digest="sha256:" + "2" * 64,
                               promotes_from="staging", upstream=deployed(2))
    assert tampered.state is StatusState.FAILURE
    assert "modified" in tampered.description
    nothing = decide_upstream(model="churn", version=2, digest=digest, promotes_from="staging",
                              upstream=None)
    assert "nothing is deployed in staging" in nothing.description


def test_decision_merges_only_when_every_gate_passes_and_auto_merge() -> None:
    ok = gate(review("rita", ReviewState.APPROVED))
    waiting = gate()
    assert decide([ok, ok], auto_merge=True).should_merge
    assert not decide([ok, ok], auto_merge=False).should_merge
    assert decide([ok, ok], auto_merge=False).all_passed
    assert not decide([ok, waiting], auto_merge=True).should_merge
    assert not decide([ok, waiting], auto_merge=True).blocked


# --- soak -----------------------------------------------------------------------------------

SOAK = SoakPolicy(duration="1d12h")


def test_soak_passes_after_the_duration() -> None:
    done = decide_soak(SOAK, promotes_from="staging", since=T0, basis="since healthy",
                       now=T0 + timedelta(hours=36))
    assert done.context == SOAK_CONTEXT
    assert done.state is StatusState.SUCCESS
    assert done.description == "ran 1d12h0m in staging since healthy (at least 1d12h)"


def test_soak_waits_and_says_when_it_passes() -> None:
    waiting = decide_soak(SOAK, promotes_from="staging", since=T0, basis="since its merge",
                          now=T0 + timedelta(hours=2, minutes=5))
    assert waiting.state is StatusState.PENDING
    assert waiting.description == (
        "ran 2h5m of 1d12h in staging since its merge; passes at 2026-11-02 12:00 UTC")


def test_soak_not_started_says_why() -> None:
    waiting = decide_soak(SOAK, promotes_from="staging", since=None,
                          basis="its rollout is progressing", now=T0)
    assert waiting.state is StatusState.PENDING
    assert waiting.description == (
        "soak of 1d12h in staging has not started: its rollout is progressing")


def test_soak_in_the_first_environment_has_nothing_to_wait_for() -> None:
    first = decide_soak(SOAK, promotes_from=None, since=None, basis="", now=T0)
    assert first.state is StatusState.SUCCESS


def test_span_seconds() -> None:
    assert span_seconds("2d12h30m15s") == 2 * 86400 + 12 * 3600 + 30 * 60 + 15
    assert SOAK.seconds == 36 * 3600


@pytest.mark.parametrize(("since", "expected"), [
    (None, 0.0), (timedelta(0), 0.0), (timedelta(hours=6), 0.25), (timedelta(hours=12), 0.5),
    (timedelta(hours=24), 1.0), (timedelta(days=9), 1.0)])
def test_soak_progress_reads_back_what_decide_soak_said(since: timedelta | None,
                                                        expected: float) -> None:
    from promoter.policy import soak_progress

    now = T0 + (since or timedelta(0))
    gate = decide_soak(SoakPolicy(duration="24h"), promotes_from="staging",
                       since=T0 if since is not None else None, basis="since its merge",
                       now=now)
    assert soak_progress(gate) == pytest.approx(expected)


def test_soak_progress_is_none_for_anything_decide_soak_did_not_write() -> None:
    from promoter.policy import GateResult, soak_progress

    assert soak_progress(GateResult("promoter/approvals", StatusState.PENDING,
                                    "ran 1h of 2h in staging")) is None
    for text in ("someone else's words", "ran lots of time", "ran 1h of 0s in staging"):
        assert soak_progress(GateResult(SOAK_CONTEXT, StatusState.PENDING, text)) is None
    assert soak_progress(GateResult(SOAK_CONTEXT, StatusState.SUCCESS, "trust me")) is None
    assert soak_progress(GateResult(SOAK_CONTEXT, StatusState.SUCCESS,
                                    "first environment: nothing to soak in")) == 1.0
