"""`promoter history` and `promoter dora` over the scripted week (tests/promotion/history_week),
through the service the CLI builds from promoter.yaml: the same figures as the service's."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from click.testing import CliRunner, Result

from promoter.cli import main
from promoter.cli.audit import duration
from tests.promotion.history_week import H, Week, played_week


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Week:
    return played_week(tmp_path_factory)


def run(week: Week, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(week.world.root / "promoter.yaml"), *args])


def test_dora_json_is_the_services_figures(week: Week) -> None:
    until = (week.t0 + 5 * H).isoformat()
    result = run(week, "dora", "-o", "json", "--window", "1d", "--until", until)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    figures = {f["environment"]: f for f in body["figures"]}
    for f in week.service.dora(window=timedelta(days=1), end=week.t0 + 5 * H):
        answer = figures[f.environment]
        assert (answer["deployments"], answer["leadTimeSeconds"], answer["changeFailureRate"],
                answer["timeToRestoreSeconds"]) == (
            f.deployments, f.lead_time_seconds, f.change_failure_rate,
            f.time_to_restore_seconds)
    assert figures["dev"]["timeToRestoreSeconds"] == 1800


def test_dora_text_shows_unknowns_as_n_a(week: Week) -> None:
    result = run(week, "dora", "--window", "1d", "--until", (week.t0 + 5 * H).isoformat())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "DORA over the last 1d"
    dev = next(line for line in lines if line.startswith("churn  dev"))
    assert "33%" in dev
    assert "30m" in dev
    prod = next(line for line in lines if line.startswith("churn  prod"))
    assert prod.split()[-1] == "n/a"  # nothing failed: no time to restore, not 0
    empty = run(week, "dora", "--window", "1h", "--until", week.t0.isoformat())
    assert "n/a" in empty.output
    assert "0.00" in empty.output


def test_history_yaml_and_text(week: Week) -> None:
    result = run(week, "history", "-o", "yaml", "--env", "prod")
    assert result.exit_code == 0, result.output
    [prod] = yaml.safe_load(result.output)["environments"]
    assert prod["deployments"][0]["approvers"] == ["rita"]
    text = run(week, "history", "--env", "dev", "--limit", "2")
    assert text.exit_code == 0, text.output
    assert "older merges not read: raise --limit" in text.output
    assert "rollback  churn v1" in text.output
    assert "approved by -" in text.output


@pytest.mark.parametrize(("args", "needle"), [
    (("dora", "--window", "30"), "is not a duration"),
    (("dora", "--until", "2026-12-01T00:00:00"), "with its UTC offset"),
    (("dora", "--env", "qa"), "use one of: dev, staging, prod"),
    (("history", "--env", "qa"), "use one of: dev, staging, prod"),
])
def test_bad_input_is_exit_2_with_the_fix(week: Week, args: tuple[str, ...],
                                          needle: str) -> None:
    result = run(week, *args, "-o", "json")
    assert result.exit_code == 2, result.output
    assert needle in result.output


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "n/a"), (42, "42s"), (600, "10m"), (3600, "1h"), (9000, "2h 30m"),
    (3 * 86400, "3.0d")])
def test_durations(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
