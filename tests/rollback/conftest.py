"""A promoted world, built once and copied per test: promotions go through the real service
and forge (seconds each), so building dev v1 -> v2 -> v3 for every test would be slow.

- `world_at(*versions)` -> World: a private copy of the session's world in which dev's branch
  is where it was right after promoting the last of `versions` (which must be a prefix of
  1, 2, 3); `()` means no environment branch yet. The service, forge and git are real.
- `heads` -> {version: environment branch head right after promoting it}.

`dev_target(world)` is what dev's delivery reads; `flux_reports(world, api, ...)` puts dev's
GitRepository and Kustomizations at the branch head on the fake API server.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from promoter.cluster import DeliveryTarget
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import (
    OLD,
    applied,
    git_repository,
    kustomization,
    training_kustomization,
)
from tests.conftest import isolate_git
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World

VERSIONS = (1, 2, 3)
BRANCH = "environments/dev"


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str]]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_git(patch, tmp_path_factory.mktemp("template-home"))
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


def dev_target(world: World) -> DeliveryTarget:
    """The Flux or Argo CD objects dev's delivery reads."""
    return DeliveryTarget.of(world.service.dry_config()[1].environment("dev"))


def flux_reports(world: World, api: FakeKubernetesApi, *, serving_failed: bool = False,
                 training: str | None = None) -> str:
    """Put dev's Flux objects on `api` at the environment branch head; the head.

    Serving applied and healthy, or, with `serving_failed`, its health check timed out on the
    Deployment; training applied, or in the `FLUX_TRAINING` state `training`."""
    head = _git(world.root, "rev-parse", BRANCH)
    target = dev_target(world)
    assert target.training is not None
    api.put(target.git_repository, git_repository(commit=head))
    api.put(target.kustomization, kustomization(
        attempted=head, applied=OLD,
        ready=("False", "HealthCheckFailed", "timeout waiting for: [Deployment/ml-dev/churn]"),
        healthy=("False", "HealthCheckFailed", "timeout")) if serving_failed else applied(head))
    api.put(target.training, applied(head, name=target.training.name) if training is None
            else training_kustomization(head, training))
    return head
