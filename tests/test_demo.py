"""`promoter demo`, run as a user runs it: a real process, real models, real git."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROMOTER = Path(sys.executable).parent / "promoter"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.slow
def test_demo_promotes_v1_and_v2_and_blocks_v3(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    done = subprocess.run([str(PROMOTER), "demo", "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "rita (release manager) approves PR #3" in out
    assert "PR #7 churn v3 -> dev: blocked" in out
    assert "auc.min" in out

    def deployed(env: str) -> dict:
        meta = json.loads(git(workdir, "show", f"environments/{env}:hydrator.metadata"))
        return meta["promoter"]

    for env in ("dev", "staging", "prod"):
        assert deployed(env)["version"] == 2
    assert deployed("prod")["promotedFrom"] == "staging"
    assert json.loads(git(workdir, "show", "environments/dev-next:hydrator.metadata"))[
        "promoter"]["version"] == 3
    # Environment branches only moved forward: v1's merge is an ancestor of v2's.
    log = git(workdir, "log", "--first-parent", "--format=%s", "environments/prod").splitlines()
    assert log[0].startswith("Promote churn v2 to prod")
    assert any(line.startswith("Promote churn v1 to prod") for line in log)

    # The work directory is a usable promoter setup: `status` reads it back.
    status = subprocess.run([str(PROMOTER), "status", "--json"], cwd=workdir,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    envs = {e["name"]: e for e in json.loads(status.stdout)["environments"]}
    assert envs["dev"]["openPromotion"]["version"] == 3
    assert envs["prod"]["openPromotion"] is None

    # Running the demo again replaces its own directory.
    again = subprocess.run([str(PROMOTER), "demo", "--workdir", str(workdir)],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr


def test_demo_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    done = subprocess.run([str(PROMOTER), "demo", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "not a promoter demo directory" in done.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
