"""The forge port: pull requests, commit statuses, reviews, comments and guarded merges.

A forge is where promotions are proposed and approved: the embedded `LocalForge`, or GitHub
(a later adapter). The promotion service only talks to this interface, and every adapter passes
the same contract tests (`tests/contract/test_forge_contract.py`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


class PullRequestState(enum.StrEnum):
    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


class StatusState(enum.StrEnum):
    """Commit status states, as GitHub names them."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


class ReviewState(enum.StrEnum):
    APPROVED = "APPROVED"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    COMMENTED = "COMMENTED"
    DISMISSED = "DISMISSED"


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    """Forge-wide unique number, as on GitHub."""
    head_branch: str
    """Proposal branch, e.g. `environments/prod-next`."""
    base_branch: str
    """Environment branch, e.g. `environments/prod`."""
    head_sha: str
    """Commit the head branch pointed at when the PR was last opened or updated."""
    title: str
    body: str
    author: str
    """Who proposed the promotion; never counts as an approver."""
    state: PullRequestState
    labels: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    merge_sha: str | None = None
    """The merge commit on the base branch, once merged."""


@dataclass(frozen=True, slots=True)
class CommitStatus:
    context: str
    """Gate name, e.g. `promoter/evaluation`; the latest status per context wins."""
    state: StatusState
    description: str
    """One line shown next to the status (GitHub cuts it at 140 characters)."""
    target_url: str | None = None


@dataclass(frozen=True, slots=True)
class Review:
    user: str
    state: ReviewState
    commit_sha: str
    """Head commit the review was given on; an approval of an older head does not count."""
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    key: str
    """Promoter's marker for the comment (e.g. `evaluation-report`), so it is edited, not
    duplicated."""
    body: str
    updated_at: datetime


def login_key(user: str) -> str:
    """`user` as forges compare logins: blanks around it ignored, case-insensitive.

    GitHub logins are case-insensitive (`Rita` and `rita` are one account), and a name typed
    into a policy or `--as` may carry stray spaces: every comparison of two users goes
    through this, so no spelling makes one person two.
    """
    return user.strip().casefold()


class Forge(Protocol):
    """Port to the forge hosting the promotion pull requests.

    Every method is safe to call again after a crash: creates look before they create.
    """

    def open_or_update_pull_request(
        self, *, head: str, base: str, title: str, body: str, author: str,
        labels: Sequence[str],
    ) -> PullRequest:
        """Return the open PR from `head` into `base`, creating it if there is none, and
        refresh its title, body, labels and head sha. Never creates a second open PR for the
        same pair of branches. The head branch must already exist."""
        ...

    def get_pull_request(self, number: int) -> PullRequest:
        """Raise PullRequestNotFoundError if there is no such PR."""
        ...

    def find_open_pull_request(self, *, head: str, base: str) -> PullRequest | None: ...

    def list_open_pull_requests(self, *, label: str | None = None) -> list[PullRequest]:
        """Open PRs, oldest first; only those carrying `label` when it is given."""
        ...

    def set_status(self, sha: str, status: CommitStatus) -> None:
        """Record `status` on commit `sha` (a new status for a context replaces the old)."""
        ...

    def list_statuses(self, sha: str) -> list[CommitStatus]:
        """The latest status per context on `sha`, sorted by context."""
        ...

    def list_reviews(self, number: int) -> list[Review]:
        """Every review of the PR, oldest first."""
        ...

    def upsert_comment(self, number: int, *, key: str, body: str) -> Comment:
        """Create promoter's comment with this `key` on the PR, or edit it in place."""
        ...

    def list_comments(self, number: int) -> list[Comment]: ...

    def merge(self, number: int, *, expected_head: str, expected_base: str,
              message: str) -> str:
        """Merge the PR only if its head is still `expected_head` and it still targets
        `expected_base`; return the merge commit.

        Raises StaleHeadError when the head moved (nothing is merged: re-evaluate), and
        NotMergeableError when the PR is not open, targets another branch than
        `expected_base` (on GitHub anyone with write access can change a PR's base: the dry
        branch must never receive hydrated output), or its base moved under it. Never
        force-pushes the base branch.
        """
        ...

    def close(self, number: int, *, comment: str | None = None) -> None:
        """Close an open PR without merging (a superseded proposal)."""
        ...


@runtime_checkable
class ReviewRecorder(Protocol):
    """Recording reviews by hand: the local forge only (on GitHub, people review on GitHub)."""

    def submit_review(self, number: int, *, user: str, state: ReviewState) -> Review:
        """Record `user`'s review on the PR's current head sha."""
        ...
