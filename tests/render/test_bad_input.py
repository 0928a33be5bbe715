"""Templates that cannot be rendered, or that render objects promotion cannot rely on.

Each case edits the repository's real templates in memory and checks that rendering refuses
with a message naming the file, the object and the field, and saying what to change.
"""

from __future__ import annotations

import pytest

from promoter.config import DryConfig, ModelSpec, Settings
from promoter.config.schema import Resources
from promoter.domain.model_versions import ModelVersion
from promoter.errors import RenderError
from promoter.render import KUSTOMIZATION_FILE, render_environment
from tests.render.conftest import Render

Dry = tuple[Settings, DryConfig]


def edited(dry_source: Dry, path: str, old: str, new: str, *, count: int = 1) -> dict[str, str]:
    """The real templates with `old` replaced by `new` in `path` (`count` times; -1: all)."""
    templates = dict(dry_source[1].templates)
    assert old in templates[path], f"{old!r} is not in manifests/{path}"
    templates[path] = templates[path].replace(old, new, count)
    return templates


def refused(render: Render, templates: dict[str, str], env: str = "dev") -> RenderError:
    with pytest.raises(RenderError) as caught:
        render(env, templates)
    return caught.value


# --- templates that cannot be rendered -------------------------------------------------------


def test_unknown_variable_in_a_real_template(render: Render, dry_source: Dry) -> None:
    error = refused(render, edited(dry_source, "serving/deployment.yaml",
                                   "image: ${serving.image}", "image: ${serving.imag}"))
    assert error.message == ("manifests/serving/deployment.yaml: "
                             "spec.template.spec.containers[0].image: "
                             "unknown variable ${serving.imag}")
    assert error.fix is not None
    assert error.fix.startswith("did you mean ${serving.image}? known variables: env.name, ")
    assert error.exit_code == 2


def test_template_that_is_not_yaml(render: Render, dry_source: Dry) -> None:
    templates = {**dry_source[1].templates,
                 "serving/extra.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: [a, b\n"}
    error = refused(render, templates)
    assert error.message.startswith("manifests/serving/extra.yaml: invalid YAML at line 4, ")


def test_template_that_is_not_a_mapping(render: Render, dry_source: Dry) -> None:
    templates = {**dry_source[1].templates, "serving/list.yaml": "- a\n- b\n"}
    error = refused(render, templates)
    assert error.message == ("manifests/serving/list.yaml: expected a Kubernetes object "
                             "(a mapping), got list")


def test_template_without_documents(render: Render, dry_source: Dry) -> None:
    templates = {**dry_source[1].templates, "serving/empty.yaml": "# nothing yet\n"}
    assert refused(render, templates).message == \
        "manifests/serving/empty.yaml: holds no YAML document"


def test_template_named_like_the_generated_kustomization(render: Render,
                                                         dry_source: Dry) -> None:
    templates = {**dry_source[1].templates, KUSTOMIZATION_FILE: "resources: []\n"}
    assert "promoter generates kustomization.yaml itself" in refused(render, templates).message


def test_template_path_outside_manifests(render: Render, dry_source: Dry) -> None:
    templates = {**dry_source[1].templates, "../secrets.yaml": "a: 1\n"}
    assert "not a relative path inside manifests/" in refused(render, templates).message


def test_files_that_are_not_yaml_are_not_rendered(render: Render, dry_source: Dry) -> None:
    templates = {**dry_source[1].templates, "README.md": "# how to edit ${these}\n"}
    assert "README.md" not in render("dev", templates).files


# --- objects that break an invariant ---------------------------------------------------------


def test_deployment_without_version_annotation(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/deployment.yaml",
                       '        promoter.dev/model-version: "${model.version}"\n', "")
    error = refused(render, templates)
    assert error.message == (
        "manifests/serving/deployment.yaml: Deployment churn: "
        'spec.template.metadata.annotations["promoter.dev/model-version"]: is missing')
    assert error.fix is not None
    assert "rolls the pods" in error.fix


def test_deployment_with_a_stale_version_annotation(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/deployment.yaml",
                       '        promoter.dev/model-version: "${model.version}"',
                       '        promoter.dev/model-version: "2"')
    assert "is '2', expected '3'" in refused(render, templates).message


def test_deployment_that_does_not_pin_the_version(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/deployment.yaml",
                       "--model_config_file=/etc/tfserving/models.config",
                       "--model_base_path=${serving.modelBasePath}")
    error = refused(render, templates)
    assert error.message == (
        "manifests/serving/deployment.yaml: Deployment churn: spec.template.spec.containers: "
        "no container passes --model_config_file: TensorFlow Serving would serve the newest "
        "version under the base path instead of version 3")


def test_model_config_file_outside_the_mounted_config(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/deployment.yaml",
                       "--model_config_file=/etc/tfserving/models.config",
                       "--model_config_file=/config/models.config")
    assert "is not inside any volume mount" in refused(render, templates).message


def test_config_map_key_that_the_deployment_does_not_read(render: Render,
                                                          dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/configmap.yaml",
                       "models.config: ${serving.modelConfig}",
                       "model.config: ${serving.modelConfig}")
    error = refused(render, templates)
    assert error.message.startswith(
        'manifests/serving/configmap.yaml: ConfigMap churn-model-config: data["models.config"]: '
        "does not hold the ModelServerConfig of version 3")


def test_config_map_that_is_not_rendered(render: Render, dry_source: Dry) -> None:
    templates = dict(dry_source[1].templates)
    del templates["serving/configmap.yaml"]
    error = refused(render, templates)
    assert "ConfigMap 'churn-model-config' (holding /etc/tfserving/models.config) is not " \
           "rendered by any template" in error.message


