"""Validate generated Kubernetes objects in tests, offline.

- Core kinds (Deployment, Service, ConfigMap, HPA, PDB, Job, ...): `validate_core_object`, with
  the upstream JSON schemas shipped by the PyPI package `kubernetes-validate`, in strict mode
  (unknown fields are errors), against every version in `KUBERNETES_VERSIONS`.
- Custom resources (TFJob, Flux GitRepository/Kustomization/Provider/Alert/Receiver, Argo CD
  Application/ApplicationSet): `validate_crd_object`, against the `openAPIV3Schema` of the CRD in
  `../shared/schemas/crds/*.yaml` that serves the object's apiVersion and kind.
- `validate_object` picks one of the two: a CRD if one serves the kind, else the core schemas.

Each raises `SchemaValidationError` (an AssertionError, so pytest shows it as a plain test
failure) listing every problem as `<path>: <message>`.

    from tests.schemas import validate_crd_object, validate_object

    validate_crd_object(tfjob)       # a dict, e.g. yaml.safe_load of a rendered file
    validate_object(anything)

How a CRD schema (OpenAPI v3, "structural") is turned into a JSON Schema (draft 4, whose
boolean `exclusiveMinimum` is OpenAPI 3.0's):

- Unknown fields: the API server *prunes* fields a structural schema does not declare, so a
  typo (`activeDeadlineSecond`) would silently vanish in a cluster. Here an object schema with
  no `additionalProperties` and no `x-kubernetes-preserve-unknown-fields` rejects every field
  not in its `properties`, which catches the typo in the test instead.
- `x-kubernetes-int-or-string: true` accepts an integer or a string (`port: 8501`, `cpu: "1"`).
- `nullable: true` also accepts null; elsewhere null is an error (the API server would drop it,
  which again hides a mistake in the generator).
- The root `metadata` (declared as a bare `type: object`) and the metadata of
  `x-kubernetes-embedded-resource` objects are checked as ObjectMeta: known fields only, string
  labels and annotations, valid label values; a root object needs `metadata.name`.
- `x-kubernetes-list-type: set` requires unique items; `map` requires unique
  `x-kubernetes-list-map-keys`.
- Not checked: CEL rules (`x-kubernetes-validations`), `format`s, and defaults.

CRDs are read once per directory and cached; pass `crd_dir` to use another directory.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.conftest import SHARED

CRD_DIR = SHARED / "schemas/crds"
"""The CRDs shipped in `../shared/schemas/crds` (see SOURCES.md there)."""

KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
"""Validate core kinds against the oldest Kubernetes minor we support and the newest schemas
`kubernetes-validate` ships, so generated objects neither use a field too new for older
clusters nor one that newer clusters removed."""

_LABEL_VALUE = {
    "type": "string",
    "maxLength": 63,
    "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _object_meta(*, name_required: bool) -> dict[str, Any]:
    """JSON Schema of ObjectMeta: the fields a generated manifest may set, plus server ones."""
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 253},
            "generateName": {"type": "string"},
            "namespace": {"type": "string", "maxLength": 63},
            "labels": {"type": "object", "additionalProperties": _LABEL_VALUE},
            "annotations": _STRING_MAP,
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "ownerReferences": {"type": "array", "items": {"type": "object"}},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "generation": {"type": "integer"},
            "creationTimestamp": {"type": ["string", "null"]},
            "deletionTimestamp": {"type": "string"},
            "deletionGracePeriodSeconds": {"type": "integer"},
            "managedFields": {"type": "array"},
            "selfLink": {"type": "string"},
        },
    }
    if name_required:
        schema["required"] = ["name"]
    return schema


class SchemaValidationError(AssertionError):
    """A Kubernetes object does not match its schema. The message lists every problem."""


# --- custom resources ------------------------------------------------------------------------


def validate_crd_object(obj: Mapping[str, Any], *, crd_dir: Path = CRD_DIR) -> None:
    """Validate a custom resource against the CRD in `crd_dir` serving its apiVersion/kind.

    Raises SchemaValidationError if no CRD there serves `apiVersion`+`kind`, or listing every
    schema violation.
    """
    api_version, kind = _type_of(obj)
    schemas = _crd_schemas(crd_dir.resolve())
    schema = schemas.get((api_version, kind))
    if schema is None:
        served = ", ".join(f"{a} {k}" for a, k in sorted(schemas))
        raise SchemaValidationError(
            f"no CRD in {crd_dir} serves {api_version} {kind}; served: {served}")
    _raise_errors(_CrdValidator(schema).iter_errors(obj), f"{kind} {_name_of(obj)}",
                  f"the CRD for {api_version}")


def crd_kinds(*, crd_dir: Path = CRD_DIR) -> list[tuple[str, str]]:
    """Return the (apiVersion, kind) pairs the CRDs in `crd_dir` serve."""
    return sorted(_crd_schemas(crd_dir.resolve()))


@functools.cache
def _crd_schemas(crd_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Read every CRD under `crd_dir` once: (apiVersion, kind) to converted JSON Schema."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the Argo CD CRDs are large
    for file in sorted(crd_dir.glob("*.yaml")):
        with file.open(encoding="utf-8") as handle:
            documents = list(yaml.load_all(handle, Loader=loader))
        for crd in documents:
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", False):
                    continue
                api_version = f"{group}/{version['name']}"
                openapi = version["schema"]["openAPIV3Schema"]
                schemas[(api_version, kind)] = openapi_to_json_schema(
                    openapi, api_version=api_version, kind=kind)
    return schemas


def openapi_to_json_schema(schema: Mapping[str, Any], *, api_version: str,
                           kind: str) -> dict[str, Any]:
    """Convert a CRD's `openAPIV3Schema` to a draft-4 JSON Schema (rules in the module doc)."""
    root = _convert(schema, closed=True)
    properties = root.setdefault("properties", {})
    properties["apiVersion"] = {"enum": [api_version]}
    properties["kind"] = {"enum": [kind]}
    meta = schema.get("properties", {}).get("metadata", {})
    if "properties" not in meta:
        properties["metadata"] = _object_meta(name_required=True)
    root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata"})
    return root


