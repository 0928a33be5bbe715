"""The serving Deployment may serve only bytes with the pinned digest.

TF Serving checks no digest. What makes the served bytes the promoted ones is the pod's shape:
the `fetch-model` init container copies exactly `--version`/`--digest` from the store into a
volume and exits non-zero on any other bytes, and TF Serving's base path (the generated
ModelServerConfig's `base_path`, `serving.servedBasePath`) is that copy, mounted read-only.
A template is the user's to edit, and each edit below still applies cleanly and then serves
unverified bytes, so each is refused at render time:

- no `fetch-model` init container, another command or image, or arguments other than the
  four it needs with the release's values (an extra or repeated flag could override one);
  or one that may run as root, escalate privileges or write its root filesystem (it holds
  the store's credentials);
- the copy on anything but an emptyDir (a hostPath or a claim outlives the pod, and others
  may write it);
- TF Serving's base path on another volume, another place in the volume, its own filesystem,
  or under a second mount laid over the copy;
- the copy mounted writable by TF Serving or by any container but `fetch-model`;
- a container serving a `--model_base_path` of its own (a second TF Serving on the bucket).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from promoter.render.objects import RenderedObject, format_path, list_at, mapping_at
from promoter.render.release import FETCH_COMMAND, FETCH_CONTAINER, MODEL_CONFIG_FLAG, Release

BASE_PATH_FLAG = "--model_base_path"
"""TF Serving's flag for serving one model from a path (or bucket) of its own choosing."""

_FETCH_SECURITY = {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                   "allowPrivilegeEscalation": False}

_TEMPLATE_FIX = ("keep the fetch-model init container of the example manifests/serving/"
                 "deployment.yaml")


def check_verified_delivery(deployment: RenderedObject, release: Release) -> None:
    """Raise InvalidManifestError unless `deployment`'s TF Serving containers read only the
    copy its `fetch-model` init container verified (see the module docstring).

    Runs after the model-config rule, so the containers passing `--model_config_file` read
    the generated ModelServerConfig, whose base path is `release.served_base_path`."""
    pod = mapping_at(deployment.body, "spec", "template", "spec")
    at = ("spec", "template", "spec")
    inits = list_at(pod, "initContainers")
    index = next((i for i, c in enumerate(inits)
                  if isinstance(c, dict) and c.get("name") == FETCH_CONTAINER), None)
    if index is None:
        raise deployment.error(
            format_path((*at, "initContainers")),
            f"has no {FETCH_CONTAINER!r} init container: TF Serving would start on whatever "
            f"bytes are at {release.served_base_path}, unchecked against {release.digest}",
            fix=f"{_TEMPLATE_FIX}: `command: [{FETCH_COMMAND}]`, args --from="
                "${serving.modelBasePath} --version=${model.version} --digest=${model.digest} "
                "--into=${serving.servedBasePath}, and the emptyDir it writes mounted there")
    fetch_at = (*at, "initContainers", index)
    fetch = inits[index]
    _check_fetch_container(deployment, fetch_at, fetch, release)
    volumes = {v.get("name"): v for v in list_at(pod, "volumes") if isinstance(v, dict)}
    copy = _volume_path(fetch, release.served_base_path)
    if copy is None:
        raise deployment.error(
            format_path((*fetch_at, "volumeMounts")),
            f"mounts no volume at --into={release.served_base_path}: the copy would stay in "
            "the init container's own filesystem, which TF Serving cannot read",
            fix="mount the emptyDir volume at ${serving.servedModelsDir}")
    volume, place, mount = copy
    if mount.get("readOnly") is True:
        raise deployment.error(
            format_path((*fetch_at, "volumeMounts")),
            f"mount volume {volume!r} read-only: {FETCH_CONTAINER} cannot write the copy",
            fix="remove readOnly from the init container's mount (TF Serving's stays "
                "read-only)")
    kind = next((k for k in mapping_at(volumes.get(volume)) if k != "name"), None)
    if kind != "emptyDir":
        found = "is not declared" if volume not in volumes else f"is a {kind} volume"
        raise deployment.error(
            format_path((*at, "volumes")),
            f"volume {volume!r}, which holds the verified copy, {found}, not an emptyDir: "
            "bytes there could change after they were verified, by another pod or the node",
            fix=f"declare `- name: {volume}` with `emptyDir: {{}}`; mount a store volume "
                "(hostPath, PVC) into the init container elsewhere and point "
                "serving.modelBaseUri at it")
    _check_writers(deployment, pod, volume)
    containers = list_at(pod, "containers")
    for position, container in enumerate(containers):
        if isinstance(container, dict) and _passes(container, BASE_PATH_FLAG):
            raise deployment.error(
                format_path((*at, "containers", position, "args")),
                f"container {container.get('name')!r} passes {BASE_PATH_FLAG}: TF Serving "
                "would serve that path, which nothing verified",
                fix=f"remove {BASE_PATH_FLAG}; TF Serving serves the verified copy through "
                    f"{MODEL_CONFIG_FLAG}")
    for position, container in enumerate(containers):
        if isinstance(container, dict) and _passes(container, MODEL_CONFIG_FLAG):
            _check_serving_mount(deployment, (*at, "containers", position), container,
                                 (volume, place), release)


