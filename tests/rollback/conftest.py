"""A promoted world, built once and copied per test: promotions go through the real service
and forge (seconds each), so building dev v1 -> v2 -> v3 for every test would be slow.

- `world_at(*versions)` -> World: a private copy of the session's world in which dev's branch
  is where it was right after promoting the last of `versions` (which must be a prefix of
  1, 2, 3); `()` means no environment branch yet. The service, forge and git are real.
- `heads` -> {version: environment branch head right after promoting it}.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World

VERSIONS = (1, 2, 3)
BRANCH = "environments/dev"


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str]]:
    home = tmp_path_factory.mktemp("template-home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Runner\n\temail = runner@example.test\n"
        "[init]\n\tdefaultBranch = main\n")
    with pytest.MonkeyPatch.context() as patch:  # the same isolation as conftest's isolated_git
        patch.setenv("HOME", str(home))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        patch.setenv("GIT_TERMINAL_PROMPT", "0")
        patch.delenv("PROMOTER_CONFIG", raising=False)
        patch.delenv("PROMOTER_USER", raising=False)
        root = tmp_path_factory.mktemp("template") / "gitops"
        world = World(root, ScriptedEvaluator())
        first = _git(root, "rev-parse", "main")
        heads = {}
        for version in VERSIONS:
            world.promote("dev", version)
            heads[version] = _git(root, "rev-parse", BRANCH)
    assert first
    return root, heads


@pytest.fixture
def heads(_template: tuple[Path, dict[int, str]]) -> dict[int, str]:
    return dict(_template[1])


@pytest.fixture
def world_at(_template: tuple[Path, dict[int, str]],
             tmp_path: Path) -> Callable[..., World]:
    def make(*versions: int) -> World:
        assert versions == VERSIONS[:len(versions)], versions
        template, heads = _template
        root = tmp_path / "gitops"
        shutil.copytree(template, root, symlinks=True)
        if versions:
            _git(root, "update-ref", f"refs/heads/{BRANCH}", heads[versions[-1]])
        else:
            _git(root, "update-ref", "-d", f"refs/heads/{BRANCH}")
            _git(root, "update-ref", "-d", f"refs/heads/{BRANCH}-next")
        world = World.__new__(World)  # the copied repository replaces World's own setup
        world.root = root
        world.evaluator = ScriptedEvaluator()
        world.service = world.build()
        return world

    return make


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()
