"""Many git reads in one git process: every branch head (`git for-each-ref`) and many blobs
(`git cat-file --batch`), for `LocalGitRepository`.

One process per call, not a long-lived `cat-file --batch` beside the server: each call sees
the refs and objects as they are on disk now, nothing is shared between threads, and no
process is left behind. What the dashboard saves is the per-environment process start (a few
milliseconds each, far more on a loaded machine), not the reading.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from promoter.errors import GitError

_TIMEOUT_S = 120
_HEADS_FORMAT = "%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)%00%(refname)"


@dataclass(frozen=True, slots=True)
class BranchRefs:
    """Every branch read in one `git for-each-ref`."""

    commits: dict[str, str]
    """Branch name -> the commit it points at (peeled through one annotated tag)."""
    unpeeled: tuple[str, ...]
    """Branches pointing at something else (a tree, a tag of a tag): the caller asks git
    about each on its own, so the answer is `branch_head`'s."""


@dataclass(frozen=True, slots=True)
class BatchObject:
    """One object `git cat-file --batch` found."""

    kind: str
    """blob, tree, commit or tag."""
    data: bytes


def read_branch_refs(git_dir: Path) -> BranchRefs:
    """Every branch of the repository at `git_dir` and its commit, at one moment."""
    out = _run(git_dir, ["for-each-ref", f"--format={_HEADS_FORMAT}", "refs/heads/"], b"")
    commits: dict[str, str] = {}
    unpeeled: list[str] = []
    for line in out.decode("utf-8", errors="surrogateescape").splitlines():
        if not line:
            continue
        sha, kind, peeled, peeled_kind, ref = line.split("\0", 4)
        name = ref.removeprefix("refs/heads/")
        if kind == "commit":
            commits[name] = sha
        elif kind == "tag" and peeled_kind == "commit":
            commits[name] = peeled
        else:
            unpeeled.append(name)
    return BranchRefs(commits=commits, unpeeled=tuple(unpeeled))


def cat_file_batch(git_dir: Path, names: Sequence[str]) -> list[BatchObject | None]:
    """For each object name (`<commit>:<path>`, a sha, ...), what git finds, or None when it
    finds nothing (a missing path or object, or an ambiguous name). Names must not contain
    newlines (the caller checks them)."""
    if not names:
        return []
    request = "".join(f"{name}\n" for name in names).encode("utf-8", errors="surrogateescape")
    out = _run(git_dir, ["cat-file", "--batch"], request)
    found: list[BatchObject | None] = []
    pos = 0
    for name in names:
        end = out.find(b"\n", pos)
        if end < 0:
            raise GitError(f"`git cat-file --batch` in {git_dir} stopped before {name!r}")
        header = out[pos:end]
        pos = end + 1
        # "<name> missing" (or "ambiguous"); a found object is "<id> <type> <size>", whose
        # last word is a number, so a name that ends in " missing" cannot be mistaken.
        if header.endswith((b" missing", b" ambiguous")):
            found.append(None)
            continue
        _, kind, size = header.rsplit(b" ", 2)
        length = int(size)
        found.append(BatchObject(kind=kind.decode(), data=out[pos:pos + length]))
        pos += length + 1  # the object's bytes, then a newline
    return found


def _run(git_dir: Path, args: list[str], stdin: bytes) -> bytes:
    command = ["git", f"--git-dir={git_dir}", *args]
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, check=False,
                                timeout=_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"cannot run `git {args[0]}` in {git_dir}: {exc}",
                       fix="install git and make sure it is on PATH") from exc
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip()
        raise GitError(f"`git {args[0]}` failed in {git_dir}: {err}")
    return result.stdout
