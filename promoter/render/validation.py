"""Schema validation of the rendered objects: would the API server accept each one?

Why at render time and not only in the tests: templates are the user's, and an object the API
server refuses (`kind: Servce`, `port: "8500"`) still renders, is proposed, merges, and only
then fails to apply, with the environment branch already holding it. So every rendered object
is checked before anything is written, against the first of these that serves its apiVersion
and kind:

1. the user's own CRDs (`render.crdDirectory` in promoter.yaml, read at the same dry commit as
   the templates), converted by `promoter.schemas.crd` like the packaged ones, so they may
   also replace a packaged CRD (a newer TFJob version);
2. the Kubernetes schemas that kubernetes-validate ships for `render.kubernetesVersion`, in
   strict mode: a field the schema does not declare is an error (the API server would refuse
   or silently drop it), as is a kind that version does not serve;
3. the CRDs packaged in `promoter/schemas/crds/` (Flux, Argo CD, Kubeflow TFJob, JobSet).

An object none of them serves is an unknown kind; the error suggests the closest known kind
(difflib), or the apiVersion that serves the kind. Only the best-matching problem of an object
is reported, with the field's path and a fix: the user corrects it and renders again.

Cost: the service renders on every reconcile, to check that a proposal's head is byte for byte
promoter's render. Everything here is read and built once per process and cached: the 1.8 MB
definitions of a Kubernetes version, one validator per (version, apiVersion, kind), and the
user's CRDs per content of their files. A render then pays only the validation itself.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from kubernetes_validate.utils import all_versions, major_minor, schema_contents
from referencing import Registry, Resource

from promoter.config.schema import DEFAULT_KUBERNETES_VERSION
from promoter.errors import ConfigError
from promoter.render.objects import RenderedObject, format_path
from promoter.schemas import SchemaValidationError, crd_kinds, crd_schemas, crd_validator
from promoter.schemas.crd import schema_validator

SETTINGS_FILE = "promoter.yaml"
"""Where `render:` is configured; named in errors about it."""

CRD_DIRECTORY_SETTING = "render.crdDirectory"

_STABILITY = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_PORT_LIKE = re.compile(r"^[+-]?\d+(\.\d+)?$")
_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "object": "a mapping", "array": "a list"}


@dataclass(frozen=True, slots=True)
class ObjectSchemas:
    """What the rendered objects of one dry-source revision are validated against.

    A value (frozen, hashable), so that the caches below can be keyed on it: equal settings
    and CRD files share one set of validators however often the service renders.
    """

    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    """Kubernetes minor version (`"1.37"`) whose core schemas apply."""
    crd_files: tuple[tuple[str, str], ...] = ()
    """The user's CRD files: (path in the dry source, YAML text), sorted by path."""

    def __post_init__(self) -> None:
        # Checked here, once, rather than at the first object of the first render: a version
        # without schemas is a configuration mistake, not a template one.
        _core(self.kubernetes_version)

    @classmethod
    def of(cls, kubernetes_version: str, crds: Mapping[str, str]) -> ObjectSchemas:
        """Build from `render.kubernetesVersion` and the CRD files of a dry source."""
        return cls(kubernetes_version=kubernetes_version, crd_files=tuple(sorted(crds.items())))

    def check_kind(self, obj: RenderedObject) -> None:
        """Raise InvalidManifestError unless a schema serves the object's apiVersion and kind.

        Raises ConfigError if one of the user's CRD files is not a usable CRD.
        """
        if self._lookup(obj.api_version, obj.kind) is not None:
            return
        catalog = _catalog(self)
        served = catalog.get(obj.kind)
        known = f"Kubernetes {self.kubernetes_version} or a known CRD"
        if served:
            raise obj.error(
                "apiVersion",
                f"{obj.api_version} does not serve {obj.kind} in {known}; {obj.kind} is "
                f"served as {', '.join(served)}",
                fix=f"use `apiVersion: {served[0]}`",
            )
        suggestion = _closest_kind(obj.kind, catalog)
        hint = ""
        if suggestion is not None:
            versions = catalog[suggestion]
            api_version = obj.api_version if obj.api_version in versions else versions[0]
            hint = f"did you mean `kind: {suggestion}` (apiVersion {api_version})? "
        raise obj.error(
            "kind",
            f"unknown kind {obj.kind!r}: {obj.api_version} {obj.kind} is neither a Kubernetes "
            f"{self.kubernetes_version} kind nor served by a known CRD (the packaged Flux, "
            f"Argo CD and Kubeflow CRDs{self._user_crds_named()})",
            fix=f"{hint}A custom resource needs its CustomResourceDefinition in the directory "
                f"named by {CRD_DIRECTORY_SETTING} in {SETTINGS_FILE}",
        )

    def check_schema(self, obj: RenderedObject) -> None:
        """Raise InvalidManifestError for the best-matching schema violation of `obj`.

        An unknown kind is reported as by `check_kind`.
        """
        found = self._lookup(obj.api_version, obj.kind)
        if found is None:
            self.check_kind(obj)
            return
        validator, label = found
        error = best_match(validator.iter_errors(obj.body))
        if error is None:
            return
        path, problem, fix = _describe(error, label)
        raise obj.error(format_path(path), problem, fix=fix)

    def _lookup(self, api_version: str, kind: str) -> tuple[Validator, str] | None:
        key = (api_version, kind)
        user = _user_crds(self.crd_files).get(key)
        if user is not None:
            return user
        # Core kinds before the packaged CRDs (no CRD serves a core group): looking a kind up
        # among the CRDs reads CRD files until one serves it.
        if key in _core(self.kubernetes_version).kinds:
            return (_core_validator(self.kubernetes_version, api_version, kind),
                    f"Kubernetes {self.kubernetes_version} schema of {api_version} {kind}")
        try:
            validator = crd_validator(api_version, kind)
        except LookupError:
            return None
        return validator, f"CRD schema of {api_version} {kind}"

    def _user_crds_named(self) -> str:
        if not self.crd_files:
            return ""
        return ", or yours in " + ", ".join(path for path, _ in self.crd_files)


