"""Promotions gated by real SavedModels scored in the real evaluation worker.

The same service the CLI builds (`wiring.build_service`), on a real git repository, with the
demo's trained models and holdouts. Slow (each evaluation starts TensorFlow in a child).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from promoter.config.loader import load_settings
from promoter.domain.pull_requests import StatusState
from promoter.promotion import PromotionService, PromotionState
from promoter.wiring import build_service
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, git, refs

pytestmark = pytest.mark.slow


@pytest.fixture
def real_world(tmp_path: Path, demo_store: dict[int, Path],
               demo_holdouts: dict[str, Path]) -> tuple[World, PromotionService]:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    shutil.rmtree(world.root / "models")
    for version, path in demo_store.items():
        shutil.copytree(path, world.root / "models" / "churn" / str(version))
    for env, path in demo_holdouts.items():
        shutil.copy2(path, world.root / "data" / f"churn-holdout-{env}.csv")
    return world, build_service(load_settings(world.root / "promoter.yaml"))


def test_better_model_replaces_the_deployed_one(
        real_world: tuple[World, PromotionService]) -> None:
    world, service = real_world
    world.promote("dev", 1)  # v1 deployed with a scripted verdict; v2 is judged for real
    result = service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.pull_request is not None
    outcome = service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.MERGED, outcome
    assert outcome.evaluated
    report = service.evaluation_report(result.pull_request.number) or ""
    assert "baseline" in report
    assert world.metadata("environments/dev")["promoter"]["version"] == 2


def test_worse_model_is_blocked_with_the_reason(
        real_world: tuple[World, PromotionService]) -> None:
    world, service = real_world
    world.promote("dev", 2)
    dev_before = git(world.root, "rev-parse", "environments/dev")
    result = service.propose(environment="dev", model="churn", version=3, author="mia")
    assert result.pull_request is not None
    outcome = service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    gate = next(g for g in outcome.gates if g.context == "promoter/evaluation")
    assert gate.state is StatusState.FAILURE
    assert "auc" in gate.description
    assert git(world.root, "rev-parse", "environments/dev") == dev_before


def test_holdout_that_does_not_match_the_signature(
        real_world: tuple[World, PromotionService]) -> None:
    world, service = real_world
    holdout = world.root / "data" / "churn-holdout-dev.csv"
    header, *rows = holdout.read_text().splitlines()
    holdout.write_text("\n".join([header.replace("support_calls", "calls"), *rows]) + "\n")
    result = service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    before = refs(world.root)
    outcome = service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    gate = next(g for g in outcome.gates if g.context == "promoter/evaluation")
    assert "support_calls" in gate.description
    report = service.evaluation_report(result.pull_request.number) or ""
    assert "support_calls" in report
    assert refs(world.root) == before


def test_a_candidate_swapped_while_it_is_evaluated_is_not_merged(
        real_world: tuple[World, PromotionService], demo_store: dict[int, Path]) -> None:
    """The worse v3 is proposed; the moment the evaluator takes its directory, the good v2's
    bytes are put there (and v3's put back after): the verdict must be void, not a pass."""
    from promoter.domain.model_versions import ModelVersion
    from promoter.model_store import LocalModelStore
    from promoter.promotion.evaluator import SubprocessEvaluator

    world, _ = real_world
    version_dir = world.root / "models" / "churn" / "3"

    class SwappingStore(LocalModelStore):
        swapped = False

        def local_path(self, version: ModelVersion) -> Path:
            path = super().local_path(version)
            if version.version == 3 and not self.swapped:
                self.swapped = True
                shutil.rmtree(path)
                shutil.copytree(demo_store[2], path)
            return path

    store = SwappingStore(world.root / "models")
    service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=world.service._ctx.repo,
        forge=world.forge, store=store, evaluator=SubprocessEvaluator(store))
    world.promote("dev", 2)
    result = service.propose(environment="dev", model="churn", version=3, author="mia")
    assert result.pull_request is not None
    outcome = service.reconcile_pull(result.pull_request.number)
    shutil.rmtree(version_dir)
    shutil.copytree(demo_store[3], version_dir)  # the attacker restores v3
    assert store.swapped
    assert outcome.state is PromotionState.BLOCKED, outcome
    gate = next(g for g in outcome.gates if g.context == "promoter/evaluation")
    assert gate.state is StatusState.FAILURE
    assert "changed while it was evaluated" in gate.description
    assert world.metadata("environments/dev")["promoter"]["version"] == 2
