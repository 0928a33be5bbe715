"""`FakeForge`: an in-memory `Forge` and `ReviewRecorder` for fast tests of the promotion service.

It keeps pull requests, statuses, reviews and comments in dicts and lists, and is held to the
same contract tests as `LocalForge` (`tests/contract/test_forge_contract.py`), so a test that
passes against it means the same thing as one against the real forges.

Branches are not faked: the fake takes a `GitOpsRepository` (a `LocalGitRepository` over a repo
in a temp dir, in practice) and reads heads from it and merges into it, exactly like
`LocalForge`. That keeps "the head moved" and "the base moved" real, and leaves the fake with
only the bookkeeping to do. It is thread-safe (one lock) but lives in one process only.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from promoter.domain.pull_requests import (
    Comment,
    CommitStatus,
    PullRequest,
    PullRequestState,
    Review,
    ReviewState,
)
from promoter.errors import (
    ConcurrentUpdateError,
    ForgeError,
    GitError,
    NotMergeableError,
    PullRequestNotFoundError,
    StaleHeadError,
)
from promoter.gitops.port import GitOpsRepository, Signature

CLOSE_COMMENT_KEY = "close-reason"
"""Same key as `promoter.forge.local.CLOSE_COMMENT_KEY`."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FakeForge:
    """In-memory forge over `repo`; merge commits are authored by `identity`."""

    def __init__(self, repo: GitOpsRepository, *, identity: str = "promoter",
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.repo = repo
        self._identity = Signature(name=identity, email=f"{identity}@promoter.invalid")
        self._clock = clock
        self._lock = threading.RLock()
        self._pulls: dict[int, PullRequest] = {}
        self._statuses: dict[str, dict[str, CommitStatus]] = {}
        self._reviews: dict[int, list[Review]] = {}
        self._comments: dict[int, dict[str, Comment]] = {}
        self._numbers = itertools.count(1)
        self._comment_ids = itertools.count(1)

    # -- pull requests -----------------------------------------------------------------------

    def open_or_update_pull_request(
        self, *, head: str, base: str, title: str, body: str, author: str,
        labels: Sequence[str],
    ) -> PullRequest:
        if head == base:
            raise ForgeError(f"cannot open a pull request from {head} into itself")
        if isinstance(labels, str):
            raise TypeError("labels must be a sequence of label names, not one string")
        with self._lock:
            existing = self._find_open(head, base)
            head_sha = self.repo.branch_head(head)
            base_sha = self.repo.branch_head(base)
            if head_sha is None:
                raise ForgeError(f"head branch {head!r} does not exist")
            if base_sha is None:
                raise ForgeError(f"base branch {base!r} does not exist")
            if self.repo.is_ancestor(head_sha, base_sha):
                raise ForgeError(f"nothing to propose: {head} is already in {base}")
            wanted_labels = tuple(sorted(set(labels)))
            if existing is not None:
                if ((existing.head_sha, existing.title, existing.body, existing.labels)
                        != (head_sha, title, body, wanted_labels)):
                    existing = dataclasses.replace(
                        existing, head_sha=head_sha, title=title, body=body,
                        labels=wanted_labels, updated_at=self._clock())
                    self._pulls[existing.number] = existing
                return existing
            now = self._clock()
            pull = PullRequest(number=next(self._numbers), head_branch=head, base_branch=base,
                               head_sha=head_sha, title=title, body=body, author=author,
                               state=PullRequestState.OPEN, labels=wanted_labels,
                               created_at=now, updated_at=now)
            self._pulls[pull.number] = pull
            return pull

    def get_pull_request(self, number: int) -> PullRequest:
        with self._lock:
            return self._load(number)

    def find_open_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        with self._lock:
            return self._find_open(head, base)

    def list_open_pull_requests(self, *, label: str | None = None) -> list[PullRequest]:
        with self._lock:
            pulls = [self._load(n) for n in sorted(self._pulls)]
        return [p for p in pulls
                if p.state is PullRequestState.OPEN and (label is None or label in p.labels)]

    def close(self, number: int, *, comment: str | None = None) -> None:
        with self._lock:
            pull = self._load(number)
            if pull.state is PullRequestState.CLOSED:
                return
            if pull.state is PullRequestState.MERGED:
                raise ForgeError(f"pull request #{number} is already merged; it cannot be closed")
            if comment is not None:
                self.upsert_comment(number, key=CLOSE_COMMENT_KEY, body=comment)
            self._pulls[number] = dataclasses.replace(pull, state=PullRequestState.CLOSED,
                                                      updated_at=self._clock())

    def merge(self, number: int, *, expected_head: str, message: str) -> str:
        with self._lock:
            pull = self._load(number)
            if pull.state is PullRequestState.MERGED and pull.merge_sha is not None:
                if pull.head_sha == expected_head:
                    return pull.merge_sha
                raise NotMergeableError(f"pull request #{number} was already merged")
            if pull.state is not PullRequestState.OPEN:
                raise NotMergeableError(f"pull request #{number} is {pull.state}")
            current = self.repo.branch_head(pull.head_branch)
            if current is None:
                raise NotMergeableError(f"head branch {pull.head_branch} no longer exists")
            if current != expected_head or pull.head_sha != expected_head:
                raise StaleHeadError(f"#{number}'s head is not {expected_head[:12]}")
            base_sha = self.repo.branch_head(pull.base_branch)
            if base_sha is None or not self.repo.is_ancestor(base_sha, pull.head_sha):
                raise NotMergeableError(f"{pull.base_branch} moved since #{number} was proposed")
            files = {p: self.repo.read_file(pull.head_sha, p) or b""
                     for p in self.repo.list_files(pull.head_sha)}
            merge_sha = self.repo.create_commit(files=files, parents=[base_sha, pull.head_sha],
                                                message=message, author=self._identity)
            try:
                self.repo.update_branch(pull.base_branch, merge_sha, expected=base_sha,
                                        fast_forward_only=True)
            except ConcurrentUpdateError as exc:
                raise NotMergeableError(f"{pull.base_branch} moved while merging") from exc
            self._pulls[number] = dataclasses.replace(
                pull, state=PullRequestState.MERGED, merge_sha=merge_sha,
                updated_at=self._clock())
            return merge_sha

    # -- statuses, reviews, comments ---------------------------------------------------------

    def set_status(self, sha: str, status: CommitStatus) -> None:
        full = self._full_sha(sha)
        with self._lock:
            self._statuses.setdefault(full, {})[status.context] = status

    def list_statuses(self, sha: str) -> list[CommitStatus]:
        try:
            full = self._full_sha(sha)
        except ForgeError:
            return []
        with self._lock:
            latest = self._statuses.get(full, {})
            return [latest[c] for c in sorted(latest)]

    def submit_review(self, number: int, *, user: str, state: ReviewState) -> Review:
        if not user.strip():
            raise ForgeError("a review needs a user name")
        with self._lock:
            pull = self._load(number)
            if pull.state is not PullRequestState.OPEN:
                raise ForgeError(f"pull request #{number} is {pull.state}; only open pull "
                                 "requests can be reviewed")
            review = Review(user=user, state=ReviewState(state), commit_sha=pull.head_sha,
                            submitted_at=self._clock())
            self._reviews.setdefault(number, []).append(review)
            return review

    def list_reviews(self, number: int) -> list[Review]:
        with self._lock:
            self._require(number)
            return list(self._reviews.get(number, []))

    def upsert_comment(self, number: int, *, key: str, body: str) -> Comment:
        with self._lock:
            self._require(number)
            comments = self._comments.setdefault(number, {})
            old = comments.get(key)
            if old is not None and old.body == body:
                return old
            comment = Comment(id=old.id if old else next(self._comment_ids), key=key, body=body,
                              updated_at=self._clock())
            comments[key] = comment
            return comment

    def list_comments(self, number: int) -> list[Comment]:
        with self._lock:
            self._require(number)
            return sorted(self._comments.get(number, {}).values(), key=lambda c: c.id)

    # -- helpers -----------------------------------------------------------------------------

    def _require(self, number: int) -> PullRequest:
        try:
            return self._pulls[number]
        except KeyError:
            raise PullRequestNotFoundError(f"no pull request #{number}") from None

    def _load(self, number: int) -> PullRequest:
        """The PR, first recorded as merged if its head already reached its base (as GitHub
        and LocalForge do)."""
        pull = self._require(number)
        if pull.state is not PullRequestState.OPEN:
            return pull
        merge_sha = self._merged_by(pull.head_sha, pull.base_branch)
        if merge_sha is not None:
            pull = dataclasses.replace(pull, state=PullRequestState.MERGED, merge_sha=merge_sha,
                                       updated_at=self._clock())
            self._pulls[number] = pull
        return pull

    def _find_open(self, head: str, base: str) -> PullRequest | None:
        for number in sorted(self._pulls):
            pull = self._load(number)
            if (pull.state is PullRequestState.OPEN and pull.head_branch == head
                    and pull.base_branch == base):
                return pull
        return None

    def _merged_by(self, head_sha: str, base: str) -> str | None:
        base_sha = self.repo.branch_head(base)
        if base_sha is None or not self.repo.is_ancestor(head_sha, base_sha):
            return None
        commit = base_sha
        while True:
            parents = self.repo.commit_info(commit).parents
            if not parents or not self.repo.is_ancestor(head_sha, parents[0]):
                return commit
            commit = parents[0]

    def _full_sha(self, sha: str) -> str:
        try:
            return self.repo.commit_info(sha).sha
        except GitError as exc:
            raise ForgeError(f"no commit {sha!r}") from exc