def test_service_selector_that_matches_no_pods(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/service.yaml",
                       "  selector:\n    app.kubernetes.io/name: ${model.name}",
                       "  selector:\n    app.kubernetes.io/name: ${model.name}-svc")
    error = refused(render, templates)
    assert error.message.startswith("manifests/serving/service.yaml: Service churn: "
                                    "spec.selector: {'app.kubernetes.io/name': 'churn-svc'")
    assert "matches the pods of no rendered Deployment" in error.message


def test_pdb_selector_that_matches_no_pods(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/pdb.yaml", "component: serving", "component: x",
                       count=-1)
    assert "PodDisruptionBudget churn: spec.selector.matchLabels" in \
        refused(render, templates).message


def test_deployment_selector_with_the_release_label(render: Render, dry_source: Dry) -> None:
    templates = edited(
        dry_source, "serving/deployment.yaml",
        "      app.kubernetes.io/component: serving\n  # Surge",
        '      app.kubernetes.io/component: serving\n'
        '      app.kubernetes.io/version: "${model.version}"\n  # Surge')
    error = refused(render, templates)
    assert "selector is immutable" in error.message


def test_unquoted_version_label_is_not_a_string(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/service.yaml",
                       'app.kubernetes.io/version: "${model.version}"',
                       "app.kubernetes.io/version: ${model.version}")
    error = refused(render, templates)
    assert error.message == ("manifests/serving/service.yaml: Service churn: "
                             'metadata.labels["app.kubernetes.io/version"]: must be a string, '
                             "got 3")
    assert error.fix == 'quote the value in the template, e.g. "${model.version}"'


def test_digest_as_a_label_value(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/service.yaml",
                       "app.kubernetes.io/managed-by: promoter",
                       "app.kubernetes.io/managed-by: promoter\n    digest: ${model.digest}")
    assert "is not a valid label value" in refused(render, templates).message


def test_object_outside_the_environment_namespace(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "serving/hpa.yaml", "  namespace: ${env.namespace}\n", "")
    error = refused(render, templates)
    assert error.message == ("manifests/serving/hpa.yaml: HorizontalPodAutoscaler churn: "
                             "metadata.namespace: is missing, but environment 'dev' deploys into "
                             "'ml-dev'")


def test_two_templates_rendering_the_same_object(render: Render, dry_source: Dry) -> None:
    templates = {**dry_source[1].templates,
                 "serving/service-copy.yaml": dry_source[1].templates["serving/service.yaml"]}
    error = refused(render, templates)
    assert error.message == ("manifests/serving/service.yaml: Service churn: the same object "
                             "is also rendered by manifests/serving/service-copy.yaml")


def test_no_serving_deployment(render: Render, dry_source: Dry) -> None:
    templates = {"training/tfjob.yaml": dry_source[1].templates["training/tfjob.yaml"]}
    assert "no template renders a Deployment" in refused(render, templates).message


def test_autoscaler_on_cpu_without_cpu_request(dry_source: Dry, churn: ModelSpec,
                                               version: ModelVersion) -> None:
    dev = dry_source[1].environment("dev")
    bare = dev.model_copy(update={"serving": dev.serving.model_copy(
        update={"resources": Resources()})})
    with pytest.raises(RenderError) as caught:
        render_environment(dry_source[1].templates, environment=bare, model=churn,
                           version=version)
    assert "has no CPU request, but HorizontalPodAutoscaler churn scales on CPU" in \
        caught.value.message
    assert caught.value.fix == "set serving.resources.requests.cpu in environments/dev.yaml"


def test_tfjob_container_not_named_tensorflow(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "training/tfjob.yaml", "- name: tensorflow",
                       "- name: trainer")
    error = refused(render, templates)
    assert error.message == (
        "manifests/training/tfjob.yaml: TFJob churn-train-v3: "
        "spec.tfReplicaSpecs.Worker.template.spec.containers: has no container named "
        "'tensorflow' (found ['trainer'])")
    assert error.fix is not None
    assert "TF_CONFIG" in error.fix


def test_tfjob_with_more_than_one_chief(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "training/tfjob.yaml", "${training.chiefReplicas}", "2")
    assert "spec.tfReplicaSpecs.Chief.replicas: is 2" in refused(render, templates).message


def test_tfjob_with_parameter_servers_and_no_chief(render: Render, dry_source: Dry) -> None:
    """ParameterServerStrategy coordinates from the `chief` task: PS and workers alone would
    wait for it forever. A template that drops the Chief the environment asks for is caught
    too, since the rule reads the rendered TFJob."""
    templates = edited(dry_source, "training/tfjob.yaml", "${training.chiefReplicas}", "0")
    error = refused(render, templates)
    assert error.message.startswith(
        "manifests/training/tfjob.yaml: TFJob churn-train-v3: spec.tfReplicaSpecs.PS: is set "
        "but the TFJob has no Chief: TensorFlow's ParameterServerStrategy runs its "
        "coordinator as the task of type 'chief'"), error.message
    assert error.fix is not None
    assert "training.chief: true" in error.fix


def test_tfjob_without_release_annotations(render: Render, dry_source: Dry) -> None:
    templates = edited(dry_source, "training/tfjob.yaml",
                       '  annotations:\n    promoter.dev/model-version: "${model.version}"\n'
                       "    promoter.dev/model-digest: ${model.digest}\n", "")
    assert 'TFJob churn-train-v3: metadata.annotations["promoter.dev/model-version"]: ' \
           "is missing" in refused(render, templates).message
