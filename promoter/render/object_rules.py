"""The rules every rendered object must keep on its own, whatever its kind.

Identity (apiVersion, kind, a valid name, a kind some schema serves, the environment's
namespace), the fields the API server requires to be strings and label syntax, container
images, and container, probe and Service ports. Each is checked on one object at a time,
before its schema and before the rules between objects (`workload_rules`), which can then rely
on well-formed objects; `invariants.check_invariants` says the order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
from promoter.render.release import Release
from promoter.render.tfjob import is_tfjob
from promoter.render.validation import ObjectSchemas

_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(rf"^{_LABEL_NAME}$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


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
