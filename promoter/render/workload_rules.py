"""The promises of the workloads promotion rolls out: serving Deployments and TFJobs.

A serving Deployment carries the release's version and digest on its pod template, selects
its own pods without the per-release version label, and runs TF Serving on the generated
ModelServerConfig from a mounted, rendered ConfigMap; the Services, PodDisruptionBudgets and
autoscalers around it must select or target a rendered Deployment. A TFJob carries the release
annotations, a `tensorflow` container per replica spec and at most one coordinator; a JobSet
carries the release annotations. These rules
look at several objects at once, so `invariants.check_invariants` runs them last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from promoter.render.jobset import PS_NEEDS_CHIEF, PS_NEEDS_CHIEF_FIX
from promoter.render.objects import (
    RenderedObject,
    format_path,
    get_in,
    list_at,
    mapping_at,
)
from promoter.render.release import (
    MODEL_CONFIG_FLAG,
    MODEL_DIGEST_ANNOTATION,
    MODEL_VERSION_ANNOTATION,
    TENSORFLOW_CONTAINER,
    VERSION_LABEL,
    Release,
)
from promoter.render.tfjob import replica_spec_path


def _require_release_annotations(obj: RenderedObject, annotations: Mapping[str, Any],
                                 field: str, release: Release, *, why: str) -> None:
    expected = {MODEL_VERSION_ANNOTATION: str(release.version),
                MODEL_DIGEST_ANNOTATION: release.digest}
    for key, value in expected.items():
        actual = annotations.get(key)
        if actual != value:
            found = "is missing" if actual is None else f"is {actual!r}, expected {value!r}"
            raise obj.error(
                format_path((*field.split("."), key)), found,
                fix=f'set {MODEL_VERSION_ANNOTATION}: "${{model.version}}" and '
                    f'{MODEL_DIGEST_ANNOTATION}: "${{model.digest}}" in {field}, {why}',
            )


# --- serving ---------------------------------------------------------------------------------


def _pod_labels(deployment: RenderedObject) -> dict[str, Any]:
    return mapping_at(deployment.body, "spec", "template", "metadata", "labels")


def _check_deployment(deployment: RenderedObject, objects: Sequence[RenderedObject],
                      release: Release) -> None:
    template = mapping_at(deployment.body, "spec", "template")
    _require_release_annotations(
        deployment, mapping_at(template, "metadata", "annotations"),
        "spec.template.metadata.annotations", release,
        why="so that promoting a new version rolls the pods",
    )
    selector = get_in(deployment.body, "spec", "selector", "matchLabels")
    if not isinstance(selector, dict) or not selector:
        raise deployment.error("spec.selector.matchLabels", "is missing or empty",
                               fix="select the pod template's app.kubernetes.io/name and "
                                   "app.kubernetes.io/instance labels")
    labels = _pod_labels(deployment)
    unmatched = sorted(k for k, v in selector.items() if labels.get(k) != v)
    if unmatched:
        raise deployment.error(
            "spec.selector.matchLabels",
            f"{', '.join(unmatched)} not matched by spec.template.metadata.labels",
            fix="use the same label values in the selector and the pod template",
        )
    if VERSION_LABEL in selector:
        raise deployment.error(
            format_path(("spec", "selector", "matchLabels", VERSION_LABEL)),
            "a Deployment's selector is immutable, so a label that changes with every "
            "release makes the next promotion fail to apply",
            fix=f"keep {VERSION_LABEL} on the pod template and remove it from the selector",
        )
    _check_model_config(deployment, template, objects, release)


def _check_model_config(deployment: RenderedObject, template: Mapping[str, Any],
                        objects: Sequence[RenderedObject], release: Release) -> None:
    """Require a container reading the generated ModelServerConfig from a mounted ConfigMap."""
    containers = [c for c in list_at(template, "spec", "containers") if isinstance(c, dict)]
    serving = [(index, c, file) for index, c in enumerate(containers)
               if (file := _flag_value(c, MODEL_CONFIG_FLAG)) is not None]
    if not serving:
        raise deployment.error(
            "spec.template.spec.containers",
            f"no container passes {MODEL_CONFIG_FLAG}: TensorFlow Serving would serve the "
            f"newest version under the base path instead of version {release.version}",
            fix=f"pass {MODEL_CONFIG_FLAG}=<dir>/<key> and mount the ConfigMap whose <key> "
                "is ${serving.modelConfig} at <dir>",
        )
    for index, container, file in serving:
        where = f"spec.template.spec.containers[{index}]"
        mount, key = _mount_for(container, file)
        if mount is None or key is None:
            raise deployment.error(
                f"{where}.volumeMounts",
                f"{MODEL_CONFIG_FLAG}={file} is not inside any volume mount of container "
                f"{container.get('name')!r}",
                fix="mount the model config ConfigMap at the directory of that file",
            )
        volume = next((v for v in list_at(template, "spec", "volumes")
                       if isinstance(v, dict) and v.get("name") == mount.get("name")), None)
        config_map = get_in(volume, "configMap")
        if not isinstance(config_map, dict):
            raise deployment.error(
                "spec.template.spec.volumes",
                f"volume {mount.get('name')!r} (holding {file}) is not a configMap volume",
                fix="make it a configMap volume of the ConfigMap holding ${serving.modelConfig}",
            )
        items = [i for i in list_at(config_map, "items") if isinstance(i, dict)]
        if items:
            key = next((i.get("key") for i in items if i.get("path") == key), None)
        name = config_map.get("name")
        source = next((o for o in objects if o.group == "" and o.kind == "ConfigMap"
                       and o.name == name), None)
        if source is None:
            raise deployment.error(
                "spec.template.spec.volumes",
                f"ConfigMap {name!r} (holding {file}) is not rendered by any template",
                fix="add a ConfigMap template with that name holding ${serving.modelConfig}",
            )
        if key is None or mapping_at(source.body, "data").get(key) != release.model_config:
            raise source.error(
                format_path(("data", str(key))),
                f"does not hold the ModelServerConfig of version {release.version} that "
                f"{deployment.kind} {deployment.name} reads from {file}",
                fix=f"set `{key}: ${{serving.modelConfig}}` under data",
            )


def _flag_value(container: Mapping[str, Any], flag: str) -> str | None:
    """Return the value of `flag` in the container's command + args (`--f=v` or `--f v`)."""
    argv = [a for a in (list_at(container, "command") + list_at(container, "args"))
            if isinstance(a, str)]
    for index, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
    return None


