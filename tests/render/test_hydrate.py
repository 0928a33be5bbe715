"""render_environment over the repository's real manifests/ and environments/.

Golden files under tests/render/golden/<env>/ are the reviewed output: a change to a template
or to the renderer shows up as a diff there. Regenerate them with

    PROMOTER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/render

and review the diff before committing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from promoter.config import DryConfig, ModelSpec, Settings
from promoter.config.schema import FetchSpec
from promoter.domain.model_versions import ModelVersion
from promoter.render import KUSTOMIZATION_FILE, RenderedManifests, render_environment
from tests.conftest import REPO_ROOT
from tests.render.conftest import ENVIRONMENTS, Render
from tests.schemas import validate_object

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("PROMOTER_UPDATE_GOLDEN") == "1"

TRAINING_JOB = {"dev": ("tfjob.yaml", "TFJob"), "staging": ("jobset.yaml", "JobSet"),
                "prod": ("tfjob.yaml", "TFJob")}
"""The example's training job per environment (`training.kind`; staging runs a JobSet)."""


def expected_files(env: str) -> list[str]:
    return sorted([
        KUSTOMIZATION_FILE,
        "serving/configmap.yaml",
        "serving/deployment.yaml",
        "serving/hpa.yaml",
        "serving/kustomization.yaml",
        "serving/pdb.yaml",
        "serving/service.yaml",
        "training/kustomization.yaml",
        f"training/{TRAINING_JOB[env][0]}",
    ])


