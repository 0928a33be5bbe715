"""The git port: what promoter needs from the GitOps repository, and nothing more.

Writes are compare-and-swap on a ref: promoter builds commit objects without touching any work
tree, then moves a branch only if it still points where promoter last saw it. Environment
branches only ever move forward (fast-forward); a proposal branch may be replaced, but only
under a lease on the sha promoter last wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    author: Signature
    authored_at: datetime
    committed_at: datetime
    """When the commit was made: for a merge commit, when the branch took the change (the
    author date of a rebased or cherry-picked commit is older)."""
    subject: str
    body: str


class GitOpsRepository(Protocol):
    """Port to the GitOps repository (local path now; a clone + push for remotes later)."""

    @property
    def url(self) -> str:
        """The repository's URL or absolute path, as recorded in `hydrator.metadata`."""
        ...

    def branch_head(self, branch: str) -> str | None:
        """The commit `branch` points at, or None if the branch does not exist."""
        ...

    def branch_heads(self) -> dict[str, str]:
        """Every branch and the commit it points at, read at one moment: for each branch,
        what `branch_head` answers. One read for a page of 150 environments, not 150."""
        ...

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The file's bytes at `commit`, or None if absent."""
        ...

    def read_files(self, wanted: Sequence[tuple[str, str]]) -> list[bytes | None]:
        """`read_file` of each (commit, path) in `wanted`, in the same order, in one read;
        GitError (and no answer) if any commit is not a commit of the repository."""
        ...

    def list_files(self, commit: str, directory: str = "") -> list[str]:
        """Relative POSIX paths of every file under `directory` at `commit`, sorted."""
        ...

    def commit_info(self, sha: str) -> CommitInfo: ...

    def create_commit(
        self, *, files: Mapping[str, bytes], parents: Sequence[str], message: str,
        author: Signature,
    ) -> str:
        """Write a commit whose tree is exactly `files` (path -> bytes) and return its sha.

        No ref moves and no work tree changes; the commit is unreachable until
        `update_branch` points a branch at it.
        """
        ...

    def update_branch(
        self, branch: str, new_sha: str, *, expected: str | None, fast_forward_only: bool,
    ) -> None:
        """Point `branch` at `new_sha` if it still points at `expected` (None: must not exist).

        Raises ConcurrentUpdateError if it moved, and GitError if `fast_forward_only` and
        `new_sha` does not descend from `expected`. Environment branches are always updated
        with `fast_forward_only=True`: promoter never rewrites their history.
        """
        ...

    def is_ancestor(self, ancestor: str, descendant: str) -> bool: ...

    def tree_id(self, commit: str) -> str:
        """The commit's tree id: equal trees mean byte-identical content."""
        ...

    def tree_of(self, files: Mapping[str, bytes]) -> str:
        """The tree id a commit of exactly `files` would have (`create_commit`'s tree), without
        writing a commit or moving a ref: comparing it with `tree_id` tells whether a commit
        holds exactly these files, without reading them back one by one."""
        ...
