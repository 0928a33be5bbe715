"""Harnesses for the forge contract suite: what the tests need that the `Forge` port lacks.

The suite (`test_forge_contract.py`) talks to the forge only through the `Forge` port. To set
up a scenario it also has to push commits, move branches behind the forge's back and read
branches independently of the forge; each forge implementation gets a `ForgeHarness` that knows
how to do that for it. `GitHarness` serves every forge whose branches live in a local git
repository (`LocalForge`, bare or wrapped for metrics); `GitHubHarness` pushes to the fake
GitHub server's repository (the same local repository, served over the GitHub API by
tests/github) and submits reviews on the fake, as people do on github.com.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from promoter.domain.pull_requests import ReviewState
from promoter.forge.base import Forge, ReviewRecorder
from promoter.gitops.port import GitOpsRepository
from tests.fixtures.git import TEST_AUTHOR, push_commit, run_git

if TYPE_CHECKING:
    from tests.github.fake_server import FakeGitHub


class ForgeHarness(Protocol):
    forge: Forge
    recorder: ReviewRecorder | None
    """The forge as a `ReviewRecorder`, if it records reviews itself (not GitHub)."""

    def push(self, branch: str, files: Mapping[str, bytes], *, onto: str | None = None) -> str:
        """Commit `files` over the tree of `onto` (default: the branch) and move `branch`
        there, as a person pushing would (even rewriting it); return the new sha."""
        ...

    def merge_by_hand(self, base: str, head_sha: str) -> str:
        """Merge `head_sha` into `base` without the forge (a person with git); return it."""
        ...

    def head(self, branch: str) -> str | None:
        """The branch's commit, read without the forge (`git rev-parse`)."""
        ...

    def parents(self, sha: str) -> list[str]:
        ...

    def tree(self, sha: str) -> str:
        ...

    def review(self, number: int, *, user: str, state: ReviewState) -> None:
        """A person reviews PR `number` on its current head."""
        ...


@dataclass
class GitHarness:
    """Harness for forges over a local repository: writes go through the port, checks
    through the git command line."""

    forge: Forge
    recorder: ReviewRecorder | None
    repo: GitOpsRepository
    path: Path

    def push(self, branch: str, files: Mapping[str, bytes], *, onto: str | None = None) -> str:
        return push_commit(self.repo, branch, files, onto=onto)

    def merge_by_hand(self, base: str, head_sha: str) -> str:
        files = {p: self.repo.read_file(head_sha, p) or b"" for p in self.repo.list_files(head_sha)}
        old = self.repo.branch_head(base)
        assert old is not None
        sha = self.repo.create_commit(files=files, parents=[old, head_sha],
                                      message="Merge by hand", author=TEST_AUTHOR)
        self.repo.update_branch(base, sha, expected=old, fast_forward_only=True)
        return sha

    def head(self, branch: str) -> str | None:
        out = run_git(self.path, "for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}")
        return out or None

    def parents(self, sha: str) -> list[str]:
        return run_git(self.path, "log", "-1", "--format=%P", sha).split()

    def tree(self, sha: str) -> str:
        return run_git(self.path, "rev-parse", f"{sha}^{{tree}}")

    def review(self, number: int, *, user: str, state: ReviewState) -> None:
        assert self.recorder is not None
        self.recorder.submit_review(number, user=user, state=state)


@dataclass
class GitHubHarness(GitHarness):
    """Harness for `GitHubForge` against the fake GitHub API: branches are the fake's real
    repository (a push is a ref update there, as a `git push` would be); reviews are
    submitted on the fake, as a person does on github.com."""

    fake: FakeGitHub | None = None

    def review(self, number: int, *, user: str, state: ReviewState) -> None:
        assert self.fake is not None
        self.fake.add_review(number, user=user, state=ReviewState(state).value)
