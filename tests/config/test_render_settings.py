"""`render:` in promoter.yaml: the Kubernetes version and the user's CRD directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.config.schema import DEFAULT_KUBERNETES_VERSION
from tests.config.test_loader import error_of, load

CRD = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
"""Any text: the loader reads the files; rendering converts and checks them."""


def with_render(root: Path, section: str) -> None:
    path = root / "promoter.yaml"
    path.write_text(path.read_text() + "render:\n" + section)


def test_defaults(example: Path) -> None:
    loaded, dry = load(example)
    assert loaded.settings.render.kubernetes_version == DEFAULT_KUBERNETES_VERSION
    assert loaded.settings.render.crd_directory is None
    assert dry.crds == {}


def test_a_crd_directory_is_read_with_the_dry_source(example: Path) -> None:
    (example / "crds").mkdir()
    (example / "crds" / "widget.yaml").write_text(CRD)
    (example / "crds" / "README.md").write_text("not a CRD\n")
    with_render(example, '  kubernetesVersion: "1.30"\n  crdDirectory: crds/\n')
    loaded, dry = load(example)
    assert loaded.settings.render.kubernetes_version == "1.30"
    assert loaded.settings.render.crd_directory == "crds"
    assert dry.crds == {"crds/widget.yaml": CRD}


def test_a_crd_directory_that_holds_no_yaml_file(example: Path) -> None:
    with_render(example, "  crdDirectory: crds\n")
    error = error_of(example)
    assert error.message.startswith("promoter.yaml: render.crdDirectory: ")
    assert "crds/ holds no YAML file" in error.message


def test_an_unquoted_version_is_refused_with_the_reason(example: Path) -> None:
    with_render(example, "  kubernetesVersion: 1.30\n")
    error = error_of(example)
    assert "render.kubernetesVersion: " in error.message
    assert 'quote it, e.g. "1.30"' in error.message


@pytest.mark.parametrize("value", ["v1.30", "1.30.2", "latest"])
def test_a_version_that_is_no_minor_version(value: str, example: Path) -> None:
    with_render(example, f"  kubernetesVersion: {value!r}\n")
    assert "render.kubernetesVersion: " in error_of(example).message


@pytest.mark.parametrize("value", ["../crds", "/etc/crds", "manifests/crds", "a\\b", "."])
def test_a_crd_directory_outside_or_inside_the_templates(value: str, example: Path) -> None:
    with_render(example, f"  crdDirectory: {value!r}\n")
    assert "render.crdDirectory: " in error_of(example).message
