"""`promoter evaluate` takes the model's settings from promoter.yaml (the README's command ran
with the defaults before, and exited 2 on the demo's `churned` label column). What is scored
is tested with real SavedModels in tests/evaluation/test_cli.py and by the README's command
(tests/cli/test_readme.py); here the scoring is replaced, to see the settings it gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from promoter.cli import main
from promoter.config.schema import ModelSpec
from tests.promotion.world import World


class _Report:
    passed = True

    def to_markdown(self) -> str:
        return "### ✅ Evaluation passed\n"

    def to_json_dict(self) -> dict[str, Any]:
        return {"passed": True}


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> list[ModelSpec]:
    specs: list[ModelSpec] = []

    def evaluate_models(*, model: ModelSpec, **kwargs: Any) -> _Report:
        specs.append(model)
        return _Report()

    monkeypatch.setattr("promoter.evaluation.evaluate_models", evaluate_models)
    return specs


@pytest.fixture
def world(tmp_path: Path) -> World:
    from tests.fakes.scripted import ScriptedEvaluator

    return World(tmp_path / "gitops", ScriptedEvaluator())


def _evaluate(world: World, *args: str) -> Result:
    holdout = str(world.root / "data" / "churn-holdout-prod.csv")
    return CliRunner().invoke(main, ["evaluate", "--holdout", holdout, *args],
                              catch_exceptions=False)


def test_the_store_layout_names_the_model(world: World, scored: list[ModelSpec],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world.root)  # ./promoter.yaml, as in the README
    result = _evaluate(world, "--model-dir", "models/churn/2", "--baseline-dir",
                       "models/churn/1")
    assert result.exit_code == 0, result.output
    [spec] = scored
    assert (spec.name, spec.label_column, spec.output) == ("churn", "churned", "probability")


def test_options_on_the_command_line_win(world: World, scored: list[ModelSpec]) -> None:
    result = _evaluate(world, "--config", str(world.root / "promoter.yaml"), "--model-dir",
                       str(world.root / "models" / "churn" / "2"), "--label-column", "y",
                       "--threshold", "0.3")
    assert result.exit_code == 0, result.output
    [spec] = scored
    assert (spec.label_column, spec.threshold, spec.output) == ("y", 0.3, "probability")


def test_model_option_for_a_directory_outside_the_store(world: World, scored: list[ModelSpec],
                                                        tmp_path: Path) -> None:
    elsewhere = tmp_path / "exported"
    (world.root / "models" / "churn" / "2").rename(elsewhere)
    config = str(world.root / "promoter.yaml")
    _evaluate(world, "--config", config, "--model-dir", str(elsewhere))
    _evaluate(world, "--config", config, "--model-dir", str(elsewhere), "--model", "churn")
    assert [(s.name, s.label_column) for s in scored] == [("exported", "label"),
                                                          ("churn", "churned")]


def test_an_unknown_model_is_bad_input(world: World, scored: list[ModelSpec]) -> None:
    result = _evaluate(world, "--config", str(world.root / "promoter.yaml"), "--model-dir",
                       str(world.root / "models" / "churn" / "2"), "--model", "fraud")
    assert result.exit_code == 2
    assert "promoter.yaml: models: no model named 'fraud'" in result.stderr
    assert "fix: --model takes one of: churn" in result.stderr
    assert scored == []


def test_model_option_without_a_promoter_yaml(world: World, scored: list[ModelSpec],
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _evaluate(world, "--model-dir", str(world.root / "models" / "churn" / "2"),
                       "--model", "churn")
    assert result.exit_code == 2
    assert f"{tmp_path / 'promoter.yaml'}: file not found" in result.stderr
