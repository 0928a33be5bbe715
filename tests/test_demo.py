"""`promoter demo`, run as a user runs it: a real process, real models, real git.

The demo is run once per session (`tests/fixtures/demo.py`); these tests read what it printed
and left behind.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from promoter.demo import MARKER, prepare_workdir
from tests.fixtures.demo import PROMOTER, DemoRun


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.slow
def test_demo_promotes_v1_and_v2_leaves_v2_for_prod_and_blocks_v3(demo_run: DemoRun) -> None:
    workdir, out = demo_run.workdir, demo_run.stdout
    assert "rita (release manager) approves PR #3" in out
    assert "PR #6 churn v2 -> prod: waiting_for_approval" in out
    assert "PR #7 churn v3 -> dev: blocked" in out
    assert "auc.min" in out
    assert "approve 6 --as rita" in out

    def deployed(env: str) -> dict:
        meta = json.loads(git(workdir, "show", f"environments/{env}:hydrator.metadata"))
        return meta["promoter"]

    assert [deployed(env)["version"] for env in ("dev", "staging", "prod")] == [2, 2, 1]
    assert deployed("prod")["promotedFrom"] == "staging"
    for env, version in (("dev", 3), ("prod", 2)):
        meta = json.loads(git(workdir, "show", f"environments/{env}-next:hydrator.metadata"))
        assert meta["promoter"]["version"] == version
    # Environment branches only moved forward: v1's merge is an ancestor of v2's.
    log = git(workdir, "log", "--first-parent", "--format=%s", "environments/staging")
    assert log.splitlines()[0].startswith("Promote churn v2 to staging")
    assert any(line.startswith("Promote churn v1 to staging") for line in log.splitlines())

    # The work directory is a usable promoter setup: `status` reads it back.
    status = subprocess.run([str(PROMOTER), "status", "--json"], cwd=workdir,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    envs = {e["name"]: e for e in json.loads(status.stdout)["environments"]}
    assert envs["dev"]["openPromotion"]["version"] == 3
    assert envs["prod"]["openPromotion"]["phase"] == "waiting_for_approval"


@pytest.mark.slow
def test_demo_output_reads_step_by_step(demo_run: DemoRun) -> None:
    """Steps are numbered in order; training says what it does, off stdout (a pipe here:
    one line per stage on stderr, no terminal control characters)."""
    steps = [int(line.split(".")[0].removeprefix("== "))
             for line in demo_run.stdout.splitlines() if line.startswith("== ")]
    assert steps == list(range(1, len(steps) + 1))
    assert len(steps) >= 9
    progress = [line for line in demo_run.stderr.splitlines() if line.startswith("… ")]
    assert "… training churn v2 (neural network, 4 features) and exporting it" in progress
    assert any(line.startswith("… reconciling PR #7") for line in progress)
    assert "\r" not in demo_run.stderr
    assert "\x1b[" not in demo_run.stdout + demo_run.stderr


def test_demo_replaces_only_its_own_directory(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / MARKER).write_text("created by `promoter demo`")
    (own / "left-over").write_text("from the last run")
    prepare_workdir(own)
    assert sorted(p.name for p in own.iterdir()) == [MARKER]


def test_demo_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    done = subprocess.run([str(PROMOTER), "demo", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "not a promoter demo directory" in done.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
