"""promoter.schemas' CRD validator, which the tests (and later the renderer) rely on: it must
accept valid objects and reject the mistakes it exists to catch, from the packaged CRDs."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from promoter.schemas import (
    SchemaValidationError,
    crd_kinds,
    crd_schema,
    crd_schemas,
    crd_validator,
    openapi_to_json_schema,
    schema_validator,
    validate_crd_object,
)
from tests.conftest import REPO_ROOT

TFJOB: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "TFJob",
    "metadata": {"name": "train", "namespace": "ml", "labels": {"a": "b"}},
    "spec": {
        "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 3},
        "tfReplicaSpecs": {
            "Worker": {
                "replicas": 2,
                "restartPolicy": "OnFailure",
                "template": {"spec": {"containers": [{
                    "name": "tensorflow",
                    "image": "tensorflow/tensorflow:2.18.0",
                    "ports": [{"name": "tfjob-port", "containerPort": 2222}],
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                  "limits": {"cpu": 2}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8501}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                }]}},
            },
        },
    },
}

FLUX_KUSTOMIZATION: dict[str, Any] = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    "kind": "Kustomization",
    "metadata": {"name": "churn-prod", "namespace": "flux-system"},
    "spec": {"interval": "5m", "prune": True, "wait": True, "path": "./",
             "sourceRef": {"kind": "GitRepository", "name": "gitops"}},
}

ARGO_APPLICATION: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "churn-prod", "namespace": "argocd"},
    "spec": {
        "project": "default",
        "source": {"repoURL": "https://example.test/gitops.git",
                   "targetRevision": "environments/prod", "path": "."},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "ml-prod"},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
    },
}


def changed(obj: dict[str, Any], *path: str | int, value: Any = None,
            delete: bool = False) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    target: Any = result
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


def test_finds_every_shipped_crd() -> None:
    assert ("kubeflow.org/v1", "TFJob") in crd_kinds()
    assert ("jobset.x-k8s.io/v1alpha2", "JobSet") in crd_kinds()
    assert ("source.toolkit.fluxcd.io/v1", "GitRepository") in crd_kinds()
    assert ("kustomize.toolkit.fluxcd.io/v1", "Kustomization") in crd_kinds()
    assert ("argoproj.io/v1alpha1", "Application") in crd_kinds()


@pytest.mark.parametrize("obj", [TFJOB, FLUX_KUSTOMIZATION, ARGO_APPLICATION])
def test_accepts_valid_custom_resources(obj: dict[str, Any]) -> None:
    validate_crd_object(obj)
    assert list(crd_validator(obj["apiVersion"], obj["kind"]).iter_errors(obj)) == []


@pytest.mark.parametrize(("obj", "expected"), [
    (changed(TFJOB, "spec", "runPolicy", "activeDeadlineSecond", value=5),
     "spec.runPolicy: Additional properties are not allowed ('activeDeadlineSecond' was "
     "unexpected)"),
    (changed(TFJOB, "spec", "tfReplicaSpecs", "Worker", "replicas", value="2"),
     "spec.tfReplicaSpecs.Worker.replicas: '2' is not of type 'integer'"),
    (changed(TFJOB, "spec", "tfReplicaSpecs", "Worker", "template", "spec", "containers", 0,
             "resources", "limits", "cpu", value="two"),
     "does not match"),
    (changed(TFJOB, "spec", "runPolicy", "backoffLimit", value=None),
     "spec.runPolicy.backoffLimit: None is not of type 'integer'"),
    (changed(TFJOB, "metadata", "labels", "a", value=3),
     "metadata.labels.a: 3 is not of type 'string'"),
    (changed(TFJOB, "metadata", "labels", "a", value="sha256:ab"),
     "metadata.labels.a: 'sha256:ab' does not match"),
    (changed(TFJOB, "metadata", "name", delete=True), "'name' is a required property"),
    (changed(TFJOB, "metadata", "lables", value={}), "'lables' was unexpected"),
    (changed(TFJOB, "spec", "tfReplicaSpecs", "Worker", "template", "spec", "containers", 0,
             "ports", value=[{"name": "a", "containerPort": 2222, "protocol": "TCP"},
                             {"name": "b", "containerPort": 2222, "protocol": "TCP"}]),
     "items 0 and 1 have the same containerPort/protocol"),
    (changed(FLUX_KUSTOMIZATION, "spec", "interval", delete=True),
     "spec: 'interval' is a required property"),
    (changed(ARGO_APPLICATION, "spec", "destination", "serverr", value="x"),
     "'serverr' was unexpected"),
])
def test_rejects_invalid_custom_resources(obj: dict[str, Any], expected: str) -> None:
    with pytest.raises(SchemaValidationError) as caught:
        validate_crd_object(obj)
    assert expected in str(caught.value)
    assert any(expected in problem for problem in caught.value.problems)


def test_unknown_custom_resource_is_an_error() -> None:
    pytorch = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "x"}}
    with pytest.raises(SchemaValidationError,
                       match=r"no CRD in the packaged CRDs serves kubeflow\.org/v1 PyTorchJob"):
        validate_crd_object(pytorch)
    with pytest.raises(LookupError, match=r"served: argoproj\.io/v1alpha1 Application"):
        crd_schema("kubeflow.org/v1", "PyTorchJob")
    with pytest.raises(SchemaValidationError, match="not a Kubernetes object"):
        validate_crd_object({"kind": "TFJob"})


def test_crd_schema_is_a_copy() -> None:
    schema = crd_schema("kubeflow.org/v1", "TFJob")
    assert schema["properties"]["kind"] == {"enum": ["TFJob"]}
    schema["properties"]["spec"]["additionalProperties"] = True
    with pytest.raises(SchemaValidationError, match="'extra' was unexpected"):
        validate_crd_object(changed(TFJOB, "spec", "extra", value=1))


def test_another_crd_directory(tmp_path: Path) -> None:
    (tmp_path / "widget.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.test}\n"
        "spec:\n  group: example.test\n  names: {kind: Widget, plural: widgets}\n"
        "  scope: Namespaced\n  versions:\n"
        "    - name: v1\n      served: true\n      storage: true\n      schema:\n"
        "        openAPIV3Schema:\n          type: object\n          properties:\n"
        "            metadata: {type: object}\n"
        "            spec:\n              type: object\n"
        "              x-kubernetes-preserve-unknown-fields: true\n"
        "              properties:\n                size: {type: integer, nullable: true}\n")
    widget = {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": None, "anything": {"goes": True}}}
    validate_crd_object(widget, crd_dir=tmp_path)
    with pytest.raises(SchemaValidationError, match="'big' is not of type"):
        validate_crd_object(changed(widget, "spec", "size", value="big"), crd_dir=tmp_path)


def test_int_or_string_accepts_both() -> None:
    schema = openapi_to_json_schema(
        {"type": "object", "properties": {"metadata": {"type": "object"}, "port": {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True}}},
        api_version="example.test/v1", kind="Thing")
    assert schema["properties"]["port"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["apiVersion", "kind", "metadata"]


def test_packaged_crds_are_read_through_importlib_resources_from_a_zip(tmp_path: Path) -> None:
    """An installed package need not be a directory: read the CRDs from a zipped copy."""
    archive = tmp_path / "promoter.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((REPO_ROOT / "promoter").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, path.relative_to(REPO_ROOT).as_posix())
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import promoter.schemas as s; "
            "assert s.__file__.startswith(sys.argv[1]), s.__file__; "
            "print(len(s.crd_kinds()), s.data_file('github', 'github-subset.json').is_file())")
    out = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout.split()
    assert out == [str(len(crd_kinds())), "True"]


def test_the_module_is_pure() -> None:
    """Validating a manifest must not load git, GitHub, Kubernetes or TensorFlow code."""
    code = ("import sys; import promoter.schemas as s; s.validate_crd_object({'apiVersion': "
            "'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 'x'}, 'spec': "
            "{'tfReplicaSpecs': {}}}); print(sorted(m for m in ('git', 'github', 'kubernetes', "
            "'kubernetes_validate', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]"


def _widget_crd(version: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.test"},
            "spec": {"group": "example.test", "names": {"kind": "Widget"},
                     "versions": [version]}}


def test_crd_documents_convert_like_the_packaged_crds() -> None:
    schemas = crd_schemas([
        {"apiVersion": "v1", "kind": "ConfigMap"},  # not a CRD: skipped
        _widget_crd({"name": "v1", "served": True, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "properties": {
                "size": {"type": "integer"}}}}}}}),
    ])
    assert list(schemas) == [("example.test/v1", "Widget")]
    validator = schema_validator(schemas[("example.test/v1", "Widget")])
    widget = {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 1}}
    assert list(validator.iter_errors(widget)) == []
    assert [e.message for e in validator.iter_errors(changed(widget, "spec", "sise", value=1))]


@pytest.mark.parametrize(("version", "problem"), [
    ({"name": "v1", "served": True}, "spec.versions[0].schema.openAPIV3Schema: missing or not "
                                     "a mapping"),
    ({"served": True, "schema": {"openAPIV3Schema": {}}}, "spec.versions[0].name: missing"),
])
def test_a_crd_without_what_validation_needs_is_named(version: dict[str, Any],
                                                      problem: str) -> None:
    with pytest.raises(SchemaValidationError, match=re.escape(problem)):
        crd_schemas([_widget_crd(version)])
