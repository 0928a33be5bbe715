"""The variables a template may use, built from the environment, the model and its version.

Names are camelCase like the configuration files they come from (`serving.maxReplicas`), so
a template author reads the same name in `environments/<env>.yaml` and in the template. Values
are plain JSON-like data: str, int, bool, None, dict and list (never tuples or pydantic
models), so they can be substituted and dumped as they are.

The ModelServerConfig is generated here rather than written in a template because it is a
text proto, not YAML, and because it is the one thing that pins TensorFlow Serving to the
promoted version: without `model_version_policy { specific { ... } }` TF Serving serves the
newest version directory under the base path, whatever promoter promoted. Its base path is the
pod's verified copy (`serving.servedBasePath`), not the store (`serving.modelBasePath`, which
the `fetch-model` init container reads): TF Serving checks no digest.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from promoter.config.schema import EnvironmentSpec, ModelSpec, Resources
from promoter.domain.model_versions import ModelVersion
from promoter.errors import RenderError

_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")

DIGEST_SHORT_LENGTH = 12
"""Hex characters of the digest in `model.digestShort` (as short git shas, enough to tell)."""

SERVED_MODELS_DIR = "/verified-models"
"""Where the serving pod's emptyDir holds the copy its `fetch-model` init container verified;
TF Serving's ModelServerConfig points here (`<dir>/<model>`), never at the store itself."""


def build_variables(*, environment: EnvironmentSpec, model: ModelSpec,
                    version: ModelVersion) -> dict[str, Any]:
    """Return every template variable by dotted name, for one environment and model version.

    Raises RenderError if `version` is not a version of `model` or its digest is not a
    `sha256:` digest, since every rendered object would then describe the wrong release.
    """
    if version.name != model.name:
        raise RenderError(
            f"model version {version.name} v{version.version} is not a version of model "
            f"{model.name!r}",
            fix="render the version with the model it belongs to",
        )
    digest = _DIGEST.match(version.digest)
    if digest is None:
        raise RenderError(
            f"model {model.name} v{version.version}: digest {version.digest!r} is not "
            "'sha256:' followed by 64 lowercase hex digits",
            fix="take the version from the model store, which computes the digest",
        )
    serving = environment.serving
    training = environment.training
    base_path = model_base_path(serving.model_base_uri, model.name)
    served_path = model_base_path(SERVED_MODELS_DIR, model.name)
    model_config = render_model_server_config(model_name=model.name, base_path=served_path,
                                              version=version.version)
    return {
        "model.name": model.name,
        "model.version": version.version,
        "model.digest": version.digest,
        "model.digestShort": digest.group(1)[:DIGEST_SHORT_LENGTH],
        "model.signature": model.signature,
        "env.name": environment.name,
        "env.namespace": environment.namespace,
        "serving.image": serving.image,
        "serving.replicas": serving.replicas,
        "serving.maxReplicas": serving.max_replicas,
        "serving.targetCpuUtilization": serving.target_cpu_utilization,
        "serving.resources": resources_to_kubernetes(serving.resources),
        "serving.restPort": serving.rest_port,
        "serving.grpcPort": serving.grpc_port,
        "serving.modelBasePath": base_path,
        "serving.servedModelsDir": SERVED_MODELS_DIR,
        "serving.servedBasePath": served_path,
        "serving.fetchImage": serving.fetch_image,
        "serving.fetchResources": resources_to_kubernetes(serving.fetch.resources),
        "serving.fetchRunAsUser": serving.fetch.run_as_user,
        "serving.fetchSecretName": serving.fetch.secret_name or f"{model.name}-model-store",
        "serving.fetchSecretOptional": serving.fetch.secret_name is None,
        "serving.serviceAccountName": serving.fetch.service_account_name,
        "serving.modelConfig": model_config,
        "serving.modelConfigChecksum": "sha256:" + hashlib.sha256(
            model_config.encode()).hexdigest(),
        "training.image": training.image,
        "training.command": list(training.command),
        "training.workers": training.workers,
        "training.parameterServers": training.parameter_servers,
        "training.chief": training.chief,
        "training.chiefReplicas": 1 if training.chief else 0,
        # A JobSet succeeds when all Jobs of these replicatedJobs do: the chief (coordinator)
        # if there is one, else every worker. Parameter servers never finish on their own.
        "training.successReplicatedJobs": ["chief"] if training.chief else ["worker"],
        "training.resources": resources_to_kubernetes(training.resources),
        "training.activeDeadlineSeconds": training.active_deadline_seconds,
        "training.backoffLimit": training.backoff_limit,
    }


def model_base_path(model_base_uri: str, model_name: str) -> str:
    """Return `<uri>/<model>`, the directory holding the model's numbered versions."""
    return f"{model_base_uri.rstrip('/')}/{model_name}"


def resources_to_kubernetes(resources: Resources) -> dict[str, dict[str, str]]:
    """Return `resources` in the shape of a container's `resources`, omitting empty parts.

    An unset cpu or memory is left out rather than written as null, and `requests`/`limits`
    are left out when empty, so the object validates and reads like a hand-written one.
    """
    shaped: dict[str, dict[str, str]] = {}
    for part, amounts in (("requests", resources.requests), ("limits", resources.limits)):
        values = {name: value for name, value in (("cpu", amounts.cpu),
                                                  ("memory", amounts.memory))
                  if value is not None}
        if values:
            shaped[part] = values
    return shaped


def render_model_server_config(*, model_name: str, base_path: str, version: int) -> str:
    """Return the ModelServerConfig text proto that serves exactly `version` of the model.

    Field names are those of `tensorflow_serving/config/model_server_config.proto`; strings
    are escaped as the text format requires, so any base path is safe.
    """
    return (
        "model_config_list {\n"
        "  config {\n"
        f"    name: {_proto_string(model_name)}\n"
        f"    base_path: {_proto_string(base_path)}\n"
        '    model_platform: "tensorflow"\n'
        "    model_version_policy {\n"
        "      specific {\n"
        f"        versions: {int(version)}\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def _proto_string(value: str) -> str:
    """Quote `value` as a protobuf text-format string (C escapes; non-ASCII as UTF-8 octal)."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'
