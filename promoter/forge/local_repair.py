"""Repairing what a crash in `LocalForge.merge` can leave: a merged head recorded as open.

`merge` moves the base branch and only then records the PR as merged, in one transaction; a
crash in between leaves an open PR whose head is already in its base. Every operation that loads
a pull request repairs that state first (`_settle`): an open PR whose recorded head is reachable
from its base branch is recorded as merged, with the first-parent commit of the base that
brought the head in as its merge sha. That is also what GitHub does when someone merges a PR's
head by hand, so the repair needs no journal and is idempotent. Kept apart from the operations
because it is the one place that reads git history to decide a PR's state.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping

from promoter.domain.pull_requests import PullRequestState
from promoter.errors import GitError
from promoter.forge.local_db import ForgeDatabase
from promoter.gitops.port import GitOpsRepository

log = logging.getLogger(__name__)

_MAX_MERGE_SEARCH = 1000
"""First-parent commits of a base branch searched for the one that merged a PR's head."""


class MergeRepair(ForgeDatabase):
    """Mixin of `LocalForge`: finds and records merges of the PRs' heads into `_repo`."""

    _repo: GitOpsRepository

    def _settle(self, conn: sqlite3.Connection, row: sqlite3.Row) -> sqlite3.Row:
        """Record an open PR whose head is already in its base as merged (see module doc).

        `conn` must be in a write transaction; returns the row as it is afterwards.
        """
        if row["state"] != PullRequestState.OPEN:
            return row
        merge_sha = self._merged_by(row["head_sha"], row["base"])
        if merge_sha is None:
            return row
        self._record_found_merge(conn, int(row["number"]), row["head_sha"], merge_sha)
        return self._require_row(conn, int(row["number"]))

    def _settle_read(self, rows: list[sqlite3.Row]) -> list[sqlite3.Row]:
        """`_settle` for rows from a read transaction: writes only if a PR needs repair.

        For several open PRs, every base branch is read at once (`branch_heads`)."""
        open_rows = [r for r in rows if r["state"] == PullRequestState.OPEN]
        heads = self._repo.branch_heads() if len(open_rows) > 1 else None
        found = {int(r["number"]): (r["head_sha"], sha) for r in open_rows
                 if (sha := self._merged_by(r["head_sha"], r["base"], heads=heads))
                 is not None}
        if not found:
            return rows
        with self._transaction(write=True) as conn:
            for number, (head_sha, merge_sha) in found.items():
                self._record_found_merge(conn, number, head_sha, merge_sha)
            return [self._require_row(conn, int(r["number"])) for r in rows]

    def _record_found_merge(self, conn: sqlite3.Connection, number: int, head_sha: str,
                            merge_sha: str) -> None:
        changed = conn.execute(
            "UPDATE pull_requests SET state = ?, merge_sha = ?, updated_at = ?"
            " WHERE number = ? AND state = 'open' AND head_sha = ?",
            (PullRequestState.MERGED.value, merge_sha, self._now(), number, head_sha),
        ).rowcount
        if changed:
            log.warning("pull request #%d: its head %s is already in its base (merged as %s); "
                        "recorded it as merged", number, head_sha[:12], merge_sha[:12])

    def _merged_by(self, head_sha: str, base: str, *,
                   heads: Mapping[str, str] | None = None) -> str | None:
        """The first-parent commit of `base` that brought `head_sha` in; None if it is not in.

        Walks back from the base's head while the first parent still contains `head_sha`; for a
        merge promoter made, that is the base's head itself (one step). `heads`: every
        branch's head, read already (`branch_heads`).
        """
        base_sha = heads.get(base) if heads is not None else self._repo.branch_head(base)
        try:
            if base_sha is None or not self._repo.is_ancestor(head_sha, base_sha):
                return None
            commit = base_sha
            for _ in range(_MAX_MERGE_SEARCH):
                parents = self._repo.commit_info(commit).parents
                if not parents or not self._repo.is_ancestor(head_sha, parents[0]):
                    return commit
                commit = parents[0]
        except GitError as exc:  # e.g. the recorded head was garbage-collected: not merged
            log.warning("cannot tell whether %s is in %s: %s", head_sha[:12], base, exc)
            return None
        return base_sha
