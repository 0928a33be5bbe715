"""`LocalForge` beyond the contract: persistence, several processes, crashes, its database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from promoter.domain.pull_requests import CommitStatus, PullRequestState, ReviewState, StatusState
from promoter.errors import ForgeError, NotMergeableError
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import Signature
from tests.fixtures.git import FIXED_TIME, push_commit, run_git

BASE = "environments/prod"
HEAD = "environments/prod-next"
REPO_ROOT = Path(__file__).resolve().parents[2]
IDENTITY = Signature("promoter", "promoter@promoter.invalid")
"""The default identity LocalForge merges as."""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "nested" / "forge.sqlite"


@pytest.fixture
def head_sha(gitops_repo: LocalGitRepository) -> str:
    push_commit(gitops_repo, BASE, {"deployment.yaml": b"v1\n"}, onto="main")
    return push_commit(gitops_repo, HEAD, {"deployment.yaml": b"v2\n"}, onto=BASE)


def open_pr(forge: LocalForge, *, title: str = "Promote v2") -> int:
    return forge.open_or_update_pull_request(head=HEAD, base=BASE, title=title, body="b",
                                             author="alice", labels=["promoter"]).number


def run_python(script: str, *args: str) -> subprocess.Popen[str]:
    """Start a Python process running `script` with promoter importable."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_state_survives_a_new_instance(db_path: Path, gitops_repo: LocalGitRepository,
                                       head_sha: str) -> None:
    forge = LocalForge(db_path, gitops_repo)
    number = open_pr(forge)
    forge.set_status(head_sha, CommitStatus("promoter/evaluation", StatusState.SUCCESS, "ok"))
    forge.submit_review(number, user="bob", state=ReviewState.APPROVED)
    forge.upsert_comment(number, key="report", body="AUC 0.91")
    before = forge.get_pull_request(number)

    again = LocalForge(db_path, gitops_repo)
    assert again.get_pull_request(number) == before
    assert again.list_statuses(head_sha) == forge.list_statuses(head_sha)
    assert [r.user for r in again.list_reviews(number)] == ["bob"]
    assert [c.body for c in again.list_comments(number)] == ["AUC 0.91"]
    merge_sha = again.merge(number, expected_base=BASE, expected_head=head_sha, message="Promote")
    assert LocalForge(db_path, gitops_repo).get_pull_request(number).merge_sha == merge_sha
    assert db_path.parent.is_dir()


def test_processes_opening_the_same_pull_request_make_one(
        db_path: Path, git_repo: Path, head_sha: str) -> None:
    script = """
        import sys
        from pathlib import Path
        from promoter.forge.local import LocalForge
        from promoter.gitops.local import LocalGitRepository
        forge = LocalForge(Path(sys.argv[1]), LocalGitRepository(Path(sys.argv[2])))
        for i in range(5):
            pr = forge.open_or_update_pull_request(
                head=sys.argv[3], base=sys.argv[4], title=f"t{i}", body="b", author="a",
                labels=["promoter"])
            print(pr.number)
    """
    processes = [run_python(script, str(db_path), str(git_repo), HEAD, BASE) for _ in range(8)]
    results = [(p.communicate(timeout=120), p.returncode) for p in processes]
    numbers = set()
    for (out, err), returncode in results:
        assert returncode == 0, err
        numbers.update(out.split())
    assert numbers == {"1"}
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pull_requests").fetchone() == (1,)
    conn.close()


def test_threads_sharing_an_instance_make_one_pull_request(
        db_path: Path, gitops_repo: LocalGitRepository, head_sha: str) -> None:
    forge = LocalForge(db_path, gitops_repo)
    barrier = threading.Barrier(8)
    numbers: list[int] = []

    def work() -> None:
        barrier.wait()
        numbers.append(open_pr(forge))
        forge.upsert_comment(numbers[-1], key="report", body="same")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(numbers) == 8
    assert set(numbers) == {1}
    assert len(forge.list_comments(1)) == 1


