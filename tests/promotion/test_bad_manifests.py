"""A template the API server would refuse never reaches an environment branch (issue #15).

`propose` renders and validates before its first write, so with one of the issue's templates
on the dry branch it raises the typed error and leaves every ref and the forge as they were;
`reconcile` of a promotion opened before the template broke does not merge it. A custom kind
is validated against the user's CRD committed on the dry branch (`render.crdDirectory`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from promoter.errors import RenderError
from promoter.promotion import PromotionState
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, git, refs
from tests.render.bad_manifests import BAD_MANIFESTS, WIDGET, WIDGET_CRD, BadManifest


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def forge_rows(world: World) -> list[str]:
    """Everything the local forge holds (pull requests, statuses, reviews, comments)."""
    with sqlite3.connect(world.forge.db_path) as db:
        return list(db.iterdump())


@pytest.mark.parametrize("bad", BAD_MANIFESTS, ids=lambda b: b.id)
def test_propose_refuses_and_writes_nothing(bad: BadManifest, world: World) -> None:
    world.promote("dev", 1)
    world.commit_dry_change(f"manifests/{bad.template}", bad.old, bad.new)
    before_refs, before_forge = refs(world.root), forge_rows(world)
    with pytest.raises(RenderError) as caught:
        world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert caught.value.message.startswith(bad.located)
    assert bad.problem in caught.value.message
    assert caught.value.fix is not None
    assert bad.fix in caught.value.fix
    assert refs(world.root) == before_refs
    assert forge_rows(world) == before_forge


@pytest.mark.parametrize("bad", BAD_MANIFESTS, ids=lambda b: b.id)
def test_reconcile_writes_nothing_once_the_template_broke(bad: BadManifest,
                                                          world: World) -> None:
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    world.commit_dry_change(f"manifests/{bad.template}", bad.old, bad.new)
    before = environment_refs(world)
    [outcome] = world.service.reconcile()
    assert outcome.state is PromotionState.BLOCKED, outcome
    assert outcome.note is not None
    assert bad.located in outcome.note
    assert environment_refs(world) == before
    comments = [c.key for c in world.forge.list_comments(result.pull_request.number)]
    assert "replaced-commit" not in comments  # nothing was replaced: it no longer renders


def environment_refs(world: World) -> dict[str, str]:
    return {ref: sha for ref, sha in refs(world.root).items()
            if ref.startswith("refs/heads/environments/")}


def commit_user_crd(world: World, widget: str) -> None:
    """Commit a user CRD directory, the setting naming it, and a template of its kind."""
    (world.root / "crds").mkdir()
    (world.root / "crds" / "widget.yaml").write_text(WIDGET_CRD)
    (world.root / "manifests" / "serving" / "widget.yaml").write_text(widget)
    with (world.root / "promoter.yaml").open("a") as config:
        config.write("render:\n  crdDirectory: crds\n")
    git(world.root, "add", ".")
    git(world.root, "commit", "-q", "-m", "a custom kind and its CRD")


def test_propose_validates_a_custom_kind_against_the_committed_crd(world: World) -> None:
    commit_user_crd(world, WIDGET)
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    rendered = git(world.root, "show", "environments/dev-next:serving/widget.yaml")
    assert "kind: Widget" in rendered


def test_propose_refuses_an_invalid_custom_object(world: World) -> None:
    commit_user_crd(world, WIDGET.replace("${serving.replicas}", "0"))
    before_refs, before_forge = refs(world.root), forge_rows(world)
    with pytest.raises(RenderError) as caught:
        world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert caught.value.message == ("manifests/serving/widget.yaml: Widget churn-widget: "
                                    "spec.size: 0 is less than the minimum of 1")
    assert refs(world.root) == before_refs
    assert forge_rows(world) == before_forge
