"""Exit codes and messages: a blocked promotion is a result (exit 0, or 1 with --exit-code),
a merge or write that git or the forge refused is a failure (exit 1, with the reason on
stderr); `health` logs one line of its own per attempt, not the HTTP client's retries."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from promoter.errors import GitError, NotMergeableError
from promoter.forge.local import LocalForge
from tests.cli.conftest import invoke
from tests.promotion.world import World


def _open_prod_promotion(world: World) -> int:
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    return result.pull_request.number


def test_a_blocked_promotion_is_reported_with_exit_0(cli_world: World) -> None:
    invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version", "3",
           "--as", "mia")
    result = invoke(cli_world, "reconcile")
    assert result.exit_code == 0, result.output
    assert "PR #1 churn v3 -> dev: blocked" in result.stdout
    assert "error:" not in result.output


def test_exit_code_option_makes_a_blocked_promotion_exit_1(cli_world: World) -> None:
    invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version", "3",
           "--as", "mia")
    result = invoke(cli_world, "reconcile", "--exit-code")
    assert result.exit_code == 1
    assert "PR #1 churn v3 -> dev: blocked" in result.stdout
    assert "error: blocked: PR #1 (dev) (--exit-code)" in result.stderr


def test_exit_code_option_passes_waiting_promotions(cli_world: World) -> None:
    _open_prod_promotion(cli_world)
    result = invoke(cli_world, "reconcile", "--exit-code")
    assert result.exit_code == 0, result.output
    assert "-> prod: waiting_for_approval" in result.stdout


def test_a_refused_merge_exits_1_with_the_reason(cli_world: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version", "1",
           "--as", "mia")

    def refuse(self: LocalForge, number: int, **kwargs: object) -> str:
        raise NotMergeableError(f"PR #{number} cannot be merged: its base moved",
                                fix="run reconcile again")

    monkeypatch.setattr(LocalForge, "merge", refuse)
    result = invoke(cli_world, "reconcile")
    assert result.exit_code == 1
    # Every gate passed: the phase says ready, and the error says why it is not merged.
    assert "PR #1 churn v1 -> dev: ready" in result.stdout
    assert "error: not merged: PR #1 cannot be merged: its base moved" in result.stdout
    assert ("error: PR #1 (dev): not merged: PR #1 cannot be merged: its base moved"
            in result.stderr)
    assert "fix: run reconcile again" in result.stderr


def test_git_refusing_a_promotion_exits_1_and_says_error_not_blocked(
        cli_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version", "1",
           "--as", "mia")

    def refuse(self: LocalForge, number: int) -> object:
        raise GitError("cannot lock ref 'refs/heads/environments/dev'",
                       fix="remove the stale .lock file")

    monkeypatch.setattr(LocalForge, "get_pull_request", refuse)
    result = invoke(cli_world, "reconcile")
    assert result.exit_code == 1
    assert "PR #1 (model unknown) -> dev: error" in result.stdout
    assert "blocked" not in result.stdout
    assert "error: PR #1 (dev): reconcile failed: cannot lock ref" in result.stderr


def test_health_logs_one_line_per_attempt_not_the_http_client_retries(
        cli_world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cli_world.promote("dev", 1)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(  # nothing listens on port 9 of this machine
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\n"
        "users:\n- name: u\n  user: {}\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
        "current-context: c\n")
    caplog.set_level(logging.DEBUG)
    result = invoke(cli_world, "health", "--env", "dev", "--kubeconfig", str(kubeconfig),
                    "--wait", "--timeout", "0.3", "--poll", "0.1")
    assert result.exit_code == 1, result.output
    assert "the API server is unreachable" in result.stderr
    retries = [r for r in caplog.records if r.name.startswith("urllib3")
               and r.levelno >= logging.WARNING]
    assert retries == []
    attempts = [r for r in caplog.records if r.name == "promoter.cluster.wait"
                and "cluster unreachable, retrying" in r.getMessage()]
    assert 1 <= len(attempts) <= 5