def _check_fetch_container(deployment: RenderedObject, at: tuple[str | int, ...],
                           fetch: Mapping[str, Any], release: Release) -> None:
    if fetch.get("image") != release.fetch_image:
        raise deployment.error(
            format_path((*at, "image")),
            f"is {fetch.get('image')!r}, not serving.fetchImage {release.fetch_image!r}: "
            "another image's command need not check the digest",
            fix="set `image: ${serving.fetchImage}` (set serving.fetchImage in "
                f"environments/{release.environment}.yaml)")
    context = mapping_at(fetch, "securityContext")
    for field, wanted in _FETCH_SECURITY.items():
        if context.get(field) is not wanted:
            raise deployment.error(
                format_path((*at, "securityContext", field)),
                f"is {context.get(field)!r}: the init container that holds the store's "
                "credentials runs unprivileged, as a non-root user, on a read-only root "
                "filesystem",
                fix=f"set `{field}: {str(wanted).lower()}` (the uid is "
                    "serving.fetch.runAsUser)")
    argv = [*list_at(fetch, "command"), *list_at(fetch, "args")]
    if not argv or argv[0] != FETCH_COMMAND:
        shown = argv[0] if argv else "the image's entrypoint"
        raise deployment.error(
            format_path((*at, "command")),
            f"runs {shown!r}, not {FETCH_COMMAND}",
            fix=f"set `command: [{FETCH_COMMAND}]` and the four flags in args")
    expected = {"--from": release.model_base_path, "--version": str(release.version),
                "--digest": release.digest, "--into": release.served_base_path}
    variables = {"--from": "${serving.modelBasePath}", "--version": "${model.version}",
                 "--digest": "${model.digest}", "--into": "${serving.servedBasePath}"}
    given: dict[str, str] = {}
    words = [str(w) for w in argv[1:]]
    position = 0
    while position < len(words):
        word = words[position]
        flag, equals, value = word.partition("=")
        if flag not in expected:
            raise deployment.error(
                format_path((*at, "args")),
                f"passes {word!r} to {FETCH_COMMAND}, which takes only "
                f"{', '.join(expected)}",
                fix="remove it: an extra argument could change what is fetched or checked")
        if not equals:
            position += 1
            value = words[position] if position < len(words) else ""
        if flag in given:
            raise deployment.error(
                format_path((*at, "args")), f"passes {flag} twice (the last one counts)",
                fix=f"pass {flag}={variables[flag]} once")
        given[flag] = value
        position += 1
    for flag, value in expected.items():
        if given.get(flag) != value:
            found = (f"does not pass {flag}" if flag not in given
                     else f"passes {flag}={given[flag]!r}")
            raise deployment.error(
                format_path((*at, "args")), f"{found}; this release needs {flag}={value}",
                fix=f"pass {flag}={variables[flag]}")


