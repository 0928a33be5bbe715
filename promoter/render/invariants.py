"""Checks on the rendered objects, run before anything is written: the rules no schema
expresses, here, and in which order they and the schemas (`validation.py`) apply.

A template is the user's to edit, so it can stop doing what promotion relies on: a Deployment
that no longer pins the model version still applies cleanly and then quietly serves the newest
model in the bucket. Each check here protects one such promise, and each error names the file,
the object, the field and the edit that fixes it:

- every object is namespaced into the environment's namespace, has a name and a kind that
  a schema serves (a core kind of the configured Kubernetes version or a known CRD's);
- no two templates render the same object;
- labels, annotations, env values and ConfigMap data are strings (an unquoted `${model.version}`
  renders an int, which the API server rejects at apply time, after the PR merged);
- every container has a non-empty image; container ports, Service ports and gRPC probe ports
  are integers from 1 to 65535; a `targetPort` or HTTP/TCP probe port is such an integer or a
  valid port name, never a quoted number (Kubernetes would read `"8500"` as a name);
- every object matches its schema (strict: no undeclared field);
- every serving Deployment carries the model version and digest on its pod template (so a
  promotion rolls the pods), selects its own pods without the per-release version label (a
  Deployment's selector is immutable), and runs TF Serving with `--model_config_file` pointing
  at a mounted ConfigMap that holds exactly the generated ModelServerConfig;
- Services and PodDisruptionBudgets select the pods of a rendered Deployment; an autoscaler
  targets a rendered Deployment, whose containers request CPU if it scales on CPU;
- every TFJob carries the model version and digest, has a container named `tensorflow` in each
  replica spec (the operator injects TF_CONFIG only there) and at most one Chief/Master.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promoter.errors import RenderError
from promoter.render.objects import (
    RenderedObject,
    format_path,
    get_in,
    list_at,
    mapping_at,
    pod_templates,
)
from promoter.render.tfjob import is_tfjob, replica_spec_path
from promoter.render.validation import ObjectSchemas

MODEL_VERSION_ANNOTATION = "promoter.dev/model-version"
"""Annotation on pod templates and TFJobs: the model version (as a string) they run."""
MODEL_DIGEST_ANNOTATION = "promoter.dev/model-digest"
"""Annotation on pod templates and TFJobs: the `sha256:` digest of the SavedModel."""
VERSION_LABEL = "app.kubernetes.io/version"
MODEL_CONFIG_FLAG = "--model_config_file"
TENSORFLOW_CONTAINER = "tensorflow"

_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(rf"^{_LABEL_NAME}$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Release:
    """What every rendered object must agree with: one model version in one environment."""

    environment: str
    """Environment name, used in fixes (`environments/<env>.yaml`)."""
    namespace: str
    model: str
    version: int
    digest: str
    model_config: str
    """The ModelServerConfig text the serving ConfigMap must hold."""


def check_invariants(objects: Sequence[RenderedObject], release: Release, *,
                     schemas: ObjectSchemas) -> None:
    """Raise InvalidManifestError for the first rendered object that breaks a rule (see the
    module doc) or its schema (`schemas`); ConfigError for an unusable CRD of the user's.

    Order: what every object needs (apiVersion, kind, name, a kind some schema serves, the
    namespace), then each object's own fields (the rules here first, because their fixes
    speak of templates, then the whole schema), and only then the rules between objects,
    which can then rely on well-formed objects.
    """
    for obj in objects:
        _check_identity(obj, release, schemas)
    _check_unique(objects)
    for obj in objects:
        _check_strings(obj)
        _check_containers(obj, release)
        _check_service_ports(obj)
        schemas.check_schema(obj)
    deployments = [o for o in objects if o.group == "apps" and o.kind == "Deployment"]
    if not deployments:
        raise RenderError(
            f"no template renders a Deployment (apps/v1) serving model {release.model!r}",
            fix="add manifests/serving/deployment.yaml running TensorFlow Serving",
        )
    for deployment in deployments:
        _check_deployment(deployment, objects, release)
    for obj in objects:
        if obj.group == "" and obj.kind == "Service":
            _check_selects(obj, ("spec", "selector"), deployments)
        elif obj.group == "policy" and obj.kind == "PodDisruptionBudget":
            _check_selects(obj, ("spec", "selector", "matchLabels"), deployments)
        elif obj.group == "autoscaling" and obj.kind == "HorizontalPodAutoscaler":
            _check_autoscaler(obj, deployments, release)
        elif is_tfjob(obj):
            _check_tfjob(obj, release)


# --- every object ----------------------------------------------------------------------------


def _check_identity(obj: RenderedObject, release: Release, schemas: ObjectSchemas) -> None:
    for field in ("apiVersion", "kind"):
        value = obj.body.get(field)
        if not isinstance(value, str) or not value:
            raise RenderError(f"{obj.where}: {field}: missing or not a string",
                              fix="every document must be a Kubernetes object with apiVersion, "
                                  "kind and metadata.name")
    name = get_in(obj.body, "metadata", "name")
    if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        raise obj.error("metadata.name", f"{name!r} is not a valid object name",
                        fix="use lowercase letters, digits and '-', e.g. ${model.name}-serving")
    schemas.check_kind(obj)
    namespace = get_in(obj.body, "metadata", "namespace")
    if namespace != release.namespace:
        found = "is missing" if namespace is None else f"is {namespace!r}"
        raise obj.error(
            "metadata.namespace",
            f"{found}, but environment {release.environment!r} deploys into "
            f"{release.namespace!r}",
            fix="set `namespace: ${env.namespace}` in the object's metadata",
        )


def _check_unique(objects: Sequence[RenderedObject]) -> None:
    seen: dict[tuple[str, str, str], RenderedObject] = {}
    for obj in objects:
        key = (obj.group, obj.kind, obj.name)
        if key in seen:
            raise RenderError(
                f"{obj.describe()}: the same object is also rendered by {seen[key].where}",
                fix="give each object its own metadata.name, or delete one of the templates",
            )
        seen[key] = obj


def _check_strings(obj: RenderedObject) -> None:
    """Check the fields the API server requires to be strings, and label syntax."""
    places: list[tuple[tuple[str | int, ...], Mapping[str, Any]]] = [(("metadata",),
                                                                      mapping_at(obj.body,
                                                                                 "metadata"))]
    places += [((*path, "metadata"), mapping_at(template, "metadata"))
               for path, template in pod_templates(obj.body)]
    for path, metadata in places:
        for key, value in mapping_at(metadata, "labels").items():
            field = format_path((*path, "labels", str(key)))
            _require_string(obj, field, value)
            if not _valid_key(key):
                raise obj.error(field, "is not a valid label key",
                                fix="use [prefix/]name with letters, digits, '-', '_', '.'")
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise obj.error(field, f"{value!r} is not a valid label value (at most 63 "
                                       "letters, digits, '-', '_' or '.', alphanumeric at both "
                                       "ends)",
                                fix="put values such as digests in an annotation instead")
        for key, value in mapping_at(metadata, "annotations").items():
            field = format_path((*path, "annotations", str(key)))
            _require_string(obj, field, value)
            if not _valid_key(key):
                raise obj.error(field, "is not a valid annotation key",
                                fix="use [prefix/]name with letters, digits, '-', '_', '.'")
    for path, template in pod_templates(obj.body):
        for list_name in ("initContainers", "containers"):
            for index, container in enumerate(list_at(template, "spec", list_name)):
                for env_index, env in enumerate(list_at(container, "env")):
                    if isinstance(env, dict) and "value" in env:
                        _require_string(obj, format_path(
                            (*path, "spec", list_name, index, "env", env_index, "value")),
                            env["value"])
    if obj.group == "" and obj.kind == "ConfigMap":
        for key, value in mapping_at(obj.body, "data").items():
            _require_string(obj, format_path(("data", str(key))), value)


def _check_containers(obj: RenderedObject, release: Release) -> None:
    """Every container of every pod template has an image and integer ports.

    The schemas let most of it through: `image` is optional there and may be empty, and a
    port is typed but not bounded; the API server (or the kubelet, for a probe's port name)
    refuses it at apply time, after the promotion merged. A quoted port the schema would
    catch too, but the fix is the template's, so it is said here.
    """
    variable = "training" if is_tfjob(obj) else "serving"
    for path, template in pod_templates(obj.body):
        for list_name in ("initContainers", "containers"):
            for index, container in enumerate(list_at(template, "spec", list_name)):
                if not isinstance(container, dict):
                    continue  # the schema reports it
                at = (*path, "spec", list_name, index)
                _check_image(obj, at, container, variable, release)
                for port_index, port in enumerate(list_at(container, "ports")):
                    if not isinstance(port, dict):
                        continue
                    where = (*at, "ports", port_index)
                    _require_port(obj, (*where, "containerPort"), port.get("containerPort"))
                    if "hostPort" in port:
                        _require_port(obj, (*where, "hostPort"), port["hostPort"])
                    if "name" in port:
                        _require_port_name(obj, (*where, "name"), port["name"])
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    for handler in ("httpGet", "tcpSocket"):
                        action = get_in(container, probe, handler)
                        if isinstance(action, dict) and "port" in action:
                            _require_port_or_name(obj, (*at, probe, handler, "port"),
                                                  action["port"])
                    grpc = get_in(container, probe, "grpc")
                    if isinstance(grpc, dict) and "port" in grpc:
                        _require_port(obj, (*at, probe, "grpc", "port"), grpc["port"])


def _check_image(obj: RenderedObject, at: tuple[str | int, ...], container: Mapping[str, Any],
                 variable: str, release: Release) -> None:
    field = format_path((*at, "image"))
    image = container.get("image")
    fix = (f"set `image: ${{{variable}.image}}` in the template, and {variable}.image in "
           f"environments/{release.environment}.yaml to a pinned image (a tag or a digest)")
    if image is None:
        raise obj.error(field, "is missing: the API server refuses a pod without an image",
                        fix=fix)
    if not isinstance(image, str):
        raise obj.error(field, f"must be a string, got {image!r}", fix=fix)
    if not image.strip():
        raise obj.error(field, "is empty: the API server refuses a pod without an image",
                        fix=fix)
    if image != image.strip():
        raise obj.error(field, f"{image!r} has leading or trailing whitespace, which the API "
                               "server refuses", fix="remove the spaces around the image")


def _check_service_ports(obj: RenderedObject) -> None:
    """A Service's `port` (and `nodePort`) is a number; its `targetPort` a number or a name."""
    if not (obj.group == "" and obj.kind == "Service"):
        return
    for index, port in enumerate(list_at(obj.body, "spec", "ports")):
        if not isinstance(port, dict):
            continue
        where = ("spec", "ports", index)
        _require_port(obj, (*where, "port"), port.get("port"))
        if "targetPort" in port:
            _require_port_or_name(obj, (*where, "targetPort"), port["targetPort"])
        if "nodePort" in port:
            _require_port(obj, (*where, "nodePort"), port["nodePort"])


_QUOTED_PORT_FIX = ("remove the quotes: a quoted number, or a quoted `${...}`, renders a string; "
                    "unquoted, `${serving.grpcPort}` keeps the variable's integer type")


def _require_port(obj: RenderedObject, path: tuple[str | int, ...], value: Any) -> None:
    """A port number: an integer from 1 to 65535 (not a string that looks like one)."""
    field = format_path(path)
    if value is None:
        raise obj.error(field, "is missing", fix="set the port number")
    if isinstance(value, bool) or not isinstance(value, int):
        numeric = isinstance(value, str) and value.strip().isdigit()
        raise obj.error(field, f"must be an integer, got {value!r}",
                        fix=_QUOTED_PORT_FIX if numeric else
                        "write the port number; a port's name belongs in its `name`")
    if not 1 <= value <= 65535:
        raise obj.error(field, f"must be between 1 and 65535, got {value}",
                        fix="use a port number in that range")


def _require_port_or_name(obj: RenderedObject, path: tuple[str | int, ...], value: Any) -> None:
    """A port given as a number or as the name of a container port (`targetPort: http`).

    Kubernetes reads every string as a name, so a quoted number targets a port named "8500",
    which no port can be called: the Service never routes, or the probe never passes.
    """
    if isinstance(value, str):
        if value.strip().isdigit():
            raise obj.error(
                format_path(path),
                f"{value!r} is a string, so Kubernetes reads it as a port name, and a port "
                "name cannot be all digits",
                fix=f"remove the quotes to use port {value.strip()}, or use the name of a "
                    "container port (e.g. http)")
        _require_port_name(obj, path, value)
        return
    _require_port(obj, path, value)


def _require_port_name(obj: RenderedObject, path: tuple[str | int, ...], value: Any) -> None:
    if not isinstance(value, str) or not _is_port_name(value):
        raise obj.error(
            format_path(path),
            f"{value!r} is not a valid port name (at most 15 lowercase letters, digits and "
            "'-', with at least one letter, and no '-' at either end or twice in a row)",
            fix="use the `name` of one of the container's ports, e.g. http, or the port number")


def _is_port_name(name: str) -> bool:
    """Kubernetes' IANA_SVC_NAME, which container port names and named ports must be."""
    return (len(name) <= 15 and bool(_PORT_NAME.match(name)) and "--" not in name
            and any(c.isalpha() for c in name))


def _require_string(obj: RenderedObject, field: str, value: Any) -> None:
    if not isinstance(value, str):
        raise obj.error(field, f"must be a string, got {value!r}",
                        fix='quote the value in the template, e.g. "${model.version}"')


def _valid_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


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
