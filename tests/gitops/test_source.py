"""`GitTreeSource`: configuration read from one pinned commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.config.loader import DirectorySource, load_dry_config, load_settings
from promoter.errors import ConfigError, GitError
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.source import GitTreeSource
from tests.conftest import REPO_ROOT
from tests.fixtures.git import push_commit, run_git

DRY = {
    "promoter.yaml": b"environments: [dev]\n",
    "environments/dev.yaml": b"branch: environments/dev\n",
    "manifests/serving/deployment.yaml": b"kind: Deployment\n",
    "manifests/training/job.yaml": b"kind: Job\n",
}


@pytest.fixture
def dry_sha(gitops_repo: LocalGitRepository) -> str:
    return push_commit(gitops_repo, "dry", DRY, onto="main")


def test_reads_and_lists_at_the_pinned_commit(gitops_repo: LocalGitRepository,
                                              dry_sha: str) -> None:
    source = GitTreeSource.at_branch(gitops_repo, "dry")
    assert source.commit == dry_sha
    assert source.read_text("environments/dev.yaml") == "branch: environments/dev\n"
    assert source.read_text("environments/prod.yaml") is None
    assert source.list_files("manifests") == [
        "manifests/serving/deployment.yaml", "manifests/training/job.yaml"]
    assert source.list_files("manifests/") == source.list_files("manifests")
    assert source.list_files("policies") == []

    # The branch moves on; the source still reads the commit it was pinned to.
    push_commit(gitops_repo, "dry", {"environments/dev.yaml": b"branch: changed\n"})
    assert source.read_text("environments/dev.yaml") == "branch: environments/dev\n"


def test_describe_names_branch_and_short_sha(gitops_repo: LocalGitRepository,
                                             dry_sha: str) -> None:
    assert GitTreeSource.at_branch(gitops_repo, "dry").describe() == f"dry@{dry_sha[:7]}"
    assert GitTreeSource(gitops_repo, dry_sha).describe() == dry_sha[:7]


def test_missing_branch_is_a_git_error(gitops_repo: LocalGitRepository) -> None:
    with pytest.raises(GitError, match="'nope' does not exist") as info:
        GitTreeSource.at_branch(gitops_repo, "nope")
    assert info.value.fix


def test_non_utf8_file_is_a_config_error(gitops_repo: LocalGitRepository,
                                         git_repo: Path) -> None:
    sha = push_commit(gitops_repo, "dry", {"environments/dev.yaml": b"\xff\xfe"}, onto="main")
    source = GitTreeSource(gitops_repo, sha, "dry")
    with pytest.raises(ConfigError, match=r"environments/dev.yaml \(dry@.*not UTF-8"):
        source.read_text("environments/dev.yaml")
    assert run_git(git_repo, "rev-parse", "dry") == sha


def test_loads_the_same_dry_config_as_the_directory(gitops_repo: LocalGitRepository) -> None:
    dry_files = {p.relative_to(REPO_ROOT).as_posix(): p.read_bytes()
                 for top in ("environments", "policies", "manifests")
                 for p in sorted((REPO_ROOT / top).rglob("*")) if p.is_file()}
    push_commit(gitops_repo, "dry", dry_files, onto="main")
    settings = load_settings(REPO_ROOT / "promoter.yaml").settings

    from_git = load_dry_config(GitTreeSource.at_branch(gitops_repo, "dry"), settings)
    from_directory = load_dry_config(DirectorySource(REPO_ROOT), settings)
    assert from_git.environments == from_directory.environments
    assert from_git.policies == from_directory.policies
    assert from_git.templates == from_directory.templates
    assert from_git.source.startswith("dry@")
