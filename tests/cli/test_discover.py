"""`promoter discover`: one discovery pass from the command line, and `--dry-run`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promoter.cli import main
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, git, refs


def enable(world: World, auto: str = "[dev]") -> None:
    # settleSeconds 0: the stand-in versions were written a moment ago.
    world.commit_dry_change(
        "promoter.yaml", "    labelColumn: churned\n",
        f"    labelColumn: churned\n    promotion:\n      autoPropose: {auto}\n"
        "      settleSeconds: 0\n")


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    enable(world)
    return world


def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(world.root / "promoter.yaml"), *args])


def test_dry_run_says_what_it_would_propose_and_writes_nothing(world: World) -> None:
    before = refs(world.root)
    result = run(world, "discover", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("would propose churn v3 to dev: new complete version in "
                                    "the model store (unchanged for ")
    assert refs(world.root) == before
    assert world.forge.list_open_pull_requests() == []


def test_discover_proposes_once_and_then_says_why_not(world: World) -> None:
    first = run(world, "discover")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("proposed churn v3 to dev (PR #1 opened): new complete "
                                   "version in the model store")
    before = refs(world.root)
    second = run(world, "discover")
    assert second.exit_code == 0, second.output
    assert second.output == ("waiting: churn v3 for dev: PR #1 already proposes churn v3\n"
                             "nothing to propose\n")
    assert refs(world.root) == before


def test_without_auto_propose_there_is_nothing_to_discover(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())  # the example: no autoPropose
    before = refs(world.root)
    result = run(world, "discover")
    assert result.exit_code == 0, result.output
    assert "no model lists environments in promotion.autoPropose" in result.output
    assert refs(world.root) == before


def test_a_refused_proposal_is_reported_and_exits_1(world: World) -> None:
    world.service.propose(environment="dev", model="churn", version=2, author="mia")
    head = git(world.root, "rev-parse", "environments/dev-next")
    theirs = git(world.root, "commit-tree", f"{head}^{{tree}}", "-p", head, "-m", "hotfix")
    git(world.root, "update-ref", "refs/heads/environments/dev-next", theirs)
    result = run(world, "discover")
    assert result.exit_code == 1
    assert ("error: proposing churn v3 to dev: environments/dev-next is at "
            f"{theirs[:12]}") in result.output
    assert git(world.root, "rev-parse", "environments/dev-next") == theirs


def test_a_bad_auto_propose_entry_exits_2_naming_the_field(world: World) -> None:
    world.commit_dry_change("promoter.yaml", "autoPropose: [dev]", "autoPropose: [dev, qa]")
    result = run(world, "discover")
    assert result.exit_code == 2
    assert ("error: " + str(world.root / "promoter.yaml")
            + ": models[0].promotion.autoPropose[1]: 'qa' is not an environment") in (
        result.output)
    assert "fix: use names from environments: dev, staging, prod" in result.output


def _bytes(world: World) -> dict[str, str]:
    return {str(p.relative_to(world.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(world.root.rglob("*")) if p.is_file()}


def test_dry_run_leaves_every_byte_and_says_what_propose_would_do(world: World) -> None:
    world.service.propose(environment="dev", model="churn", version=2, author="mia")
    before = _bytes(world)
    result = run(world, "discover", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    assert _bytes(world) == before
    [proposal] = json.loads(result.stdout)["proposals"]
    assert (proposal["version"], proposal["plan"]["action"], proposal["plan"]["pullRequest"],
            proposal["plan"]["writesCommit"]) == (3, "update", 1, True)
    text = run(world, "discover", "--dry-run")
    assert text.output.splitlines()[1] == "  propose would update PR #1: promote churn v3 (" + (
        proposal["plan"]["digest"][:19] + ") to dev")
    real = run(world, "discover")
    assert real.output.startswith("proposed churn v3 to dev (PR #1 updated): ")


def test_dry_run_exits_1_where_the_pass_would_refuse_and_writes_nothing(world: World) -> None:
    world.service.propose(environment="dev", model="churn", version=2, author="mia")
    head = git(world.root, "rev-parse", "environments/dev-next")
    theirs = git(world.root, "commit-tree", f"{head}^{{tree}}", "-p", head, "-m", "hotfix")
    git(world.root, "update-ref", "refs/heads/environments/dev-next", theirs)
    before = _bytes(world)
    result = run(world, "discover", "--dry-run")
    assert result.exit_code == 1
    assert ("error: proposing churn v3 to dev: environments/dev-next is at "
            f"{theirs[:12]}") in result.output
    assert _bytes(world) == before  # the real pass comments on the PR; the dry run does not