# --- Kubernetes core schemas (kubernetes-validate) -------------------------------------------


@dataclass(frozen=True, slots=True)
class _CoreSchemas:
    """One Kubernetes version's strict schemas, as kubernetes-validate ships them."""

    directory: str
    """`kubernetes-json-schema/v1.37.0-local-strict`, inside the kubernetes_validate package."""
    release: str
    """The schemas' full version (`1.37.0`)."""
    kinds: Mapping[tuple[str, str], str]
    """(apiVersion, kind) of every resource kind to its schema file."""
    registry: Registry
    """The shared definitions every kind's schema refers to."""


@functools.cache
def _shipped_versions() -> dict[str, str]:
    """Kubernetes minor (`1.37`) to the newest release kubernetes-validate has schemas for."""
    return {major_minor(release): release for release in all_versions()}


@functools.cache
def _core(minor: str) -> _CoreSchemas:
    """Read the definitions of Kubernetes `minor` once; ConfigError if none are shipped."""
    shipped = _shipped_versions()
    release = shipped.get(minor)
    if release is None:
        available = sorted(shipped, key=lambda v: tuple(int(p) for p in v.split(".")))
        raise ConfigError(
            SETTINGS_FILE,
            f"Kubernetes {minor} has no schemas in kubernetes-validate "
            f"{kubernetes_validate.__version__} (it ships {available[0]} to {available[-1]})",
            field="render.kubernetesVersion",
            fix=f"use one of {', '.join(available)} (default {DEFAULT_KUBERNETES_VERSION}), "
                "or upgrade kubernetes-validate",
        )
    # The same directory and file names kubernetes_validate.validate(strict=True) reads.
    directory = f"kubernetes-json-schema/v{release}-local-strict"
    definitions = schema_contents(f"{directory}/_definitions.json", release)
    kinds: dict[tuple[str, str], str] = {}
    for name, definition in definitions["$defs"].items():
        gvks = definition.get("x-kubernetes-group-version-kind") or []
        # Meta types (DeleteOptions, WatchEvent, Status, APIGroup...) and typed lists are no
        # objects a template should render: leave them out of the catalog and suggestions.
        if len(gvks) != 1 or name.startswith("io.k8s.apimachinery."):
            continue
        group, version, kind = gvks[0]["group"], gvks[0]["version"], gvks[0]["kind"]
        if kind.endswith("List"):
            continue
        api_version = f"{group}/{version}" if group else version
        file_api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        kinds[(api_version, kind)] = f"{directory}/{kind.lower()}-{file_api}.json"
    registry: Registry = Resource.from_contents(definitions) @ Registry()
    return _CoreSchemas(directory=directory, release=release, kinds=kinds,
                        registry=registry)


@functools.cache
def _core_validator(minor: str, api_version: str, kind: str) -> Validator:
    """The strict validator of one core kind, built once (as kubernetes-validate builds it)."""
    core = _core(minor)
    schema = schema_contents(core.kinds[(api_version, kind)], core.release)
    registry = Resource.from_contents(schema) @ core.registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


# --- CRDs ------------------------------------------------------------------------------------


@functools.cache
def _packaged_kinds() -> frozenset[tuple[str, str]]:
    return frozenset(crd_kinds())


