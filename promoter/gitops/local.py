"""`LocalGitRepository`: the `GitOpsRepository` port over a repository on the local disk.

This is the only module that imports GitPython (`git`, and `gitdb` underneath it). It never
touches a work tree or an index: blobs, trees and commits are written straight into the object
database, and branches move only through `git update-ref <ref> <new> <old>`, an atomic
compare-and-swap done by git itself, so two promoter processes (or a person pushing at the same
moment) can never overwrite each other's work.

Reads run the git command line (`rev-parse`, `cat-file`, `ls-tree`, `merge-base`) in a fresh
process per call, and reads of many things at once (`branch_heads`, `read_files`) one process
for all of them (`batch_reads`). A fresh process buys three things: every read sees the refs
and objects as they are on disk now, instances can be shared between threads, and no
long-lived `git cat-file --batch` processes are left behind. What is read about an object
named by its full id (a commit's parents, a file at a commit, ancestry, a tree id) is kept in
an `ObjectCache`: such an object never changes, so the cache cannot go stale; branch names are
read from git every time.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from promoter.errors import ConcurrentUpdateError, GitError, RepositoryNotFoundError
from promoter.gitops.batch_reads import cat_file_batch, read_branch_refs
from promoter.gitops.object_cache import ObjectCache, is_object_id
from promoter.gitops.paths import Tree as _Tree
from promoter.gitops.paths import build_tree as _build_tree
from promoter.gitops.paths import check_rev as _check_rev
from promoter.gitops.paths import object_id as _object_id
from promoter.gitops.paths import split_path as _split_path
from promoter.gitops.port import CommitInfo, Signature

log = logging.getLogger(__name__)

FILE_MODE = b"100644"
"""Every file promoter writes is a regular, non-executable file."""
_TREE_MODE = b"40000"  # git writes tree modes without the leading zero
_COMMIT_FORMAT = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cI%x00%s%x00%b"

_CACHED_COMMITS = 8192
_CACHED_FILES = 4096
_MAX_CACHED_FILE = 256 * 1024
"""Larger files are read again each time: the cache holds metadata and manifests."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LocalGitRepository:
    """A `GitOpsRepository` over a bare or non-bare repository at `path`.

    Contract: `path` must be the repository itself (its work tree, or the git dir of a bare
    repository), not a directory inside one. Commits are dated by `clock` (default: now, UTC);
    tests pass a fixed clock to get reproducible commit ids.

    A branch that is checked out in a work tree of this repository is never moved: moving it
    would leave that work tree out of step with its HEAD. Promoter never checks out environment
    branches, so this only ever refuses a mistake.
    """

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        import git  # lazily: GitPython is slow to import and only this adapter needs it

        self._clock = clock
        try:
            self._repo = git.Repo(path)
        except (git.NoSuchPathError, git.InvalidGitRepositoryError) as exc:
            raise RepositoryNotFoundError(
                f"{path} is not a git repository",
                fix=f"create one with `git init {path}`, or point repository.url in "
                "promoter.yaml at an existing repository (its top directory)",
            ) from exc
        self._path = Path(self._repo.working_tree_dir or self._repo.git_dir).resolve()
        # Keyed by full object ids only (see the module doc): nothing here can go stale.
        self._commits: ObjectCache[str, CommitInfo] = ObjectCache(_CACHED_COMMITS)
        self._ancestry: ObjectCache[tuple[str, str], bool] = ObjectCache(_CACHED_COMMITS)
        self._trees: ObjectCache[str, str] = ObjectCache(_CACHED_COMMITS)
        self._files: ObjectCache[tuple[str, str], bytes | None] = ObjectCache(_CACHED_FILES)

    @property
    def url(self) -> str:
        """The repository's absolute path (its work tree, or the git dir if bare)."""
        return str(self._path)

    @property
    def git_dir(self) -> Path:
        """The repository's git dir (`.git` of a non-bare repository), e.g. for tool state."""
        return Path(self._repo.git_dir).resolve()

    def __repr__(self) -> str:
        return f"LocalGitRepository({self.url!r})"

    # -- reads -------------------------------------------------------------------------------

    def branch_head(self, branch: str) -> str | None:
        """The commit `branch` points at, or None if there is no such branch."""
        _check_rev(branch)
        status, out, _ = self._git(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False,
        )
        return out.strip() if status == 0 else None

    def branch_heads(self) -> dict[str, str]:
        """Every branch and the commit it points at, read at one moment (one git process)."""
        refs = read_branch_refs(self.git_dir)
        heads = dict(refs.commits)
        for branch in refs.unpeeled:  # rare: git peels these exactly as `branch_head` does
            head = self.branch_head(branch)
            if head is not None:
                heads[branch] = head
        return heads

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The bytes of the file `path` at `commit`; None if absent or if it is a directory.

        Raises GitError if `commit` is not a commit of this repository.
        """
        return self.read_files([(commit, path)])[0]

    def read_files(self, wanted: Sequence[tuple[str, str]]) -> list[bytes | None]:
        """`read_file` of each (commit, path) in `wanted`, in order, in one git process.

        Raises GitError (and returns nothing) if any path is invalid or any commit is not a
        commit of this repository.
        """
        for commit, path in wanted:
            _split_path(path)
            _check_rev(commit)
        missing = object()
        answers: list[object] = [self._files.get((c, p), missing) if is_object_id(c)
                                 else missing for c, p in wanted]
        todo = [i for i, answer in enumerate(answers) if answer is missing]
        found = cat_file_batch(self.git_dir, [f"{wanted[i][0]}:{wanted[i][1]}" for i in todo])
        for i, obj in zip(todo, found, strict=True):
            commit, path = wanted[i]
            if obj is None:
                self._resolve_commit(commit)  # GitError if the commit is the problem
            data = obj.data if obj is not None and obj.kind == "blob" else None
            if is_object_id(commit) and (data is None or len(data) <= _MAX_CACHED_FILE):
                self._files.put((commit, path), data)
            answers[i] = data
        return [a if isinstance(a, bytes) else None for a in answers]

    def list_files(self, commit: str, directory: str = "") -> list[str]:
        """Every file under `directory` at `commit`, sorted.

        Paths are POSIX and relative to the repository root (they start with `directory/`), so
        they can be passed straight back to `read_file`. A directory that does not exist (or is
        a file) has no files: [].
        """
        directory = directory.strip("/")
        prefix = f"{directory}/" if directory else ""
        if directory:
            _split_path(directory)
        sha = self._resolve_commit(commit)
        status, out, _ = self._git(
            "ls-tree", "-r", "-z", f"{sha}:{directory}" if directory else f"{sha}^{{tree}}",
            check=False,
        )
        if status != 0:
            return []  # `commit` is valid, so only `directory` can be missing (or a file)
        files = []
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, name = entry.split("\t", 1)
            if meta.split(" ")[1] == "blob":  # skip submodules (gitlinks): not files here
                files.append(prefix + name)
        return sorted(files)

    def commit_info(self, sha: str) -> CommitInfo:
        """Parents, author, date and message of the commit `sha` (GitError if there is none)."""
        cached = self._commits.get(sha, None)
        if cached is not None:
            return cached
        full = self._resolve_commit(sha)
        _, out, _ = self._git("log", "-1", "--no-show-signature", f"--format={_COMMIT_FORMAT}",
                              full, "--")
        full, parents, name, email, date, committed, subject, body = out.split("\0", 7)
        return self._commits.put(full, CommitInfo(
            sha=full,
            parents=tuple(parents.split()),
            author=Signature(name=name, email=email),
            authored_at=datetime.fromisoformat(date),
            committed_at=datetime.fromisoformat(committed),
            subject=subject,
            body=body.rstrip("\n"),
        ))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True if `ancestor` is `descendant` or one of its ancestors."""
        _check_rev(ancestor)
        _check_rev(descendant)
        known = self._ancestry.get((ancestor, descendant), None)
        if known is not None:
            return known
        status, _, err = self._git("merge-base", "--is-ancestor", ancestor, descendant,
                                   check=False)
        if status in (0, 1):
            if is_object_id(ancestor) and is_object_id(descendant):
                self._ancestry.put((ancestor, descendant), status == 0)
            return status == 0
        self._resolve_commit(ancestor)  # name the missing commit if that is the problem
        self._resolve_commit(descendant)
        raise GitError(f"cannot tell whether {ancestor[:12]} is an ancestor of "
                       f"{descendant[:12]} in {self.url}: {err.strip()}")

    def tree_id(self, commit: str) -> str:
        """The id of the commit's tree: equal ids mean byte-identical content."""
        sha = self._resolve_commit(commit)
        tree = self._trees.get(sha, None)
        if tree is None:
            _, out, _ = self._git("rev-parse", "--verify", f"{sha}^{{tree}}")
            tree = self._trees.put(sha, out.strip())
        return tree

    def tree_of(self, files: Mapping[str, bytes]) -> str:
        # Hashed in memory, exactly as git names objects: nothing is written, no process runs.
        return self._write_tree(_build_tree(files), store=_object_id).hex()

    # -- writes ------------------------------------------------------------------------------

    def create_commit(
        self, *, files: Mapping[str, bytes], parents: Sequence[str], message: str,
        author: Signature,
    ) -> str:
        """Write a commit whose tree is exactly `files` and return its sha; no ref moves.

        Directories become nested trees and every file gets mode 100644, so the same files
        always give the same tree id. Author and committer are `author`, dated now (UTC).
        Raises GitError for an invalid path (absolute, `..`, `.git`, a file that is also a
        directory) or a parent that is not a commit.
        """
        parent_shas = [self._resolve_commit(p) for p in parents]
        if len(set(parent_shas)) != len(parent_shas):
            raise GitError(f"duplicate parents in {parents!r}")
        for value in (author.name, author.email):
            if any(c in value for c in "<>\n\0"):
                raise GitError(f"invalid commit author {author.name!r} <{author.email}>",
                               fix="names and emails cannot contain '<', '>' or newlines")
        if "\0" in message:
            raise GitError("a commit message cannot contain NUL characters")
        tree = _build_tree(files)
        try:
            tree_sha = self._write_tree(tree).hex()
            seconds = int(self._clock().timestamp())
            ident = f"{author.name} <{author.email}> {seconds} +0000"
            lines = [f"tree {tree_sha}", *(f"parent {p}" for p in parent_shas),
                     f"author {ident}", f"committer {ident}", "",
                     message if message.endswith("\n") else message + "\n"]
            return self._store("commit", "\n".join(lines).encode()).hex()
        except OSError as exc:
            raise GitError(f"cannot write objects into {self.git_dir}: {exc}") from exc

    def update_branch(
        self, branch: str, new_sha: str, *, expected: str | None, fast_forward_only: bool,
    ) -> None:
        """Point `branch` at `new_sha` if it still points at `expected` (None: must not exist).

        The check and the move are one atomic `git update-ref`. Raises ConcurrentUpdateError
        if the branch is not at `expected` (nothing is changed), and GitError if
        `fast_forward_only` and `new_sha` does not descend from `expected`, or if the branch
        is checked out in a work tree.
        """
        ref = self._branch_ref(branch)
        new = self._resolve_commit(new_sha)
        old = self._resolve_commit(expected) if expected is not None else None
        if ref in self._checked_out_refs():
            raise GitError(
                f"refusing to move {branch}: it is checked out in a work tree of {self.url}",
                fix="check out another branch there (e.g. `git switch --detach`), or let "
                "promoter own this branch and never check it out",
            )
        if (fast_forward_only and old is not None and old != new
                and not self.is_ancestor(old, new)):
            raise GitError(
                f"refusing to move {branch} from {old[:12]} to {new[:12]}: not a fast-forward",
                fix=f"{branch} only moves forward; build the new commit on top of its "
                "current head",
            )
        zero = "0" * len(new)  # "must not exist yet", in git's update-ref protocol
        status, _, err = self._git("update-ref", "-m", f"promoter: move {branch}", ref, new,
                                   old or zero, check=False)
        if status == 0:
            log.debug("moved %s from %s to %s", branch, old, new)
            return
        current = self.branch_head(branch)
        if current != old or ".lock" in err:
            was = f"at {old[:12]}" if old else "absent"
            now = f"at {current[:12]}" if current else "absent"
            raise ConcurrentUpdateError(
                f"{branch} moved while promoter was updating it (expected {was}, now {now}); "
                "nothing was overwritten",
                fix="run the command again: it starts from the branch as it is now",
            )
        raise GitError(f"cannot move {branch} to {new[:12]} in {self.url}: {err.strip()}")

    # -- helpers -----------------------------------------------------------------------------

    def _write_tree(self, tree: _Tree,
                    store: Callable[[str, bytes], bytes] | None = None) -> bytes:
        """Store `tree` (and everything under it) and return its binary sha; `store` (default:
        the object database) writes one object and returns its id.

        Entries are sorted the way git sorts them (a directory sorts as if its name ended in
        `/`), so `git fsck` accepts the tree and equal content always gives an equal id.
        """
        put = store or self._store
        entries: list[tuple[bytes, bytes, bytes, bytes]] = []
        for name, child in tree.items():
            raw = name.encode()
            if isinstance(child, dict):
                entries.append((raw + b"/", _TREE_MODE, raw, self._write_tree(child, put)))
            else:
                entries.append((raw, FILE_MODE, raw, put("blob", child)))
        entries.sort()
        data = b"".join(mode + b" " + raw + b"\0" + sha for _, mode, raw, sha in entries)
        return put("tree", data)

    def _store(self, kind: str, data: bytes) -> bytes:
        from gitdb import IStream  # type: ignore[import-untyped]  # gitdb ships no types

        return bytes(self._repo.odb.store(IStream(kind, len(data), io.BytesIO(data))).binsha)

    def _resolve_commit(self, rev: str) -> str:
        _check_rev(rev)
        if self._commits.get(rev, None) is not None:
            return rev  # a full id already read as a commit
        status, out, _ = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}",
                                   check=False)
        if status != 0:
            raise GitError(f"{rev!r} is not a commit in {self.url}",
                           fix="fetch it, or check the sha or branch name")
        return out.strip()

    def _branch_ref(self, branch: str) -> str:
        _check_rev(branch)
        ref = f"refs/heads/{branch}"
        status, _, _ = self._git("check-ref-format", ref, check=False)
        if status != 0:
            raise GitError(f"{branch!r} is not a valid branch name",
                           fix="see `git help check-ref-format` for the rules")
        return ref

    def _checked_out_refs(self) -> set[str]:
        _, out, _ = self._git("worktree", "list", "--porcelain")
        return {line.removeprefix("branch ") for line in out.splitlines()
                if line.startswith("branch ")}

    def _git(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        """Run `git <args>` in the repository; return (status, stdout, stderr).

        With `check`, a non-zero status raises GitError naming the command and repository.
        """
        status, out, err = self._execute(args, stdout_as_string=True)
        if check and status != 0:
            raise GitError(f"`git {' '.join(args)}` failed in {self.url}: {err.strip()}")
        return status, out, err

    def _git_bytes(self, *args: str) -> bytes:
        status, out, err = self._execute(args, stdout_as_string=False)
        if status != 0:
            raise GitError(f"`git {' '.join(args)}` failed in {self.url}: {err!s}")
        return bytes(out)

    def _execute(self, args: Sequence[str], *, stdout_as_string: bool) -> tuple[int, Any, str]:
        import git

        command, *rest = args
        run = getattr(self._repo.git, command.replace("-", "_"))
        try:
            status, out, err = run(
                *rest, with_extended_output=True, with_exceptions=False,
                stdout_as_string=stdout_as_string, strip_newline_in_stdout=False,
            )
        except (git.GitError, OSError) as exc:  # git missing, or could not be started
            raise GitError(f"cannot run `git {command}` in {self.url}: {exc}",
                           fix="install git and make sure it is on PATH") from exc
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        return int(status), out, str(err)