def test_database_allows_one_open_pull_request_per_branch_pair(
        db_path: Path, gitops_repo: LocalGitRepository, head_sha: str) -> None:
    forge = LocalForge(db_path, gitops_repo)
    number = open_pr(forge)
    row = (HEAD, BASE, head_sha, "t", "b", "a", "[]", "2024-01-01T00:00:00+00:00",
           "2024-01-01T00:00:00+00:00")
    insert = ("INSERT INTO pull_requests (head, base, head_sha, title, body, author, state,"
              " labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError), conn:
            conn.execute(insert, (*row[:6], "open", *row[6:]))
        with conn:  # closed and merged PRs of the same pair may pile up
            conn.execute(insert, (*row[:6], "closed", *row[6:]))
            conn.execute(insert, (*row[:6], "closed", *row[6:]))
    finally:
        conn.close()
    assert [p.number for p in forge.list_open_pull_requests()] == [number]


def test_crash_after_moving_the_base_is_recovered(
        db_path: Path, git_repo: Path, gitops_repo: LocalGitRepository, head_sha: str) -> None:
    forge = LocalForge(db_path, gitops_repo)
    number = open_pr(forge)
    old_base = gitops_repo.branch_head(BASE)
    # The process dies right after git moved the base, before the database committed.
    script = """
        import os, sys
        from pathlib import Path
        from promoter.forge.local import LocalForge
        from promoter.gitops.local import LocalGitRepository

        class DiesAfterMovingBranches(LocalGitRepository):
            def update_branch(self, *args, **kwargs):
                super().update_branch(*args, **kwargs)
                os._exit(137)

        forge = LocalForge(Path(sys.argv[1]), DiesAfterMovingBranches(Path(sys.argv[2])))
        forge.merge(int(sys.argv[3]), expected_base="environments/prod",
                    expected_head=sys.argv[4], message="Promote")
    """
    process = run_python(script, str(db_path), str(git_repo), str(number), head_sha)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 137, err
    merge_sha = run_git(git_repo, "rev-parse", BASE)
    assert run_git(git_repo, "log", "-1", "--format=%P", merge_sha).split() == [old_base,
                                                                                head_sha]
    with sqlite3.connect(db_path) as conn:  # the crash left the PR open in the database
        assert conn.execute("SELECT state FROM pull_requests").fetchone() == ("open",)
    conn.close()

    recovered = LocalForge(db_path, gitops_repo)
    pull = recovered.get_pull_request(number)
    assert pull.state is PullRequestState.MERGED
    assert pull.merge_sha == merge_sha
    assert recovered.merge(number, expected_base=BASE,
                           expected_head=head_sha, message="Promote") == merge_sha
    assert run_git(git_repo, "rev-parse", BASE) == merge_sha


def test_merge_recorded_in_git_only_is_finished_by_the_next_merge(
        db_path: Path, gitops_repo: LocalGitRepository, head_sha: str) -> None:
    forge = LocalForge(db_path, gitops_repo)
    number = open_pr(forge)
    old_base = gitops_repo.branch_head(BASE)
    assert old_base is not None
    files = {p: gitops_repo.read_file(head_sha, p) or b"" for p in gitops_repo.list_files(head_sha)}
    merge_sha = gitops_repo.create_commit(files=files, parents=[old_base, head_sha],
                                          message="Promote", author=IDENTITY)
    gitops_repo.update_branch(BASE, merge_sha, expected=old_base, fast_forward_only=True)

    assert forge.merge(number, expected_base=BASE,
                       expected_head=head_sha, message="Promote") == merge_sha
    assert forge.get_pull_request(number).state is PullRequestState.MERGED
    assert gitops_repo.branch_head(BASE) == merge_sha


def test_merge_commit_is_authored_by_the_forge_identity(
        db_path: Path, git_repo: Path, gitops_repo: LocalGitRepository, head_sha: str) -> None:
    forge = LocalForge(db_path, gitops_repo, identity="promoter-bot")
    merge_sha = forge.merge(open_pr(forge), expected_base=BASE,
                            expected_head=head_sha, message="Promote v2\n\nok")
    assert run_git(git_repo, "log", "-1", "--format=%an|%cn|%s", merge_sha) == (
        "promoter-bot|promoter-bot|Promote v2")


def test_head_with_files_promoter_cannot_write_is_not_merged(
        db_path: Path, git_repo: Path, gitops_repo: LocalGitRepository) -> None:
    push_commit(gitops_repo, BASE, {"deployment.yaml": b"v1\n"}, onto="main")
    blob = subprocess.run(["git", "-C", str(git_repo), "hash-object", "-w", "--stdin"],
                          input=b"#!/bin/sh\n", capture_output=True, check=True).stdout.decode()
    tree = subprocess.run(["git", "-C", str(git_repo), "mktree"],
                          input=f"100755 blob {blob.strip()}\trun.sh\n", text=True,
                          capture_output=True, check=True).stdout.strip()
    head_sha = run_git(git_repo, "commit-tree", tree, "-p", BASE, "-m", "executable")
    run_git(git_repo, "update-ref", f"refs/heads/{HEAD}", head_sha)
    base_before = run_git(git_repo, "rev-parse", BASE)
    forge = LocalForge(db_path, gitops_repo)

    with pytest.raises(NotMergeableError, match="executable"):
        forge.merge(open_pr(forge), expected_base=BASE, expected_head=head_sha, message="m")
    assert run_git(git_repo, "rev-parse", BASE) == base_before


def test_unreadable_database_is_a_forge_error_with_a_fix(
        db_path: Path, gitops_repo: LocalGitRepository) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ForgeError, match="forge database") as info:
        LocalForge(db_path, gitops_repo)
    assert info.value.fix
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_database_from_a_newer_promoter_is_refused(
        db_path: Path, gitops_repo: LocalGitRepository) -> None:
    LocalForge(db_path, gitops_repo)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ForgeError, match="newer promoter"):
        LocalForge(db_path, gitops_repo)


