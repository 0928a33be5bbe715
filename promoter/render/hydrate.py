"""Hydration: the dry source of one environment in, plain Kubernetes YAML files out.

`render_environment` is pure and deterministic: it reads nothing but its arguments, and equal
arguments give byte-identical files (templates are processed in sorted order, whatever the
order of the mapping; the output keeps each template's key order). That is what lets promoter
re-render an environment and see that nothing changed, and what `RenderedManifests.digest()`
records in `hydrator.metadata`.

Steps: build the variables (`variables.py`), parse and substitute each template
(`templating.py`), drop TFJob roles with no replicas (`tfjob.py`), keep the training job of
the environment's `training.kind` (`parts.py`), give a JobSet's replicas their TF_CONFIG
(`jobset.py`), check the rendered objects
against promotion's rules and their schemas (`invariants.py`, `validation.py`) and their place
(`parts.py`: serving and training apart), dump them (`yaml_output.py`) and add a
`kustomization.yaml` to each part and one at the root listing the parts, so Flux's
kustomize-controller, Argo CD or `kubectl apply -k` apply each part as it is.

Validation decides only whether a render is returned, never what it holds: the files are the
same bytes whatever `schemas` say.

Only `*.yaml`/`*.yml` files under `manifests/serving/` and `manifests/training/` are templates;
other files (a README) are not rendered. Each template becomes one output file at the same
relative path. `training.enabled: false` leaves `training/` out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from promoter.config.schema import EnvironmentSpec, ModelSpec
from promoter.domain.model_versions import ModelVersion
from promoter.errors import RenderError
from promoter.render.invariants import check_invariants
from promoter.render.jobset import prepare_jobset
from promoter.render.objects import TEMPLATE_ROOT, RenderedObject, document_location
from promoter.render.parts import (
    check_parts,
    is_generated_name,
    kustomizations,
    select_templates,
    select_training_kind,
)
from promoter.render.release import Release
from promoter.render.templating import Variables, render_template
from promoter.render.tfjob import drop_idle_replica_specs
from promoter.render.validation import ObjectSchemas
from promoter.render.variables import build_variables
from promoter.render.yaml_output import KUSTOMIZATION_FILE, dump_documents

TEMPLATE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class RenderedManifests:
    """The files of one environment branch's rendered manifests, by path, sorted."""

    files: Mapping[str, bytes]
    """POSIX path relative to the branch root (e.g. `serving/deployment.yaml`) to content.
    Read-only; iteration is in sorted path order."""

    def __post_init__(self) -> None:
        # Copy and freeze: a caller's later edit to its dict must not change a value whose
        # digest may already be recorded.
        frozen = MappingProxyType(dict(sorted(self.files.items())))
        object.__setattr__(self, "files", frozen)

    def __hash__(self) -> int:
        # The generated hash would hash the read-only mapping, which is unhashable.
        return hash(self.digest())

    def digest(self) -> str:
        """Return `sha256:<hex>` over the sorted paths and bytes.

        Each path and each content is length-prefixed, so moving bytes from one file to another
        or renaming a file always changes the digest.
        """
        digest = hashlib.sha256()
        for path, data in self.files.items():
            encoded = path.encode("utf-8")
            digest.update(f"{len(encoded)}:".encode() + encoded + b"\0")
            digest.update(f"{len(data)}:".encode() + data + b"\0")
        return f"sha256:{digest.hexdigest()}"


def render_environment(templates: Mapping[str, str], *, environment: EnvironmentSpec,
                       model: ModelSpec, version: ModelVersion,
                       schemas: ObjectSchemas | None = None) -> RenderedManifests:
    """Render `templates` (paths relative to `manifests/` to text) for one model version.

    Returns one file per template plus the `kustomization.yaml` files (see `parts.py`).
    Raises RenderError, naming the template and field, for a malformed template, an unknown
    variable or an object in the wrong part, and its subclass InvalidManifestError, naming
    the object too, for a rendered object that breaks an invariant or its schema (see
    `invariants.py`, `validation.py`); nothing is returned partially. `schemas`: the
    Kubernetes version and user CRDs to validate against (default: the default version and
    the packaged CRDs only); there is no way to skip validation.
    """
    variables = build_variables(environment=environment, model=model, version=version)
    objects = render_objects(select_templates(_templates(templates), environment), variables)
    objects = select_training_kind(objects, environment)
    check_parts(objects)
    # After both: a JobSet is prepared only where JobSets run, and only under training/.
    objects = [prepare_jobset(obj) for obj in objects]
    check_invariants(objects, Release(
        environment=environment.name,
        namespace=environment.namespace,
        model=model.name,
        version=version.version,
        digest=version.digest,
        model_config=str(variables["serving.modelConfig"]),
        fetch_image=str(variables["serving.fetchImage"]),
        model_base_path=str(variables["serving.modelBasePath"]),
        served_base_path=str(variables["serving.servedBasePath"]),
    ), schemas=schemas or ObjectSchemas())
    by_template: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_template.setdefault(obj.template, []).append(obj.body)
    files = {
        path: dump_documents(bodies, header=_header(path))
        for path, bodies in by_template.items()
    }
    files.update(kustomizations(files))
    return RenderedManifests(files=files)


def _templates(templates: Mapping[str, str]) -> dict[str, str]:
    """The template files among `templates` (by suffix), their paths checked."""
    selected = {}
    for path in sorted(templates):
        if path.endswith(TEMPLATE_SUFFIXES):
            _check_template_path(path)
            selected[path] = templates[path]
    return selected


def render_objects(templates: Mapping[str, str], variables: Variables) -> list[RenderedObject]:
    """Render every template to Kubernetes objects, in sorted template order, unchecked.

    Raises RenderError for a bad template path, bad YAML, an unknown variable, a document that
    is not a mapping, or a template with no document.
    """
    objects: list[RenderedObject] = []
    for path in sorted(templates):
        if not path.endswith(TEMPLATE_SUFFIXES):
            continue
        _check_template_path(path)
        documents = render_template(path, templates[path], variables)
        if not documents:
            raise RenderError(f"{TEMPLATE_ROOT}/{path}: holds no YAML document",
                              fix="add a Kubernetes object to it or delete the file")
        for index, document in enumerate(documents):
            if not isinstance(document, dict):
                where = document_location(path, index, len(documents))
                raise RenderError(
                    f"{where}: expected a Kubernetes object (a mapping), got "
                    f"{type(document).__name__}",
                    fix="make each document a mapping with apiVersion, kind and metadata",
                )
            obj = RenderedObject(template=path, document=index,
                                 documents_in_file=len(documents), body=document)
            objects.append(drop_idle_replica_specs(obj))
    return objects


def _check_template_path(path: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path or not pure.parts:
        raise RenderError(f"{TEMPLATE_ROOT}/{path}: not a relative path inside "
                          f"{TEMPLATE_ROOT}/")
    if is_generated_name(path):
        raise RenderError(
            f"{TEMPLATE_ROOT}/{path}: promoter generates {KUSTOMIZATION_FILE} itself",
            fix="delete the file; every template is listed in the generated kustomization",
        )


def _header(path: str) -> str:
    return (f"Rendered by promoter from {TEMPLATE_ROOT}/{path} on the dry branch.\n"
            "Do not edit: edit the template and promote again.")
