"""tests/schemas.py, the validators other tests rely on: they must accept valid objects and
reject the mistakes they exist to catch."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.schemas import (
    CRD_DIR,
    SchemaValidationError,
    crd_kinds,
    openapi_to_json_schema,
    validate_core_object,
    validate_crd_object,
    validate_object,
)

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
    assert ("source.toolkit.fluxcd.io/v1", "GitRepository") in crd_kinds()
    assert ("kustomize.toolkit.fluxcd.io/v1", "Kustomization") in crd_kinds()
    assert ("argoproj.io/v1alpha1", "Application") in crd_kinds()


@pytest.mark.parametrize("obj", [TFJOB, FLUX_KUSTOMIZATION, ARGO_APPLICATION])
def test_accepts_valid_custom_resources(obj: dict[str, Any]) -> None:
    validate_crd_object(obj)
    validate_object(obj)


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


def test_unknown_custom_resource_is_an_error() -> None:
    with pytest.raises(SchemaValidationError,
                       match=r"no CRD in .* serves kubeflow\.org/v1 PyTorch"):
        validate_crd_object({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                             "metadata": {"name": "x"}}, crd_dir=CRD_DIR)


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


def test_core_objects_are_validated_strictly() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    validate_core_object(service)
    validate_object(service)
    with pytest.raises(SchemaValidationError, match=r"Service s is invalid for Kubernetes .*"
                                                    r"spec: .*'selectr'"):
        validate_core_object(changed(service, "spec", "selectr", value={}))
    with pytest.raises(SchemaValidationError, match="Couldn't find schema for kind Nope"):
        validate_core_object({"apiVersion": "v1", "kind": "Nope", "metadata": {"name": "n"}})
