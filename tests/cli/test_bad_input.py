"""Bad input is exit 2 with the fix, never exit 1 or a traceback: a repository that is not
there, a forge database that is not one, a configuration path that is a directory. And a CSV
line over the reader's field limit says so, instead of blaming the quoting."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from promoter.cli import main
from promoter.errors import HoldoutError
from promoter.evaluation.holdout import HoldoutReader
from tests.cli.conftest import invoke
from tests.promotion.world import World


def test_a_missing_repository_is_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "promoter.yaml"
    config.write_text("repository:\n  url: ./nowhere\nmodels:\n  - name: churn\n"
                      "environments: [dev]\n")
    result = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert result.exit_code == 2, result.output
    assert f"error: {tmp_path / 'nowhere'} is not a git repository" in result.stderr
    assert "fix: create one with `git init" in result.stderr
    assert "Traceback" not in result.output


def test_a_corrupt_forge_database_is_bad_input(cli_world: World) -> None:
    database = cli_world.root / ".git" / "promoter" / "forge.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(b"this is not a database" * 200)
    result = invoke(cli_world, "status")
    assert result.exit_code == 2, result.output
    assert "forge database" in result.stderr
    assert f"fix: move {database} away" in result.stderr
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(database).execute("SELECT 1 FROM sqlite_master").fetchall()


def test_config_variable_naming_a_directory_exits_2_without_a_traceback(
        cli_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTER_CONFIG", str(cli_world.root))
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: {cli_world.root}: is a directory, not a promoter.yaml file" in result.stderr
    assert f"fix: pass the file itself (--config or PROMOTER_CONFIG), e.g. " \
           f"{cli_world.root / 'promoter.yaml'}" in result.stderr


def test_a_line_over_the_csv_field_limit_says_so(tmp_path: Path) -> None:
    holdout = tmp_path / "h.csv"
    limit = csv.field_size_limit()
    holdout.write_text("x,label\n1,0\n" + "9" * (limit + 1) + ",1\n")
    reader = HoldoutReader(holdout, columns=[], label_column="label", label_kind="binary")
    with pytest.raises(HoldoutError) as caught:
        list(reader)
    assert str(caught.value) == (
        f"{holdout}, line 3: a field is longer than {limit:,} characters, the most the CSV "
        "reader accepts in one field\n  fix: shorten that value (or split it into columns); "
        "if the line should be short, look for an opening quote that is never closed "
        "before it")
