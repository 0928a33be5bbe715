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


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Runner\n\temail = runner@example.test\n"
        "[init]\n\tdefaultBranch = main\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.delenv("PROMOTER_CONFIG", raising=False)
    monkeypatch.delenv("PROMOTER_USER", raising=False)
    return home
