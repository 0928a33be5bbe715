"""The `Forge` contract: every forge implementation passes these same tests.

Written against the port only; scenario set-up (pushing commits, moving branches behind the
forge's back, reading branches independently) goes through the `ForgeHarness` of each
implementation (`tests/contract/harness.py`, fixtures in `conftest.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from promoter.domain.pull_requests import (
    CommitStatus,
    PullRequest,
    PullRequestState,
    ReviewState,
    StatusState,
)
from promoter.errors import (
    ForgeError,
    NotMergeableError,
    PullRequestNotFoundError,
    StaleHeadError,
)
from tests.contract.harness import ForgeHarness

BASE = "environments/staging"
HEAD = "environments/staging-next"
MANIFEST = "serving/deployment.yaml"
LABEL = "promoter"


def propose(h: ForgeHarness, content: bytes = b"version: 2\n", *, head: str = HEAD,
            base: str = BASE) -> str:
    """Make sure `base` exists, then (re)build `head` on top of it with `content`."""
    if h.head(base) is None:
        h.push(base, {MANIFEST: b"version: 1\n"}, onto="main")
    return h.push(head, {MANIFEST: content}, onto=base)


def open_pr(h: ForgeHarness, *, head: str = HEAD, base: str = BASE, title: str = "Promote v2",
            labels: tuple[str, ...] = (LABEL,), author: str = "alice") -> PullRequest:
    return h.forge.open_or_update_pull_request(head=head, base=base, title=title,
                                               body="Evaluation pending.", author=author,
                                               labels=labels)


# -- opening -----------------------------------------------------------------------------------


def test_open_creates_a_pull_request(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    head_sha = propose(h)
    pr = open_pr(h)
    assert pr.number > 0
    assert (pr.head_branch, pr.base_branch, pr.head_sha) == (HEAD, BASE, head_sha)
    assert (pr.title, pr.body, pr.author) == ("Promote v2", "Evaluation pending.", "alice")
    assert pr.state is PullRequestState.OPEN
    assert pr.labels == (LABEL,)
    assert pr.merge_sha is None
    assert pr.created_at.tzinfo is not None
    assert h.forge.get_pull_request(pr.number) == pr
    assert h.forge.find_open_pull_request(head=HEAD, base=BASE) == pr
    assert h.forge.list_open_pull_requests() == [pr]


def test_reopening_updates_in_place(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    propose(h)
    first = open_pr(h)
    again = open_pr(h)
    assert again == first  # nothing changed: same PR, same times

    new_head = propose(h, b"version: 3\n")
    updated = open_pr(h, title="Promote v3", labels=("promoter", "prod"), author="bob")
    assert updated.number == first.number
    assert updated.head_sha == new_head
    assert updated.title == "Promote v3"
    assert set(updated.labels) == {"promoter", "prod"}
    assert updated.author == "alice"  # the author is who opened it
    assert updated.created_at == first.created_at
    assert updated.updated_at >= first.updated_at
    assert h.forge.list_open_pull_requests() == [updated]


def test_open_requires_an_existing_head_branch(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    propose(h)
    with pytest.raises(ForgeError, match="environments/prod-next"):
        open_pr(h, head="environments/prod-next")
    assert h.forge.list_open_pull_requests() == []


def test_open_requires_commits_the_base_lacks(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    propose(h)
    h.push(HEAD, {}, onto=BASE)  # an empty commit on top of the base is still a change
    open_pr(h)
    with pytest.raises(ForgeError):
        open_pr(h, head=BASE, base=HEAD)  # the base is already in the head


def test_list_open_filters_by_label_oldest_first(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    propose(h, b"staging\n")
    propose(h, b"prod\n", head="environments/prod-next", base="environments/prod")
    propose(h, b"dev\n", head="environments/dev-next", base="environments/dev")
    staging = open_pr(h, labels=("promoter", "staging"))
    prod = open_pr(h, head="environments/prod-next", base="environments/prod",
                   labels=("promoter",))
    other = open_pr(h, head="environments/dev-next", base="environments/dev", labels=())

    assert h.forge.list_open_pull_requests() == [staging, prod, other]
    assert h.forge.list_open_pull_requests(label="promoter") == [staging, prod]
    assert h.forge.list_open_pull_requests(label="staging") == [staging]
    assert h.forge.list_open_pull_requests(label="nope") == []
    assert h.forge.find_open_pull_request(head=HEAD, base="environments/prod") is None


def test_get_unknown_pull_request(forge_harness: ForgeHarness) -> None:
    forge = forge_harness.forge
    for call in (lambda: forge.get_pull_request(4242), lambda: forge.list_reviews(4242),
                 lambda: forge.list_comments(4242),
                 lambda: forge.upsert_comment(4242, key="k", body="b"),
                 lambda: forge.merge(4242, expected_base=BASE,
                                     expected_head="0" * 40, message="m")):
        with pytest.raises(PullRequestNotFoundError, match="4242"):
            call()


# -- statuses, reviews, comments ---------------------------------------------------------------


def test_statuses_latest_per_context_sorted(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    sha = propose(h)
    other = h.head(BASE)
    assert other is not None
    forge = h.forge
    forge.set_status(sha, CommitStatus("promoter/evaluation", StatusState.PENDING, "running"))
    forge.set_status(sha, CommitStatus("promoter/approval", StatusState.PENDING, "0 of 1"))
    forge.set_status(sha, CommitStatus("promoter/evaluation", StatusState.SUCCESS, "AUC 0.91",
                                       target_url="file:///tmp/report.html"))
    forge.set_status(other, CommitStatus("promoter/evaluation", StatusState.FAILURE, "old"))

    assert forge.list_statuses(sha) == [
        CommitStatus("promoter/approval", StatusState.PENDING, "0 of 1"),
        CommitStatus("promoter/evaluation", StatusState.SUCCESS, "AUC 0.91",
                     target_url="file:///tmp/report.html"),
    ]
    assert forge.list_statuses(other) == [
        CommitStatus("promoter/evaluation", StatusState.FAILURE, "old")]


def test_statuses_say_when_they_were_recorded(forge_harness: ForgeHarness) -> None:
    # History reads the time of the `promoter/rollout` status as when a rollout was seen
    # healthy or failed: every forge must give it, time-zone aware. GitHub keeps seconds.
    sha = propose(forge_harness)
    before = datetime.now(UTC).replace(microsecond=0)
    forge_harness.forge.set_status(sha, CommitStatus("promoter/rollout", StatusState.SUCCESS,
                                                     "dev: healthy"))
    after = datetime.now(UTC)
    [status] = forge_harness.forge.list_statuses(sha)
    assert status.created_at is not None
    assert status.created_at.tzinfo is not None
    assert before <= status.created_at <= after


def test_status_on_unknown_commit_is_refused(forge_harness: ForgeHarness) -> None:
    with pytest.raises(ForgeError):
        forge_harness.forge.set_status("0" * 40, CommitStatus("c", StatusState.SUCCESS, "d"))


def test_reviews_are_recorded_with_the_head_they_saw(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    first_head = propose(h)
    pr = open_pr(h)
    h.review(pr.number, user="bob", state=ReviewState.APPROVED)
    second_head = propose(h, b"version: 3\n")
    open_pr(h)
    h.review(pr.number, user="carol", state=ReviewState.CHANGES_REQUESTED)

    reviews = h.forge.list_reviews(pr.number)
    assert [(r.user, r.state, r.commit_sha) for r in reviews] == [
        ("bob", ReviewState.APPROVED, first_head),
        ("carol", ReviewState.CHANGES_REQUESTED, second_head),
    ]
    assert reviews[0].submitted_at <= reviews[1].submitted_at


def test_review_recorder_requires_an_open_pull_request(recorder_harness: ForgeHarness) -> None:
    h = recorder_harness
    assert h.recorder is not None
    propose(h)
    pr = open_pr(h)
    review = h.recorder.submit_review(pr.number, user="bob", state=ReviewState.APPROVED)
    assert (review.user, review.commit_sha) == ("bob", pr.head_sha)
    h.forge.close(pr.number)
    with pytest.raises(ForgeError, match="closed"):
        h.recorder.submit_review(pr.number, user="bob", state=ReviewState.APPROVED)
    with pytest.raises(PullRequestNotFoundError):
        h.recorder.submit_review(4242, user="bob", state=ReviewState.APPROVED)
    assert len(h.forge.list_reviews(pr.number)) == 1


def test_comment_upsert_edits_in_place(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    propose(h)
    pr = open_pr(h)
    first = h.forge.upsert_comment(pr.number, key="evaluation-report", body="pending")
    edited = h.forge.upsert_comment(pr.number, key="evaluation-report", body="AUC 0.91")
    assert edited.id == first.id
    assert edited.body == "AUC 0.91"
    assert edited.updated_at >= first.updated_at
    assert h.forge.list_comments(pr.number) == [edited]

    other = h.forge.upsert_comment(pr.number, key="approvals", body="0 of 1")
    assert other.id != first.id
    assert [c.key for c in h.forge.list_comments(pr.number)] == ["evaluation-report",
                                                                 "approvals"]


# -- merging -----------------------------------------------------------------------------------


def test_merge_moves_the_base_with_a_merge_commit(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    head_sha = propose(h)
    old_base = h.head(BASE)
    pr = open_pr(h)

    merge_sha = h.forge.merge(pr.number, expected_base=BASE,
                              expected_head=head_sha, message="Promote v2")

    assert h.head(BASE) == merge_sha
    assert h.parents(merge_sha) == [old_base, head_sha]
    assert h.tree(merge_sha) == h.tree(head_sha)
    merged = h.forge.get_pull_request(pr.number)
    assert merged.state is PullRequestState.MERGED
    assert merged.merge_sha == merge_sha
    assert h.forge.list_open_pull_requests() == []
    assert h.forge.find_open_pull_request(head=HEAD, base=BASE) is None
    # Merging again with the same head is a retry, not an error.
    assert h.forge.merge(pr.number, expected_base=BASE,
                         expected_head=head_sha, message="Promote v2") == merge_sha
    assert h.head(BASE) == merge_sha


def test_merge_with_a_stale_expected_head_changes_nothing(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    evaluated = propose(h)
    base_before = h.head(BASE)
    pr = open_pr(h)

    with pytest.raises(StaleHeadError):
        h.forge.merge(pr.number, expected_base=BASE, expected_head="0" * 40, message="m")

    pushed = h.push(HEAD, {MANIFEST: b"version: 3\n"})  # someone pushes after the evaluation
    with pytest.raises(StaleHeadError):
        h.forge.merge(pr.number, expected_base=BASE, expected_head=evaluated, message="m")
    with pytest.raises(StaleHeadError):  # the PR itself was not updated to the new head
        h.forge.merge(pr.number, expected_base=BASE, expected_head=pushed, message="m")

    assert h.head(BASE) == base_before
    assert h.forge.get_pull_request(pr.number).state is PullRequestState.OPEN


def test_merge_after_the_base_moved_changes_nothing(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    head_sha = propose(h)
    pr = open_pr(h)
    hotfix = h.push(BASE, {"hotfix.yaml": b"x\n"})

    with pytest.raises(NotMergeableError, match="moved"):
        h.forge.merge(pr.number, expected_base=BASE, expected_head=head_sha, message="m")

    assert h.head(BASE) == hotfix
    assert h.head(HEAD) == head_sha
    assert h.forge.get_pull_request(pr.number).state is PullRequestState.OPEN


def test_closed_pull_request_is_not_merged(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    head_sha = propose(h)
    base_before = h.head(BASE)
    pr = open_pr(h)

    h.forge.close(pr.number, comment="Superseded by v3")
    h.forge.close(pr.number)  # closing again is a no-op

    closed = h.forge.get_pull_request(pr.number)
    assert closed.state is PullRequestState.CLOSED
    assert "Superseded by v3" in [c.body for c in h.forge.list_comments(pr.number)]
    assert h.forge.list_open_pull_requests() == []
    with pytest.raises(NotMergeableError):
        h.forge.merge(pr.number, expected_base=BASE, expected_head=head_sha, message="m")
    assert h.head(BASE) == base_before

    reopened = open_pr(h)  # a new proposal for the same branches is a new PR
    assert reopened.number != pr.number
    assert reopened.state is PullRequestState.OPEN


def test_last_closed_pull_request_is_the_forges_record_not_the_branch(
        forge_harness: ForgeHarness) -> None:
    """Discovery asks this who closed what: the head it returns is the one recorded for the
    PR, whatever is pushed to the branch after the close."""
    h = forge_harness
    assert h.forge.find_last_closed_pull_request(head=HEAD, base=BASE) is None
    head_sha = propose(h)
    pr = open_pr(h)
    assert h.forge.find_last_closed_pull_request(head=HEAD, base=BASE) is None  # still open
    h.forge.close(pr.number)
    pushed = propose(h, b"version: 9\n")  # force-pushed after the close
    assert pushed != head_sha

    closed = h.forge.find_last_closed_pull_request(head=HEAD, base=BASE)
    assert closed is not None
    assert (closed.number, closed.state, closed.head_sha) == (
        pr.number, PullRequestState.CLOSED, head_sha)
    assert closed.labels == (LABEL,)
    assert h.forge.find_last_closed_pull_request(head=HEAD, base="main") is None
    assert h.forge.find_last_closed_pull_request(head="environments/prod-next",
                                                 base=BASE) is None


def test_last_closed_pull_request_is_the_newest_no_longer_open(
        forge_harness: ForgeHarness) -> None:
    h = forge_harness
    propose(h)
    first = open_pr(h)
    h.forge.close(first.number)
    second_head = propose(h, b"version: 3\n")
    second = open_pr(h)
    # An open PR is not closed: the last closed one is still the first.
    last = h.forge.find_last_closed_pull_request(head=HEAD, base=BASE)
    assert last is not None
    assert last.number == first.number
    h.forge.merge(second.number, expected_base=BASE, expected_head=second_head, message="m")
    merged = h.forge.find_last_closed_pull_request(head=HEAD, base=BASE)
    assert merged is not None
    assert (merged.number, merged.state) == (second.number, PullRequestState.MERGED)


def test_last_closed_pull_request_sees_a_merge_by_hand(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    head_sha = propose(h)
    pr = open_pr(h)
    h.merge_by_hand(BASE, head_sha)
    merged = h.forge.find_last_closed_pull_request(head=HEAD, base=BASE)
    assert merged is not None
    assert (merged.number, merged.state) == (pr.number, PullRequestState.MERGED)


def test_merged_pull_request_cannot_be_closed_and_pair_can_be_proposed_again(
        forge_harness: ForgeHarness) -> None:
    h = forge_harness
    head_sha = propose(h)
    pr = open_pr(h)
    h.forge.merge(pr.number, expected_base=BASE, expected_head=head_sha, message="m")
    with pytest.raises(ForgeError):
        h.forge.close(pr.number)
    with pytest.raises(NotMergeableError):
        h.forge.merge(pr.number, expected_base=BASE, expected_head="0" * 40, message="m")

    with pytest.raises(ForgeError):  # the head has nothing new for the base any more
        open_pr(h)
    next_head = propose(h, b"version: 3\n")
    second = open_pr(h)
    assert second.number != pr.number
    assert second.head_sha == next_head
    h.forge.merge(second.number, expected_base=BASE, expected_head=next_head, message="m")
    assert h.forge.get_pull_request(second.number).state is PullRequestState.MERGED


def test_head_merged_by_hand_is_reported_merged(forge_harness: ForgeHarness) -> None:
    h = forge_harness
    head_sha = propose(h)
    pr = open_pr(h)
    by_hand = h.merge_by_hand(BASE, head_sha)

    merged = h.forge.get_pull_request(pr.number)
    assert merged.state is PullRequestState.MERGED
    assert merged.merge_sha == by_hand
    assert h.forge.list_open_pull_requests() == []
    assert h.forge.merge(pr.number, expected_base=BASE,
                         expected_head=head_sha, message="m") == by_hand


def test_merge_refuses_a_pull_request_that_targets_another_branch(
        forge_harness: ForgeHarness) -> None:
    """The dry branch must never receive hydrated output: on GitHub anyone with write access
    can change an open PR's base, so the merge names the base it expects."""
    h = forge_harness
    head_sha = propose(h)
    pr = open_pr(h)
    before = h.head(BASE)
    with pytest.raises(NotMergeableError, match="main"):
        h.forge.merge(pr.number, expected_head=head_sha, expected_base="main", message="m")
    assert h.head(BASE) == before
    assert h.head("main") != head_sha
    assert h.forge.get_pull_request(pr.number).state is PullRequestState.OPEN