def test_database_is_in_wal_mode(db_path: Path, gitops_repo: LocalGitRepository) -> None:
    LocalForge(db_path, gitops_repo)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


class _RepoWithHook(LocalGitRepository):
    """The real repository, running a hook once, at the next read of files once armed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, clock=lambda: FIXED_TIME)
        self._hook: Callable[[], None] | None = None

    def arm(self, hook: Callable[[], None]) -> None:
        self._hook = hook

    def read_files(self, wanted: Sequence[tuple[str, str]]) -> list[bytes | None]:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return super().read_files(wanted)


def test_merge_commit_is_written_outside_the_write_lock(db_path: Path, git_repo: Path) -> None:
    took_lock: list[bool] = []

    def other_writer() -> None:  # another writer, which must not wait for the merge's git work
        conn = sqlite3.connect(db_path, timeout=0.2, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            took_lock.append(True)
        except sqlite3.OperationalError:
            took_lock.append(False)
        finally:
            conn.close()

    repo = _RepoWithHook(git_repo)
    push_commit(repo, BASE, {"deployment.yaml": b"v1\n"}, onto="main")
    head = push_commit(repo, HEAD, {"deployment.yaml": b"v2\n"}, onto=BASE)
    forge = LocalForge(db_path, repo)
    number = open_pr(forge)
    repo.arm(other_writer)
    merge_sha = forge.merge(number, expected_base=BASE, expected_head=head, message="m")

    assert took_lock == [True]
    assert repo.commit_info(merge_sha).parents[1] == head


def test_base_that_moves_while_the_merge_commit_is_written_becomes_its_parent(
        db_path: Path, git_repo: Path) -> None:
    # The base moves forward (to a commit the head contains) after the merge commit was
    # built outside the lock: the commit built on the old base must not be what is merged.
    moves: list[str] = []
    repo = _RepoWithHook(git_repo)
    push_commit(repo, BASE, {"deployment.yaml": b"v1\n"}, onto="main")
    middle = push_commit(repo, "scratch", {"deployment.yaml": b"v1.5\n"}, onto=BASE)
    head = push_commit(repo, HEAD, {"deployment.yaml": b"v2\n"}, onto=middle)
    forge = LocalForge(db_path, repo)
    number = open_pr(forge)
    repo.arm(lambda: moves.append(
        run_git(git_repo, "update-ref", f"refs/heads/{BASE}", middle) or middle))

    merge_sha = forge.merge(number, expected_base=BASE, expected_head=head, message="m")

    assert moves == [middle]
    assert repo.commit_info(merge_sha).parents == (middle, head)
    assert repo.branch_head(BASE) == merge_sha
    assert repo.tree_id(merge_sha) == repo.tree_id(head)