def _mount_for(container: Mapping[str, Any],
               file: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return the volume mount that holds `file`, and the file's path inside the volume."""
    best: tuple[dict[str, Any] | None, str | None] = (None, None)
    best_length = -1
    for mount in list_at(container, "volumeMounts"):
        if not isinstance(mount, dict) or not isinstance(mount.get("mountPath"), str):
            continue
        mount_path = mount["mountPath"].rstrip("/")
        sub_path = mount.get("subPath")
        if sub_path:
            if file == mount_path and len(mount_path) > best_length:
                best, best_length = (mount, str(sub_path)), len(mount_path)
        elif file.startswith(mount_path + "/") and len(mount_path) > best_length:
            best, best_length = (mount, file[len(mount_path) + 1:]), len(mount_path)
    return best


def _check_selects(obj: RenderedObject, path: tuple[str, ...],
                   deployments: Sequence[RenderedObject]) -> None:
    selector = get_in(obj.body, *path)
    if not isinstance(selector, dict) or not selector:
        return  # no selector: nothing to match (a headless or external Service)
    for deployment in deployments:
        labels = _pod_labels(deployment)
        if all(labels.get(k) == v for k, v in selector.items()):
            return
    shown = ", ".join(f"{d.name}: {_pod_labels(d)}" for d in deployments)
    raise obj.error(
        format_path(path), f"{selector} matches the pods of no rendered Deployment ({shown})",
        fix="use the labels of the Deployment's spec.template.metadata.labels",
    )


def _check_autoscaler(obj: RenderedObject, deployments: Sequence[RenderedObject],
                      release: Release) -> None:
    ref = mapping_at(obj.body, "spec", "scaleTargetRef")
    if ref.get("kind") != "Deployment":
        return
    target = next((d for d in deployments if d.name == ref.get("name")), None)
    if target is None:
        raise obj.error("spec.scaleTargetRef.name",
                        f"Deployment {ref.get('name')!r} is not rendered by any template",
                        fix="name the serving Deployment, e.g. ${model.name}")
    scales_on_cpu = any(
        get_in(metric, "type") == "Resource" and get_in(metric, "resource", "name") == "cpu"
        and get_in(metric, "resource", "target", "type") == "Utilization"
        for metric in list_at(obj.body, "spec", "metrics")
    )
    if not scales_on_cpu:
        return
    containers = list_at(target.body, "spec", "template", "spec", "containers")
    for index, container in enumerate(containers):
        resources = mapping_at(container, "resources")
        if not (get_in(resources, "requests", "cpu") or get_in(resources, "limits", "cpu")):
            raise target.error(
                f"spec.template.spec.containers[{index}].resources",
                f"has no CPU request, but HorizontalPodAutoscaler {obj.name} scales on CPU "
                "utilization, which is relative to the request",
                fix=f"set serving.resources.requests.cpu in environments/"
                    f"{release.environment}.yaml",
            )


# --- training --------------------------------------------------------------------------------


def _check_tfjob(obj: RenderedObject, release: Release) -> None:
    _require_release_annotations(obj, mapping_at(obj.body, "metadata", "annotations"),
                                 "metadata.annotations", release,
                                 why="so the training job is tied to the release")
    specs = get_in(obj.body, "spec", "tfReplicaSpecs")
    if not isinstance(specs, dict) or not specs:
        raise obj.error("spec.tfReplicaSpecs", "has no replica spec with replicas > 0",
                        fix="give Worker `replicas: ${training.workers}`")
    coordinators = [role for role in specs if role in {"Chief", "Master"}]
    if len(coordinators) > 1:
        raise obj.error("spec.tfReplicaSpecs", f"has both {' and '.join(coordinators)}",
                        fix="keep one Chief; the operator allows a single coordinator")
    if "PS" in specs and not coordinators:
        raise obj.error(replica_spec_path("PS"), f"is set but the TFJob has no Chief: "
                        f"{PS_NEEDS_CHIEF}", fix=PS_NEEDS_CHIEF_FIX)
    for role, spec in specs.items():
        if role in {"Chief", "Master"} and get_in(spec, "replicas") not in (None, 1):
            raise obj.error(replica_spec_path(role, "replicas"),
                            f"is {get_in(spec, 'replicas')!r}; the operator allows one {role}",
                            fix="use `replicas: ${training.chiefReplicas}`")
        names = [c.get("name") for c in list_at(spec, "template", "spec", "containers")
                 if isinstance(c, dict)]
        if TENSORFLOW_CONTAINER not in names:
            raise obj.error(
                replica_spec_path(role, "template", "spec", "containers"),
                f"has no container named {TENSORFLOW_CONTAINER!r} (found {names})",
                fix=f"name the training container {TENSORFLOW_CONTAINER!r}: the operator "
                    "injects TF_CONFIG only into the container with that name",
            )


def _check_jobset(obj: RenderedObject, release: Release) -> None:
    # The rest (task names, one pod per Job, the tensorflow container) was checked when
    # TF_CONFIG was written (`jobset.prepare_jobset`).
    _require_release_annotations(obj, mapping_at(obj.body, "metadata", "annotations"),
                                 "metadata.annotations", release,
                                 why="so the training job is tied to the release")
