"""tests/schemas.py, the core-kind validator other tests rely on (the CRD validator is
promoter.schemas', tested in tests/test_crd_schemas.py): it must accept valid objects, reject
the mistakes it exists to catch, and hand custom resources to the CRD validator."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from promoter.schemas import SchemaValidationError
from tests.schemas import validate_core_object, validate_object

KUSTOMIZATION: dict[str, Any] = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    "kind": "Kustomization",
    "metadata": {"name": "churn-prod", "namespace": "flux-system"},
    "spec": {"interval": "5m", "prune": True, "path": "./",
             "sourceRef": {"kind": "GitRepository", "name": "gitops"}},
}


def changed(obj: dict[str, Any], *path: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    target: Any = result
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return result


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


def test_custom_resources_go_to_their_crd() -> None:
    validate_object(KUSTOMIZATION)
    with pytest.raises(SchemaValidationError, match="does not match the CRD for "
                                                    r"kustomize\.toolkit\.fluxcd\.io/v1"):
        validate_object(changed(KUSTOMIZATION, "spec", "prun", value=True))