def _check_writers(deployment: RenderedObject, pod: Mapping[str, Any], volume: str) -> None:
    """Only `fetch-model` may mount the verified copy writable."""
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(list_at(pod, list_name)):
            if not isinstance(container, dict):
                continue
            if list_name == "initContainers" and container.get("name") == FETCH_CONTAINER:
                continue
            for m_index, mount in enumerate(list_at(container, "volumeMounts")):
                if (isinstance(mount, dict) and mount.get("name") == volume
                        and mount.get("readOnly") is not True):
                    raise deployment.error(
                        format_path(("spec", "template", "spec", list_name, index,
                                     "volumeMounts", m_index)),
                        f"container {container.get('name')!r} mounts volume {volume!r} "
                        f"writable: it could change the copy after {FETCH_CONTAINER} "
                        "verified it",
                        fix="add `readOnly: true` to the mount")


def _check_serving_mount(deployment: RenderedObject, at: tuple[str | int, ...],
                         container: Mapping[str, Any], copy: tuple[str, str],
                         release: Release) -> None:
    served = release.served_base_path
    name = container.get("name")
    for index, mount in enumerate(list_at(container, "volumeMounts")):
        path = mount.get("mountPath") if isinstance(mount, dict) else None
        if isinstance(path, str) and _strictly_under(path, served):
            raise deployment.error(
                format_path((*at, "volumeMounts", index)),
                f"mounts {mount.get('name')!r} at {path}, over part of TF Serving's base path "
                f"{served}: those files would not be the verified ones",
                fix="remove that mount")
    found = _volume_path(container, served)
    if found is None or (found[0], found[1]) != copy:
        where = ("its own filesystem" if found is None
                 else f"volume {found[0]!r} at {found[1] or '/'}")
        raise deployment.error(
            format_path((*at, "volumeMounts")),
            f"container {name!r} reads TF Serving's base path {served} from {where}, not "
            f"from the copy {FETCH_CONTAINER} verified (volume {copy[0]!r} at "
            f"{copy[1] or '/'})",
            fix=f"mount volume {copy[0]!r} at ${{serving.servedModelsDir}} with "
                "`readOnly: true`, as fetch-model mounts it")
    if found[2].get("readOnly") is not True:
        raise deployment.error(
            format_path((*at, "volumeMounts")),
            f"container {name!r} mounts the verified copy (volume {copy[0]!r}) writable",
            fix="add `readOnly: true` to the mount: TF Serving only reads it")


def _volume_path(container: Mapping[str, Any],
                 path: str) -> tuple[str, str, Mapping[str, Any]] | None:
    """The volume whose mount in `container` holds `path` (the deepest mount at or above
    it), the place of `path` inside that volume, and the mount; None if none holds it."""
    best: tuple[str, str, Mapping[str, Any]] | None = None
    depth = -1
    for mount in list_at(container, "volumeMounts"):
        if not isinstance(mount, dict) or not isinstance(mount.get("mountPath"), str):
            continue
        root = posixpath.normpath(mount["mountPath"])
        if not (path == root or _strictly_under(path, root)) or len(root) <= depth:
            continue
        rest = posixpath.relpath(path, root)
        inside = posixpath.normpath(posixpath.join(str(mount.get("subPath") or ""),
                                                   "" if rest == "." else rest))
        best, depth = (str(mount.get("name")), "" if inside == "." else inside, mount), len(root)
    return best


def _strictly_under(path: str, root: str) -> bool:
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path != root and path.startswith(root.rstrip("/") + "/")


def _passes(container: Mapping[str, Any], flag: str) -> bool:
    words: Sequence[Any] = [*list_at(container, "command"), *list_at(container, "args")]
    return any(isinstance(w, str) and (w == flag or w.startswith(flag + "=")) for w in words)
