"""The `promoter` command: exit codes, messages, and that bad input writes nothing.

Runs the real CLI (click's runner, in process) against a real git repository. Commands that
score models are covered by tests/test_demo.py with real SavedModels.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promoter.cli import main
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, git, refs


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(world.root / "promoter.yaml"), *args])


def test_help_imports_neither_tensorflow_nor_numpy() -> None:
    """`promoter --help` and commands that never score stay fast: heavy imports are lazy."""
    code = ("import sys; from promoter.cli import main; "
            "main(['--help'], standalone_mode=False); "
            "print('HEAVY:', sorted(m for m in ('tensorflow', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "propose" in out
    assert out.strip().endswith("HEAVY: []")


def test_validate_accepts_the_example(world: World) -> None:
    result = run(world, "validate")
    assert result.exit_code == 0, result.output
    assert "environments/prod.yaml: ok" in result.output
    assert "policies/prod.yaml: ok" in result.output


def test_validate_reports_file_field_and_exit_2(world: World) -> None:
    path = world.root / "policies/prod.yaml"
    path.write_text(path.read_text().replace("min: 0.80", "min: high"))
    result = run(world, "validate")
    assert result.exit_code == 2
    assert ("error: policies/prod.yaml: evaluation.metrics[0].min: expected a number, "
            "got 'high'") in result.output


def test_validate_refuses_a_bad_cron_expression(world: World) -> None:
    path = world.root / "policies/prod.yaml"
    path.write_text(path.read_text() + "schedule:\n  windows:\n    - cron: '0 9 * * 5L'\n"
                    "      duration: 7h\n")
    result = run(world, "validate")
    assert result.exit_code == 2
    assert ("error: policies/prod.yaml: schedule.windows[0].cron: the day of week field '5L' "
            "is not valid; expected 0-7 or sun-sat") in result.output


def test_validate_refuses_the_dry_branch_as_an_environment_branch(world: World) -> None:
    path = world.root / "environments/prod.yaml"
    path.write_text(path.read_text().replace("branch: environments/prod", "branch: main"))
    result = run(world, "validate")
    assert result.exit_code == 2
    assert ("error: environments/prod.yaml: branch: the branch 'main' is the dry branch "
            "(repository.dryBranch in promoter.yaml)") in result.output
    assert "fix: give prod a branch of its own, e.g. environments/prod" in result.output


def test_validate_refuses_a_branch_git_would_refuse(world: World) -> None:
    path = world.root / "environments/dev.yaml"
    path.write_text(path.read_text().replace("branch: environments/dev",
                                             "branch: environments/.dev"))
    result = run(world, "validate")
    assert result.exit_code == 2
    assert ("error: environments/dev.yaml: branch: 'environments/.dev' is not usable as a git "
            "branch: the path component '.dev' starts with '.'") in result.output


def test_validate_refuses_a_holdout_placeholder_other_than_model(world: World) -> None:
    path = world.root / "environments/prod.yaml"
    path.write_text(path.read_text().replace("data/{model}-holdout-prod.csv", "data/{0}.csv"))
    result = run(world, "validate")
    assert result.exit_code == 2, result.output
    assert ("error: environments/prod.yaml: evaluation.holdout: 'data/{0}.csv' has the "
            "placeholder '{0}'") in result.output
    assert "fix: the only placeholder is {model}" in result.output
    assert "Traceback" not in result.output


def test_reconcile_refuses_a_holdout_placeholder_instead_of_crashing(world: World) -> None:
    world.commit_dry_change("environments/prod.yaml", "data/{model}-holdout-prod.csv",
                            "data/{unknown}.csv")
    result = run(world, "reconcile")
    assert result.exit_code == 2, result.output
    assert ("environments/prod.yaml: evaluation.holdout: 'data/{unknown}.csv' has the "
            "placeholder '{unknown}'") in result.output


def test_config_from_environment_variable(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTER_CONFIG", str(world.root / "promoter.yaml"))
    assert CliRunner().invoke(main, ["validate"]).exit_code == 0
    monkeypatch.setenv("PROMOTER_CONFIG", str(world.root / "missing.yaml"))
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 2
    assert "missing.yaml: file not found" in result.output


def test_render_is_deterministic_and_writes_files(world: World, tmp_path: Path) -> None:
    first = run(world, "render", "--env", "prod", "--model", "churn", "--version", "2")
    second = run(world, "render", "--env", "prod", "--model", "churn", "--version", "2")
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert "# Source: serving/" in first.output
    out = tmp_path / "out"
    result = run(world, "render", "--env", "prod", "--model", "churn", "--version", "2",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "kustomization.yaml").is_file()


def test_render_of_a_missing_version_writes_nothing(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(world, "render", "--env", "dev", "--model", "churn", "--version", "42",
                 "--out", str(out))
    assert result.exit_code == 2
    assert "version 42 not found" in result.output
    assert not out.exists()


def test_propose_and_status(world: World) -> None:
    result = run(world, "propose", "--env", "dev", "--model", "churn", "--version", "1",
                 "--as", "mia")
    assert result.exit_code == 0, result.output
    assert "PR #1 opened: promote churn v1" in result.output
    status = run(world, "status", "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    dev = data["environments"][0]
    assert dev["name"] == "dev"
    assert dev["deployed"] is None
    assert dev["openPromotion"]["number"] == 1
    assert dev["openPromotion"]["version"] == 1
    assert dev["openPromotion"]["author"] == "mia"
    assert dev["openPromotion"]["phase"] == "proposed"  # no gate has run yet
    assert "open: PR #1 churn v1 (proposed)" in run(world, "status").output


def test_propose_bad_input_exits_2_and_writes_nothing(world: World) -> None:
    before = refs(world.root)
    for args, message in [
        (["--env", "dev", "--model", "churn", "--version", "9"], "version 9 not found"),
        (["--env", "qa", "--model", "churn", "--version", "1"], "no environment named 'qa'"),
        (["--env", "staging", "--model", "churn", "--version", "1"],
         "nothing is deployed in dev"),
    ]:
        result = run(world, "propose", *args, "--as", "mia")
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert refs(world.root) == before


def test_approve_refuses_the_author_and_strangers(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    run(world, "propose", "--env", "prod", "--model", "churn", "--version", "1", "--as", "mia")
    number = world.forge.list_open_pull_requests()[0].number
    by_author = run(world, "approve", str(number), "--as", "mia")
    assert by_author.exit_code == 2
    assert "cannot approve it" in by_author.output
    stranger = run(world, "approve", str(number), "--as", "eve")
    assert stranger.exit_code == 2
    assert "rita, sam" in stranger.output
    ok = run(world, "approve", str(number), "--as", "rita")
    assert ok.exit_code == 0, ok.output
    assert f"rita approved PR #{number}" in ok.output


def test_approve_unknown_pull_request(world: World) -> None:
    result = run(world, "approve", "99", "--as", "rita")
    assert result.exit_code == 2
    assert "99" in result.output


def test_status_text(world: World) -> None:
    world.promote("dev", 1)
    result = run(world, "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("dev")
    assert "churn v1" in lines[0]
    assert git(world.root, "rev-parse", "environments/dev")[:12] in lines[0]
