"""`promoter serve` wiring: secrets from the environment, config defaults, flags win."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from promoter.cli import Context
from promoter.cli.serve import github_repository, serve
from tests.promotion.fakes import ScriptedEvaluator
from tests.promotion.world import World


def cli_with(config: Path) -> click.Group:
    @click.group()
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = Context(str(config))

    cli.add_command(serve)
    return cli


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def test_serve_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    result = CliRunner().invoke(cli_with(world.root / "promoter.yaml"), ["serve"])
    assert result.exit_code == 2
    assert "PROMOTER_WEBHOOK_SECRET is not set" in result.output
    assert "fix: export PROMOTER_WEBHOOK_SECRET=" in result.output


def test_serve_wires_the_app_from_config_and_flags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uvicorn_calls: list[dict[str, Any]],
        restore_logging: None) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    monkeypatch.setenv("HOOK_SECRET", "s3cret-value")
    monkeypatch.setenv("PROMOTER_API_TOKEN", "tok-value")
    result = CliRunner().invoke(cli_with(world.root / "promoter.yaml"), [
        "serve", "--port", "0", "--webhook-secret-env", "HOOK_SECRET",
        "--repository", "acme/ml-gitops", "--log-format", "json"])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert (call["host"], call["port"], call["access_log"]) == ("127.0.0.1", 0, False)
    parts = call["app"].state.parts
    assert parts.webhook_secret == b"s3cret-value"
    assert parts.api_token == "tok-value"
    assert parts.repository == "acme/ml-gitops"
    assert parts.dry_branch == "main"


@pytest.mark.parametrize(("url", "name"), [
    ("https://github.com/acme/ml-gitops.git", "acme/ml-gitops"),
    ("https://github.com/acme/ml-gitops", "acme/ml-gitops"),
    ("git@github.com:acme/ml-gitops.git", "acme/ml-gitops"),
    (".", None),
    ("https://gitlab.com/acme/ml-gitops.git", None),
])
def test_github_repository(url: str, name: str | None) -> None:
    assert github_repository(url) == name
