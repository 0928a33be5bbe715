"""Test-wide setup: an isolated git identity and config, and the shared fixture plugins.

Every test runs with its own HOME and without the system git config, so a developer's or CI's
git settings (signing, hooks, default branch) never change what a test sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.demo",
    "tests.fixtures.git",
    "tests.fixtures.kubernetes",
    "tests.fixtures.models",
    "tests.fixtures.object_stores",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def isolate_git(patch: pytest.MonkeyPatch, home: Path) -> Path:
    """Through `patch`: `home` (given a test identity and `main` as the default branch) as
    HOME, no system git config, no prompts, and none of promoter's own settings; `home`.

    Every test gets this (`isolated_git`); a module- or session-scoped fixture, which runs
    before that per-test fixture, calls it itself within `pytest.MonkeyPatch.context()`."""
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Runner\n\temail = runner@example.test\n"
        "[init]\n\tdefaultBranch = main\n"
    )
    patch.setenv("HOME", str(home))
    patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    patch.setenv("GIT_TERMINAL_PROMPT", "0")
    patch.delenv("PROMOTER_CONFIG", raising=False)
    patch.delenv("PROMOTER_USER", raising=False)
    return home


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    return isolate_git(monkeypatch, tmp_path_factory.mktemp("home"))
