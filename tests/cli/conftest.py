"""What the CLI tests share: a GitOps world whose `promoter` commands evaluate with the
scripted evaluator (the world's SavedModels are stand-ins without a graph)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promoter.cli import main
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World


@pytest.fixture(autouse=True)
def restore_logging_levels() -> Iterator[None]:
    """`promoter -v` sets the root logger's level, and every command urllib3's: put them back."""
    loggers = [logging.getLogger(), logging.getLogger("urllib3")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture
def evaluator(monkeypatch: pytest.MonkeyPatch) -> ScriptedEvaluator:
    """The evaluator every service the CLI builds uses; v3 fails its evaluation."""
    scripted = ScriptedEvaluator(failing_versions={3})
    monkeypatch.setattr("promoter.wiring.services.SubprocessEvaluator",
                        lambda store, pool=None, shards=None: scripted)
    return scripted


@pytest.fixture
def cli_world(tmp_path: Path, evaluator: ScriptedEvaluator) -> World:
    return World(tmp_path / "gitops", evaluator)


def invoke(world: World, *args: str, before: bool = True) -> Result:
    """`promoter --config <world> ARGS` (or `promoter ARGS --config <world>`)."""
    config = ["--config", str(world.root / "promoter.yaml")]
    return CliRunner().invoke(main, [*config, *args] if before else [*args, *config])
