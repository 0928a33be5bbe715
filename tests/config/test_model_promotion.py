"""`models[].promotion` in promoter.yaml: defaults, and mistakes named by file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.config import load_settings
from promoter.errors import ConfigError


def with_promotion(root: Path, block: str) -> Path:
    path = root / "promoter.yaml"
    path.write_text(path.read_text().replace(
        "    labelColumn: churned\n", f"    labelColumn: churned\n    promotion:\n{block}"))
    return path


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.exit_code == 2
    return info.value


def test_the_example_proposes_nothing_by_itself(example: Path) -> None:
    """The demo must behave as before: every step waits for a person."""
    [model] = load_settings(example / "promoter.yaml").settings.models
    assert model.promotion.auto_propose == ()
    assert model.promotion.settle_seconds == 60.0


def test_auto_propose_and_settle_seconds_are_read(example: Path) -> None:
    path = with_promotion(example, "      autoPropose: [dev, staging]\n"
                                   "      settleSeconds: 5\n")
    [model] = load_settings(path).settings.models
    assert model.promotion.auto_propose == ("dev", "staging")
    assert model.promotion.settle_seconds == 5.0


def test_an_unknown_environment_names_the_file_the_field_and_the_fix(example: Path) -> None:
    path = with_promotion(example, "      autoPropose: [dev, qa]\n")
    err = error_of(path)
    assert str(err) == (f"{path}: models[0].promotion.autoPropose[1]: 'qa' is not an "
                        "environment\n  fix: use names from environments: dev, staging, prod")
    assert err.field == "models[0].promotion.autoPropose[1]"


@pytest.mark.parametrize(("block", "message"), [
    ("      autoPropose: dev\n", "models[0].promotion.autoPropose: expected a list"),
    ("      autoPropose: [Dev]\n",
     "models[0].promotion.autoPropose[0]: 'Dev' is not valid here"),
    ("      settleSeconds: -1\n", "models[0].promotion.settleSeconds: Input should be greater "
                                  "than or equal to 0"),
    ("      settleSeconds: soon\n", "models[0].promotion.settleSeconds: expected a number"),
    ("      autoPropse: [dev]\n", "models[0].promotion.autoPropse: unknown field"),
])
def test_other_mistakes_name_the_field(example: Path, block: str, message: str) -> None:
    path = with_promotion(example, block)
    assert f"{path}: {message}" in str(error_of(path))