_DROPPED = {"description", "example", "externalDocs", "x-kubernetes-validations",
            "x-kubernetes-map-type", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
            "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
            "x-kubernetes-embedded-resource", "nullable"}


def _convert(node: Mapping[str, Any], *, closed: bool) -> dict[str, Any]:
    """Convert one schema node. `closed`: reject undeclared fields of a declared object.

    Sub-schemas of allOf/anyOf/oneOf/not are value validations in a structural schema (they
    restate, never add, fields), so they are converted open.
    """
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, closed=closed) for name, sub in value.items()}
        elif key in {"additionalProperties", "items"}:
            out[key] = _convert(value, closed=closed) if isinstance(value, dict) else value
        elif key in {"allOf", "anyOf", "oneOf"}:
            out[key] = [_convert(sub, closed=False) for sub in value]
        elif key == "not":
            out[key] = _convert(value, closed=False)
        else:
            out[key] = value
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if node.get("x-kubernetes-embedded-resource"):
        properties = out.setdefault("properties", {})
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        if "properties" not in node.get("properties", {}).get("metadata", {}):
            properties["metadata"] = _object_meta(name_required=False)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("x-kubernetes-list-type") == "map" and node.get("x-kubernetes-list-map-keys"):
        out["x-kubernetes-list-map-keys"] = list(node["x-kubernetes-list-map-keys"])
    if (closed and not preserve and node.get("type") == "object"
            and "additionalProperties" not in node):
        out["additionalProperties"] = False
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _unique_list_map_keys(validator: Any, keys: list[str], instance: Any,
                          schema: Mapping[str, Any]) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, list):
        return
    seen: dict[str, int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        identity = json.dumps([item.get(key) for key in keys], sort_keys=True)
        if identity in seen:
            yield jsonschema.ValidationError(
                f"items {seen[identity]} and {index} have the same {'/'.join(keys)} "
                f"{identity}: list-map keys must be unique")
        seen[identity] = index


_CrdValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"x-kubernetes-list-map-keys": _unique_list_map_keys})


# --- core kinds ------------------------------------------------------------------------------


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
            path = _format_path(exc.absolute_path)
            raise SchemaValidationError(
                f"{_type_of(obj)[1]} {_name_of(obj)} is invalid for Kubernetes {version}: "
                f"{path}: {exc.message}") from None
        except kubernetes_validate.SchemaNotFoundError as exc:
            raise SchemaValidationError(exc.message) from None


# --- any object ------------------------------------------------------------------------------


def validate_object(obj: Mapping[str, Any], *, crd_dir: Path = CRD_DIR) -> None:
    """Validate `obj` against its CRD if one in `crd_dir` serves it, else as a core kind."""
    if _type_of(obj) in _crd_schemas(crd_dir.resolve()):
        validate_crd_object(obj, crd_dir=crd_dir)
    else:
        validate_core_object(obj)


def _type_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise SchemaValidationError(f"not a Kubernetes object (no apiVersion/kind): {obj!r:.200}")
    return api_version, kind


def _name_of(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("name", "?")) if isinstance(metadata, dict) else "?"


def _raise_errors(errors: Iterator[jsonschema.ValidationError], what: str, against: str) -> None:
    found = sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])
    if found:
        lines = [f"{_format_path(e.absolute_path)}: {e.message}" for e in found]
        raise SchemaValidationError(f"{what} does not match {against}:\n  " + "\n  ".join(lines))


def _format_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(object)"
