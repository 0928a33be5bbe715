"""Custom resources validated offline against the `openAPIV3Schema` of their CRD (pure).

An API server accepts a custom resource only if it matches the schema of the CRD serving its
apiVersion and kind, but it *prunes* undeclared fields instead of rejecting them, so a typo in
a generated manifest (`activeDeadlineSecond`) would vanish silently in a cluster. Validating
here, before a manifest is committed, turns that into an error with a path.

The CRDs are the ones packaged in `promoter/schemas/crds/` (`promoter/schemas/SOURCES.md` names
their upstream releases); pass `crd_dir` to use another directory. Each file is read at most
once and cached, and only when needed: looking up one kind parses first the files that
mention its group, smallest first, and stops at the first that serves it, so validating a
TFJob does not parse the 1.4 MB Argo CD ApplicationSet CRD (a third of a second). Were a kind
served by two files, which one applies is not specified.

How a CRD schema (OpenAPI v3, "structural") is turned into a JSON Schema (draft 4, whose
boolean `exclusiveMinimum` is OpenAPI 3.0's):

- Unknown fields: an object schema with no `additionalProperties` and no
  `x-kubernetes-preserve-unknown-fields` rejects every field not in its `properties` (the
  API server would prune it).
- `x-kubernetes-int-or-string: true` accepts an integer or a string (`port: 8501`, `cpu: "1"`).
- `nullable: true` also accepts null; elsewhere null is an error (the API server would drop it,
  which again hides a mistake in the generator).
- The root `metadata` (declared as a bare `type: object`) and the metadata of
  `x-kubernetes-embedded-resource` objects are checked as ObjectMeta: known fields only, string
  labels and annotations, valid label values; a root object needs `metadata.name`.
- `x-kubernetes-list-type: set` requires unique items; `map` requires unique
  `x-kubernetes-list-map-keys`.
- Not checked: CEL rules (`x-kubernetes-validations`), `format`s, and defaults.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.protocols import Validator

_LABEL_VALUE = {
    "type": "string",
    "maxLength": 63,
    "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


class SchemaValidationError(ValueError):
    """A Kubernetes object does not match its schema; the message lists every problem.

    A ValueError, not a PromoterError: whether a mismatch is the user's bad template or a bug
    in promoter depends on the caller, which wraps it accordingly. `problems` holds one
    `<path>: <message>` line per problem.
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


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


# --- public API ------------------------------------------------------------------------------


def crd_kinds(*, crd_dir: Traversable | None = None) -> list[tuple[str, str]]:
    """The (apiVersion, kind) pairs the CRDs serve, sorted."""
    return sorted(_schemas(crd_dir))


def crd_schema(api_version: str, kind: str, *,
               crd_dir: Traversable | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 4) of `apiVersion`+`kind`, converted from its CRD.

    A deep copy, so a caller may change it without changing what later validations use.
    Raises LookupError, naming what is served, if no CRD serves the pair.
    """
    return copy.deepcopy(_schema_for(api_version, kind, crd_dir))


def crd_validator(api_version: str, kind: str, *,
                  crd_dir: Traversable | None = None) -> Validator:
    """A jsonschema validator for `apiVersion`+`kind`, built once and cached.

    For callers that want every error as data (`iter_errors`) rather than one exception.
    Raises LookupError if no CRD serves the pair.
    """
    return _validator(_key(crd_dir), api_version, kind)


def validate_crd_object(obj: Mapping[str, Any], *, crd_dir: Traversable | None = None) -> None:
    """Validate a custom resource against the CRD serving its apiVersion and kind.

    Raises SchemaValidationError if `obj` is not a Kubernetes object, if no CRD serves its
    apiVersion+kind, or listing every schema violation (sorted by path).
    """
    api_version, kind = object_type(obj)
    try:
        validator = crd_validator(api_version, kind, crd_dir=crd_dir)
    except LookupError as exc:
        raise SchemaValidationError(str(exc)) from None
    found = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    if found:
        problems = [f"{format_path(e.absolute_path)}: {e.message}" for e in found]
        raise SchemaValidationError(
            f"{kind} {object_name(obj)} does not match the CRD for {api_version}:\n  "
            + "\n  ".join(problems), problems)


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


def object_type(obj: Mapping[str, Any]) -> tuple[str, str]:
    """The (apiVersion, kind) of a Kubernetes object.

    Raises SchemaValidationError if either is missing or not a string: without them no schema
    can be chosen, so the object is invalid whatever else it holds.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise SchemaValidationError(f"not a Kubernetes object (no apiVersion/kind): {obj!r:.200}")
    return api_version, kind


def object_name(obj: Mapping[str, Any]) -> str:
    """`metadata.name`, or "?" for an object without one (for messages only)."""
    metadata = obj.get("metadata")
    return str(metadata.get("name", "?")) if isinstance(metadata, Mapping) else "?"


