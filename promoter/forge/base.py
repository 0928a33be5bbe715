"""The forge port: pull requests, commit statuses, reviews, comments and guarded merges.

A forge is where promotions are proposed and approved: the embedded `LocalForge`, or GitHub
(`GitHubForge`). The promotion service only talks to this interface, and every adapter passes
the same contract tests (`tests/contract/test_forge_contract.py`). The values it returns are
in `promoter.domain.pull_requests`, so code that only reads them needs no forge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from promoter.domain.pull_requests import (
    Comment,
    CommitStatus,
    PullRequest,
    Review,
)
from promoter.forge.capabilities import ForgeCapabilities, ReviewRecorder


class Forge(Protocol):
    """Port to the forge hosting the promotion pull requests.

    Every method is safe to call again after a crash: creates look before they create.
    """

    @property
    def capabilities(self) -> ForgeCapabilities:
        """What this forge offers beyond the port (see `promoter.forge.capabilities`)."""
        ...

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

    def find_last_closed_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        """The newest PR from `head` into `base` that is no longer open (CLOSED, or MERGED),
        or None. Its `head_sha` is the head the forge recorded for it, not the branch as it is
        now: a push after the close does not change it. A PR whose record cannot be trusted
        (GitHub: its marker does not verify) comes back with an empty `head_sha` and
        `author`, as in `list_open_pull_requests`. One request on GitHub."""
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


__all__ = ["Forge", "ForgeCapabilities", "ReviewRecorder"]
