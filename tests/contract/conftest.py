"""One `forge_harness` fixture, parametrized over every `Forge` implementation.

To hold a new forge to the contract, add a fixture returning its `ForgeHarness` here and put
its name in `FORGES`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from tests.contract.harness import ForgeHarness, GitHarness
from tests.fakes.forge import FakeForge

FORGES = ["local_forge_harness", "fake_forge_harness"]


@pytest.fixture
def local_forge_harness(tmp_path: Path, git_repo: Path,
                        gitops_repo: LocalGitRepository) -> ForgeHarness:
    forge = LocalForge(tmp_path / "forge" / "forge.sqlite", gitops_repo)
    return GitHarness(forge=forge, recorder=forge, repo=gitops_repo, path=git_repo)


@pytest.fixture
def fake_forge_harness(git_repo: Path, gitops_repo: LocalGitRepository) -> ForgeHarness:
    forge = FakeForge(gitops_repo)
    return GitHarness(forge=forge, recorder=forge, repo=gitops_repo, path=git_repo)


@pytest.fixture(params=FORGES, ids=lambda name: name.removesuffix("_forge_harness"))
def forge_harness(request: pytest.FixtureRequest) -> ForgeHarness:
    harness: ForgeHarness = request.getfixturevalue(request.param)
    return harness
