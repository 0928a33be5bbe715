"""The two parts of an environment branch: `serving/` (the rollout) and `training/`.

Why two parts. Flux applies a Kustomization, and Argo CD syncs an Application, as one unit:
one health verdict for everything in it. With the training TFJob in the same unit as the
TensorFlow Serving Deployment, a TFJob queued past the timeout, crashed or suspended by Kueue
failed the serving rollout, and promoter rolled back a serving version that was fine; and a
cluster without `tfjobs.kubeflow.org` (Kubeflow Trainer v2) failed the whole sync. So the
branch holds each part in its own directory, with its own `kustomization.yaml`, and `promoter
flux|argo` deliver each by its own Kustomization or Application; promoter's rollout verdict
reads only the serving one.

Layout of an environment branch (templates keep their path below `manifests/`):

    kustomization.yaml           lists the parts, for `kubectl apply -k .` by hand
    serving/kustomization.yaml   every file under serving/ (Flux path ./serving)
    serving/deployment.yaml ...
    training/kustomization.yaml  every file under training/, only when training.enabled
    training/tfjob.yaml          (or jobset.yaml: the job of `training.kind`)
    hydrator.metadata            (written by the promotion service, not here)

Rules, checked when rendering so that a template cannot undo the split by mistake:

- every template lives under `manifests/serving/` or `manifests/training/`;
- a Kubeflow training kind (`kubeflow.org`, `trainer.kubeflow.org`) only under `training/`
  (under `serving/` it would gate the rollout again);
- an `apps` Deployment only under `serving/` (under `training/` its health would not be part
  of the rollout promoter gates and rolls back on);
- with `training.enabled: false` the training templates are not rendered at all (not even
  parsed); with it on, there must be at least one (else the training Kustomization would
  point at a directory that does not exist);
- of the training jobs (TFJob, JobSet), only those of the environment's `training.kind` are
  kept, so one set of templates can hold both and each environment runs the kind its cluster
  has; there must be one of that kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from promoter.config.schema import EnvironmentSpec
from promoter.errors import RenderError
from promoter.render.objects import TEMPLATE_ROOT, RenderedObject
from promoter.render.yaml_output import KUSTOMIZATION_FILE, render_kustomization

SERVING = "serving"
"""The part whose health is the rollout: gated, read back, rolled back."""
TRAINING = "training"
"""The part delivered on its own: its state is reported, never gating serving."""
PARTS = (SERVING, TRAINING)

TRAINING_GROUPS = frozenset({"kubeflow.org", "trainer.kubeflow.org", "jobset.x-k8s.io"})
"""API groups of training kinds: Kubeflow's (TFJob and the other v1 jobs; Trainer v2) and
JobSet's."""

TRAINING_JOBS = {"TFJob": ("kubeflow.org/v1", "TFJob"),
                 "JobSet": ("jobset.x-k8s.io/v1alpha2", "JobSet")}
"""`training.kind` to the (apiVersion, kind) of the job it renders."""

_KUSTOMIZATION_NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "kustomization"})


def part_of(template: str) -> str:
    """The part (`serving` or `training`) of a template path relative to `manifests/`.

    Raises RenderError for a template outside both directories.
    """
    parts = PurePosixPath(template).parts
    if len(parts) < 2 or parts[0] not in PARTS:
        raise RenderError(
            f"{TEMPLATE_ROOT}/{template}: templates live in {TEMPLATE_ROOT}/{SERVING}/ "
            f"or {TEMPLATE_ROOT}/{TRAINING}/",
            fix=f"move it to {TEMPLATE_ROOT}/{SERVING}/ if its health is part of the "
                f"serving rollout, else to {TEMPLATE_ROOT}/{TRAINING}/",
        )
    return parts[0]


def is_generated_name(template: str) -> bool:
    """True for `kustomization.yaml` (any case, at any depth): promoter writes those."""
    return PurePosixPath(template).name.lower() in _KUSTOMIZATION_NAMES


