"""Progress of long work and colour: for people at a terminal, out of the way of everyone
else (pipes, logs, -o json)."""

from __future__ import annotations

import io
import time

import pytest
from click.testing import CliRunner

from promoter.cli import main
from promoter.cli.progress import Progress
from tests.cli.conftest import invoke
from tests.promotion.world import World


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_line_per_stage_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    progress = Progress(stream, live=False, quiet=False)
    progress.stage("training churn v1")
    progress.stage("training churn v2")
    progress.echo("trained churn v1, v2")
    progress.close()
    assert stream.getvalue() == "… training churn v1\n… training churn v2\n"
    assert capsys.readouterr().out == "trained churn v1, v2\n"


def test_a_live_line_on_a_terminal_is_erased_before_output() -> None:
    stream = _Terminal()
    progress = Progress(stream, live=True, quiet=False)
    progress.stage("scoring churn v2")
    time.sleep(0.35)
    progress.done()
    progress.close()
    written = stream.getvalue()
    assert written.count("\r\x1b[2K") >= 3  # redrawn while it runs, then erased
    assert "scoring churn v2 (0s)" in written
    assert written.endswith("\r\x1b[2K")
    assert "\n" not in written


def test_nothing_when_quiet() -> None:
    stream = _Terminal()
    progress = Progress(stream, live=True, quiet=True)
    progress.stage("scoring")
    progress.close()
    assert stream.getvalue() == ""


def test_reconcile_says_what_takes_time_on_stderr_and_nothing_with_json(
        cli_world: World) -> None:
    cli_world.service.propose(environment="dev", model="churn", version=1, author="mia")
    text = invoke(cli_world, "reconcile")
    assert text.stderr == "… reconciling open promotions (evaluating those whose inputs " \
                          "changed)\n"
    assert "… " not in text.stdout
    as_json = invoke(cli_world, "reconcile", "-o", "json")
    assert as_json.stderr == ""


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands believe they write to a terminal."""
    monkeypatch.setattr("promoter.cli.output.is_terminal", lambda stream: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)


def _status(world: World) -> str:
    result = CliRunner().invoke(main, ["--config", str(world.root / "promoter.yaml"),
                                       "status"], color=True)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_colour_on_a_terminal(cli_world: World, terminal: None) -> None:
    cli_world.promote("dev", 1)
    cli_world.service.propose(environment="dev", model="churn", version=3, author="mia")
    cli_world.service.reconcile()
    out = _status(cli_world)
    assert "\x1b[31m\x1b[1mblocked\x1b[0m" in out  # the phase, red
    assert "\x1b[32m✔\x1b[0m promoter/upstream" in out  # a passed gate, green


def test_no_color_turns_it_off(cli_world: World, terminal: None,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    cli_world.promote("dev", 1)
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in _status(cli_world)


def test_no_colour_in_a_pipe(cli_world: World) -> None:
    cli_world.promote("dev", 1)
    assert "\x1b[" not in _status(cli_world)


def test_no_colour_in_json(cli_world: World, terminal: None) -> None:
    cli_world.promote("dev", 1)
    result = CliRunner().invoke(main, ["--config", str(cli_world.root / "promoter.yaml"),
                                       "status", "-o", "json"], color=True)
    assert "\x1b[" not in result.output
