"""Validate generated Kubernetes objects in tests, offline.

- Core kinds (Deployment, Service, ConfigMap, HPA, PDB, Job, ...): `validate_core_object`, with
  the upstream JSON schemas shipped by the PyPI package `kubernetes-validate` (which
  `promoter.render.validation` uses at render time too), in strict mode (unknown fields are
  errors), against every version in `KUBERNETES_VERSIONS`.
- Custom resources (TFJob, JobSet, Flux GitRepository/Kustomization/Provider/Alert/Receiver,
  Argo CD Application/ApplicationSet): `promoter.schemas.validate_crd_object`, against the
  CRDs packaged in `promoter/schemas/crds/` (the conversion rules are in
  `promoter.schemas.crd`).
- `validate_object` picks one of the two: a CRD if one serves the kind, else the core schemas.

Each raises `promoter.schemas.SchemaValidationError` listing every problem as
`<path>: <message>`.

    from promoter.schemas import validate_crd_object
    from tests.schemas import validate_object

    validate_crd_object(tfjob)       # a dict, e.g. yaml.safe_load of a rendered file
    validate_object(anything)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kubernetes_validate

from promoter.schemas import (
    SchemaValidationError,
    crd_kinds,
    format_path,
    object_name,
    object_type,
    validate_crd_object,
)

KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
"""Validate core kinds against the oldest Kubernetes minor we support and the newest schemas
`kubernetes-validate` ships, so generated objects neither use a field too new for older
clusters nor one that newer clusters removed."""


def validate_core_object(obj: Mapping[str, Any],
                         *, versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> None:
    """Validate a core Kubernetes object with kubernetes-validate, strict, for each version.

    Raises SchemaValidationError naming the version and the path of the first problem
    (kubernetes-validate stops at the first).
    """
    for version in versions:
        try:
            kubernetes_validate.validate(dict(obj), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = format_path(exc.absolute_path)
            raise SchemaValidationError(
                f"{object_type(obj)[1]} {object_name(obj)} is invalid for Kubernetes "
                f"{version}: {path}: {exc.message}", [f"{path}: {exc.message}"]) from None
        except kubernetes_validate.SchemaNotFoundError as exc:
            raise SchemaValidationError(exc.message) from None


def validate_object(obj: Mapping[str, Any]) -> None:
    """Validate `obj` against its packaged CRD if one serves it, else as a core kind."""
    if object_type(obj) in crd_kinds():
        validate_crd_object(obj)
    else:
        validate_core_object(obj)
