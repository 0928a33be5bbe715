"""`RemoteGitRepository` against a bare repository over git's file transport.

HTTPS itself is not exercised here (no smart-HTTP server in the tests): what is tested is the
push discipline (lease for proposals, plain fast-forward for environments) and that
credentials reach git only through GIT_ASKPASS and the environment, never argv or the URL.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from promoter.errors import ConcurrentUpdateError, GitError
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.remote import _ASKPASS, RemoteGitRepository, mirror_path
from tests.fixtures.git import TEST_AUTHOR, push_commit, run_git

SECRET = "ghs_installation_token_not_for_logs"


def _commit(repo: RemoteGitRepository, parent: str, content: bytes) -> str:
    return repo.create_commit(files={"serving.yaml": content}, parents=[parent],
                              message="commit", author=TEST_AUTHOR)


@pytest.fixture
def remote(bare_git_repo: Path, tmp_path: Path) -> RemoteGitRepository:
    return RemoteGitRepository(str(bare_git_repo), mirror_path(tmp_path / "cache",
                                                               str(bare_git_repo)),
                               credentials=lambda: ("x-access-token", SECRET))


def test_reads_come_from_the_fetched_mirror(remote: RemoteGitRepository,
                                            bare_git_repo: Path) -> None:
    main = run_git(bare_git_repo, "rev-parse", "main")
    assert remote.branch_head("main") == main
    assert remote.read_file(main, "README.md") == b"GitOps repository for tests\n"
    assert remote.url == str(bare_git_repo)


def test_proposal_push_with_lease(remote: RemoteGitRepository, bare_git_repo: Path) -> None:
    main = remote.branch_head("main")
    assert main is not None
    first = _commit(remote, main, b"v1\n")
    remote.update_branch("environments/prod-next", first, expected=None,
                         fast_forward_only=False)
    assert run_git(bare_git_repo, "rev-parse", "environments/prod-next") == first

    second = _commit(remote, main, b"v2\n")  # a rewrite of -next, under a lease on `first`
    remote.update_branch("environments/prod-next", second, expected=first,
                         fast_forward_only=False)
    assert run_git(bare_git_repo, "rev-parse", "environments/prod-next") == second

    # A person pushes a hotfix to -next; promoter's lease on `second` no longer holds.
    person = push_commit(LocalGitRepository(bare_git_repo), "environments/prod-next",
                         {"hotfix": b"x\n"})
    third = _commit(remote, main, b"v3\n")
    with pytest.raises(ConcurrentUpdateError):
        remote.update_branch("environments/prod-next", third, expected=second,
                             fast_forward_only=False)
    assert run_git(bare_git_repo, "rev-parse", "environments/prod-next") == person


def test_environment_branches_only_fast_forward(remote: RemoteGitRepository,
                                               bare_git_repo: Path) -> None:
    main = remote.branch_head("main")
    assert main is not None
    base = _commit(remote, main, b"v1\n")
    remote.update_branch("environments/prod", base, expected=None, fast_forward_only=True)
    forward = _commit(remote, base, b"v2\n")
    remote.update_branch("environments/prod", forward, expected=base, fast_forward_only=True)
    assert run_git(bare_git_repo, "rev-parse", "environments/prod") == forward

    sideways = _commit(remote, base, b"rewrite\n")
    with pytest.raises(GitError, match="not a fast-forward"):
        remote.update_branch("environments/prod", sideways, expected=forward,
                             fast_forward_only=True)
    # Someone else's merge landed on the remote; the mirror has not seen it.
    theirs = push_commit(LocalGitRepository(bare_git_repo), "environments/prod",
                         {"other": b"y\n"})
    mine = _commit(remote, forward, b"v3\n")
    with pytest.raises(ConcurrentUpdateError):
        remote.update_branch("environments/prod", mine, expected=forward,
                             fast_forward_only=True)
    assert run_git(bare_git_repo, "rev-parse", "environments/prod") == theirs
    remote.refresh()
    assert remote.branch_head("environments/prod") == theirs


def test_credentials_only_via_askpass_and_environment(
        remote: RemoteGitRepository, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    real_run = subprocess.run

    def spy(command: list[str], **kwargs: Any) -> Any:
        env = kwargs["env"]
        askpass = Path(env["GIT_ASKPASS"])
        seen.append({"argv": command, "script": askpass.read_text(),
                     "answer": real_run([str(askpass), "Password for 'https://x@h': "],
                                        env=env, capture_output=True, text=True).stdout})
        return real_run(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    remote.refresh()
    assert seen
    assert SECRET not in " ".join(seen[0]["argv"])
    assert SECRET not in seen[0]["script"]
    assert seen[0]["script"] == _ASKPASS
    assert seen[0]["answer"] == SECRET + "\n"
    assert "credential.helper=" in seen[0]["argv"]
    assert SECRET not in repr(remote)


def test_urls_with_credentials_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="credentials"):
        RemoteGitRepository("https://x-access-token:abc@github.com/acme/gitops.git",
                            tmp_path / "m.git")


def test_a_closed_pull_requests_head_stays_readable_after_its_branch_is_gone(
        bare_git_repo: Path, tmp_path: Path) -> None:
    """GitHub keeps `refs/pull/<n>/head` where a PR was when it closed; the mirror fetches it,
    so the recorded head of a closed proposal can still be judged after `<env>-next` was
    deleted (before, the commit was missing and discovery proposed the version again)."""
    main = run_git(bare_git_repo, "rev-parse", "main")
    tree = run_git(bare_git_repo, "rev-parse", "main^{tree}")
    proposal = run_git(bare_git_repo, "commit-tree", tree, "-p", main, "-m", "Hydrate churn v3")
    # What GitHub holds once PR #7 from environments/dev-next closed and the branch was
    # deleted: only the pull ref.
    run_git(bare_git_repo, "update-ref", "refs/pull/7/head", proposal)
    remote = RemoteGitRepository(str(bare_git_repo),
                                 mirror_path(tmp_path / "cache", str(bare_git_repo)))
    assert remote.commit_info(proposal).parents == (main,)
    assert remote.branch_head("environments/dev-next") is None
    # A remote without pull refs (not GitHub) fetches branches as before.
    run_git(bare_git_repo, "update-ref", "-d", "refs/pull/7/head")
    remote.refresh()
    assert remote.branch_head("main") == main