def select_templates(templates: Mapping[str, str],
                     environment: EnvironmentSpec) -> dict[str, str]:
    """The templates to render for `environment`: all of them, less `training/` when
    `training.enabled` is false. Raises RenderError for a template outside both parts, or
    when training is enabled and no template is under `training/`."""
    selected: dict[str, str] = {}
    for path, text in templates.items():
        if part_of(path) == TRAINING and not environment.training.enabled:
            continue
        selected[path] = text
    if environment.training.enabled and not any(part_of(p) == TRAINING for p in selected):
        raise RenderError(
            f"training.enabled is true for {environment.name}, but no template is under "
            f"{TEMPLATE_ROOT}/{TRAINING}/",
            fix=f"set training.enabled: false in environments/{environment.name}.yaml, or add "
                f"the training job to {TEMPLATE_ROOT}/{TRAINING}/",
        )
    return selected


def check_parts(objects: Sequence[RenderedObject]) -> None:
    """Raise RenderError for an object in the wrong part (see the module doc)."""
    for obj in objects:
        part = part_of(obj.template)
        if part == SERVING and obj.group in TRAINING_GROUPS:
            raise RenderError(
                f"{obj.describe()}: a training job under {SERVING}/ would gate the serving "
                "rollout (and a failed or queued job would roll serving back)",
                fix=f"move it to {TEMPLATE_ROOT}/{TRAINING}/",
            )
        if part == TRAINING and obj.group == "apps" and obj.kind == "Deployment":
            raise RenderError(
                f"{obj.describe()}: a Deployment under {TRAINING}/ is not part of the serving "
                "rollout that promoter gates and rolls back",
                fix=f"move it to {TEMPLATE_ROOT}/{SERVING}/",
            )


def select_training_kind(objects: Sequence[RenderedObject],
                         environment: EnvironmentSpec) -> list[RenderedObject]:
    """`objects` without the training jobs of another kind than `training.kind`.

    Raises RenderError when training is enabled and no training template renders a job of
    that kind. Objects that are not TFJobs or JobSets are kept, whatever their part.
    """
    wanted = TRAINING_JOBS[environment.training.kind]
    others = set(TRAINING_JOBS.values()) - {wanted}
    kept = [obj for obj in objects if (obj.api_version, obj.kind) not in others]
    if environment.training.enabled and not any(
            (obj.api_version, obj.kind) == wanted for obj in kept):
        other = next(name for name in TRAINING_JOBS if name != environment.training.kind)
        raise RenderError(
            f"training.kind is {environment.training.kind} for {environment.name}, but no "
            f"template under {TEMPLATE_ROOT}/{TRAINING}/ renders a {wanted[1]} ({wanted[0]})",
            fix=f"add one to {TEMPLATE_ROOT}/{TRAINING}/, or set training.kind: {other} in "
                f"environments/{environment.name}.yaml",
        )
    return kept


def kustomizations(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """`<part>/kustomization.yaml` for each part with files, and the root one listing the
    parts. `files` are the rendered files by branch path (each under a part)."""
    by_part: dict[str, list[str]] = {}
    for path in files:
        part = part_of(path)
        by_part.setdefault(part, []).append(PurePosixPath(path).relative_to(part).as_posix())
    out = {
        f"{part}/{KUSTOMIZATION_FILE}": render_kustomization(
            listed, header=f"Generated by promoter: every rendered file of {part}/ "
                           f"({_ROLE[part]}).")
        for part, listed in by_part.items()
    }
    out[KUSTOMIZATION_FILE] = render_kustomization(
        by_part, header="Generated by promoter: the parts of this environment, for "
                        "`kubectl apply -k .`.\nFlux and Argo CD deliver each part on its "
                        "own (see `promoter flux|argo`).")
    return out


_ROLE = {
    SERVING: "the rollout promoter gates and rolls back",
    TRAINING: "delivered on its own; never gates serving",
}
