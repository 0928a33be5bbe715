"""One `forge_harness` fixture, parametrized over every `Forge` implementation.

To hold a new forge to the contract, add a fixture returning its `ForgeHarness` here and put
its name in `FORGES`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promoter.forge.instrumented import instrument_forge
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from tests.contract.harness import ForgeHarness, GitHarness, GitHubHarness
from tests.github.fixtures import running_fake, token_forge

FORGES = ["local_forge_harness", "github_forge_harness", "instrumented_forge_harness"]


@pytest.fixture
def local_forge_harness(tmp_path: Path, git_repo: Path,
                        gitops_repo: LocalGitRepository) -> ForgeHarness:
    forge = LocalForge(tmp_path / "forge" / "forge.sqlite", gitops_repo)
    return GitHarness(forge=forge, recorder=forge, repo=gitops_repo, path=git_repo)


@pytest.fixture
def instrumented_forge_harness(tmp_path: Path, git_repo: Path,
                               gitops_repo: LocalGitRepository) -> ForgeHarness:
    """LocalForge inside the metrics wrapper `promoter serve` installs: a decorator must keep
    the contract (and the ReviewRecorder capability) of what it wraps."""
    forge = instrument_forge(LocalForge(tmp_path / "forge" / "forge.sqlite", gitops_repo),
                             on_call=lambda operation, result, seconds: None)
    assert forge.capabilities.reviews is not None
    return GitHarness(forge=forge, recorder=forge.capabilities.reviews, repo=gitops_repo,
                      path=git_repo)


@pytest.fixture
def github_forge_harness(git_repo: Path, gitops_repo: LocalGitRepository
                         ) -> Iterator[ForgeHarness]:
    """`GitHubForge` (real PyGithub) against the fake GitHub API over `git_repo`; every
    response the fake sends is validated against GitHub's OpenAPI description."""
    with running_fake(git_repo) as fake:
        yield GitHubHarness(forge=token_forge(fake), recorder=None, repo=gitops_repo,
                            path=git_repo, fake=fake)


@pytest.fixture(params=FORGES, ids=lambda name: name.removesuffix("_forge_harness"))
def forge_harness(request: pytest.FixtureRequest) -> ForgeHarness:
    harness: ForgeHarness = request.getfixturevalue(request.param)
    return harness


RECORDER_FORGES = ["local_forge_harness", "instrumented_forge_harness"]
"""Forges that take reviews through the port (`ReviewRecorder`); on GitHub people review on
the site, so the GitHub adapter deliberately does not implement it."""


@pytest.fixture(params=RECORDER_FORGES, ids=lambda name: name.removesuffix("_forge_harness"))
def recorder_harness(request: pytest.FixtureRequest) -> ForgeHarness:
    harness: ForgeHarness = request.getfixturevalue(request.param)
    assert harness.recorder is not None
    return harness
