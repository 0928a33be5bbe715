"""Every rendered object is validated before anything is written (issue #15).

Against the Kubernetes schemas of the configured version (kubernetes-validate, strict), the
packaged CRDs and the user's own CRDs, plus promotion's own rules (a non-empty image, integer
ports). Each case edits the repository's real templates in memory; each error is an
`InvalidManifestError` naming the template, the object, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from kubernetes_validate.utils import all_versions

from promoter.config import DryConfig, ModelSpec, Settings
from promoter.config.schema import DEFAULT_KUBERNETES_VERSION
from promoter.domain.model_versions import ModelVersion
from promoter.errors import ConfigError, InvalidManifestError
from promoter.render import ObjectSchemas, RenderedManifests, render_environment
from tests.render.bad_manifests import BAD_MANIFESTS, WIDGET, WIDGET_CRD, BadManifest
from tests.render.conftest import ENVIRONMENTS
from tests.render.test_bad_input import edited

Dry = tuple[Settings, DryConfig]

def rendered(dry_source: Dry, churn: ModelSpec, version: ModelVersion,
             templates: Mapping[str, str], *, env: str = "dev",
             schemas: ObjectSchemas | None = None) -> RenderedManifests:
    dry = dry_source[1]
    return render_environment(templates, environment=dry.environment(env), model=churn,
                              version=version, schemas=schemas or ObjectSchemas())


def refused(dry_source: Dry, churn: ModelSpec, version: ModelVersion,
            templates: Mapping[str, str], *,
            schemas: ObjectSchemas | None = None) -> InvalidManifestError:
    with pytest.raises(InvalidManifestError) as caught:
        rendered(dry_source, churn, version, templates, schemas=schemas)
    assert caught.value.exit_code == 2
    return caught.value


# --- the example and the default -------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_example_manifests_validate(env: str, dry_source: Dry, churn: ModelSpec,
                                        version: ModelVersion) -> None:
    files = rendered(dry_source, churn, version, dry_source[1].templates, env=env).files
    assert "serving/service.yaml" in files


def test_the_default_version_is_one_kubernetes_validate_ships() -> None:
    """The newest when it was chosen; a later kubernetes-validate must still ship it."""
    assert ObjectSchemas().kubernetes_version == DEFAULT_KUBERNETES_VERSION
    shipped = {v.rsplit(".", 1)[0] for v in all_versions()}
    assert DEFAULT_KUBERNETES_VERSION in shipped


# --- the three mistakes of the issue ---------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_MANIFESTS, ids=lambda b: b.id)
def test_the_issue_templates_are_refused(bad: BadManifest, dry_source: Dry, churn: ModelSpec,
                                         version: ModelVersion) -> None:
    error = refused(dry_source, churn, version,
                    edited(dry_source, bad.template, bad.old, bad.new))
    assert error.message.startswith(bad.located), error.message
    assert bad.problem in error.message
    assert error.fix is not None
    assert bad.fix in error.fix
    assert error.template == f"manifests/{bad.template}"
    assert f"{error.template}: {error.kind} {error.name}: {error.field}: " == bad.located


def test_a_kind_typo_is_named_with_the_closest_kind(dry_source: Dry, churn: ModelSpec,
                                                    version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/hpa.yaml", "kind: HorizontalPodAutoscaler\n",
        "kind: HorizontalPodAutoscalar\n"))
    assert error.field == "kind"
    assert error.fix is not None
    assert error.fix.startswith(
        "did you mean `kind: HorizontalPodAutoscaler` (apiVersion autoscaling/v2)?")
    assert "render.crdDirectory" in error.fix


def test_a_kind_under_an_api_version_that_does_not_serve_it(dry_source: Dry, churn: ModelSpec,
                                                            version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/deployment.yaml", "apiVersion: apps/v1\n",
        "apiVersion: extensions/v1beta1\n"))
    assert error.message.startswith("manifests/serving/deployment.yaml: Deployment churn: "
                                    "apiVersion: extensions/v1beta1 does not serve Deployment")
    assert error.fix == "use `apiVersion: apps/v1`"


# --- Kubernetes schemas, strict --------------------------------------------------------------


def test_an_unknown_field_is_refused_with_the_closest_field(dry_source: Dry, churn: ModelSpec,
                                                           version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/deployment.yaml", "  revisionHistoryLimit: 5",
        "  revisionHistoryLimt: 5"))
    assert error.message == ("manifests/serving/deployment.yaml: Deployment churn: "
                             "spec.revisionHistoryLimt: unknown field in the Kubernetes "
                             f"{DEFAULT_KUBERNETES_VERSION} schema of apps/v1 Deployment")
    assert error.fix is not None
    assert error.fix.startswith("did you mean 'revisionHistoryLimit'?")


def test_a_wrong_type_deep_in_a_core_object(dry_source: Dry, churn: ModelSpec,
                                            version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/deployment.yaml", "            periodSeconds: 5",
        '            periodSeconds: "5"'))
    assert error.field == "spec.template.spec.containers[0].readinessProbe.periodSeconds"
    assert "must be an integer, got '5'" in error.message
    assert error.fix is not None
    assert "remove the quotes" in error.fix


def test_the_configured_kubernetes_version_is_the_one_checked(
        dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    templates = edited(dry_source, "serving/service.yaml", "  type: ClusterIP\n",
                       "  type: ClusterIP\n  trafficDistribution: PreferClose\n")
    rendered(dry_source, churn, version, templates,
             schemas=ObjectSchemas(kubernetes_version="1.30"))
    error = refused(dry_source, churn, version, templates,
                    schemas=ObjectSchemas(kubernetes_version="1.29"))
    assert error.field == "spec.trafficDistribution"
    assert "Kubernetes 1.29 schema of v1 Service" in error.message


def test_a_kubernetes_version_without_schemas_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        ObjectSchemas(kubernetes_version="1.99")
    assert caught.value.message.startswith("promoter.yaml: render.kubernetesVersion: ")
    assert "1.99" in caught.value.message
    assert caught.value.fix is not None
    assert DEFAULT_KUBERNETES_VERSION in caught.value.fix


# --- promotion's own rules: images and ports -------------------------------------------------


def test_a_missing_image(dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "training/tfjob.yaml", "              image: ${training.image}\n", ""))
    assert error.message.startswith(
        "manifests/training/tfjob.yaml: TFJob churn-train-v3: "
        "spec.tfReplicaSpecs.Worker.template.spec.containers[0].image: is missing")
    assert error.fix is not None
    assert "training.image" in error.fix


def test_an_image_with_whitespace(dry_source: Dry, churn: ModelSpec,
                                  version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/deployment.yaml", "image: ${serving.image}",
        'image: " ${serving.image}"'))
    assert "containers[0].image: ' tensorflow/serving:2.18.0' has leading or trailing " \
           "whitespace" in error.message


def test_a_quoted_container_port(dry_source: Dry, churn: ModelSpec,
                                 version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/deployment.yaml", "containerPort: ${serving.grpcPort}",
        'containerPort: "${serving.grpcPort}"'))
    assert error.message == ("manifests/serving/deployment.yaml: Deployment churn: "
                             "spec.template.spec.containers[0].ports[0].containerPort: "
                             "must be an integer, got '8500'")


def test_a_port_out_of_range(dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "training/tfjob.yaml", "containerPort: 2222", "containerPort: 70000"))
    assert error.field == "spec.tfReplicaSpecs.Worker.template.spec.containers[0].ports[0]." \
                          "containerPort"
    assert "must be between 1 and 65535, got 70000" in error.message


def test_a_quoted_number_as_target_port(dry_source: Dry, churn: ModelSpec,
                                        version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/service.yaml", "targetPort: grpc", 'targetPort: "8500"'))
    assert error.field == "spec.ports[0].targetPort"
    assert "'8500' is a string, so Kubernetes reads it as a port name" in error.message
    assert error.fix is not None
    assert "remove the quotes" in error.fix


def test_target_port_as_a_number_or_a_name_is_fine(dry_source: Dry, churn: ModelSpec,
                                                   version: ModelVersion) -> None:
    rendered(dry_source, churn, version, edited(
        dry_source, "serving/service.yaml", "targetPort: grpc", "targetPort: 8500"))


def test_a_probe_port_that_is_no_port_name(dry_source: Dry, churn: ModelSpec,
                                           version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "serving/deployment.yaml", "              port: http\n",
        "              port: HTTP_port\n"))
    assert error.field == "spec.template.spec.containers[0].startupProbe.httpGet.port"
    assert "'HTTP_port' is not a valid port name" in error.message


# --- CRDs: packaged and the user's own -------------------------------------------------------


def test_a_field_the_tfjob_crd_does_not_have(dry_source: Dry, churn: ModelSpec,
                                             version: ModelVersion) -> None:
    error = refused(dry_source, churn, version, edited(
        dry_source, "training/tfjob.yaml", "    cleanPodPolicy: Running",
        "    cleanPodPolicy: Running\n    cleanupPolicy: Running"))
    assert error.message == ("manifests/training/tfjob.yaml: TFJob churn-train-v3: "
                             "spec.runPolicy.cleanupPolicy: unknown field in the CRD schema of "
                             "kubeflow.org/v1 TFJob")
    assert error.fix is not None
    assert error.fix.startswith("did you mean 'cleanPodPolicy'?")


def test_a_custom_kind_without_its_crd_is_unknown(dry_source: Dry, churn: ModelSpec,
                                                  version: ModelVersion) -> None:
    templates = {**dry_source[1].templates, "serving/widget.yaml": WIDGET}
    error = refused(dry_source, churn, version, templates)
    assert error.message.startswith("manifests/serving/widget.yaml: Widget churn-widget: "
                                    "kind: unknown kind 'Widget'")
    assert error.fix is not None
    assert "render.crdDirectory" in error.fix


def test_a_user_crd_makes_a_custom_kind_valid(dry_source: Dry, churn: ModelSpec,
                                              version: ModelVersion) -> None:
    templates = {**dry_source[1].templates, "serving/widget.yaml": WIDGET}
    schemas = ObjectSchemas(crd_files=(("crds/widget.yaml", WIDGET_CRD),))
    files = rendered(dry_source, churn, version, templates, schemas=schemas).files
    assert b"kind: Widget" in files["serving/widget.yaml"]


def test_an_invalid_custom_object_is_refused(dry_source: Dry, churn: ModelSpec,
                                             version: ModelVersion) -> None:
    templates = {**dry_source[1].templates,
                 "serving/widget.yaml": WIDGET.replace("${serving.replicas}", '"big"')}
    schemas = ObjectSchemas(crd_files=(("crds/widget.yaml", WIDGET_CRD),))
    error = refused(dry_source, churn, version, templates, schemas=schemas)
    assert error.message == ("manifests/serving/widget.yaml: Widget churn-widget: spec.size: "
                             "must be an integer, got 'big'")
    assert error.fix is not None
    assert "crds/widget.yaml" in error.fix


def test_a_required_field_of_a_custom_object(dry_source: Dry, churn: ModelSpec,
                                             version: ModelVersion) -> None:
    templates = {**dry_source[1].templates,
                 "serving/widget.yaml": WIDGET.replace("  size: ${serving.replicas}\n",
                                                       "  colour: red\n")}
    schemas = ObjectSchemas(crd_files=(("crds/widget.yaml", WIDGET_CRD),))
    error = refused(dry_source, churn, version, templates, schemas=schemas)
    assert error.field in {"spec.size", "spec.colour"}


@pytest.mark.parametrize(("text", "problem"), [
    ("a: [b\n", "invalid YAML"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
     "holds no CustomResourceDefinition"),
    (WIDGET_CRD.replace("      schema:\n", "      schemo:\n"),
     "spec.versions[0].schema.openAPIV3Schema: missing"),
])
def test_a_broken_user_crd_file_is_a_config_error(text: str, problem: str, dry_source: Dry,
                                                  churn: ModelSpec,
                                                  version: ModelVersion) -> None:
    schemas = ObjectSchemas(crd_files=(("crds/widget.yaml", text),))
    with pytest.raises(ConfigError) as caught:
        rendered(dry_source, churn, version, dry_source[1].templates, schemas=schemas)
    assert caught.value.message.startswith("crds/widget.yaml: ")
    assert problem in caught.value.message
