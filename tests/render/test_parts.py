"""Serving and training apart on the environment branch (promoter/render/parts.py): each in its
own directory with its own kustomization, training only where it is enabled, and no template
that would put a training job into the serving rollout (or the serving Deployment out of it)."""

from __future__ import annotations

import pytest
import yaml

from promoter.config import DryConfig, ModelSpec, Settings
from promoter.domain.model_versions import ModelVersion
from promoter.errors import RenderError
from promoter.render import KUSTOMIZATION_FILE, render_environment
from tests.render.conftest import Render

Dry = tuple[Settings, DryConfig]


def _without_training(dry_source: Dry, env: str = "dev"):  # type: ignore[no-untyped-def]
    spec = dry_source[1].environment(env)
    return spec.model_copy(update={"training": spec.training.model_copy(
        update={"enabled": False})})


def test_training_disabled_renders_no_training_objects(dry_source: Dry, churn: ModelSpec,
                                                       version: ModelVersion,
                                                       render: Render) -> None:
    rendered = render_environment(dry_source[1].templates,
                                  environment=_without_training(dry_source), model=churn,
                                  version=version)
    assert not [p for p in rendered.files if p.startswith("training/")]
    assert yaml.safe_load(rendered.files[KUSTOMIZATION_FILE])["resources"] == ["serving"]
    # Serving is byte for byte what it is with training on: turning training off (or on)
    # changes nothing that the serving rollout applies.
    enabled = render("dev")
    assert {p: d for p, d in rendered.files.items() if p.startswith("serving/")} == \
        {p: d for p, d in enabled.files.items() if p.startswith("serving/")}


def test_training_disabled_does_not_even_parse_the_training_templates(
        dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    templates = {**dry_source[1].templates, "training/broken.yaml": "kind: [unclosed\n"}
    rendered = render_environment(templates, environment=_without_training(dry_source),
                                  model=churn, version=version)
    assert "training/broken.yaml" not in rendered.files


def test_training_enabled_without_a_training_template(dry_source: Dry, render: Render) -> None:
    templates = {p: t for p, t in dry_source[1].templates.items()
                 if not p.startswith("training/")}
    with pytest.raises(RenderError) as caught:
        render("dev", templates)
    assert caught.value.message == ("training.enabled is true for dev, but no template is "
                                    "under manifests/training/")
    assert caught.value.fix is not None
    assert "training.enabled: false in environments/dev.yaml" in caught.value.fix


@pytest.mark.parametrize("path", ["extra.yaml", "monitoring/servicemonitor.yaml"])
def test_a_template_outside_both_parts_is_refused(path: str, dry_source: Dry,
                                                  render: Render) -> None:
    templates = {**dry_source[1].templates, path: "apiVersion: v1\nkind: ConfigMap\n"}
    with pytest.raises(RenderError) as caught:
        render("dev", templates)
    assert caught.value.message == (f"manifests/{path}: templates live in manifests/serving/ "
                                    "or manifests/training/")
    assert caught.value.fix is not None


def test_nested_directories_inside_a_part_are_listed_relative_to_it(dry_source: Dry,
                                                                     render: Render) -> None:
    extra = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"
             "  namespace: ${env.namespace}\n  labels:\n    app.kubernetes.io/name: "
             "${model.name}\n    app.kubernetes.io/managed-by: promoter\ndata:\n  a: b\n")
    templates = {**dry_source[1].templates, "serving/extra/config.yaml": extra}
    rendered = render("dev", templates)
    assert "extra/config.yaml" in yaml.safe_load(
        rendered.files["serving/kustomization.yaml"])["resources"]


def test_a_training_job_under_serving_is_refused(dry_source: Dry, render: Render) -> None:
    templates = dict(dry_source[1].templates)
    templates["serving/tfjob.yaml"] = templates.pop("training/tfjob.yaml")
    templates["training/config.yaml"] = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                         "  name: t\n  namespace: ${env.namespace}\n")
    with pytest.raises(RenderError) as caught:
        render("dev", templates)
    assert caught.value.message.startswith(
        "manifests/serving/tfjob.yaml: TFJob churn-train-v3: a training job under serving/ "
        "would gate the serving rollout")
    assert caught.value.fix == "move it to manifests/training/"


def test_the_serving_deployment_under_training_is_refused(dry_source: Dry,
                                                          render: Render) -> None:
    templates = dict(dry_source[1].templates)
    templates["training/deployment.yaml"] = templates.pop("serving/deployment.yaml")
    with pytest.raises(RenderError) as caught:
        render("dev", templates)
    assert "a Deployment under training/ is not part of the serving rollout" in \
        caught.value.message
    assert caught.value.fix == "move it to manifests/serving/"


@pytest.mark.parametrize("name", ["serving/kustomization.yaml", "training/Kustomization.yml"])
def test_a_part_kustomization_template_is_refused(name: str, dry_source: Dry,
                                                  render: Render) -> None:
    templates = {**dry_source[1].templates, name: "resources: []\n"}
    with pytest.raises(RenderError, match=r"promoter generates kustomization\.yaml itself"):
        render("dev", templates)
