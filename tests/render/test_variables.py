"""The variable map and the generated ModelServerConfig."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from promoter.config import DryConfig, EnvironmentSpec, ModelSpec, Settings
from promoter.config.schema import ResourceAmounts, Resources
from promoter.domain.model_versions import ModelVersion
from promoter.errors import RenderError
from promoter.render import build_variables, render_model_server_config, resources_to_kubernetes
from tests.render.conftest import DIGEST

EXPECTED_NAMES = {
    "model.name", "model.version", "model.digest", "model.digestShort", "model.signature",
    "env.name", "env.namespace",
    "serving.image", "serving.replicas", "serving.maxReplicas", "serving.targetCpuUtilization",
    "serving.resources", "serving.restPort", "serving.grpcPort", "serving.modelBasePath",
    "serving.servedModelsDir", "serving.servedBasePath", "serving.fetchImage",
    "serving.fetchResources", "serving.fetchRunAsUser", "serving.fetchSecretName",
    "serving.fetchSecretOptional", "serving.serviceAccountName",
    "serving.modelConfig", "serving.modelConfigChecksum",
    "training.image", "training.command", "training.workers", "training.parameterServers",
    "training.chief", "training.chiefReplicas", "training.successReplicatedJobs",
    "training.resources",
    "training.activeDeadlineSeconds", "training.backoffLimit",
}


def prod(dry_source: tuple[Settings, DryConfig]) -> EnvironmentSpec:
    return dry_source[1].environment("prod")


def test_variables_of_prod(dry_source: tuple[Settings, DryConfig], churn: ModelSpec,
                           version: ModelVersion) -> None:
    variables = build_variables(environment=prod(dry_source), model=churn, version=version)
    assert set(variables) == EXPECTED_NAMES
    assert variables["model.version"] == 3
    assert variables["model.digestShort"] == "abababababab"
    assert variables["model.signature"] == "serving_default"
    assert variables["env.namespace"] == "ml-prod"
    assert variables["serving.modelBasePath"] == "gs://example-ml-models/churn"
    assert variables["serving.servedBasePath"] == "/verified-models/churn"
    assert 'base_path: "/verified-models/churn"' in variables["serving.modelConfig"]
    assert variables["serving.resources"] == {"requests": {"cpu": "1", "memory": "2Gi"},
                                              "limits": {"cpu": "2", "memory": "4Gi"}}
    assert variables["training.command"] == ["python", "/opt/train/train.py"]
    assert variables["training.chief"] is True
    assert variables["training.chiefReplicas"] == 1
    assert variables["training.successReplicatedJobs"] == ["chief"]
    assert variables["training.activeDeadlineSeconds"] == 86400
    assert variables["serving.modelConfigChecksum"].startswith("sha256:")


def test_values_are_plain_data(dry_source: tuple[Settings, DryConfig], churn: ModelSpec,
                               version: ModelVersion) -> None:
    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | bool)

    variables = build_variables(environment=prod(dry_source), model=churn, version=version)
    assert all(plain(value) for value in variables.values())


def test_resources_omit_empty_parts() -> None:
    assert resources_to_kubernetes(Resources()) == {}
    only_request = Resources(requests=ResourceAmounts(cpu="250m"))
    assert resources_to_kubernetes(only_request) == {"requests": {"cpu": "250m"}}


def test_no_deadline_and_no_chief(dry_source: tuple[Settings, DryConfig],
                                  churn: ModelSpec, version: ModelVersion) -> None:
    shipped = dry_source[1].environment("dev")
    dev = shipped.model_copy(update={"training": shipped.training.model_copy(
        update={"chief": False, "parameter_servers": 0})})
    variables = build_variables(environment=dev, model=churn, version=version)
    assert variables["training.activeDeadlineSeconds"] is None
    assert variables["training.chiefReplicas"] == 0
    assert variables["training.successReplicatedJobs"] == ["worker"]


def test_version_of_another_model_is_refused(dry_source: tuple[Settings, DryConfig],
                                             churn: ModelSpec) -> None:
    other = ModelVersion(name="fraud", version=3, digest=DIGEST, uri="/m/fraud/3")
    with pytest.raises(RenderError, match="not a version of model 'churn'"):
        build_variables(environment=prod(dry_source), model=churn, version=other)


def test_digest_must_be_sha256(dry_source: tuple[Settings, DryConfig],
                               churn: ModelSpec) -> None:
    bad = ModelVersion(name="churn", version=3, digest="md5:abc", uri="/m/churn/3")
    with pytest.raises(RenderError, match="is not 'sha256:' followed by 64"):
        build_variables(environment=prod(dry_source), model=churn, version=bad)


def test_model_server_config_text() -> None:
    text = render_model_server_config(model_name="churn", base_path="/models/churn", version=7)
    assert text == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "churn"\n'
        '    base_path: "/models/churn"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy {\n"
        "      specific {\n"
        "        versions: 7\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def _model_server_config_class() -> type:
    """Build the subset of tensorflow_serving's ModelServerConfig proto that promoter writes.

    Field names and numbers follow tensorflow_serving/config/model_server_config.proto and
    file_system_storage_path_source.proto; the package `tensorflow-serving-api` is not a
    dependency, so the descriptor is built here.
    """
    file = descriptor_pb2.FileDescriptorProto(name="promoter_test_msc.proto",
                                              package="promoter_test", syntax="proto3")
    string, int64, message = (descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                               descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                               descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE)
    optional, repeated = (descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                          descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)

    def add(name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
        msg = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            msg.field.add(name=field_name, number=number, type=kind, label=label,
                          type_name=type_name or None)

    add("Specific", [("versions", 1, int64, repeated, "")])
    add("ServableVersionPolicy", [("specific", 3, message, optional, ".promoter_test.Specific")])
    add("ModelConfig", [
        ("name", 1, string, optional, ""), ("base_path", 2, string, optional, ""),
        ("model_platform", 4, string, optional, ""),
        ("model_version_policy", 7, message, optional, ".promoter_test.ServableVersionPolicy"),
    ])
    add("ModelConfigList", [("config", 1, message, repeated, ".promoter_test.ModelConfig")])
    add("ModelServerConfig", [
        ("model_config_list", 1, message, optional, ".promoter_test.ModelConfigList")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    message_class: type = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("promoter_test.ModelServerConfig"))
    return message_class


@pytest.mark.parametrize("base_path", [
    "gs://example-ml-models/churn",
    'weird/"quoted"\\path\twith tab',
    "/models/caf\u00e9/\u6a21\u578b",
])
def test_model_server_config_parses_as_text_proto(base_path: str) -> None:
    text = render_model_server_config(model_name="churn", base_path=base_path, version=12)
    parsed = text_format.Parse(text, _model_server_config_class()())
    (config,) = parsed.model_config_list.config
    assert config.name == "churn"
    assert config.base_path == base_path
    assert config.model_platform == "tensorflow"
    assert list(config.model_version_policy.specific.versions) == [12]
