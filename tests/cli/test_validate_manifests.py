"""`promoter validate` renders every environment and validates every object (issue #15).

A template that renders an object the API server would refuse must fail `validate`, with exit
status 2 and a message naming the file, the object, the field and the fix, long before anyone
proposes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promoter.cli import main
from tests.conftest import REPO_ROOT
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, refs
from tests.render.bad_manifests import BAD_MANIFESTS, WIDGET, WIDGET_CRD, BadManifest


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(world.root / "promoter.yaml"), *args])


def edit(world: World, path: str, old: str, new: str) -> None:
    file = world.root / path
    assert old in file.read_text(), f"{old!r} is not in {path}"
    file.write_text(file.read_text().replace(old, new, 1))


def test_validate_renders_every_environment(world: World) -> None:
    result = run(world, "validate")
    assert result.exit_code == 0, result.output
    for env in ("dev", "staging", "prod"):
        assert f"manifests/: ok for {env} (churn v3; 9 files)" in result.output


def test_validate_uses_a_probe_version_when_the_store_has_none(world: World) -> None:
    shutil.rmtree(world.root / "models")
    result = run(world, "validate")
    assert result.exit_code == 0, result.output
    assert "manifests/: ok for dev (churn probe v1: the store has none; 9 files)" \
        in result.output


def test_the_repository_example_validates() -> None:
    result = CliRunner().invoke(main, ["--config", str(REPO_ROOT / "promoter.yaml"),
                                       "validate"])
    assert result.exit_code == 0, result.output
    assert "manifests/: ok for prod" in result.output


@pytest.mark.parametrize("bad", BAD_MANIFESTS, ids=lambda b: b.id)
def test_validate_refuses_the_issue_templates(bad: BadManifest, world: World) -> None:
    before = refs(world.root)
    edit(world, f"manifests/{bad.template}", bad.old, bad.new)
    result = run(world, "validate")
    assert result.exit_code == 2, result.output
    assert f"error: {bad.located}" in result.output
    assert bad.problem in result.output
    fix = result.output.split("\n  fix: ", 1)[1]
    assert bad.fix in fix
    assert refs(world.root) == before


def test_validate_with_a_user_crd_directory(world: World) -> None:
    (world.root / "crds").mkdir()
    (world.root / "crds" / "widget.yaml").write_text(WIDGET_CRD)
    (world.root / "manifests" / "serving" / "widget.yaml").write_text(WIDGET)
    with (world.root / "promoter.yaml").open("a") as config:
        config.write("render:\n  crdDirectory: crds\n")
    result = run(world, "validate")
    assert result.exit_code == 0, result.output
    assert "manifests/: ok for dev (churn v3; 10 files)" in result.output

    edit(world, "manifests/serving/widget.yaml", "${serving.replicas}", "0")
    result = run(world, "validate")
    assert result.exit_code == 2, result.output
    assert ("error: manifests/serving/widget.yaml: Widget churn-widget: spec.size: "
            "0 is less than the minimum of 1") in result.output


def test_validate_refuses_a_custom_kind_without_its_crd(world: World) -> None:
    (world.root / "manifests" / "serving" / "widget.yaml").write_text(WIDGET)
    result = run(world, "validate")
    assert result.exit_code == 2, result.output
    assert "error: manifests/serving/widget.yaml: Widget churn-widget: kind: unknown kind " \
           "'Widget'" in result.output
    assert "render.crdDirectory" in result.output


def test_validate_refuses_parameter_servers_without_a_chief(world: World) -> None:
    """The configuration the example's staging shipped with before: 2 workers, 1 ps, no
    chief. TensorFlow's ParameterServerStrategy would wait for its coordinator forever."""
    edit(world, "environments/staging.yaml", "  chief: true", "  chief: false")
    result = run(world, "validate")
    assert result.exit_code == 2, result.output
    assert ("manifests/training/jobset.yaml: JobSet churn-train-v3: spec.replicatedJobs[1].name: "
            "is 'ps' but the JobSet has no chief") in result.output
    assert "training.chief: true" in result.output