def objects(rendered: RenderedManifests) -> dict[tuple[str, str], dict[str, Any]]:
    """Rendered objects (without the kustomizations) by (kind, name)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, data in rendered.files.items():
        if Path(path).name == KUSTOMIZATION_FILE:
            continue
        for document in yaml.safe_load_all(data):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def write_tree(rendered: RenderedManifests, directory: Path) -> None:
    for path, data in rendered.files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# --- golden files ----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_matches_golden_files(env: str, render: Render) -> None:
    rendered = render(env)
    directory = GOLDEN / env
    if UPDATE_GOLDEN:
        shutil.rmtree(directory, ignore_errors=True)
        write_tree(rendered, directory)
    golden = {p.relative_to(directory).as_posix(): p.read_bytes()
              for p in sorted(directory.rglob("*")) if p.is_file()}
    hint = "if the change is intended, regenerate with PROMOTER_UPDATE_GOLDEN=1 and review"
    assert sorted(rendered.files) == sorted(golden), hint
    for path, data in rendered.files.items():
        assert data.decode() == golden[path].decode(), f"{env}/{path} changed; {hint}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_renders_one_file_per_template_and_a_kustomization_per_part(
        env: str, render: Render) -> None:
    rendered = render(env)
    assert list(rendered.files) == expected_files(env)

    def listed(path: str) -> list[str]:
        kustomization = yaml.safe_load(rendered.files[path])
        assert set(kustomization) == {"apiVersion", "kind", "resources"}
        assert kustomization["kind"] == "Kustomization"
        return kustomization["resources"]

    assert listed(KUSTOMIZATION_FILE) == ["serving", "training"]
    assert listed("serving/kustomization.yaml") == [
        "configmap.yaml", "deployment.yaml", "hpa.yaml", "pdb.yaml", "service.yaml"]
    assert listed("training/kustomization.yaml") == [TRAINING_JOB[env][0]]


# --- what the example manifests promise ------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_is_in_the_environment_namespace(
        env: str, render: Render, dry_source: tuple[Settings, DryConfig]) -> None:
    namespace = dry_source[1].environment(env).namespace
    for obj in objects(render(env)).values():
        assert obj["metadata"]["namespace"] == namespace


def test_serving_pods_serve_only_a_copy_verified_against_the_pinned_digest(
        render: Render) -> None:
    """TF Serving checks no digest, so it must never read the store itself: the init
    container copies the pinned version from modelBaseUri into an emptyDir and checks its
    digest first, and TF Serving reads that emptyDir only, read-only."""
    pod = objects(render("prod"))[("Deployment", "churn")]["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    assert fetch["command"] == ["promoter-fetch-model"]
    assert fetch["args"] == ["--from=gs://example-ml-models/churn", "--version=3",
                             "--digest=sha256:" + "ab" * 32,
                             "--into=/verified-models/churn"]
    assert fetch["image"] == "registry.example.com/ml/promoter-fetch-model:0.1.0"
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True
    assert fetch["envFrom"] == [{"secretRef": {"name": "churn-model-store",
                                               "optional": True}}]
    assert "env" not in fetch  # no credential in the manifests
    (serving,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["verified-models"] == {"name": "verified-models", "emptyDir": {}}
    mounts = {m["name"]: m for m in serving["volumeMounts"]}
    assert mounts["verified-models"] == {"name": "verified-models",
                                         "mountPath": "/verified-models", "readOnly": True}
    assert fetch["volumeMounts"] == [{"name": "verified-models",
                                      "mountPath": "/verified-models"}]
    assert fetch["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                  "limits": {"memory": "512Mi"}}
    assert fetch["securityContext"]["runAsUser"] == 10001
    assert pod["serviceAccountName"] == "default"


def test_the_init_containers_resources_uid_and_credentials_come_from_the_environment(
        dry_source: tuple[Settings, DryConfig], churn: ModelSpec,
        version: ModelVersion) -> None:
    env = dry_source[1].environment("prod")
    fetch = FetchSpec.model_validate({
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        "runAsUser": 20000, "serviceAccountName": "churn-serving",
        "secretName": "ml-store-credentials"})
    configured = env.model_copy(update={"serving": env.serving.model_copy(
        update={"fetch": fetch})})
    rendered = render_environment(dry_source[1].templates, environment=configured,
                                  model=churn, version=version)
    pod = objects(rendered)[("Deployment", "churn")]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}}
    assert init["securityContext"]["runAsUser"] == 20000
    assert pod["serviceAccountName"] == "churn-serving"
    # Named, the secret must exist: a typo fails the pod visibly instead of fetching anonymously.
    assert init["envFrom"] == [{"secretRef": {"name": "ml-store-credentials",
                                              "optional": False}}]


@pytest.mark.parametrize("fetch", [{"runAsUser": 0}, {"serviceAccountName": "Not_A_Name"},
                                   {"secretName": "a" * 254}])
def test_the_init_container_cannot_be_configured_as_root_or_with_bad_names(
        fetch: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FetchSpec.model_validate(fetch)


def test_serving_objects_of_prod(render: Render) -> None:
    found = objects(render("prod"))
    deployment = found[("Deployment", "churn")]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    assert pod["metadata"]["annotations"]["promoter.dev/model-version"] == "3"
    assert pod["metadata"]["annotations"]["promoter.dev/model-digest"] == "sha256:" + "ab" * 32
    assert pod["metadata"]["labels"]["app.kubernetes.io/version"] == "3"
    assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]
    assert container["args"] == ["--model_config_file=/etc/tfserving/models.config",
                                 "--rest_api_port=8501", "--port=8500"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/churn/versions/3",
                                                      "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v1/models/churn", "port": "http"}
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"},
                                      "limits": {"cpu": "2", "memory": "4Gi"}}
    anti = pod["spec"]["affinity"]["podAntiAffinity"]
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == \
        deployment["spec"]["selector"]["matchLabels"]

    config = found[("ConfigMap", "churn-model-config")]["data"]["models.config"]
    assert 'base_path: "/verified-models/churn"' in config  # the pod's verified copy
    assert "versions: 3" in config

    service = found[("Service", "churn")]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": 8500,
                                                                       "http": 8501}
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()

    hpa = found[("HorizontalPodAutoscaler", "churn")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 60

    pdb = found[("PodDisruptionBudget", "churn")]["spec"]
    assert pdb["maxUnavailable"] == 1
    assert "minAvailable" not in pdb


def test_tfjob_roles_follow_the_environment(render: Render) -> None:
    dev = objects(render("dev"))[("TFJob", "churn-train-v3")]["spec"]
    prod = objects(render("prod"))[("TFJob", "churn-train-v3")]["spec"]
    assert {role: spec["replicas"] for role, spec in dev["tfReplicaSpecs"].items()} == \
        {"Worker": 1, "PS": 1, "Chief": 1}
    assert {role: spec["replicas"] for role, spec in prod["tfReplicaSpecs"].items()} == \
        {"Worker": 4, "PS": 2, "Chief": 1}
    assert "activeDeadlineSeconds" not in dev["runPolicy"]
    assert prod["runPolicy"] == {"cleanPodPolicy": "Running", "backoffLimit": 3,
                                 "activeDeadlineSeconds": 86400}
    for spec in prod["tfReplicaSpecs"].values():
        assert spec["restartPolicy"] == "OnFailure"
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "tensorflow"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["PROMOTER_MODEL_VERSION"] == "3"


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendering_is_deterministic(env: str, render: Render,
                                    dry_source: tuple[Settings, DryConfig]) -> None:
    first = render(env)
    second = render(env)
    reordered = render(env, dict(reversed(list(dry_source[1].templates.items()))))
    assert first.files == second.files == reordered.files
    assert first.digest() == second.digest() == reordered.digest()
    assert list(first.files) == list(reordered.files)


_DIGEST_SCRIPT = """
from pathlib import Path
from promoter.config import DirectorySource, load_dry_config, load_settings
from promoter.domain.model_versions import ModelVersion
from promoter.render import render_environment
root = Path({root!r})
loaded = load_settings(root / "promoter.yaml")
dry = load_dry_config(DirectorySource(root), loaded.settings)
version = ModelVersion(name="churn", version=3, digest="sha256:" + "ab" * 32, uri="/m/churn/3")
for env in {envs!r}:
    print(render_environment(dry.templates, environment=dry.environment(env),
                             model=loaded.settings.model("churn"), version=version).digest())
