"""`promoter serve` wiring: secrets from the environment and files, config defaults, flags
win, and refusals at start (exit 2) for what would run with the wrong credentials."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from promoter.cli import Context
from promoter.cli.serve import serve
from promoter.config.loader import load_settings
from promoter.server.tokens import hash_token
from promoter.wiring import ServeOptions, build_server, github_repository
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World
from tests.server.support import RITA_TOKEN, SAM_TOKEN


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

    def run(server: uvicorn.Server) -> None:  # `Server.run` serves through uvicorn.Server
        config = server.config
        calls.append({"app": config.app, "host": config.host, "port": config.port,
                      "access_log": config.access_log, "server": server})

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return calls


def test_serve_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    result = CliRunner().invoke(cli_with(world.root / "promoter.yaml"), ["serve"])
    assert result.exit_code == 2
    assert "PROMOTER_WEBHOOK_SECRET is not set" in result.output
    assert "fix: export PROMOTER_WEBHOOK_SECRET=" in result.output


def tokens_file(directory: Path) -> Path:
    path = directory / "api-tokens"
    path.write_text(f"# release managers\nrita: {hash_token(RITA_TOKEN)}\n"
                    f"sam: {hash_token(SAM_TOKEN)}\n")
    return path


def test_serve_wires_the_app_from_config_and_flags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uvicorn_calls: list[dict[str, Any]],
        restore_logging: None) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    monkeypatch.setenv("HOOK_SECRET", "s3cret-value")
    monkeypatch.delenv("PROMOTER_API_TOKEN", raising=False)
    secret_dir = tmp_path / "secret-mount-7f3a"
    secret_dir.mkdir()
    monkeypatch.setenv("PROMOTER_API_TOKENS_FILE", str(tokens_file(secret_dir)))
    result = CliRunner().invoke(cli_with(world.root / "promoter.yaml"), [
        "serve", "--port", "0", "--webhook-secret-env", "HOOK_SECRET",
        "--repository", "acme/ml-gitops", "--log-format", "json"])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert (call["host"], call["port"], call["access_log"]) == ("127.0.0.1", 0, False)
    parts = call["app"].state.parts
    assert parts.webhook_secret == b"s3cret-value"
    assert parts.api_tokens.users == ("rita", "sam")
    assert parts.api_tokens.user_for(SAM_TOKEN) == "sam"
    assert parts.repository == "acme/ml-gitops"
    assert parts.dry_branch == "main"
    # A signal ends the dashboard's event streams first, so open pages do not hold the
    # shutdown (uvicorn waits for responses in flight).
    feed = call["app"].state.dashboard.feed
    assert not feed.closed
    call["server"].handle_exit(signal.SIGTERM, None)
    assert feed.closed
    # Who may approve is logged; where the tokens are and what they hash to is not.
    assert "2 token(s) for rita, sam" in result.output
    assert "secret-mount-7f3a" not in result.output
    assert hash_token(RITA_TOKEN)[7:19] not in result.output


def test_the_tokens_file_of_promoter_yaml_is_relative_to_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uvicorn_calls: list[dict[str, Any]],
        restore_logging: None) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    config = world.root / "promoter.yaml"
    config.write_text(config.read_text() + "\nservice:\n  apiTokensFile: secrets/api-tokens\n")
    (world.root / "secrets").mkdir()
    tokens_file(world.root / "secrets")
    monkeypatch.setenv("PROMOTER_WEBHOOK_SECRET", "s3cret-value")
    monkeypatch.delenv("PROMOTER_API_TOKEN", raising=False)
    monkeypatch.delenv("PROMOTER_API_TOKENS_FILE", raising=False)
    result = CliRunner().invoke(cli_with(config), ["serve", "--log-format", "json"])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[0]["app"].state.parts.api_tokens.user_for(RITA_TOKEN) == "rita"


def test_serve_refuses_the_old_shared_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        uvicorn_calls: list[dict[str, Any]]) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    monkeypatch.setenv("PROMOTER_WEBHOOK_SECRET", "s3cret-value")
    monkeypatch.setenv("PROMOTER_API_TOKEN", "tok-value-0123456789")
    result = CliRunner().invoke(cli_with(world.root / "promoter.yaml"), ["serve"])
    assert result.exit_code == 2
    assert "$PROMOTER_API_TOKEN is set, but one shared API token is no longer accepted" \
        in result.output
    assert "promoter token new USER" in result.output
    assert "unset PROMOTER_API_TOKEN" in result.output
    assert "tok-value-0123456789" not in result.output
    legacy_flag = CliRunner().invoke(cli_with(world.root / "promoter.yaml"),
                                     ["serve", "--api-token-env", "MY_TOKEN"])
    assert legacy_flag.exit_code == 2
    assert "--api-token-env is no longer an option" in legacy_flag.output
    assert uvicorn_calls == []


def test_serve_refuses_a_bad_tokens_file_naming_file_and_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        uvicorn_calls: list[dict[str, Any]]) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    path = tmp_path / "api-tokens"
    path.write_text(f"rita: {hash_token(RITA_TOKEN)}\nsam: {SAM_TOKEN}\n")  # sam's is plain
    monkeypatch.setenv("PROMOTER_WEBHOOK_SECRET", "s3cret-value")
    monkeypatch.delenv("PROMOTER_API_TOKEN", raising=False)
    monkeypatch.setenv("PROMOTER_API_TOKENS_FILE", str(path))
    result = CliRunner().invoke(cli_with(world.root / "promoter.yaml"), ["serve"])
    assert result.exit_code == 2
    assert f"error: {path}: line 2: sam's value is not `sha256:<hex>`" in result.output
    assert "fix: replace it by the output of `printf %s \"$TOKEN\" | promoter token hash`" \
        in result.output
    assert SAM_TOKEN not in result.output
    assert uvicorn_calls == []


@pytest.mark.parametrize(("url", "name"), [
    ("https://github.com/acme/ml-gitops.git", "acme/ml-gitops"),
    ("https://github.com/acme/ml-gitops", "acme/ml-gitops"),
    ("git@github.com:acme/ml-gitops.git", "acme/ml-gitops"),
    (".", None),
    ("https://gitlab.com/acme/ml-gitops.git", None),
])
def test_github_repository(url: str, name: str | None) -> None:
    assert github_repository(url) == name


def test_build_server_composes_from_promoter_yaml_and_the_given_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    monkeypatch.delenv("PROMOTER_WEBHOOK_SECRET", raising=False)
    environ = {"PROMOTER_WEBHOOK_SECRET": "from-the-mapping",
               "PROMOTER_API_TOKENS_FILE": str(tokens_file(tmp_path))}
    server = build_server(load_settings(world.root / "promoter.yaml"),
                          ServeOptions(port=0, workers=2, log_format="text"), environ=environ)
    assert (server.host, server.port, server.access_log) == ("127.0.0.1", 0, False)
    parts = server.app.state.parts
    assert parts.webhook_secret == b"from-the-mapping"
    assert parts.api_tokens.users == ("rita", "sam")
    assert parts.repository is None  # a local repository: webhooks of any repository
    # One registry: the service's forge reports to the app's /metrics.
    parts.service.status()
    exposition = parts.metrics.exposition().decode()
    assert "promoter_forge_calls_total" in exposition
    # The DORA gauges read the service's history (nothing merged yet: no figures, but up).
    assert "promoter_dora_up 1.0" in exposition
    # service.evaluationWorkers (default 2): pre-started workers, started by `run` only.
    assert server.pool is not None
    assert server.pool.size == 2
    assert server.pool.zygote_pid is None


def test_serve_refuses_reads_behind_a_login_nobody_has(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        uvicorn_calls: list[dict[str, Any]]) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    config = world.root / "promoter.yaml"
    config.write_text(config.read_text() + "service:\n  requireAuthForReads: true\n")
    monkeypatch.setenv("PROMOTER_WEBHOOK_SECRET", "s3cret-value")
    monkeypatch.delenv("PROMOTER_API_TOKEN", raising=False)
    monkeypatch.delenv("PROMOTER_API_TOKENS_FILE", raising=False)
    result = CliRunner().invoke(cli_with(config), ["serve"])
    assert result.exit_code == 2
    assert "service.requireAuthForReads is set but there is no tokens file" in result.output
    assert uvicorn_calls == []
