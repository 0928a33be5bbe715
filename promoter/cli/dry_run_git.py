"""The git side of `reconcile --dry-run`: a GitOpsRepository that reads the real repository
and keeps its own writes in memory.

Commits the dry run would write (a re-proposal, a rollback, a merge) are held here, with the
sha git would name them by, and every read answers for them as the repository would after
the write: so what follows a new commit (its gates, its merge) is judged too. Nothing
reaches the repository: no object, no ref.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from promoter.errors import ConcurrentUpdateError, GitError
from promoter.gitops.port import CommitInfo, GitOpsRepository, Signature


@dataclass(frozen=True, slots=True)
class Write:
    """One write the real command would have made."""

    operation: str
    """create_commit, update_branch, open_pull_request, update_pull_request, set_status,
    upsert_comment, merge, close, submit_review, publish_check_run or request_reconcile."""
    target: str
    """What it would write to: `PR #7`, a commit sha, a branch, an environment."""
    detail: str

    def describe(self) -> str:
        return f"{self.operation} {self.target}: {self.detail}"

    def document(self) -> dict[str, str]:
        return {"operation": self.operation, "target": self.target, "detail": self.detail}


@dataclass
class Recorder:
    """The writes of one dry run, in the order the real command would make them."""

    writes: list[Write] = field(default_factory=list)

    def add(self, operation: str, target: str, detail: str) -> None:
        self.writes.append(Write(operation, target, detail))


@dataclass(frozen=True, slots=True)
class _PlannedCommit:
    files: dict[str, bytes]
    tree: str
    info: CommitInfo


class DryRunRepository:
    """`repo` for reading; commits and branch moves kept in this object (see the module doc).

    Writes are checked as the real repository checks them (a parent must be a commit, a
    branch moves only from where the caller expects it, environment branches only forward),
    so a write the real run would have refused is refused here too.
    """

    def __init__(self, repo: GitOpsRepository, recorder: Recorder, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._repo = repo
        self._recorder = recorder
        self._clock = clock
        self._commits: dict[str, _PlannedCommit] = {}
        self._refs: dict[str, str] = {}

    def is_planned(self, sha: str) -> bool:
        """True if `sha` is a commit only this dry run holds."""
        return sha in self._commits

    @property
    def url(self) -> str:
        return self._repo.url

    def branch_head(self, branch: str) -> str | None:
        return self._refs[branch] if branch in self._refs else self._repo.branch_head(branch)

    def branch_heads(self) -> dict[str, str]:
        return {**self._repo.branch_heads(), **self._refs}

    def read_file(self, commit: str, path: str) -> bytes | None:
        planned = self._commits.get(commit)
        return planned.files.get(path) if planned else self._repo.read_file(commit, path)

    def read_files(self, wanted: Sequence[tuple[str, str]]) -> list[bytes | None]:
        real = [(c, p) for c, p in wanted if c not in self._commits]
        answers = iter(self._repo.read_files(real))
        return [self._commits[c].files.get(p) if c in self._commits else next(answers)
                for c, p in wanted]

    def list_files(self, commit: str, directory: str = "") -> list[str]:
        planned = self._commits.get(commit)
        if planned is None:
            return self._repo.list_files(commit, directory)
        directory = directory.strip("/")
        prefix = f"{directory}/" if directory else ""
        return sorted(p for p in planned.files if p.startswith(prefix))

    def commit_info(self, sha: str) -> CommitInfo:
        planned = self._commits.get(sha)
        return planned.info if planned else self._repo.commit_info(sha)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if ancestor == descendant:
            return True
        planned = self._commits.get(descendant)
        if planned is not None:
            return any(self.is_ancestor(ancestor, p) for p in planned.info.parents)
        if ancestor in self._commits:
            return False  # a real commit never descends from one that was not written
        return self._repo.is_ancestor(ancestor, descendant)

    def tree_id(self, commit: str) -> str:
        planned = self._commits.get(commit)
        return planned.tree if planned else self._repo.tree_id(commit)

    def tree_of(self, files: Mapping[str, bytes]) -> str:
        return self._repo.tree_of(files)  # hashes only: nothing is written

    def create_commit(self, *, files: Mapping[str, bytes], parents: Sequence[str],
                      message: str, author: Signature) -> str:
        sha = self.plan_commit(files=files, parents=parents, message=message, author=author)
        subject = message.splitlines()[0] if message else ""
        on = ", ".join(p[:12] for p in parents) or "no parent"
        self._recorder.add("create_commit", sha[:12],
                           f"{subject} ({len(files)} files, on {on})")
        return sha

    def plan_commit(self, *, files: Mapping[str, bytes], parents: Sequence[str],
                    message: str, author: Signature) -> str:
        """Hold a commit of exactly `files` (unrecorded: a merge records itself) and return
        the sha git would give it if it were written now."""
        for parent in parents:
            self.commit_info(parent)  # raises GitError for what is not a commit
        if len(set(parents)) != len(parents):
            raise GitError(f"duplicate parents in {list(parents)!r}")
        tree = self._repo.tree_of(files)
        now = self._clock()
        ident = f"{author.name} <{author.email}> {int(now.timestamp())} +0000"
        body = "".join([f"tree {tree}\n", *(f"parent {p}\n" for p in parents),
                        f"author {ident}\ncommitter {ident}\n\n{message}"]).encode()
        sha = hashlib.sha1(b"commit %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
        subject, _, rest = message.partition("\n")
        self._commits[sha] = _PlannedCommit(
            files=dict(files), tree=tree,
            info=CommitInfo(sha=sha, parents=tuple(parents), author=author, authored_at=now,
                            committed_at=now, subject=subject, body=rest.strip("\n")))
        return sha

    def update_branch(self, branch: str, new_sha: str, *, expected: str | None,
                      fast_forward_only: bool) -> None:
        self.move_branch(branch, new_sha, expected=expected,
                         fast_forward_only=fast_forward_only)
        was = expected[:12] if expected else "nothing (a new branch)"
        self._recorder.add("update_branch", branch, f"{was} -> {new_sha[:12]}")

    def move_branch(self, branch: str, new_sha: str, *, expected: str | None,
                    fast_forward_only: bool) -> None:
        """Move `branch` here only, as `update_branch` would, unrecorded."""
        current = self.branch_head(branch)
        if current != expected:
            raise ConcurrentUpdateError(
                f"{branch} is at {(current or 'nothing')[:12]}, not "
                f"{(expected or 'nothing')[:12]}; nothing was overwritten")
        if fast_forward_only and expected is not None and not self.is_ancestor(expected,
                                                                              new_sha):
            raise GitError(f"{branch}: {new_sha[:12]} does not descend from {expected[:12]}")
        self.commit_info(new_sha)
        self._refs[branch] = new_sha
