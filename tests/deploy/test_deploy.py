"""deploy/: promoter on Kubernetes. Every overlay builds with `kubectl kustomize`, every
object validates strict against the Kubernetes schemas, the pod is locked down and wired to
what the code reads, and the RBAC grants exactly what the cluster reader uses: every request
the fake API server receives from the reader's operations (the rollout reading for Flux and
Argo CD, the sync request) is allowed, every rule is used, and nothing is a wildcard."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from promoter.cli.serve import serve
from promoter.cluster import DeliveryTarget
from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.config import DirectorySource, EnvironmentSpec, load_dry_config, load_settings
from promoter.server.tokens import TOKENS_FILE_ENV
from tests.cluster.fake_api import ApiRequest, FakeKubernetesApi
from tests.cluster.objects import application, applied, git_repository
from tests.conftest import REPO_ROOT
from tests.schemas import validate_core_object

DEPLOY = REPO_ROOT / "deploy"
OVERLAYS = {"github-app": "flux", "github-app-argocd": "argo"}
COMMIT = "1" * 40
Rule = tuple[str, str, str, str, str]
"""(verb, API group, resource, namespace, name)."""


def _build(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: install kubectl (it ships kustomize) to check "
                    "that deploy/ builds")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


@pytest.fixture(scope="module", params=list(OVERLAYS))
def built(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _build(request.param)


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def test_every_object_validates_strict(built: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = built
    assert sorted(o["kind"] for o in objects) == [
        "ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "Role", "RoleBinding",
        "Service", "ServiceAccount"]
    for obj in objects:
        validate_core_object(obj)


def test_the_pod_is_locked_down(built: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = built
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two schedulers
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in context["capabilities"]
    assert not context.get("privileged")
    for part in ("requests", "limits"):
        assert set(container["resources"][part]) == {"cpu", "memory"}
    assert ":" in container["image"]
    assert not container["image"].endswith(":latest")
    namespace = _one(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        "restricted"


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def _mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container["volumeMounts"]}


def test_the_pod_is_wired_to_what_the_code_reads(
        built: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = built
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    env, mounts = _env(container), _mounts(container)
    assert {m["name"] for m in container["volumeMounts"]} == set(volumes)

    # The port and the probes are those of `promoter serve`.
    assert container["args"][0] == serve.name
    port = int(container["args"][container["args"].index("--port") + 1])
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    from promoter.server.app import _health_router

    paths = {route.path for route in _health_router().routes}  # type: ignore[attr-defined]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz"} <= paths
    service = _one(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"].items() <= \
        _one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    policy = _one(objects, "NetworkPolicy")
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": port}]}]

    # Writable places are emptyDirs: /tmp, the git cache, numba's cache.
    for variable in ("PROMOTER_CACHE_DIR", "NUMBA_CACHE_DIR", "TMPDIR"):
        mount = mounts[env[variable]["value"]]
        assert "emptyDir" in volumes[mount["name"]], variable
        assert not mount.get("readOnly")
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    writable = {path for path, mount in mounts.items() if not mount.get("readOnly")}
    assert writable == {"/tmp", "/var/cache/promoter", "/var/cache/numba"}

    # Secrets are references: the webhook secret from a Secret key, the tokens as a file.
    webhook = env["PROMOTER_WEBHOOK_SECRET"]
    assert "value" not in webhook
    assert webhook["valueFrom"]["secretKeyRef"] == {"name": "promoter-webhook",
                                                    "key": "secret"}
    tokens = Path(env[TOKENS_FILE_ENV]["value"])
    assert volumes[mounts[str(tokens.parent)]["name"]]["secret"]["secretName"] == \
        "promoter-api-tokens"
    assert mounts[str(tokens.parent)]["readOnly"] is True

    # promoter.yaml comes from the ConfigMap, and what it names is mounted.
    config_map = _one(objects, "ConfigMap")
    config = Path(env["PROMOTER_CONFIG"]["value"])
    assert volumes[mounts[str(config.parent)]["name"]]["configMap"]["name"] == \
        config_map["metadata"]["name"]
    settings = yaml.safe_load(config_map["data"][config.name])
    key = Path(settings["forge"]["github"]["auth"]["privateKeyFile"])
    assert volumes[mounts[str(key.parent)]["name"]]["secret"]["secretName"] == \
        "promoter-github-app"
    assert settings["modelStore"]["url"].startswith(
        next(p for p, m in mounts.items() if m["name"] == "store"))
    assert settings["service"]["port"] == port


def test_the_shipped_promoter_yaml_is_a_valid_configuration(tmp_path: Path) -> None:
    source = DEPLOY / "components" / "github-app" / "promoter.yaml"
    (tmp_path / "promoter.yaml").write_bytes(source.read_bytes())
    loaded = load_settings(tmp_path / "promoter.yaml")
    assert loaded.settings.forge.type == "github"
    assert loaded.settings.cluster is not None
    assert loaded.settings.cluster.kubeconfig is None  # the pod's service account


def _quantity_bytes(quantity: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity.removesuffix(suffix)) * factor)
    raise AssertionError(f"unexpected quantity {quantity!r}: extend _quantity_bytes")


def test_the_model_cache_bound_fits_the_cache_volume(
        built: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    """Switched to s3:// or gs://, the shipped configuration caches models in the `cache`
    emptyDir: a bound above its sizeLimit gets the pod evicted by the kubelet once the cache
    fills (the default bound, 20 GiB, is 5 times the volume's 4Gi)."""
    _, objects = built
    volumes = {v["name"]: v for v in _one(objects, "Deployment")["spec"]["template"]["spec"]
               ["volumes"]}
    limit = _quantity_bytes(volumes["cache"]["emptyDir"]["sizeLimit"])
    source = DEPLOY / "components" / "github-app" / "promoter.yaml"
    (tmp_path / "promoter.yaml").write_bytes(source.read_bytes())
    bound = load_settings(tmp_path / "promoter.yaml").settings.model_store.evaluation_cache_gib
    # Room beside it for the git mirror and the verdicts (the same volume): at least 512 MiB.
    assert bound * (1 << 30) + (512 << 20) <= limit


# --- RBAC: granted == used -------------------------------------------------------------------


def _granted(objects: list[dict[str, Any]]) -> set[Rule]:
    """Every (verb, group, resource, namespace, name) the Roles allow, wildcards refused."""
    assert not [o for o in objects if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    (role,) = [o for o in objects if o["kind"] == "Role"]
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"]
    deployment = _one(objects, "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                    "namespace": deployment["metadata"]["namespace"]}]
    rules: set[Rule] = set()
    namespace = role["metadata"]["namespace"]
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        assert rule.get("resourceNames"), f"every rule names its objects: {rule}"
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule[field], f"wildcard in {field}: {rule}"
            assert all("*" not in value for value in rule[field])
        for verb in rule["verbs"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for name in rule["resourceNames"]:
                        rules.add((verb, group, resource, namespace, name))
    return rules


def _environments(tool: str) -> list[EnvironmentSpec]:
    loaded = load_settings(REPO_ROOT / "promoter.yaml")
    dry = load_dry_config(DirectorySource(REPO_ROOT), loaded.settings)
    out = []
    for env in dry.environments.values():
        data = env.model_dump(by_alias=True)
        data["delivery"] = {**data["delivery"], "tool": tool}
        out.append(EnvironmentSpec.model_validate(data))
    return out


def _serve_everything(api: FakeKubernetesApi, env: EnvironmentSpec) -> None:
    """The objects of `env` as `promoter flux|argo` name them, so every code path runs."""
    target = DeliveryTarget.of(env)
    if target.tool == "flux":
        api.put(target.git_repository, git_repository(commit=COMMIT, branch=env.branch,
                                                      name=target.name))
        api.put(target.kustomization, applied(COMMIT, branch=env.branch, name=target.name))
    else:
        api.put(target.application, application(sync_revision=COMMIT, name=target.name))
    if target.training is not None:
        if target.tool == "flux":
            api.put(target.training, applied(COMMIT, branch=env.branch,
                                             name=target.training.name))
        else:
            api.put(target.training, application(sync_revision=COMMIT,
                                                 name=target.training.name))


def _used(api: FakeKubernetesApi, tool: str) -> set[Rule]:
    with KubernetesClusterReader.for_host(api.url, request_timeout_s=5) as reader:
        for env in _environments(tool):
            _serve_everything(api, env)
            reader.rollout_state(env, commit=COMMIT)
            reader.request_reconcile(env, requested_at="2024-05-01T12:00:00Z")
    return {_rule(request) for request in api.audit}


def _rule(request: ApiRequest) -> Rule:
    return (request.verb, request.group, request.resource, request.namespace, request.name)


@pytest.mark.parametrize(("overlay", "tool"), list(OVERLAYS.items()))
def test_rbac_grants_exactly_what_the_reader_uses(overlay: str, tool: str,
                                                  api: FakeKubernetesApi) -> None:
    granted = _granted(_build(overlay))
    used = _used(api, tool)
    assert used, "the reader made no request"
    assert used - granted == set(), "used but not granted"
    assert granted - used == set(), "granted but never used"
