"""Pull requests and what a forge records on them: commit statuses, reviews, comments.

These are the facts the gates and the phase of a promotion are derived from. They are plain
values, named as GitHub names them, so every forge adapter (the embedded `LocalForge`,
`GitHubForge`) returns the same thing and the pure core never imports an adapter to read
them. The port that returns them is `promoter.forge.base.Forge`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


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
    web_url: str | None = None
    """The PR's page on the forge's own site, as the forge gives it (GitHub's `html_url`, on
    github.com or a GitHub Enterprise Server); None where there is none (the local forge)."""


@dataclass(frozen=True, slots=True)
class CommitStatus:
    context: str
    """Gate name, e.g. `promoter/evaluation`; the latest status per context wins."""
    state: StatusState
    description: str
    """One line shown next to the status (GitHub cuts it at 140 characters)."""
    target_url: str | None = None
    created_at: datetime | None = field(default=None, compare=False)
    """When the forge recorded this status, as read back (None on one about to be set). Not
    part of equality: a status is the same verdict whenever it was recorded. History reads
    the `promoter/rollout` status's time as when promoter saw the rollout healthy or
    failed."""


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