@functools.lru_cache(maxsize=8)
def _user_crds(crd_files: tuple[tuple[str, str], ...]) -> dict[tuple[str, str],
                                                               tuple[Validator, str]]:
    """Convert the user's CRD files once per content: (apiVersion, kind) to (validator, label).

    Raises ConfigError naming the file for bad YAML, a file without a CRD, a CRD without a
    schema, or two files serving the same kind.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[tuple[str, str], tuple[Validator, str]] = {}
    owner: dict[tuple[str, str], str] = {}
    for path, text in crd_files:
        try:
            documents = list(yaml.load_all(text, Loader=loader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(path, f"invalid YAML{at}: {getattr(exc, 'problem', exc)}",
                              fix="fix the YAML syntax at that position") from exc
        try:
            schemas = crd_schemas(documents)
        except SchemaValidationError as exc:
            raise ConfigError(
                path, f"{exc}", fix="a CustomResourceDefinition (apiextensions.k8s.io/v1) "
                "needs spec.group, spec.names.kind and, for every served version, a name and "
                "schema.openAPIV3Schema") from exc
        if not schemas:
            raise ConfigError(
                path, "holds no CustomResourceDefinition with a served version",
                fix=f"keep only CRDs (kind: CustomResourceDefinition) in {CRD_DIRECTORY_SETTING}")
        for key, schema in schemas.items():
            if key in owner:
                raise ConfigError(path, f"serves {key[0]} {key[1]}, as {owner[key]} does",
                                  fix="keep one CRD per kind")
            owner[key] = path
            found[key] = (schema_validator(schema),
                          f"CRD schema of {key[0]} {key[1]} ({path})")
    return found


# --- unknown kinds ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _catalog(schemas: ObjectSchemas) -> dict[str, list[str]]:
    """Every known kind to the apiVersions serving it, the preferred (stable, newest) first."""
    pairs = [*_core(schemas.kubernetes_version).kinds, *_packaged_kinds(),
             *_user_crds(schemas.crd_files)]
    catalog: dict[str, list[str]] = {}
    for api_version, kind in pairs:
        catalog.setdefault(kind, []).append(api_version)
    return {kind: sorted(set(versions), key=_preference) for kind, versions in catalog.items()}


def _preference(api_version: str) -> tuple[int, int, int, str]:
    """Sort key: GA before beta before alpha, higher versions first, then by name."""
    match = _STABILITY.match(api_version.rpartition("/")[2])
    if match is None:
        return (3, 0, 0, api_version)
    stability = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    return (stability, -int(match.group(1)), -int(match.group(3) or 0), api_version)


def _closest_kind(kind: str, catalog: Mapping[str, list[str]]) -> str | None:
    by_lower = {known.lower(): known for known in catalog}
    if kind.lower() in by_lower:
        return by_lower[kind.lower()]
    close = difflib.get_close_matches(kind, sorted(catalog), n=1)
    return close[0] if close else None


# --- describing a schema violation -----------------------------------------------------------


def _describe(error: ValidationError, label: str) -> tuple[tuple[str | int, ...], str, str]:
    """The (path, problem, fix) of a jsonschema error, in the words of a template's author."""
    path: tuple[str | int, ...] = tuple(error.absolute_path)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extra = next((key for key in instance if key not in allowed
                      and not any(re.search(p, str(key)) for p in patterns)), None)
        if extra is not None:
            close = difflib.get_close_matches(str(extra), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return ((*path, str(extra)), f"unknown field in the {label}",
                    f"{hint}Fields here: {', '.join(sorted(allowed)) or 'none'}")
    if error.validator == "type":
        expected = [t for t in _as_list(error.validator_value) if t != "null"]
        wanted = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected)
        return path, f"must be {wanted}, got {instance!r}", _type_fix(expected, instance,
                                                                        wanted, label)
    if error.validator == "required" and isinstance(instance, dict):
        missing = next((key for key in _as_list(error.validator_value) if key not in instance),
                       None)
        if missing is not None:
            return (*path, str(missing)), "is required", f"add it: the {label} requires it"
    if error.validator == "enum":
        values = ", ".join(repr(v) for v in _as_list(error.validator_value))
        return path, f"{instance!r} is not one of {values}", f"use one of: {values}"
    return path, error.message, f"make it match the {label}"


def _type_fix(expected: list[Any], instance: Any, wanted: str, label: str) -> str:
    if isinstance(instance, str) and _PORT_LIKE.match(instance) and (
            "integer" in expected or "number" in expected):
        return ("remove the quotes: a quoted number (or a quoted `${...}`) renders a string, "
                "while an unquoted `${var}` that is the whole value keeps the variable's type")
    if "string" in expected and isinstance(instance, bool | int | float):
        return ('quote the value, e.g. "${model.version}": unquoted, YAML reads it as a '
                f"{type(instance).__name__}")
    return f"write {wanted} here, as the {label} requires"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
