from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import running_fake


@pytest.fixture
def fake_github(git_repo: Path) -> Iterator[FakeGitHub]:
    """The fake GitHub API over `git_repo`, every response validated at teardown."""
    with running_fake(git_repo) as fake:
        yield fake
