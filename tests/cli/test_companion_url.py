"""`promoter flux` and `promoter argo` find the URL the cluster clones: `--repo-url`, else a
URL in repository.url, else the repository's `origin` remote; without one, the error says
what to pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import invoke
from tests.promotion.world import World, git

ORIGIN = "https://github.com/acme/ml-gitops.git"


def _urls(out: Path) -> set[str]:
    urls = set()
    for path in out.rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            spec = (document or {}).get("spec", {})
            url = spec.get("url") or spec.get("source", {}).get("repoURL")
            if url:
                urls.add(url)
    return urls


@pytest.mark.parametrize("tool", ["flux", "argo"])
def test_the_origin_remote_is_the_default(cli_world: World, tmp_path: Path,
                                          tool: str) -> None:
    git(cli_world.root, "remote", "add", "origin", ORIGIN)
    result = invoke(cli_world, tool, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert _urls(tmp_path / "out") == {ORIGIN}


def test_repo_url_wins_over_the_remote(cli_world: World, tmp_path: Path) -> None:
    git(cli_world.root, "remote", "add", "origin", ORIGIN)
    other = "https://git.example.com/ml/gitops.git"
    result = invoke(cli_world, "flux", "--out", str(tmp_path / "out"), "--repo-url", other)
    assert result.exit_code == 0, result.output
    assert _urls(tmp_path / "out") == {other}


def test_a_local_remote_is_no_url_for_a_cluster(cli_world: World, tmp_path: Path) -> None:
    git(cli_world.root, "remote", "add", "origin", str(tmp_path / "elsewhere.git"))
    result = invoke(cli_world, "flux", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "has no `origin` remote with a URL" in result.stderr


def test_without_a_url_the_error_says_what_to_pass(cli_world: World, tmp_path: Path) -> None:
    result = invoke(cli_world, "argo", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert (f"error: the cluster needs a git URL to clone, and there is none: repository.url "
            f"in {cli_world.root / 'promoter.yaml'} is the local path '.'") in result.stderr
    assert ("fix: pass --repo-url https://github.com/<org>/<repo>.git (or add the remote: "
            "`git remote add origin URL`), or set delivery.repositoryUrl in "
            "environments/dev.yaml, environments/staging.yaml, environments/prod.yaml"
            ) in result.stderr
    assert not (tmp_path / "out").exists()
