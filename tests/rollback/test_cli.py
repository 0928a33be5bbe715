"""`promoter rollback` and `promoter health` end to end: a real repository and forge, and the
real `kubernetes` client against the fake API server through a kubeconfig file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from promoter.cli.rollback import health, rollback
from promoter.cluster import DeliveryTarget
from promoter.config.loader import LoadedSettings, load_settings
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import applied, git_repository
from tests.fixtures.git import run_git
from tests.promotion.world import World


class Obj:
    """What the `promoter` group puts in `ctx.obj`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def settings(self) -> LoadedSettings:
        return load_settings(self.root / "promoter.yaml")


@pytest.fixture
def world(world_at: Callable[..., World]) -> World:
    return world_at(1, 2)


def test_rollback_command_opens_and_merges(world: World) -> None:
    runner = CliRunner()
    dry = runner.invoke(rollback, ["--env", "dev", "--dry-run"], obj=Obj(world.root))
    assert dry.exit_code == 0, dry.output
    assert "would roll back dev: churn v2 -> churn v1" in dry.output
    result = runner.invoke(rollback, ["--env", "dev", "--merge", "--as", "oncall",
                                      "--reason", "p99 latency doubled"], obj=Obj(world.root))
    assert result.exit_code == 0, result.output
    assert "opened rollback PR #" in result.output
    assert "merged into environments/dev" in result.output
    assert world.metadata("environments/dev")["promoter"]["version"] == 1
    assert "p99 latency doubled" in run_git(world.root, "log", "-1", "--format=%B",
                                            "environments/dev^2")


def test_rollback_command_bad_input_exits_2(world: World) -> None:
    result = CliRunner().invoke(rollback, ["--env", "dev", "--to", "9"], obj=Obj(world.root))
    assert result.exit_code == 2
    assert "error: no commit on environments/dev ever deployed version 9" in result.output


def _kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: fake\n  cluster:\n    server: {url}\n"
        "users:\n- name: anon\n  user: {}\n"
        "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: anon\n"
        "current-context: fake\n")
    return path


def test_health_command_reads_the_branch_head(world: World, api: FakeKubernetesApi,
                                              tmp_path: Path) -> None:
    head = run_git(world.root, "rev-parse", "environments/dev")
    env = world.service.dry_config()[1].environment("dev")
    target = DeliveryTarget.of(env)
    api.put(target.git_repository, git_repository(commit=head))
    api.put(target.kustomization, applied(head))
    config = _kubeconfig(tmp_path / "kubeconfig", api.url)
    result = CliRunner().invoke(health, ["--env", "dev", "--kubeconfig", str(config),
                                         "--reconcile", "--json"], obj=Obj(world.root))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["phase"] == "healthy"
    assert [path for path, _, _ in api.patches] == [target.git_repository.path]


def test_health_command_times_out_with_exit_1(world: World, api: FakeKubernetesApi,
                                              tmp_path: Path) -> None:
    head = run_git(world.root, "rev-parse", "environments/dev")
    target = DeliveryTarget.of(world.service.dry_config()[1].environment("dev"))
    api.put(target.git_repository, git_repository(commit=head))
    api.put(target.kustomization, applied("0" * 40))
    config = _kubeconfig(tmp_path / "kubeconfig", api.url)
    result = CliRunner().invoke(health, ["--env", "dev", "--kubeconfig", str(config), "--wait",
                                         "--timeout", "0.2", "--poll", "0.05"],
                                obj=Obj(world.root))
    assert result.exit_code == 1
    assert "timed_out: not healthy after 0.2s" in result.output


def test_health_command_missing_objects_is_an_error(world: World, api: FakeKubernetesApi,
                                                    tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", api.url)
    result = CliRunner().invoke(health, ["--env", "dev", "--kubeconfig", str(config)],
                                obj=Obj(world.root))
    assert result.exit_code == 1
    assert "error: reading gitrepositories" in result.output
    assert "promoter flux --out" in result.output


def _with_cluster_section(world: World, section: str) -> None:
    config = world.root / "promoter.yaml"
    config.write_text(config.read_text() + f"\ncluster:\n{section}")


def _healthy_dev(world: World, api: FakeKubernetesApi) -> None:
    head = run_git(world.root, "rev-parse", "environments/dev")
    target = DeliveryTarget.of(world.service.dry_config()[1].environment("dev"))
    api.put(target.git_repository, git_repository(commit=head))
    api.put(target.kustomization, applied(head))


def test_health_command_reads_the_cluster_of_promoter_yaml(
        world: World, api: FakeKubernetesApi, monkeypatch: pytest.MonkeyPatch) -> None:
    _healthy_dev(world, api)
    (world.root / "kube").mkdir()
    _kubeconfig(world.root / "kube" / "config", api.url)
    _with_cluster_section(world, "  kubeconfig: kube/config\n  context: fake\n")
    # Neither the flags nor the client's defaults: only promoter.yaml says where.
    monkeypatch.setenv("KUBECONFIG", str(world.root / "no-such-kubeconfig"))
    monkeypatch.chdir(world.root.parent)  # the path is relative to promoter.yaml, not here
    result = CliRunner().invoke(health, ["--env", "dev", "--json"], obj=Obj(world.root))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["phase"] == "healthy"


def test_health_command_flags_override_promoter_yaml(
        world: World, api: FakeKubernetesApi, tmp_path: Path) -> None:
    _healthy_dev(world, api)
    _with_cluster_section(world, "  kubeconfig: missing/kubeconfig\n  context: fake\n")
    refused = CliRunner().invoke(health, ["--env", "dev"], obj=Obj(world.root))
    assert refused.exit_code == 1
    assert "no cluster configuration" in refused.output
    config = _kubeconfig(tmp_path / "kubeconfig", api.url)
    result = CliRunner().invoke(health, ["--env", "dev", "--kubeconfig", str(config)],
                                obj=Obj(world.root))
    assert result.exit_code == 0, result.output
    assert "healthy" in result.output
    wrong_context = CliRunner().invoke(health, ["--env", "dev", "--kubeconfig", str(config),
                                                "--context", "elsewhere"],
                                       obj=Obj(world.root))
    assert wrong_context.exit_code == 1
    assert "elsewhere" in wrong_context.output
