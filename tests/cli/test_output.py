"""`-o text|json|yaml` on every reporting command, JSON errors, and global options before or
after the subcommand."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from promoter.cli import main
from tests.cli.conftest import invoke
from tests.promotion.world import World


def _promoted_to_staging(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)


@pytest.mark.parametrize("fmt", ["-o json", "--output json", "--json", "-ojson",
                                 "--output=json"])
def test_every_spelling_of_json(cli_world: World, fmt: str) -> None:
    result = invoke(cli_world, "status", *fmt.split())
    assert result.exit_code == 0, result.output
    assert [e["name"] for e in json.loads(result.stdout)["environments"]] == [
        "dev", "staging", "prod"]


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_global_options_before_or_after_the_subcommand(cli_world: World, before: bool,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./promoter.yaml: only --config can name it
    args = ["-o", "yaml", "-v", "status"] if before else ["status", "-o", "yaml", "-v"]
    result = invoke(cli_world, *args, before=before)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["environments"][0]["name"] == "dev"
    assert logging.getLogger().level == logging.INFO


def test_the_later_format_wins(cli_world: World) -> None:
    result = invoke(cli_world, "-o", "yaml", "status", "-o", "json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)


def test_every_reporting_command_answers_json(cli_world: World) -> None:
    _promoted_to_staging(cli_world)
    cli_world.promote("dev", 2)  # so dev has an earlier deployment to roll back to
    runs = {
        "validate": ["validate"],
        "propose": ["propose", "--env", "prod", "--model", "churn", "--version", "1",
                    "--as", "mia"],
        "reconcile": ["reconcile"],
        "approve": ["approve", "4", "--as", "rita"],
        "status": ["status"],
        "rollback": ["rollback", "--env", "dev", "--dry-run"],
        "discover": ["discover"],
    }
    documents = {}
    for name, args in runs.items():
        result = invoke(cli_world, *args, "-o", "json")
        assert result.exit_code == 0, (name, result.output)
        assert result.stderr == "", (name, result.stderr)
        documents[name] = json.loads(result.stdout)
    assert documents["validate"]["valid"] is True
    assert documents["propose"]["pullRequest"]["number"] == 4
    assert documents["propose"]["outcome"] == "opened"
    [promotion] = documents["reconcile"]["promotions"]
    assert (promotion["pullRequest"], promotion["phase"]) == (4, "waiting_for_approval")
    assert [g["context"] for g in promotion["gates"]] == [
        "promoter/upstream", "promoter/evaluation", "promoter/approvals"]
    assert documents["approve"]["user"] == "rita"
    assert documents["approve"]["state"] == "APPROVED"
    assert documents["rollback"]["dryRun"] is True
    assert (documents["rollback"]["current"]["version"],
            documents["rollback"]["restores"]["version"]) == (2, 1)
    assert documents["discover"] == {"enabled": False, "dryRun": False, "proposals": [],
                                     "held": []}


def test_yaml_is_the_same_document(cli_world: World) -> None:
    _promoted_to_staging(cli_world)
    as_json = json.loads(invoke(cli_world, "status", "-o", "json").stdout)
    as_yaml = yaml.safe_load(invoke(cli_world, "status", "-o", "yaml").stdout)
    assert as_yaml == as_json


def test_errors_in_json_mode_are_json_on_stderr(cli_world: World) -> None:
    result = invoke(cli_world, "propose", "--env", "qa", "--model", "churn", "--version", "1",
                    "--as", "mia", "-o", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    error = json.loads(result.stderr)
    text = invoke(cli_world, "propose", "--env", "qa", "--model", "churn", "--version", "1",
                  "--as", "mia")
    # The same fields as the text: `error: MESSAGE` and `  fix: FIX`.
    assert text.stderr == f"error: {error['error']}\n  fix: {error['fix']}\n"
    assert (error["kind"], error["exitCode"]) == ("ConfigError", 2)


def test_usage_errors_in_json_mode_are_json_too(cli_world: World) -> None:
    result = invoke(cli_world, "status", "--no-such-option", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert "No such option" in error["error"]
    assert "--no-such-option" in error["error"]
    assert error["kind"] == "NoSuchOption"


def test_a_command_without_a_report_refuses_a_format(cli_world: World) -> None:
    result = invoke(cli_world, "-o", "json", "render", "--env", "dev", "--model", "churn",
                    "--version", "1")
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"].startswith("promoter render has no -o json")


def test_evaluate_keeps_output_for_the_signature_and_refuses_a_format_there() -> None:
    result = CliRunner().invoke(main, ["evaluate", "--model-dir", ".", "--holdout", "h.csv",
                                       "--output", "json"])
    assert result.exit_code == 2
    assert "error: --output json: evaluate's --output names the signature output" in \
        result.stderr
    assert "fix: for the report's format use -o json" in result.stderr


def test_status_filters_by_environment_and_model(cli_world: World) -> None:
    _promoted_to_staging(cli_world)
    only = invoke(cli_world, "status", "--env", "staging", "--env", "prod", "-o", "json")
    assert [e["name"] for e in json.loads(only.stdout)["environments"]] == ["staging", "prod"]
    text = invoke(cli_world, "status", "--env", "staging")
    assert text.stdout.startswith("staging ")
    assert "dev " not in text.stdout
    by_model = invoke(cli_world, "status", "--model", "churn", "-o", "json")
    # prod runs nothing and is offered nothing: not shown for the model.
    assert [e["name"] for e in json.loads(by_model.stdout)["environments"]] == [
        "dev", "staging"]
    unknown = invoke(cli_world, "status", "--env", "qa")
    assert unknown.exit_code == 2
    assert "error: --env qa: no environment named 'qa'" in unknown.stderr
    assert "fix: use one of: dev, staging, prod" in unknown.stderr
    model = invoke(cli_world, "status", "--model", "fraud")
    assert model.exit_code == 2
    assert "no model named 'fraud' in promoter.yaml" in model.stderr


def test_reconcile_and_status_use_the_same_phase_names_and_gate_order(
        cli_world: World) -> None:
    _promoted_to_staging(cli_world)
    invoke(cli_world, "propose", "--env", "prod", "--model", "churn", "--version", "1",
           "--as", "mia")
    reconciled = invoke(cli_world, "reconcile")
    status = invoke(cli_world, "status", "--env", "prod")
    assert "PR #3 churn v1 -> prod: waiting_for_approval" in reconciled.stdout
    assert "open: PR #3 churn v1 (waiting_for_approval)" in status.stdout
    assert ": waiting\n" not in reconciled.stdout

    def gates(text: str) -> list[str]:
        return [line.split(": ")[0].split()[-1] for line in text.splitlines()
                if "promoter/" in line]

    assert gates(reconciled.stdout) == gates(status.stdout) == [
        "promoter/upstream", "promoter/evaluation", "promoter/approvals"]
