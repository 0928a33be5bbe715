"""The `GitOpsRepository` contract: the local repository and the mirrored remote pass the same
tests, written against the port only.

`other` is a second writer on the same branches (another process, a person's push): a
`LocalGitRepository` on the same directory, or a push straight into the remote's bare
repository, which the mirror sees only when it fetches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from promoter.errors import ConcurrentUpdateError, GitError
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import GitOpsRepository
from promoter.gitops.remote import RemoteGitRepository, mirror_path
from tests.fixtures.git import TEST_AUTHOR, push_commit

BRANCH = "environments/dev"


@dataclass
class GitHarness:
    repo: GitOpsRepository
    other: Callable[[str, dict[str, bytes]], str]
    """Push a commit of `files` onto a branch behind `repo`'s back; its sha."""


@pytest.fixture(params=["local", "remote"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> GitHarness:
    if request.param == "local":
        path: Path = request.getfixturevalue("git_repo")
        repo: GitOpsRepository = LocalGitRepository(path)
    else:
        path = request.getfixturevalue("bare_git_repo")
        repo = RemoteGitRepository(str(path), mirror_path(tmp_path / "cache", str(path)))
    second = LocalGitRepository(path)
    return GitHarness(repo=repo, other=lambda branch, files: push_commit(second, branch, files))


def _commit(repo: GitOpsRepository, files: dict[str, bytes], parents: list[str],
            message: str = "Hydrate churn v1\n\nBody line\n") -> str:
    return repo.create_commit(files=files, parents=parents, message=message,
                              author=TEST_AUTHOR)


def _main(repo: GitOpsRepository) -> str:
    head = repo.branch_head("main")
    assert head is not None
    return head


def test_a_commit_holds_exactly_its_files_and_moves_no_ref(harness: GitHarness) -> None:
    repo = harness.repo
    files = {"serving/deployment.yaml": b"kind: Deployment\n", "README.md": b"hi\n",
             "hydrator.metadata": b"{}\n"}
    sha = _commit(repo, files, [_main(repo)])
    assert repo.list_files(sha) == sorted(files)
    assert repo.list_files(sha, "serving") == ["serving/deployment.yaml"]
    assert all(repo.read_file(sha, p) == data for p, data in files.items())
    assert repo.read_file(sha, "absent.yaml") is None
    assert repo.branch_head(BRANCH) is None
    again = _commit(repo, dict(reversed(files.items())), [_main(repo)], message="other")
    assert repo.tree_id(again) == repo.tree_id(sha)  # equal trees: byte-identical content


def test_commit_info_reads_back_what_was_written(harness: GitHarness) -> None:
    repo = harness.repo
    parent = _main(repo)
    sha = _commit(repo, {"a": b"1"}, [parent], message="Subject\n\nFirst\nProposed-by: mia\n")
    info = repo.commit_info(sha)
    assert info.parents == (parent,)
    assert info.subject == "Subject"
    assert info.body == "First\nProposed-by: mia"
    assert (info.author.name, info.author.email) == (TEST_AUTHOR.name, TEST_AUTHOR.email)


def test_branches_move_only_from_what_was_expected(harness: GitHarness) -> None:
    repo = harness.repo
    first = _commit(repo, {"v": b"1"}, [_main(repo)])
    repo.update_branch(BRANCH, first, expected=None, fast_forward_only=True)
    assert repo.branch_head(BRANCH) == first
    with pytest.raises(ConcurrentUpdateError):
        repo.update_branch(BRANCH, first, expected=None, fast_forward_only=True)
    second = _commit(repo, {"v": b"2"}, [first])
    repo.update_branch(BRANCH, second, expected=first, fast_forward_only=True)
    assert repo.branch_head(BRANCH) == second
    assert repo.is_ancestor(first, second)
    assert repo.is_ancestor(second, second)
    assert not repo.is_ancestor(second, first)


def test_an_environment_branch_is_never_rewritten(harness: GitHarness) -> None:
    repo = harness.repo
    first = _commit(repo, {"v": b"1"}, [_main(repo)])
    repo.update_branch(BRANCH, first, expected=None, fast_forward_only=True)
    sideways = _commit(repo, {"v": b"other"}, [_main(repo)])
    with pytest.raises(GitError):
        repo.update_branch(BRANCH, sideways, expected=first, fast_forward_only=True)
    assert repo.branch_head(BRANCH) == first
    # A proposal branch may be rewritten, under a lease on what promoter last wrote.
    repo.update_branch(f"{BRANCH}-next", first, expected=None, fast_forward_only=False)
    repo.update_branch(f"{BRANCH}-next", sideways, expected=first, fast_forward_only=False)
    assert repo.branch_head(f"{BRANCH}-next") == sideways


def test_a_push_behind_its_back_is_never_overwritten(harness: GitHarness) -> None:
    repo = harness.repo
    first = _commit(repo, {"v": b"1"}, [_main(repo)])
    repo.update_branch(f"{BRANCH}-next", first, expected=None, fast_forward_only=False)
    theirs = harness.other(f"{BRANCH}-next", {"hotfix": b"x"})
    mine = _commit(repo, {"v": b"2"}, [_main(repo)])
    with pytest.raises(ConcurrentUpdateError):
        repo.update_branch(f"{BRANCH}-next", mine, expected=first, fast_forward_only=False)
    assert repo.branch_head(f"{BRANCH}-next") == theirs


def test_unknown_commits_are_git_errors(harness: GitHarness) -> None:
    with pytest.raises(GitError):
        harness.repo.commit_info("0" * 40)
    with pytest.raises(GitError):
        harness.repo.is_ancestor("0" * 40, _main(harness.repo))


def test_the_url_names_the_repository_without_credentials(harness: GitHarness) -> None:
    url = harness.repo.url
    assert url
    assert "@" not in url.split("://", 1)[-1].split("/", 1)[0]


def test_tree_of_is_the_tree_a_commit_of_those_files_has(harness: GitHarness) -> None:
    repo = harness.repo
    files = {"serving/deployment.yaml": b"kind: Deployment\n", "hydrator.metadata": b"{}\n"}
    sha = _commit(repo, files, [_main(repo)])
    assert repo.tree_of(files) == repo.tree_id(sha)
    assert repo.tree_of({**files, "README.md": b"x"}) != repo.tree_id(sha)
    assert repo.branch_head(BRANCH) is None  # no commit, no ref


def test_branch_heads_is_what_branch_head_says_of_every_branch(harness: GitHarness) -> None:
    repo = harness.repo
    first = _commit(repo, {"v": b"1"}, [_main(repo)])
    repo.update_branch(BRANCH, first, expected=None, fast_forward_only=True)
    repo.update_branch(f"{BRANCH}-next", first, expected=None, fast_forward_only=False)
    heads = repo.branch_heads()
    assert heads == {"main": _main(repo), BRANCH: first, f"{BRANCH}-next": first}
    assert all(repo.branch_head(branch) == sha for branch, sha in heads.items())
    # A branch that moves is read again, never remembered.
    second = _commit(repo, {"v": b"2"}, [first])
    repo.update_branch(BRANCH, second, expected=first, fast_forward_only=True)
    assert repo.branch_heads()[BRANCH] == second


def test_read_files_answers_as_read_file_does_in_order(harness: GitHarness) -> None:
    repo = harness.repo
    one = _commit(repo, {"hydrator.metadata": b"one\n", "serving/a b.yaml": b"kind: A\n"},
                  [_main(repo)])
    two = _commit(repo, {"hydrator.metadata": b"two\n" * 5000}, [one])
    wanted = [(one, "hydrator.metadata"), (two, "hydrator.metadata"),
              (one, "serving/a b.yaml"), (one, "serving"), (two, "serving/a b.yaml"),
              (one, "hydrator.metadata"), (_main(repo), "README.md")]
    expected = [repo.read_file(c, p) for c, p in wanted]
    assert expected[:5] == [b"one\n", b"two\n" * 5000, b"kind: A\n", None, None]
    assert repo.read_files(wanted) == expected
    assert repo.read_files(wanted) == expected  # the second time from what was kept
    assert repo.read_files([]) == []


def test_read_files_refuses_an_unknown_commit_or_a_bad_path(harness: GitHarness) -> None:
    repo = harness.repo
    with pytest.raises(GitError):
        repo.read_files([(_main(repo), "README.md"), ("0" * 40, "hydrator.metadata")])
    with pytest.raises(GitError):
        repo.read_files([(_main(repo), "../README.md")])


def test_reads_by_branch_name_follow_the_branch(harness: GitHarness) -> None:
    """What is kept is keyed by full object ids: a read by branch name after the branch moved
    answers for the new head, never the one read before."""
    repo = harness.repo
    first = _commit(repo, {"v": b"1"}, [_main(repo)])
    repo.update_branch(BRANCH, first, expected=None, fast_forward_only=True)
    assert repo.read_file(BRANCH, "v") == b"1"
    assert repo.read_files([(BRANCH, "v")]) == [b"1"]
    assert repo.commit_info(BRANCH).sha == first
    assert repo.is_ancestor(BRANCH, first)
    second = _commit(repo, {"v": b"2"}, [first])
    repo.update_branch(BRANCH, second, expected=first, fast_forward_only=True)
    assert repo.read_file(BRANCH, "v") == b"2"
    assert repo.read_files([(BRANCH, "v")]) == [b"2"]
    assert repo.commit_info(BRANCH).sha == second
    assert repo.tree_id(BRANCH) == repo.tree_id(second)
    assert not repo.is_ancestor(BRANCH, first)