"""


def test_digest_is_the_same_in_another_process_with_another_hash_seed(render: Render) -> None:
    expected = [render(env).digest() for env in ENVIRONMENTS]
    script = _DIGEST_SCRIPT.format(root=str(REPO_ROOT), envs=list(ENVIRONMENTS))
    for seed in ("1", "4242"):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120,
                                check=False, cwd=REPO_ROOT)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == expected


def test_digest_covers_paths_and_bytes_length_prefixed() -> None:
    base = RenderedManifests(files={"a": b"bc"})
    assert base.digest().startswith("sha256:")
    assert len(base.digest()) == 7 + 64
    assert base.digest() == RenderedManifests(files={"a": b"bc"}).digest()
    assert base.digest() != RenderedManifests(files={"ab": b"c"}).digest()
    assert base.digest() != RenderedManifests(files={"a": b"bc", "b": b""}).digest()
    assert RenderedManifests(files={"x": b"1", "y": b"2"}).digest() == \
        RenderedManifests(files={"y": b"2", "x": b"1"}).digest()


def test_rendered_files_are_read_only_and_sorted() -> None:
    source = {"b.yaml": b"2", "a.yaml": b"1"}
    rendered = RenderedManifests(files=source)
    source["c.yaml"] = b"3"
    assert list(rendered.files) == ["a.yaml", "b.yaml"]
    with pytest.raises(TypeError):
        rendered.files["a.yaml"] = b"x"  # type: ignore[index]  # proving it is read-only
    assert rendered == RenderedManifests(files={"a.yaml": b"1", "b.yaml": b"2"})
    assert hash(rendered) == hash(RenderedManifests(files={"a.yaml": b"1", "b.yaml": b"2"}))


# --- validity --------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_validates_against_its_schema(env: str, render: Render) -> None:
    found = objects(render(env))
    assert sorted(kind for kind, _ in found) == sorted([
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service",
        TRAINING_JOB[env][1],
    ])
    for obj in found.values():
        validate_object(obj)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kubectl_kustomize_builds_the_rendered_tree(env: str, render: Render,
                                                    tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: install kubectl (it ships kustomize) to check that "
                    "Flux and `kubectl apply -k` can build a rendered environment branch")
    rendered = render(env)
    write_tree(rendered, tmp_path)
    result = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    built = {(d["kind"], d["metadata"]["name"]): d
             for d in yaml.safe_load_all(result.stdout) if d is not None}
    assert built == objects(rendered)
    # Each part builds on its own, as Flux (path ./serving, ./training) and Argo CD do.
    for part, kinds in (("serving", {"ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                                     "PodDisruptionBudget", "Service"}),
                        ("training", {TRAINING_JOB[env][1]})):
        result = subprocess.run([kubectl, "kustomize", str(tmp_path / part)],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"kubectl kustomize {part} failed:\n{result.stderr}"
        assert {d["kind"] for d in yaml.safe_load_all(result.stdout) if d} == kinds