def format_path(path: Iterable[str | int]) -> str:
    """A jsonschema error path as users write it: `spec.containers[0].name`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(object)"


# --- reading the CRDs ------------------------------------------------------------------------


def _key(crd_dir: Traversable | None) -> Traversable | None:
    """The cache key of a CRD directory: None for the packaged CRDs, a resolved Path if one."""
    return crd_dir.resolve() if isinstance(crd_dir, Path) else crd_dir


def _schemas(crd_dir: Traversable | None) -> dict[tuple[str, str], dict[str, Any]]:
    return _read_crds(_key(crd_dir))


def _schema_for(api_version: str, kind: str,
                crd_dir: Traversable | None) -> dict[str, Any]:
    key = _key(crd_dir)
    group = api_version.rpartition("/")[0]
    listed = _crd_files(key)
    likely = [name for name, groups in listed if group in groups]
    for name in [*likely, *(name for name, _ in listed if name not in likely)]:
        schema = _read_crd_file(key, name).get((api_version, kind))
        if schema is not None:
            return schema
    served = ", ".join(f"{a} {k}" for a, k in sorted(_schemas(crd_dir)))
    where = "the packaged CRDs" if crd_dir is None else str(crd_dir)
    raise LookupError(f"no CRD in {where} serves {api_version} {kind}; served: {served}")


def crd_schemas(documents: Iterable[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Convert every CustomResourceDefinition among `documents` (parsed YAML): (apiVersion,
    kind) of each served version to its JSON Schema. Other documents are skipped.

    For CRDs that are not promoter's own (a user's `render.crdDirectory`): raises
    SchemaValidationError naming the first field a CRD lacks (`spec.versions[0].schema.
    openAPIV3Schema: missing`), since a CRD without a schema cannot validate anything.
    """
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in documents:
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        group = _crd_field(crd, str, "spec", "group")
        kind = _crd_field(crd, str, "spec", "names", "kind")
        versions = _crd_field(crd, list, "spec", "versions")
        for index in range(len(versions)):
            version = _crd_field(crd, dict, "spec", "versions", index)
            if not version.get("served", False):
                continue
            name = _crd_field(crd, str, "spec", "versions", index, "name")
            openapi = _crd_field(crd, dict, "spec", "versions", index, "schema",
                                 "openAPIV3Schema")
            api_version = f"{group}/{name}"
            schemas[(api_version, kind)] = openapi_to_json_schema(
                openapi, api_version=api_version, kind=kind)
    return schemas


def schema_validator(schema: Mapping[str, Any]) -> Validator:
    """The validator `crd_validator` uses, for a schema from `crd_schemas`."""
    return _CrdValidator(schema)


def _crd_field(crd: Mapping[str, Any], expected: type, *path: str | int) -> Any:
    """The value at `path` of a CRD, or SchemaValidationError naming the path."""
    current: Any = crd
    for part in path:
        if isinstance(part, int):
            current = current[part] if isinstance(current, list) else None
        else:
            current = current.get(part) if isinstance(current, dict) else None
    if not isinstance(current, expected):
        raise SchemaValidationError(
            f"{format_path(path)}: missing or not a {_TYPE_NAMES[expected]}")
    return current


_TYPE_NAMES: dict[type, str] = {dict: "mapping", str: "string", list: "list"}


@functools.cache
def _read_crds(crd_dir: Traversable | None) -> dict[tuple[str, str], dict[str, Any]]:
    """Every `*.yaml` CRD in `crd_dir`: (apiVersion, kind) to converted schema."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for name, _ in _crd_files(crd_dir):
        for pair, schema in _read_crd_file(crd_dir, name).items():
            schemas.setdefault(pair, schema)
    return schemas


def _directory(crd_dir: Traversable | None) -> Traversable:
    return files("promoter.schemas").joinpath("crds") if crd_dir is None else crd_dir


_GROUP_LINE = re.compile(rb"^\s*group:\s*[\"']?([^\"'\s#]+)", re.MULTILINE)


@functools.cache
def _crd_files(crd_dir: Traversable | None) -> tuple[tuple[str, frozenset[str]], ...]:
    """The `*.yaml` files in `crd_dir`, smallest (cheapest to parse) first, each with the
    words after a `group:` in it: a superset of the groups it serves (schemas have fields
    named `group` too), a hint of which file to parse first and never a verdict."""
    found = []
    for file in _directory(crd_dir).iterdir():
        if file.name.endswith(".yaml") and file.is_file():
            data = file.read_bytes()
            groups = frozenset(m.decode("utf-8", "replace") for m in _GROUP_LINE.findall(data))
            found.append((len(data), file.name, groups))
    return tuple((name, groups) for _, name, groups in sorted(found))


@functools.cache
def _read_crd_file(crd_dir: Traversable | None,
                   name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Parse and convert one CRD file once: (apiVersion, kind) to converted schema."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the Argo CD CRDs are large
    with _directory(crd_dir).joinpath(name).open("r", encoding="utf-8") as handle:
        return crd_schemas(yaml.load_all(handle, Loader=loader))


@functools.cache
def _validator(crd_dir: Traversable | None, api_version: str, kind: str) -> Validator:
    return _CrdValidator(_schema_for(api_version, kind, crd_dir))


# --- conversion ------------------------------------------------------------------------------


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
    """The `x-kubernetes-list-map-keys` keyword: no two items share their key fields."""
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
