"""`RemoteGitRepository`: the `GitOpsRepository` port over a remote repository (HTTPS, or any
URL git can push to), through a local bare mirror.

Reads and commit writing happen in the mirror (a `LocalGitRepository`), which is fetched when
the object is created and on `refresh()`. Branches move on the remote first, by `git push`,
and only then in the mirror:
- a proposal branch (`*-next`, or any update with `fast_forward_only=False`) is pushed with
  `--force-with-lease=<ref>:<expected>`: it replaces the branch only if the remote still holds
  the commit promoter last wrote, so a person's push to `-next` is never silently lost;
- an environment branch (`fast_forward_only=True`) is pushed plainly, never forced: git itself
  refuses anything that is not a fast-forward, so no deployed history can be rewritten.
A rejected push raises ConcurrentUpdateError and changes nothing; the next run starts from
the remote as it is then.

Credentials never appear in a URL, an argv or a log line: git asks `GIT_ASKPASS`, a small script
(written without any secret) that prints the user name or the password from environment
variables set only for that one git process. `credentials` is called for every push or fetch,
so an App installation token that was refreshed is used as soon as it is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from promoter.errors import ConcurrentUpdateError, GitError
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import CommitInfo, Signature

log = logging.getLogger(__name__)

Credentials = Callable[[], tuple[str, str]]
"""Returns (user name, password or token) for the remote; called for every fetch and push."""

_ASKPASS = """#!/bin/sh
# Written by promoter: answers git's credential prompts from the environment of this one git
# process. It holds no secret itself.
case "$1" in
  Username*) printf '%s\\n' "$PROMOTER_GIT_USERNAME" ;;
  *) printf '%s\\n' "$PROMOTER_GIT_PASSWORD" ;;
