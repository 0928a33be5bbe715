"""The forge side of `reconcile --dry-run`: a Forge that reads the real forge and keeps its
own writes in memory.

Pull requests opened, updated, merged or closed, statuses, comments and reviews the dry run
would write are held here and answered by every later read, as the forge would answer after
the write; with `DryRunRepository` a merge moves the environment branch here too, so a
promotion judged after it sees the environment as the real run would. Every write is also
recorded (`Recorder`). Nothing reaches the forge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from promoter.cli.dry_run_git import DryRunRepository, Recorder
from promoter.domain.pull_requests import (
    Comment,
    CommitStatus,
    PullRequest,
    PullRequestState,
    Review,
    ReviewState,
    StatusState,
)
from promoter.errors import ForgeError, NotMergeableError, StaleHeadError
from promoter.forge.base import Forge
from promoter.forge.capabilities import ExternalChecks, ForgeCapabilities
from promoter.gitops.port import Signature

MERGER = Signature("promoter", "promoter@localhost")
"""Who the planned merge commits name (their sha is only the dry run's)."""


class DryRunForge:
    """`forge` for reading; its writes held in this object (see the module doc). Its
    capabilities are exactly those of `forge`, each wrapped the same way."""

    def __init__(self, forge: Forge, repo: DryRunRepository, recorder: Recorder) -> None:
        self._forge = forge
        self._repo = repo
        self._recorder = recorder
        self._pulls: dict[int, PullRequest] = {}
        self._new: set[int] = set()
        self._statuses: dict[str, dict[str, CommitStatus]] = {}
        self._comments: dict[int, dict[str, Comment]] = {}
        self._reviews: dict[int, list[Review]] = {}

    @property
    def capabilities(self) -> ForgeCapabilities:
        inner = self._forge.capabilities
        return ForgeCapabilities(
            reviews=_ReviewRecording(self) if inner.reviews is not None else None,
            external_checks=(_ExternalChecksReading(inner.external_checks, self._repo)
                             if inner.external_checks is not None else None),
            team_directory=inner.team_directory,  # reads only
            check_runs=(_CheckRunPublishing(self._recorder)
                        if inner.check_runs is not None else None))

    # --- pull requests ------------------------------------------------------------------------

    def open_or_update_pull_request(self, *, head: str, base: str, title: str, body: str,
                                    author: str, labels: Sequence[str]) -> PullRequest:
        if head == base:
            raise ForgeError(f"cannot open a pull request from {head} into itself")
        head_sha = self._repo.branch_head(head)
        if head_sha is None or self._repo.branch_head(base) is None:
            raise ForgeError(f"cannot open a pull request from {head} into {base}: a branch "
                             "is missing")
        now = datetime.now(UTC)
        wanted = tuple(sorted(set(labels)))
        existing = self.find_open_pull_request(head=head, base=base)
        if existing is not None:
            pull = replace(existing, head_sha=head_sha, title=title, body=body,
                           labels=wanted, updated_at=now)
            if pull != replace(existing, updated_at=now):
                self._recorder.add("update_pull_request", f"PR #{pull.number}",
                                   f"head {head_sha[:12]}: {title}")
        else:
            number = 1 + max([*self._pulls, *(p.number for p in
                                               self._forge.list_open_pull_requests())],
                             default=0)
            pull = PullRequest(number=number, head_branch=head, base_branch=base,
                               head_sha=head_sha, title=title, body=body, author=author,
                               state=PullRequestState.OPEN, labels=wanted, created_at=now,
                               updated_at=now)
            self._new.add(number)
            self._recorder.add("open_pull_request", f"{head} -> {base}",
                               f"{title} (a new PR; its number is the forge's to give)")
        self._pulls[pull.number] = pull
        return pull

    def get_pull_request(self, number: int) -> PullRequest:
        return self._pulls.get(number) or self._forge.get_pull_request(number)

    def find_open_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        for pull in self._pulls.values():
            if (pull.head_branch, pull.base_branch, pull.state) == (head, base,
                                                                    PullRequestState.OPEN):
                return pull
        real = self._forge.find_open_pull_request(head=head, base=base)
        if real is not None and real.number in self._pulls:
            return None  # merged or closed by this dry run
        return real

    def list_open_pull_requests(self, *, label: str | None = None) -> list[PullRequest]:
        real = self._forge.list_open_pull_requests(label=label)
        pulls = [self._pulls.get(p.number, p) for p in real]
        pulls += [self._pulls[n] for n in sorted(self._new)
                  if label is None or label in self._pulls[n].labels]
        return [p for p in pulls if p.state is PullRequestState.OPEN]

    def find_last_closed_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        # One this dry run merged or closed was open on the forge: newer than its closed ones.
        done = [p for p in self._pulls.values() if (p.head_branch, p.base_branch) == (head, base)
                and p.state is not PullRequestState.OPEN]
        if done:
            return max(done, key=lambda p: p.number)
        pull: PullRequest | None = self._forge.find_last_closed_pull_request(head=head,
                                                                             base=base)
        return pull

    def merge(self, number: int, *, expected_head: str, expected_base: str,
              message: str) -> str:
        """Checked as the forge checks a merge; the merge commit (parents: the base, then the
        head; the head's tree) is held by the repository, which moves the base branch."""
        pull = self.get_pull_request(number)
        if pull.state is not PullRequestState.OPEN:
            raise NotMergeableError(f"pull request #{number} is {pull.state}")
        if pull.base_branch != expected_base:
            raise NotMergeableError(f"pull request #{number} targets {pull.base_branch}, "
                                    f"not {expected_base}; nothing was merged")
        head_now = self._repo.branch_head(pull.head_branch)
        if expected_head != head_now or expected_head != pull.head_sha:
            raise StaleHeadError(f"#{number}'s head is not {expected_head[:12]}, which was "
                                 "evaluated; it was not merged")
        base_sha = self._repo.branch_head(pull.base_branch)
        if base_sha is None or not self._repo.is_ancestor(base_sha, pull.head_sha):
            raise NotMergeableError(f"{pull.base_branch} moved since #{number} was proposed")
        files = {p: self._repo.read_file(pull.head_sha, p) or b""
                 for p in self._repo.list_files(pull.head_sha)}
        merge_sha = self._repo.plan_commit(files=files, parents=[base_sha, pull.head_sha],
                                           message=message, author=MERGER)
        self._repo.move_branch(pull.base_branch, merge_sha, expected=base_sha,
                               fast_forward_only=True)
        self._pulls[number] = replace(pull, state=PullRequestState.MERGED,
                                      merge_sha=merge_sha, updated_at=datetime.now(UTC))
        self._recorder.add("merge", f"PR #{number}",
                           f"into {expected_base} at head {expected_head[:12]}")
        return merge_sha

    def close(self, number: int, *, comment: str | None = None) -> None:
        pull = self.get_pull_request(number)
        self._pulls[number] = replace(pull, state=PullRequestState.CLOSED,
                                      updated_at=datetime.now(UTC))
        self._recorder.add("close", f"PR #{number}", comment or "without a comment")

    # --- statuses, reviews, comments ----------------------------------------------------------

    def set_status(self, sha: str, status: CommitStatus) -> None:
        self._statuses.setdefault(sha, {})[status.context] = status
        self._recorder.add("set_status", sha[:12],
                           f"{status.context} {status.state}: {status.description}")

    def list_statuses(self, sha: str) -> list[CommitStatus]:
        real = [] if self._repo.is_planned(sha) else self._forge.list_statuses(sha)
        latest = {s.context: s for s in real} | self._statuses.get(sha, {})
        return [latest[c] for c in sorted(latest)]

    def list_reviews(self, number: int) -> list[Review]:
        real = [] if number in self._new else self._forge.list_reviews(number)
        return [*real, *self._reviews.get(number, [])]

    def add_review(self, number: int, review: Review) -> None:
        self._reviews.setdefault(number, []).append(review)

    def upsert_comment(self, number: int, *, key: str, body: str) -> Comment:
        first = body.strip().splitlines()[0] if body.strip() else ""
        self._recorder.add("upsert_comment", f"PR #{number}", f"{key}: {first}")
        comment = Comment(id=0, key=key, body=body, updated_at=datetime.now(UTC))
        self._comments.setdefault(number, {})[key] = comment
        return comment

    def list_comments(self, number: int) -> list[Comment]:
        real = [] if number in self._new else self._forge.list_comments(number)
        ours = self._comments.get(number, {})
        return [c for c in real if c.key not in ours] + list(ours.values())

    @property
    def recorder(self) -> Recorder:
        return self._recorder


class _ReviewRecording:
    def __init__(self, forge: DryRunForge) -> None:
        self._forge = forge

    def submit_review(self, number: int, *, user: str, state: ReviewState) -> Review:
        pull = self._forge.get_pull_request(number)
        review = Review(user=user, state=state, commit_sha=pull.head_sha,
                        submitted_at=datetime.now(UTC))
        self._forge.add_review(number, review)
        self._forge.recorder.add("submit_review", f"PR #{number}", f"{user}: {state}")
        return review


class _ExternalChecksReading:
    def __init__(self, reader: Any, repo: DryRunRepository) -> None:
        self._reader = reader
        self._repo = repo

    def external_checks_state(self, pull: PullRequest) -> ExternalChecks:
        if self._repo.is_planned(pull.head_sha):
            # Other tools' checks run once the commit is pushed: none has reported yet.
            return ExternalChecks(StatusState.PENDING,
                                  "required checks run once the new head is pushed")
        checks: ExternalChecks = self._reader.external_checks_state(pull)
        return checks


class _CheckRunPublishing:
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def publish_check_run(self, sha: str, *, name: str, state: StatusState, title: str,
                          summary: str, text: str | None = None,
                          details_url: str | None = None) -> int:
        self._recorder.add("publish_check_run", sha[:12], f"{name} {state}: {title}")
        return 0

