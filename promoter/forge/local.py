"""`LocalForge`: the embedded forge, with its state in one SQLite file beside the repository.

It implements the `Forge` port the way GitHub behaves, so the promotion service cannot tell them
apart: one open pull request per (head, base), statuses keyed by commit, reviews pinned to the
head commit they were given on, and merges that are guarded by the evaluated head sha.

The SQLite schema, transactions and row mapping are in `local_db` (with the concurrency rules);
the repair of merges a crash left unrecorded in `local_repair`.

Merges and crashes. `merge` holds the write lock across its git writes, so two merges can never
interleave. It writes the merge commit (unreachable, harmless if we crash), moves the base
branch with a compare-and-swap fast-forward, and only then records the PR as merged; that
record commits together with the transaction. A crash after the branch moved but before the
commit leaves an open PR whose head is already in its base. Every operation that loads a pull
request repairs that state first (`_settle`): an open PR whose recorded head is reachable from
its base branch is recorded as merged, with the first-parent commit of the base that brought the
head in as its merge sha. That is also what GitHub does when someone merges a PR's head by hand,
so the repair needs no journal and is idempotent; `merge` called again with the same
`expected_head` returns the merge sha instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from promoter.domain.pull_requests import (
    Comment,
    CommitStatus,
    PullRequest,
    PullRequestState,
    Review,
    ReviewState,
    StatusState,
)
from promoter.errors import (
    ConcurrentUpdateError,
    ForgeError,
    GitError,
    NotMergeableError,
    PromoterError,
    StaleHeadError,
)
from promoter.forge.capabilities import ForgeCapabilities
from promoter.forge.local_db import _comment, _normalize_labels, _pull_request, _utc_now
from promoter.forge.local_repair import MergeRepair
from promoter.gitops.object_cache import is_object_id
from promoter.gitops.port import GitOpsRepository, Signature

log = logging.getLogger(__name__)

CLOSE_COMMENT_KEY = "close-reason"
"""Key of the comment `close(..., comment=...)` leaves on the pull request."""


class LocalForge(MergeRepair):
    """The embedded `Forge` (and `ReviewRecorder`), stored in the SQLite file `db_path`.

    `repo` is the GitOps repository the pull requests live in: the forge reads branch heads
    from it and merges by moving its base branches (fast-forward only). Merge commits are
    authored by `identity`. The file and its parent directories are created if missing.
    """

    def __init__(self, db_path: Path, repo: GitOpsRepository, *, identity: str = "promoter",
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._db_path = Path(db_path)
        self._repo = repo
        self._identity = Signature(name=identity, email=f"{identity}@promoter.invalid")
        self._clock = clock
        try:
            self._db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ForgeError(f"cannot create the forge directory {self._db_path.parent}: "
                             f"{exc.strerror}", fix="check its permissions") from exc
        self._create_schema()

    @property
    def db_path(self) -> Path:
        return self._db_path

    # -- pull requests -----------------------------------------------------------------------

    def open_or_update_pull_request(
        self, *, head: str, base: str, title: str, body: str, author: str,
        labels: Sequence[str],
    ) -> PullRequest:
        """Return the open PR from `head` into `base`, creating it if there is none.

        Refreshes title, body, labels and head sha (the head branch's current commit); the
        author of an existing PR stays who opened it. Raises ForgeError if either branch is
        missing or if the head has nothing that is not already in the base (as GitHub does).
        """
        if head == base:
            raise ForgeError(f"cannot open a pull request from {head} into itself")
        wanted_labels = _normalize_labels(labels)
        now = self._now()
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT * FROM pull_requests WHERE head = ? AND base = ? AND state = 'open'",
                (head, base),
            ).fetchone()
            if row is not None:
                row = self._settle(conn, row)
            head_sha, _ = self._require_branches(head, base)
            if row is not None and row["state"] == PullRequestState.OPEN:
                fields = (head_sha, title, body, wanted_labels)
                if fields != (row["head_sha"], row["title"], row["body"], row["labels"]):
                    conn.execute(
                        "UPDATE pull_requests SET head_sha = ?, title = ?, body = ?, labels = ?,"
                        " updated_at = ? WHERE number = ?", (*fields, now, row["number"]),
                    )
                number = int(row["number"])
            else:
                number = int(conn.execute(
                    "INSERT INTO pull_requests (head, base, head_sha, title, body, author,"
                    " state, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?) RETURNING number",
                    (head, base, head_sha, title, body, author, PullRequestState.OPEN.value,
                     wanted_labels, now, now),
                ).fetchone()[0])
                log.info("opened pull request #%d: %s -> %s", number, head, base)
            return _pull_request(self._require_row(conn, number))

    def get_pull_request(self, number: int) -> PullRequest:
        """The PR `number`; raises PullRequestNotFoundError if there is none."""
        with self._transaction(write=False) as conn:
            row = self._require_row(conn, number)
        return _pull_request(self._settle_read([row])[0])

    @property
    def capabilities(self) -> ForgeCapabilities:
        """Reviews are recorded through promoter: there is no site to review on."""
        return ForgeCapabilities(reviews=self)

    def find_open_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM pull_requests WHERE head = ? AND base = ? AND state = 'open'",
                (head, base),
            ).fetchall()
        open_rows = [r for r in self._settle_read(rows) if r["state"] == PullRequestState.OPEN]
        return _pull_request(open_rows[0]) if open_rows else None

    def list_open_pull_requests(self, *, label: str | None = None) -> list[PullRequest]:
        """Open PRs, oldest first; only those carrying `label` when it is given."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM pull_requests WHERE state = 'open' ORDER BY number",
            ).fetchall()
        pulls = [_pull_request(r) for r in self._settle_read(rows)]
        return [p for p in pulls
                if p.state is PullRequestState.OPEN and (label is None or label in p.labels)]

    def find_last_closed_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        """The newest PR from `head` into `base` no longer open, with the head it was last
        opened or updated at."""
        with self._transaction(write=False) as conn:
            # At most one is open, and it is the newest: two rows always include the answer.
            rows = conn.execute(
                "SELECT * FROM pull_requests WHERE head = ? AND base = ?"
                " ORDER BY number DESC LIMIT 2", (head, base),
            ).fetchall()
        done = [r for r in self._settle_read(rows) if r["state"] != PullRequestState.OPEN]
        return _pull_request(done[0]) if done else None

    def close(self, number: int, *, comment: str | None = None) -> None:
        """Close an open PR without merging; closing a closed PR again does nothing.

        `comment` is left on the PR under the key `CLOSE_COMMENT_KEY`. Raises ForgeError for a
        merged PR.
        """
        with self._transaction(write=True) as conn:
            row = self._settle(conn, self._require_row(conn, number))
            if row["state"] == PullRequestState.CLOSED:
                return
            if row["state"] == PullRequestState.MERGED:
                raise ForgeError(f"pull request #{number} is already merged; it cannot be closed")
            now = self._now()
            if comment is not None:
                self._upsert_comment(conn, number, CLOSE_COMMENT_KEY, comment, now)
            conn.execute("UPDATE pull_requests SET state = ?, updated_at = ? WHERE number = ?",
                         (PullRequestState.CLOSED.value, now, number))
            log.info("closed pull request #%d", number)

    def merge(self, number: int, *, expected_head: str, expected_base: str,
              message: str) -> str:
        """Merge PR `number` if its head is still `expected_head` (a full sha); return the merge.

        One critical section (the database write lock is held throughout):
        - the PR must be open (NotMergeableError), and both its recorded head and the head
          branch must be at `expected_head` (StaleHeadError: someone pushed; re-evaluate);
        - the base branch must be an ancestor of the head (NotMergeableError: re-propose);
        - a merge commit with parents [base, head] and the head's tree is written, and the
          base branch is fast-forwarded to it with a compare-and-swap: never a force.
        Calling it again for a merged PR with the same `expected_head` returns the same sha.
        """
        # The git work (reading the head's files, writing the merge commit) is done before
        # the write lock, which every other forge write waits on; under the lock it is used
        # only if the base branch is still where it was then (commits never change, so the
        # ancestry and the tree still hold), else it is done again there.
        prepared = self._prepare_merge(number, expected_head=expected_head,
                                       expected_base=expected_base, message=message)
        with self._transaction(write=True) as conn:
            row = self._settle(conn, self._require_row(conn, number))
            pull = _pull_request(row)
            if pull.state is PullRequestState.MERGED and pull.merge_sha is not None:
                if pull.head_sha == expected_head:
                    return pull.merge_sha  # a retry, e.g. after a crash: already done
                raise NotMergeableError(
                    f"pull request #{number} was already merged at {pull.head_sha[:12]}, "
                    f"not {expected_head[:12]}")
            if pull.state is not PullRequestState.OPEN:
                raise NotMergeableError(f"pull request #{number} is {pull.state}",
                                        fix="propose the promotion again")
            if pull.base_branch != expected_base:
                raise NotMergeableError(
                    f"pull request #{number} targets {pull.base_branch}, not {expected_base}; "
                    "nothing was merged", fix="close it and propose again")
            self._check_head(pull, expected_head)
            base_sha = self._repo.branch_head(pull.base_branch)
            if base_sha is None:
                raise NotMergeableError(
                    f"base branch {pull.base_branch} of #{number} no longer exists")
            if prepared is not None and prepared[0] == base_sha:
                merge_sha = prepared[1]
            else:
                if not self._repo.is_ancestor(base_sha, pull.head_sha):
                    raise NotMergeableError(
                        f"{pull.base_branch} moved to {base_sha[:12]} since #{number} was "
                        "proposed; the proposal does not contain it",
                        fix="propose the promotion again from the branch as it is now",
                    )
                merge_sha = self._write_merge_commit(pull, base_sha, message)
            try:
                self._repo.update_branch(pull.base_branch, merge_sha, expected=base_sha,
                                         fast_forward_only=True)
            except ConcurrentUpdateError as exc:
                raise NotMergeableError(
                    f"{pull.base_branch} moved while #{number} was being merged; nothing was "
                    "merged", fix="propose the promotion again") from exc
            # Crash window: the base has moved but this transaction has not committed. The next
            # operation on this PR finds its head in the base and records the merge (_settle).
            conn.execute(
                "UPDATE pull_requests SET state = ?, merge_sha = ?, updated_at = ?"
                " WHERE number = ?",
                (PullRequestState.MERGED.value, merge_sha, self._now(), number),
            )
            log.info("merged pull request #%d into %s as %s", number, pull.base_branch,
                     merge_sha)
            return merge_sha

    # -- statuses, reviews, comments ---------------------------------------------------------

    def set_status(self, sha: str, status: CommitStatus) -> None:
        """Record `status` on commit `sha`; ForgeError if the repository has no such commit."""
        full = self._full_sha(sha)
        state = StatusState(status.state)
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO statuses (sha, context, state, description, target_url,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (full, status.context, state.value, status.description, status.target_url,
                 self._now()),
            )

    def list_statuses(self, sha: str) -> list[CommitStatus]:
        """The latest status per context on `sha`, sorted by context ([] for no commit)."""
        # A full id needs no git process: statuses are recorded by full id, and only on
        # commits that exist (`set_status`), so an id of no commit has none.
        if is_object_id(sha):
            full = sha
        else:
            try:
                full = self._full_sha(sha)
            except ForgeError:
                return []
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT context, state, description, target_url, created_at FROM statuses AS s"
                " WHERE sha = ? AND id = (SELECT MAX(id) FROM statuses"
                " WHERE sha = s.sha AND context = s.context) ORDER BY context",
                (full,),
            ).fetchall()
        return [CommitStatus(context=r["context"], state=StatusState(r["state"]),
                             description=r["description"], target_url=r["target_url"],
                             created_at=datetime.fromisoformat(r["created_at"]))
                for r in rows]

    def submit_review(self, number: int, *, user: str, state: ReviewState) -> Review:
        """Record `user`'s review on the PR's current head sha (as last opened or updated).

        The PR must be open (ForgeError). Who may approve is the policy's decision, not the
        forge's: the review is recorded as given, with its user, for the policy to judge.
        """
        if not user.strip():
            raise ForgeError("a review needs a user name", fix="pass --user or set PROMOTER_USER")
        review_state = ReviewState(state)
        now = self._now()
        with self._transaction(write=True) as conn:
            row = self._settle(conn, self._require_row(conn, number))
            if row["state"] != PullRequestState.OPEN:
                raise ForgeError(f"pull request #{number} is {row['state']}; only open pull "
                                 "requests can be reviewed")
            conn.execute(
                "INSERT INTO reviews (pr, user, state, commit_sha, submitted_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (number, user, review_state.value, row["head_sha"], now),
            )
            return Review(user=user, state=review_state, commit_sha=row["head_sha"],
                          submitted_at=datetime.fromisoformat(now))

    def list_reviews(self, number: int) -> list[Review]:
        """Every review of PR `number`, oldest first."""
        with self._transaction(write=False) as conn:
            self._require_row(conn, number)
            rows = conn.execute("SELECT * FROM reviews WHERE pr = ? ORDER BY id",
                                (number,)).fetchall()
        return [Review(user=r["user"], state=ReviewState(r["state"]), commit_sha=r["commit_sha"],
                       submitted_at=datetime.fromisoformat(r["submitted_at"])) for r in rows]

    def upsert_comment(self, number: int, *, key: str, body: str) -> Comment:
        """Create the comment `key` on PR `number`, or edit it in place if it exists."""
        with self._transaction(write=True) as conn:
            self._require_row(conn, number)
            return self._upsert_comment(conn, number, key, body, self._now())

    def list_comments(self, number: int) -> list[Comment]:
        """The comments of PR `number`, oldest first."""
        with self._transaction(write=False) as conn:
            self._require_row(conn, number)
            rows = conn.execute("SELECT * FROM comments WHERE pr = ? ORDER BY id",
                                (number,)).fetchall()
        return [_comment(r) for r in rows]

    # -- helpers -----------------------------------------------------------------------------

    def _require_branches(self, head: str, base: str) -> tuple[str, str]:
        """The current (head, base) shas, if a PR from `head` into `base` makes sense now."""
        head_sha = self._repo.branch_head(head)
        if head_sha is None:
            raise ForgeError(f"head branch {head!r} does not exist in {self._repo.url}",
                             fix="push the proposal branch first, then open the pull request")
        base_sha = self._repo.branch_head(base)
        if base_sha is None:
            raise ForgeError(f"base branch {base!r} does not exist in {self._repo.url}",
                             fix="create the environment branch first")
        if self._repo.is_ancestor(head_sha, base_sha):
            raise ForgeError(f"nothing to propose: {head} ({head_sha[:12]}) is already in {base}",
                             fix=f"push the change to {head} first")
        return head_sha, base_sha

    def _check_head(self, pull: PullRequest, expected_head: str) -> None:
        current = self._repo.branch_head(pull.head_branch)
        if current is None:
            raise NotMergeableError(f"head branch {pull.head_branch} of #{pull.number} no "
                                    "longer exists", fix="propose the promotion again")
        if current != expected_head:
            raise StaleHeadError(
                f"{pull.head_branch} is at {current[:12]}, not {expected_head[:12]} that was "
                f"evaluated; #{pull.number} was not merged",
                fix="let promoter re-evaluate the new head")
        if pull.head_sha != expected_head:
            raise StaleHeadError(
                f"#{pull.number} was last updated at {pull.head_sha[:12]}, not "
                f"{expected_head[:12]}; it was not merged",
                fix="update the pull request (propose again) and re-evaluate")

    def _prepare_merge(self, number: int, *, expected_head: str, expected_base: str,
                       message: str) -> tuple[str, str] | None:
        """(base sha, merge commit) written without the lock for PR `number` as it reads
        now, or None when it cannot be merged as it stands: `merge` then decides, and says
        why, under the lock. Nothing it writes is reachable until `merge` moves the base."""
        try:
            pull = self.get_pull_request(number)
            if (pull.state is not PullRequestState.OPEN or pull.head_sha != expected_head
                    or pull.base_branch != expected_base):
                return None
            base_sha = self._repo.branch_head(pull.base_branch)
            if base_sha is None or not self._repo.is_ancestor(base_sha, pull.head_sha):
                return None
            return base_sha, self._write_merge_commit(pull, base_sha, message)
        except PromoterError:
            return None

    def _write_merge_commit(self, pull: PullRequest, base_sha: str, message: str) -> str:
        # The base is an ancestor of the head, so the head's tree is exactly the merge result.
        paths = self._repo.list_files(pull.head_sha)
        contents = self._repo.read_files([(pull.head_sha, path) for path in paths])
        files = {path: data for path, data in zip(paths, contents, strict=True)
                 if data is not None}
        merge_sha = self._repo.create_commit(files=files, parents=[base_sha, pull.head_sha],
                                             message=message, author=self._identity)
        if self._repo.tree_id(merge_sha) != self._repo.tree_id(pull.head_sha):
            raise NotMergeableError(
                f"{pull.head_branch} ({pull.head_sha[:12]}) holds executable files, symlinks or "
                "submodules, which promoter does not write; nothing was merged",
                fix="remove them from the proposal, or merge it by hand with git")
        return merge_sha

    def _full_sha(self, sha: str) -> str:
        try:
            return self._repo.commit_info(sha).sha
        except GitError as exc:
            raise ForgeError(f"no commit {sha!r} in {self._repo.url}",
                             fix="pass the sha of a commit that exists") from exc
