"""Rendered Kubernetes objects and the small helpers the post-render checks share.

A `RenderedObject` remembers which template file and document it came from, so that every
error raised after substitution (by the TFJob step or the invariant checks) still points the
user at the file they must edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promoter.errors import InvalidManifestError

TEMPLATE_ROOT = "manifests"
"""Directory of the dry source that templates are read from; used only in messages."""

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class RenderedObject:
    """One Kubernetes object produced from one document of one template."""

    template: str
    """Template path relative to `manifests/`, e.g. `serving/deployment.yaml`."""
    document: int
    """0-based index of the document within the template file."""
    documents_in_file: int
    """How many documents the template file holds (to name the document only when needed)."""
    body: dict[str, Any]
    """The object after substitution, as plain dicts, lists and scalars."""

    @property
    def where(self) -> str:
        """`manifests/<template>` plus the document number when the file holds several."""
        return document_location(self.template, self.document, self.documents_in_file)

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def name(self) -> str:
        metadata = self.body.get("metadata")
        return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""

    @property
    def group(self) -> str:
        """API group without version (`apps`, `kubeflow.org`; "" for the core group)."""
        return self.api_version.rpartition("/")[0]

    def describe(self) -> str:
        """`manifests/serving/deployment.yaml: Deployment churn`, the prefix of messages."""
        return f"{self.where}: {self.kind} {self.name}"

    def error(self, field: str, message: str, *, fix: str | None = None) -> InvalidManifestError:
        """Build the error for `field` (a YAML path) of this object: file, object, field."""
        return InvalidManifestError(template=self.where, kind=self.kind, name=self.name,
                                    field=field, problem=message, fix=fix)


def document_location(template: str, document: int, documents_in_file: int) -> str:
    """Name a template document for messages: `manifests/x.yaml` or `... (document 2)`."""
    where = f"{TEMPLATE_ROOT}/{template}"
    if documents_in_file > 1:
        where += f" (document {document + 1})"
    return where


def format_path(path: Sequence[str | int]) -> str:
    """Format a YAML path like `spec.template.metadata.labels["app.kubernetes.io/name"]`.

    Keys that would be ambiguous after a dot (they contain dots or slashes, as Kubernetes label
    keys do) are written in brackets so the user can find them.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out or "(document)"


def get_in(data: Any, *path: str | int) -> Any:
    """Return the value at `path` inside nested dicts/lists, or None where any step is absent."""
    current = data
    for part in path:
        if isinstance(part, int):
            if not isinstance(current, list) or not -len(current) <= part < len(current):
                return None
            current = current[part]
        else:
            if not isinstance(current, dict):
                return None
            current = current.get(part)
    return current


def mapping_at(data: Any, *path: str | int) -> dict[str, Any]:
    """Like `get_in`, but return {} unless the value is a mapping."""
    value = get_in(data, *path)
    return value if isinstance(value, dict) else {}


def list_at(data: Any, *path: str | int) -> list[Any]:
    """Like `get_in`, but return [] unless the value is a list."""
    value = get_in(data, *path)
    return value if isinstance(value, list) else []


PodTemplateAt = tuple[tuple[str | int, ...], dict[str, Any]]
"""A pod template and its path inside the object (e.g. `("spec", "template")`)."""


def pod_templates(body: Mapping[str, Any]) -> Iterator[PodTemplateAt]:
    """Yield (path, pod template) for every pod template inside a workload object.

    Knows the core workload kinds, TFJob's replica specs and JobSet's replicated Jobs; other
    kinds yield nothing.
    """
    kind = body.get("kind")
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        template = get_in(body, "spec", "template")
        if isinstance(template, dict):
            yield ("spec", "template"), template
    elif kind == "CronJob":
        template = get_in(body, "spec", "jobTemplate", "spec", "template")
        if isinstance(template, dict):
            yield ("spec", "jobTemplate", "spec", "template"), template
    elif kind == "TFJob":
        for role, spec in mapping_at(body, "spec", "tfReplicaSpecs").items():
            template = get_in(spec, "template")
            if isinstance(template, dict):
                yield ("spec", "tfReplicaSpecs", role, "template"), template
    elif kind == "JobSet":
        for index, job in enumerate(list_at(body, "spec", "replicatedJobs")):
            template = get_in(job, "template", "spec", "template")
            if isinstance(template, dict):
                yield ("spec", "replicatedJobs", index, "template", "spec", "template"), template
