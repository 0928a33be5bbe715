"""`GitTreeSource`: configuration read from one exact commit of the GitOps repository.

`propose` and `reconcile` read environments, policies and manifest templates from the protected
dry branch at a pinned commit, never from a work tree or a pull request: a proposal can then
never weaken the gate that judges it, and two reads during one promotion always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from promoter.errors import ConfigError, GitError
from promoter.gitops.port import GitOpsRepository


@dataclass(frozen=True, slots=True)
class GitTreeSource:
    """A `promoter.config.loader.ConfigSource` over the tree of `commit` in `repo`.

    Uses only the `GitOpsRepository` port, so it works over any adapter (and over fakes).
    """

    repo: GitOpsRepository
    commit: str
    """The commit read; pass a full sha (see `at_branch`) so every read sees the same tree."""
    branch: str | None = None
    """Branch `commit` was taken from, only for `describe()`."""

    @classmethod
    def at_branch(cls, repo: GitOpsRepository, branch: str) -> GitTreeSource:
        """Pin the source to `branch`'s current head. Raises GitError if there is no branch."""
        head = repo.branch_head(branch)
        if head is None:
            raise GitError(f"branch {branch!r} does not exist in {repo.url}",
                           fix="push the dry source to it, or set repository.dryBranch in "
                           "promoter.yaml")
        return cls(repo, head, branch)

    def read_text(self, path: str) -> str | None:
        """The UTF-8 text of `path` at the commit, or None if there is no such file."""
        data = self.repo.read_file(self.commit, path)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} ({self.describe()})",
                              f"not UTF-8 text ({exc.reason})") from exc

    def list_files(self, directory: str) -> list[str]:
        """Files under `directory`, relative to the repository root, sorted; [] if absent."""
        return self.repo.list_files(self.commit, directory.strip("/"))

    def describe(self) -> str:
        """`<branch>@<short sha>` (e.g. `main@1a2b3c4`), or the short sha alone."""
        short = self.commit[:7]
        return f"{self.branch}@{short}" if self.branch else short
