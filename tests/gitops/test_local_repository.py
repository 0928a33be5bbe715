"""`LocalGitRepository` on real repositories, checked with the git command line."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promoter.errors import ConcurrentUpdateError, GitError
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import Signature
from tests.fixtures.git import FIXED_TIME, TEST_AUTHOR, git_status, push_commit, run_git

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ENV = "environments/staging"

NESTED = {
    "hydrator.metadata": b'{"drySha": "abc"}\n',
    "serving/deployment.yaml": b"kind: Deployment\n",
    "serving/config/model.json": b"{}",
    "training/job.yaml": b"kind: Job\n",
    # Names that sort differently as files and as directories in git's tree order.
    "a-b": b"dash",
    "a.c": b"dot",
    "a/x": b"in a directory",
    "a0": b"zero",
    "empty": b"",
    "binary.bin": bytes(range(256)),
}


def commit(repo: LocalGitRepository, files: dict[str, bytes], *parents: str,
           message: str = "test") -> str:
    return repo.create_commit(files=files, parents=list(parents), message=message,
                              author=TEST_AUTHOR)


@pytest.fixture
def main_sha(git_repo: Path) -> str:
    return run_git(git_repo, "rev-parse", "main")


# -- opening -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "plain directory", "file", "subdirectory"])
def test_not_a_repository_is_a_git_error_with_a_fix(tmp_path: Path, git_repo: Path,
                                                      kind: str) -> None:
    path = {
        "missing": tmp_path / "nope",
        "plain directory": tmp_path,
        "file": git_repo / "README.md",
        "subdirectory": git_repo / ".git" / "refs",
    }[kind]
    if kind == "plain directory":
        path = tmp_path / "plain"
        path.mkdir()
    with pytest.raises(GitError, match="is not a git repository") as info:
        LocalGitRepository(path)
    assert str(path) in str(info.value)
    assert info.value.fix
    assert info.value.__cause__ is not None  # chained to GitPython's error


def test_url_is_the_absolute_path(git_repo: Path, bare_git_repo: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(git_repo.parent)
    assert LocalGitRepository(Path(git_repo.name)).url == str(git_repo.resolve())
    assert LocalGitRepository(bare_git_repo).url == str(bare_git_repo.resolve())
    assert LocalGitRepository(git_repo).git_dir == (git_repo / ".git").resolve()


# -- create_commit -----------------------------------------------------------------------------


def test_create_commit_writes_nested_trees_of_regular_files(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    sha = commit(gitops_repo, NESTED, main_sha, message="Render staging\n\nWhy: a test")

    listing = run_git(git_repo, "ls-tree", "-r", "--format=%(objectmode) %(path)", sha)
    assert listing.splitlines() == [f"100644 {p}" for p in sorted(NESTED)]
    assert run_git(git_repo, "cat-file", "-t", f"{sha}:serving/config") == "tree"
    for path, data in NESTED.items():
        shown = subprocess.run(["git", "-C", str(git_repo), "cat-file", "blob", f"{sha}:{path}"],
                               capture_output=True, check=True).stdout
        assert shown == data, path
    assert run_git(git_repo, "log", "-1", "--format=%P|%an|%ae|%cn|%ce|%at|%ct|%B", sha) == (
        f"{main_sha}|{TEST_AUTHOR.name}|{TEST_AUTHOR.email}|{TEST_AUTHOR.name}|"
        f"{TEST_AUTHOR.email}|{int(FIXED_TIME.timestamp())}|{int(FIXED_TIME.timestamp())}|"
        "Render staging\n\nWhy: a test"
    )
    run_git(git_repo, "fsck", "--strict", "--no-dangling")  # well-formed, sorted objects


def test_same_files_give_the_same_tree_as_git_itself(
        gitops_repo: LocalGitRepository, git_repo: Path, tmp_path: Path, main_sha: str) -> None:
    forward = commit(gitops_repo, NESTED, main_sha)
    backward = commit(gitops_repo, dict(reversed(NESTED.items())))
    assert gitops_repo.tree_id(forward) == gitops_repo.tree_id(backward)

    # Independent check: git builds the same tree from a work tree with the same files.
    scratch = tmp_path / "scratch"
    run_git(tmp_path, "init", "--quiet", str(scratch))
    for path, data in NESTED.items():
        (scratch / path).parent.mkdir(parents=True, exist_ok=True)
        (scratch / path).write_bytes(data)
    run_git(scratch, "add", "--all")
    assert run_git(scratch, "write-tree") == gitops_repo.tree_id(forward)
    assert run_git(git_repo, "rev-parse", f"{forward}^{{tree}}") == gitops_repo.tree_id(forward)


def test_same_inputs_at_the_same_time_give_the_same_commit(
        gitops_repo: LocalGitRepository, main_sha: str) -> None:
    assert commit(gitops_repo, NESTED, main_sha) == commit(gitops_repo, NESTED, main_sha)


def test_commit_date_is_now_in_utc(git_repo: Path, main_sha: str) -> None:
    repo = LocalGitRepository(git_repo)
    before = datetime.now(UTC).replace(microsecond=0)
    sha = commit(repo, {"f": b"x"}, main_sha)
    info = repo.commit_info(sha)
    assert info.authored_at.utcoffset() == timedelta(0)
    assert before <= info.authored_at <= datetime.now(UTC)
    assert run_git(git_repo, "log", "-1", "--format=%cd", "--date=format:%z", sha) == "+0000"


def test_empty_tree_and_root_commit(gitops_repo: LocalGitRepository, git_repo: Path) -> None:
    sha = commit(gitops_repo, {})
    assert gitops_repo.tree_id(sha) == EMPTY_TREE
    assert run_git(git_repo, "log", "-1", "--format=%P", sha) == ""
    assert gitops_repo.list_files(sha) == []


@pytest.mark.parametrize("path", ["", "/abs", "a//b", "a/./b", "a/../b", ".git/config",
                                  "x/.GIT/y", "trailing/", "new\nline"])
def test_invalid_paths_are_refused(gitops_repo: LocalGitRepository, path: str) -> None:
    with pytest.raises(GitError, match="invalid path"):
        commit(gitops_repo, {path: b"x"})


def test_a_file_cannot_also_be_a_directory(gitops_repo: LocalGitRepository) -> None:
    with pytest.raises(GitError, match="both a file and a directory"):
        commit(gitops_repo, {"serving": b"x", "serving/deployment.yaml": b"y"})


def test_unknown_parent_is_named(gitops_repo: LocalGitRepository) -> None:
    with pytest.raises(GitError, match="'0123456789abcdef' is not a commit"):
        commit(gitops_repo, {"f": b"x"}, "0123456789abcdef")


def test_bad_author_is_refused(gitops_repo: LocalGitRepository) -> None:
    with pytest.raises(GitError, match="invalid commit author"):
        gitops_repo.create_commit(files={}, parents=[], message="m",
                                  author=Signature("Eve <evil>", "e@x"))


def test_work_tree_index_and_head_are_untouched(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    index = git_repo / ".git" / "index"
    index_before = index.read_bytes()
    assert git_status(git_repo) == ""

    sha = commit(gitops_repo, {"README.md": b"changed\n", "new.txt": b"new\n"}, main_sha)
    gitops_repo.update_branch(ENV, sha, expected=None, fast_forward_only=True)
    gitops_repo.read_file(sha, "new.txt")
    gitops_repo.list_files(sha)

    assert git_status(git_repo) == ""
    assert index.read_bytes() == index_before
    assert run_git(git_repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert run_git(git_repo, "rev-parse", "HEAD") == main_sha
    assert (git_repo / "README.md").read_text() == "GitOps repository for tests\n"
    assert not (git_repo / "new.txt").exists()


# -- update_branch -----------------------------------------------------------------------------


def test_update_branch_creates_and_fast_forwards(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    first = commit(gitops_repo, {"f": b"1"}, main_sha)
    gitops_repo.update_branch(ENV, first, expected=None, fast_forward_only=True)
    assert run_git(git_repo, "rev-parse", f"refs/heads/{ENV}") == first

    second = commit(gitops_repo, {"f": b"2"}, first)
    gitops_repo.update_branch(ENV, second, expected=first, fast_forward_only=True)
    assert run_git(git_repo, "rev-parse", f"refs/heads/{ENV}") == second
    assert gitops_repo.branch_head(ENV) == second


def test_expected_none_refuses_an_existing_branch(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    run_git(git_repo, "branch", ENV, main_sha)
    sha = commit(gitops_repo, {"f": b"1"}, main_sha)
    with pytest.raises(ConcurrentUpdateError, match="expected absent"):
        gitops_repo.update_branch(ENV, sha, expected=None, fast_forward_only=True)
    assert run_git(git_repo, "rev-parse", ENV) == main_sha


def test_branch_moved_by_someone_else_is_a_concurrent_update(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    ours = commit(gitops_repo, {"f": b"ours"}, main_sha)
    gitops_repo.update_branch(ENV, main_sha, expected=None, fast_forward_only=True)
    # Someone else pushes first (through the CLI, not the adapter).
    theirs = run_git(git_repo, "commit-tree", "-p", main_sha, "-m", "hotfix",
                     run_git(git_repo, "rev-parse", "main^{tree}"))
    run_git(git_repo, "update-ref", f"refs/heads/{ENV}", theirs)

    with pytest.raises(ConcurrentUpdateError, match="nothing was overwritten") as info:
        gitops_repo.update_branch(ENV, ours, expected=main_sha, fast_forward_only=True)
    assert info.value.fix
    assert ENV in str(info.value)
    assert run_git(git_repo, "rev-parse", ENV) == theirs


def test_non_fast_forward_is_refused_on_environment_branches(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    tip = commit(gitops_repo, {"f": b"1"}, main_sha)
    gitops_repo.update_branch(ENV, tip, expected=None, fast_forward_only=True)
    sideways = commit(gitops_repo, {"f": b"rewritten"}, main_sha)

    with pytest.raises(GitError, match="not a fast-forward"):
        gitops_repo.update_branch(ENV, sideways, expected=tip, fast_forward_only=True)
    with pytest.raises(GitError, match="not a fast-forward"):
        gitops_repo.update_branch(ENV, main_sha, expected=tip, fast_forward_only=True)
    assert run_git(git_repo, "rev-parse", ENV) == tip

    # A proposal branch may be replaced, under the lease of its current head.
    gitops_repo.update_branch(ENV, sideways, expected=tip, fast_forward_only=False)
    assert run_git(git_repo, "rev-parse", ENV) == sideways


def test_checked_out_branch_is_never_moved(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    sha = commit(gitops_repo, {"f": b"1"}, main_sha)
    with pytest.raises(GitError, match="checked out"):
        gitops_repo.update_branch("main", sha, expected=main_sha, fast_forward_only=True)
    assert run_git(git_repo, "rev-parse", "main") == main_sha


def test_linked_worktree_branch_is_never_moved(
        gitops_repo: LocalGitRepository, git_repo: Path, tmp_path: Path, main_sha: str) -> None:
    run_git(git_repo, "worktree", "add", "--quiet", "-b", ENV, str(tmp_path / "wt"), main_sha)
    sha = commit(gitops_repo, {"f": b"1"}, main_sha)
    with pytest.raises(GitError, match="checked out"):
        gitops_repo.update_branch(ENV, sha, expected=main_sha, fast_forward_only=True)


@pytest.mark.parametrize("branch", ["bad..name", "ends.lock", "has space", "-option", "a/"])
def test_invalid_branch_names_are_refused(gitops_repo: LocalGitRepository, main_sha: str,
                                          branch: str) -> None:
    with pytest.raises(GitError, match="not a valid"):
        gitops_repo.update_branch(branch, main_sha, expected=None, fast_forward_only=True)


def test_unknown_new_sha_is_refused(gitops_repo: LocalGitRepository, git_repo: Path) -> None:
    with pytest.raises(GitError, match="not a commit"):
        gitops_repo.update_branch(ENV, "f" * 40, expected=None, fast_forward_only=True)
    assert gitops_repo.branch_head(ENV) is None


def test_racing_updates_from_the_same_head_let_exactly_one_win(
        gitops_repo: LocalGitRepository, git_repo: Path, main_sha: str) -> None:
    gitops_repo.update_branch(ENV, main_sha, expected=None, fast_forward_only=True)
    candidates = [commit(gitops_repo, {"f": str(i).encode()}, main_sha) for i in range(8)]
    barrier = threading.Barrier(len(candidates))
    outcomes: dict[str, str] = {}

    def race(sha: str) -> None:
        barrier.wait()
        try:
            gitops_repo.update_branch(ENV, sha, expected=main_sha, fast_forward_only=True)
            outcomes[sha] = "won"
        except ConcurrentUpdateError:
            outcomes[sha] = "lost"

    threads = [threading.Thread(target=race, args=(sha,)) for sha in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [sha for sha, outcome in outcomes.items() if outcome == "won"]
    assert len(outcomes) == len(candidates)
    assert len(winners) == 1
    assert run_git(git_repo, "rev-parse", ENV) == winners[0]


# -- reads -------------------------------------------------------------------------------------


def test_read_file(gitops_repo: LocalGitRepository, main_sha: str) -> None:
    sha = commit(gitops_repo, NESTED, main_sha)
    assert gitops_repo.read_file(sha, "serving/deployment.yaml") == b"kind: Deployment\n"
    assert gitops_repo.read_file(sha, "binary.bin") == bytes(range(256))
    assert gitops_repo.read_file(sha, "empty") == b""
    assert gitops_repo.read_file(sha, "missing.yaml") is None
    assert gitops_repo.read_file(sha, "serving") is None  # a directory is not a file
    assert gitops_repo.read_file(main_sha, "README.md") == b"GitOps repository for tests\n"
    assert gitops_repo.read_file("main", "README.md") == b"GitOps repository for tests\n"
    with pytest.raises(GitError, match="not a commit"):
        gitops_repo.read_file("0" * 40, "README.md")


def test_list_files(gitops_repo: LocalGitRepository, main_sha: str) -> None:
    sha = commit(gitops_repo, NESTED, main_sha)
    assert gitops_repo.list_files(sha) == sorted(NESTED)
    assert gitops_repo.list_files(sha, "serving") == [
        "serving/config/model.json", "serving/deployment.yaml"]
    assert gitops_repo.list_files(sha, "serving/") == gitops_repo.list_files(sha, "serving")
    assert gitops_repo.list_files(sha, "serving/config") == ["serving/config/model.json"]
    assert gitops_repo.list_files(sha, "a") == ["a/x"]  # not a-b, a.c or a0
    assert gitops_repo.list_files(sha, "nope") == []
    assert gitops_repo.list_files(sha, "empty") == []  # a file is not a directory
    with pytest.raises(GitError, match="not a commit"):
        gitops_repo.list_files("no-such-branch")


def test_branch_head(gitops_repo: LocalGitRepository, main_sha: str) -> None:
    assert gitops_repo.branch_head("main") == main_sha
    assert gitops_repo.branch_head(ENV) is None
    assert gitops_repo.branch_head("bad..name") is None


def test_commit_info(gitops_repo: LocalGitRepository, main_sha: str) -> None:
    sha = commit(gitops_repo, {"f": b"1"}, main_sha,
                 message="Promote churn v3 to staging\n\nEvaluated on holdout.\nAUC 0.91\n")
    info = gitops_repo.commit_info(sha)
    assert info.sha == sha
    assert info.parents == (main_sha,)
    assert info.author == TEST_AUTHOR
    assert info.authored_at == FIXED_TIME
    assert info.subject == "Promote churn v3 to staging"
    assert info.body == "Evaluated on holdout.\nAUC 0.91"
    assert gitops_repo.commit_info(sha[:10]).sha == sha
    with pytest.raises(GitError, match="not a commit"):
        gitops_repo.commit_info("0" * 40)


def test_is_ancestor(gitops_repo: LocalGitRepository, main_sha: str) -> None:
    child = commit(gitops_repo, {"f": b"1"}, main_sha)
    sibling = commit(gitops_repo, {"f": b"2"}, main_sha)
    assert gitops_repo.is_ancestor(main_sha, child)
    assert gitops_repo.is_ancestor(child, child)
    assert not gitops_repo.is_ancestor(child, main_sha)
    assert not gitops_repo.is_ancestor(child, sibling)
    with pytest.raises(GitError, match="not a commit"):
        gitops_repo.is_ancestor("0" * 40, child)


def test_bare_repository(bare_git_repo: Path) -> None:
    repo = LocalGitRepository(bare_git_repo)
    main_sha = run_git(bare_git_repo, "rev-parse", "main")
    assert repo.branch_head("main") == main_sha
    sha = push_commit(repo, ENV, {"serving/deployment.yaml": b"kind: Deployment\n"},
                      onto="main")
    assert run_git(bare_git_repo, "rev-parse", ENV) == sha
    assert repo.list_files(sha) == ["README.md", "serving/deployment.yaml"]
    # A bare repository has no work tree, so even its HEAD branch may move.
    repo.update_branch("main", sha, expected=main_sha, fast_forward_only=True)
    assert run_git(bare_git_repo, "rev-parse", "main") == sha


def test_missing_git_executable_is_a_git_error(gitops_repo: LocalGitRepository,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(GitError, match="install git") as info:
        gitops_repo.branch_head("main")
    assert info.value.__cause__ is not None


def test_branch_heads_peel_a_branch_that_points_at_a_tag_as_branch_head_does(
        git_repo: Path, gitops_repo: LocalGitRepository) -> None:
    main = run_git(git_repo, "rev-parse", "main")
    run_git(git_repo, "tag", "-a", "-m", "one", "v1", main)
    run_git(git_repo, "tag", "-a", "-m", "two", "v1-again", "v1")  # a tag of a tag
    # git's own commands refuse to point a branch at anything but a commit; another tool
    # (or a hand) writing the ref file does not.
    heads_dir = git_repo / ".git" / "refs" / "heads"
    for branch, rev in (("tagged", "v1"), ("tagged-twice", "v1-again"),
                        ("a-tree", "main^{tree}")):
        (heads_dir / branch).write_text(run_git(git_repo, "rev-parse", rev) + "\n")
    heads = gitops_repo.branch_heads()
    assert heads == {"main": main, "tagged": main, "tagged-twice": main}
    assert {b: gitops_repo.branch_head(b) for b in heads} == heads
    assert gitops_repo.branch_head("a-tree") is None


def test_a_file_read_by_full_id_is_kept_and_a_moved_branch_is_not(
        git_repo: Path, gitops_repo: LocalGitRepository) -> None:
    """Reads of a commit named by its full id are answered from memory the second time (the
    object cannot change); the same read through a branch name asks git again."""
    first = push_commit(gitops_repo, ENV, {"v": b"1"}, onto="main")
    assert gitops_repo.read_file(first, "v") == b"1"
    info = gitops_repo.commit_info(first)
    objects = git_repo / ".git" / "objects"
    moved = git_repo.parent / "objects-away"
    objects.rename(moved)  # git can read nothing now
    try:
        assert gitops_repo.read_files([(first, "v")]) == [b"1"]
        assert gitops_repo.commit_info(first) == info
        with pytest.raises(GitError):
            gitops_repo.read_file(ENV, "v")
    finally:
        moved.rename(objects)