esac
"""
PULL_HEADS = "refs/pull/*/head"
"""Where GitHub keeps each pull request's head commit, open or closed."""
_REJECTED = ("stale info", "fetch first", "non-fast-forward", "rejected", "[remote rejected]")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RemoteGitRepository:
    """A `GitOpsRepository` whose branches live at `url`, mirrored in `mirror_dir`.

    `mirror_dir` is created (a bare repository) if missing and fetched now. `url` must carry no
    credentials; pass `credentials` instead.
    """

    def __init__(self, url: str, mirror_dir: Path, *, credentials: Credentials | None = None,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        if "@" in url.split("://", 1)[-1].split("/", 1)[0] and "://" in url:
            raise GitError("the repository URL carries credentials",
                           fix="remove them from the URL; configure forge.github.auth instead")
        self._url = url
        self._mirror_dir = Path(mirror_dir)
        self._credentials = credentials
        if not (self._mirror_dir / "HEAD").exists():
            self._mirror_dir.mkdir(parents=True, exist_ok=True)
            self._run(["init", "--quiet", "--bare", str(self._mirror_dir)], cwd=None)
        self._local = LocalGitRepository(self._mirror_dir, clock=clock)
        self.refresh()

    @property
    def url(self) -> str:
        return self._url

    @property
    def mirror(self) -> LocalGitRepository:
        return self._local

    def __repr__(self) -> str:
        return f"RemoteGitRepository({self._url!r}, mirror={str(self._mirror_dir)!r})"

    def refresh(self) -> None:
        """Fetch every branch of the remote into the mirror (pruning deleted ones), and the
        head of every pull request GitHub keeps (`refs/pull/<n>/head`; a remote without them
        fetches none).

        Why the pull heads: a closed proposal is judged by its recorded head commit
        (`PromotionService.closed_proposal`), and once `<env>-next` is deleted or pushed over,
        no branch holds that commit any more. GitHub keeps `refs/pull/<n>/head` where the PR
        was when it closed, so the commit stays readable here; without it, discovery would
        take a closed proposal for none and propose the version again."""
        self._run(["fetch", "--quiet", "--prune", "--no-tags", self._url,
                   "+refs/heads/*:refs/heads/*", f"+{PULL_HEADS}:{PULL_HEADS}"])

    # -- reads and commit writes: the mirror -------------------------------------------------

    def branch_head(self, branch: str) -> str | None:
        return self._local.branch_head(branch)

    def branch_heads(self) -> dict[str, str]:
        return self._local.branch_heads()

    def read_file(self, commit: str, path: str) -> bytes | None:
        return self._local.read_file(commit, path)

    def read_files(self, wanted: Sequence[tuple[str, str]]) -> list[bytes | None]:
        return self._local.read_files(wanted)

    def list_files(self, commit: str, directory: str = "") -> list[str]:
        return self._local.list_files(commit, directory)

    def commit_info(self, sha: str) -> CommitInfo:
        return self._local.commit_info(sha)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._local.is_ancestor(ancestor, descendant)

    def tree_of(self, files: Mapping[str, bytes]) -> str:
        return self._local.tree_of(files)

    def tree_id(self, commit: str) -> str:
        return self._local.tree_id(commit)

    def create_commit(self, *, files: Mapping[str, bytes], parents: Sequence[str],
                      message: str, author: Signature) -> str:
        return self._local.create_commit(files=files, parents=parents, message=message,
                                         author=author)

    # -- branch moves: the remote first ------------------------------------------------------

    def update_branch(self, branch: str, new_sha: str, *, expected: str | None,
                      fast_forward_only: bool) -> None:
        """Move `branch` on the remote, then in the mirror (see the module doc).

        ConcurrentUpdateError if the remote branch is not at `expected` (lease) or the push is
        not a fast-forward; GitError if `fast_forward_only` and `new_sha` does not descend from
        `expected` (checked before anything is sent).
        """
        ref = f"refs/heads/{branch}"
        new = self._local.commit_info(new_sha).sha
        if fast_forward_only:
            if expected is not None and not self._local.is_ancestor(expected, new):
                raise GitError(f"refusing to move {branch} from {expected[:12]} to "
                               f"{new[:12]}: not a fast-forward",
                               fix=f"{branch} only moves forward; build on its current head")
            # The lease, checked first: a plain push would also "succeed" onto a branch that
            # already exists (expected None) at the same commit, or that moved to `new`.
            if self._remote_head(ref) != expected:
                self._refresh_after_rejection()
                raise ConcurrentUpdateError(
                    f"{branch} on {self._url} is not at {(expected or 'nothing')[:12]}; "
                    "nothing was overwritten",
                    fix="run the command again: it starts from the branch as it is now")
            # Plain push, never forced: git refuses anything but a fast-forward, so a move
            # between the check and the push is refused too.
            args = ["push", "--porcelain", self._url, f"{new}:{ref}"]
        else:
            # force-with-lease, never force: a person may have pushed to the -next branch.
            lease = f"--force-with-lease={ref}:{expected or ''}"
            args = ["push", "--porcelain", lease, self._url, f"{new}:{ref}"]
        status, out, err = self._run(args, check=False)
        if status != 0:
            text = f"{out}\n{err}"
            if any(marker in text for marker in _REJECTED):
                self._refresh_after_rejection()
                raise ConcurrentUpdateError(
                    f"{branch} moved on {self._url} while promoter was updating it; nothing "
                    "was overwritten", fix="run the command again: it starts from the "
                    "branch as it is now")
            raise GitError(f"pushing {branch} to {self._url} failed: {_first_line(err)}",
                           fix="check the URL, the network and promoter's credentials")
        current = self._local.branch_head(branch)
        self._local.update_branch(branch, new, expected=current, fast_forward_only=False)
        log.info("pushed %s to %s at %s", branch, self._url, new[:12])

    def _remote_head(self, ref: str) -> str | None:
        """The commit `ref` points at on the remote now (one `git ls-remote`)."""
        _, out, _ = self._run(["ls-remote", "--refs", self._url, ref])
        line = out.split("\n", 1)[0].strip()
        return line.split()[0] if line else None

    def _refresh_after_rejection(self) -> None:
        """Fetch after a refused update, so reads show the branch as it is on the remote;
        a failed fetch only leaves the mirror as stale as it was."""
        try:
            self.refresh()
        except GitError as exc:
            log.warning("could not refresh the mirror of %s: %s", self._url, exc.message)

    # -- git ---------------------------------------------------------------------------------

    def _run(self, args: list[str], *, cwd: Path | str | None = "mirror",
             check: bool = True) -> tuple[int, str, str]:
        workdir = self._mirror_dir if cwd == "mirror" else cwd
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
        with tempfile.TemporaryDirectory(prefix="promoter-askpass-") as scratch:
            if self._credentials is not None:
                script = Path(scratch) / "askpass.sh"
                script.write_text(_ASKPASS)
                script.chmod(stat.S_IRWXU)
                user, password = self._credentials()
                env.update(GIT_ASKPASS=str(script), PROMOTER_GIT_USERNAME=user,
                           PROMOTER_GIT_PASSWORD=password)
            # No credential helper of the machine's git config may store or offer secrets.
            command = ["git", "-c", "credential.helper=", *args]
            try:
                result = subprocess.run(command, cwd=workdir, env=env, capture_output=True,
                                        text=True, check=False, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise GitError(f"cannot run git {args[0]} against {self._url}: "
                               f"{type(exc).__name__}",
                               fix="install git; check the network") from exc
        if check and result.returncode != 0:
            raise GitError(f"git {args[0]} against {self._url} failed: "
                           f"{_first_line(result.stderr)}",
                           fix="check the URL, the network and promoter's credentials")
        return result.returncode, result.stdout, result.stderr


def mirror_path(cache_dir: Path, url: str) -> Path:
    """Where the mirror of `url` lives under `cache_dir` (one per URL)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repo"
    return cache_dir / f"{name}-{digest}.git"


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
