"""Flux and Argo CD companion objects: schema-valid, deterministic, and as reviewed (golden).

Golden files under tests/companion/golden/{flux,argo}/ are the reviewed output. Regenerate
after an intended change with

    PROMOTER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/companion
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from promoter.cli.companion import argo, flux
from promoter.companion import (
    CompanionFiles,
    generate_argo,
    generate_flux,
    github_address,
    tfjob_health_exprs,
    tfjob_health_lua,
)
from promoter.companion.argo import ARGO_HEALTH_STATUSES, TFJOB_HEALTH_KEY
from promoter.companion.jobset import JOBSET_HEALTH_KEY, jobset_health_exprs, jobset_health_lua
from promoter.config import DirectorySource, EnvironmentSpec, load_dry_config, load_settings
from promoter.config.loader import LoadedSettings
from promoter.demo import copy_example
from promoter.errors import BadInputError
from promoter.schemas import validate_crd_object
from tests.conftest import REPO_ROOT
from tests.schemas import validate_core_object

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("PROMOTER_UPDATE_GOLDEN") == "1"
URL = "https://github.com/acme/ml-gitops.git"


@pytest.fixture(scope="module")
def environments() -> list[EnvironmentSpec]:
    loaded = load_settings(REPO_ROOT / "promoter.yaml")
    return list(load_dry_config(DirectorySource(REPO_ROOT), loaded.settings)
                .environments.values())


def _check_kustomization(obj: dict) -> None:
    """kustomize's own file has no schema in kubernetes-validate or the CRDs: check it here."""
    assert obj["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert obj["kind"] == "Kustomization"
    assert set(obj) == {"apiVersion", "kind", "resources"}
    assert obj["resources"] == sorted(obj["resources"])


def _objects(files: CompanionFiles) -> dict[str, dict]:
    out = {}
    for path, data in files.files.items():
        documents = [d for d in yaml.safe_load_all(data) if d is not None]
        assert len(documents) == 1, path
        out[path] = documents[0]
        if path == "kustomization.yaml":
            _check_kustomization(documents[0])
    return out


def _with_delivery(env: EnvironmentSpec, **delivery: object) -> EnvironmentSpec:
    data = env.model_dump(by_alias=True)
    data["delivery"] = {**data["delivery"], **delivery}
    return EnvironmentSpec.model_validate(data)


def _check_golden(files: CompanionFiles, name: str) -> None:
    directory = GOLDEN / name
    if UPDATE_GOLDEN:
        shutil.rmtree(directory, ignore_errors=True)
        for path, data in files.files.items():
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_bytes(data)
    golden = {p.relative_to(directory).as_posix(): p.read_bytes()
              for p in sorted(directory.rglob("*")) if p.is_file()}
    hint = "if the change is intended, regenerate with PROMOTER_UPDATE_GOLDEN=1 and review"
    assert sorted(files.files) == sorted(golden), hint
    for path, data in files.files.items():
        assert data.decode() == golden[path].decode(), f"{name}/{path} changed; {hint}"


# --- Flux ------------------------------------------------------------------------------------


def test_flux_matches_golden_files(environments: list[EnvironmentSpec]) -> None:
    _check_golden(generate_flux(environments, repository_url=URL), "flux")


def test_flux_objects_validate_against_their_crds(environments: list[EnvironmentSpec]) -> None:
    objects = _objects(generate_flux(environments, repository_url=URL))
    kinds = set()
    for path, obj in objects.items():
        if path != "kustomization.yaml":
            validate_crd_object(obj)
            kinds.add((obj["apiVersion"], obj["kind"]))
    assert kinds == {
        ("source.toolkit.fluxcd.io/v1", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
        ("notification.toolkit.fluxcd.io/v1", "Receiver"),
        ("notification.toolkit.fluxcd.io/v1beta3", "Provider"),
        ("notification.toolkit.fluxcd.io/v1beta3", "Alert"),
    }


def test_flux_objects_are_wired_together(environments: list[EnvironmentSpec]) -> None:
    objects = _objects(generate_flux(environments, repository_url=URL))
    source = objects["prod/gitrepository.yaml"]
    sync = objects["prod/flux-kustomization.yaml"]
    receiver = objects["prod/receiver.yaml"]
    provider = objects["prod/provider.yaml"]
    alert = objects["prod/alert.yaml"]
    assert source["spec"]["ref"] == {"branch": "environments/prod"}
    assert source["spec"]["url"] == URL
    assert sync["spec"]["sourceRef"] == {"kind": "GitRepository",
                                         "name": source["metadata"]["name"]}
    assert sync["spec"]["prune"] is True
    assert sync["spec"]["wait"] is True
    assert sync["spec"]["timeout"] == "5m"
    assert sync["spec"]["targetNamespace"] == "ml-prod"
    assert sync["spec"]["path"] == "./serving"
    assert "healthCheckExprs" not in sync["spec"], "serving holds no TFJob"
    training = objects["prod/flux-kustomization-training.yaml"]
    assert training["metadata"]["name"] == "promoter-prod-training"
    assert training["spec"]["sourceRef"] == sync["spec"]["sourceRef"]
    assert training["spec"]["path"] == "./training"
    assert training["spec"]["timeout"] == "30m"
    assert training["spec"]["targetNamespace"] == "ml-prod"
    assert [e["kind"] for e in training["spec"]["healthCheckExprs"]] == ["TFJob"]
    # Staging runs a JobSet (training.kind): its Kustomization has the JobSet rules.
    staging = objects["staging/flux-kustomization-training.yaml"]["spec"]["healthCheckExprs"]
    assert staging == [jobset_health_exprs(wait_for_training=False)]
    # Neither waits for the other: training can never hold serving's Ready back.
    assert "dependsOn" not in sync["spec"]
    assert "dependsOn" not in training["spec"]
    assert receiver["spec"]["type"] == "github"
    assert receiver["spec"]["resources"] == [{
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "name": "promoter-prod", "namespace": "flux-system"}]
    assert "secretRef" in receiver["spec"]
    assert provider["spec"] == {"type": "github", "address": "https://github.com/acme/ml-gitops",
                                "secretRef": {"name": "promoter-github-status"}}
    assert alert["spec"]["providerRef"] == {"name": provider["metadata"]["name"]}
    assert alert["spec"]["eventSources"] == [
        {"kind": "Kustomization", "name": "promoter-prod", "namespace": "flux-system"},
        {"kind": "Kustomization", "name": "promoter-prod-training",
         "namespace": "flux-system"}]
    listed = objects["kustomization.yaml"]["resources"]
    assert listed == sorted(p for p in objects if p != "kustomization.yaml")


def test_tfjob_health_exprs_by_training_policy() -> None:
    running = tfjob_health_exprs(wait_for_training=False)
    done = tfjob_health_exprs(wait_for_training=True)
    assert "'Running'" in running["current"]
    assert "'Running'" not in done["current"]
    for exprs in (running, done):
        assert exprs["apiVersion"] == "kubeflow.org/v1"
        assert "'Failed'" in exprs["failed"]
        for expr in (exprs["current"], exprs["failed"]):
            # has() first: a TFJob with no status yet must not be an evaluation error, and
            # exists() rather than all(): an empty list is not "current".
            assert expr.startswith("has(status.conditions) && ")
            assert ".all(" not in expr
            assert expr.count("(") == expr.count(")")


def test_flux_delivery_overrides(environments: list[EnvironmentSpec]) -> None:
    dev = _with_delivery(environments[0], name="ml-dev-sync", controllerNamespace="gitops",
                         gitSecretName="deploy-key", waitForTraining=True, timeout="15m",
                         trainingTimeout="2h",
                         repositoryUrl="ssh://git@github.com/acme/dev-gitops.git")
    objects = _objects(generate_flux([dev], repository_url=None))
    source = objects["dev/gitrepository.yaml"]
    assert source["metadata"] == {"name": "ml-dev-sync", "namespace": "gitops",
                                  "labels": source["metadata"]["labels"]}
    assert source["spec"]["secretRef"] == {"name": "deploy-key"}
    assert source["spec"]["url"] == "ssh://git@github.com/acme/dev-gitops.git"
    sync = objects["dev/flux-kustomization.yaml"]
    assert sync["spec"]["timeout"] == "15m"
    training = objects["dev/flux-kustomization-training.yaml"]
    assert training["metadata"]["name"] == "ml-dev-sync-training"
    assert training["spec"]["timeout"] == "2h"
    assert "'Running'" not in training["spec"]["healthCheckExprs"][0]["current"]
    assert objects["dev/provider.yaml"]["spec"]["address"] == "https://github.com/acme/dev-gitops"
    for path, obj in objects.items():
        if path != "kustomization.yaml":
            validate_crd_object(obj)


def test_flux_without_github_writes_no_notifications(
        environments: list[EnvironmentSpec]) -> None:
    files = generate_flux(environments[:1], repository_url="https://gitlab.example/ml/ops.git")
    assert sorted(files.files) == ["dev/flux-kustomization-training.yaml",
                                   "dev/flux-kustomization.yaml", "dev/gitrepository.yaml",
                                   "kustomization.yaml"]
    assert any("not on GitHub" in note for note in files.notes)


@pytest.mark.parametrize("url", [None, ".", "/srv/gitops"])
def test_a_local_repository_is_refused_with_the_fix(environments: list[EnvironmentSpec],
                                                    url: str | None) -> None:
    with pytest.raises(BadInputError, match="needs a git URL") as caught:
        generate_flux(environments, repository_url=url)
    assert "--repo-url" in str(caught.value)


@pytest.mark.parametrize(("url", "address"), [
    ("https://github.com/acme/ops.git", "https://github.com/acme/ops"),
    ("https://github.com/acme/ops", "https://github.com/acme/ops"),
    ("git@github.com:acme/ops.git", "https://github.com/acme/ops"),
    ("ssh://git@github.com/acme/ops.git", "https://github.com/acme/ops"),
    ("https://gitlab.com/acme/ops.git", None),
    ("https://github.com/acme", None),
])
def test_github_address(url: str, address: str | None) -> None:
    assert github_address(url) == address


def test_generation_is_deterministic(environments: list[EnvironmentSpec]) -> None:
    first = generate_flux(environments, repository_url=URL)
    again = generate_flux(list(reversed(environments)), repository_url=URL)
    assert first.files == again.files
    assert first.digest() == again.digest()
    assert generate_argo(environments, repository_url=URL).digest() == generate_argo(
        environments, repository_url=URL).digest()


# --- Argo CD ---------------------------------------------------------------------------------


def test_argo_matches_golden_files(environments: list[EnvironmentSpec]) -> None:
    _check_golden(generate_argo(environments, repository_url=URL), "argo")


def test_argo_objects_validate(environments: list[EnvironmentSpec]) -> None:
    objects = _objects(generate_argo(environments, repository_url=URL))
    for path, obj in objects.items():
        if path.endswith("/application.yaml"):
            validate_crd_object(obj)
    validate_core_object(objects["argocd-cm-patch.yaml"])
    # argocd-cm is merged by hand, never applied on its own (it would drop the other keys).
    assert "argocd-cm-patch.yaml" not in objects["kustomization.yaml"]["resources"]


def test_argo_application_syncs_the_environment_branch(
        environments: list[EnvironmentSpec]) -> None:
    app = _objects(generate_argo(environments, repository_url=URL))["staging/application.yaml"]
    assert app["metadata"]["name"] == "promoter-staging"
    assert app["metadata"]["namespace"] == "argocd"
    assert app["spec"]["source"] == {"repoURL": URL, "targetRevision": "environments/staging",
                                     "path": "serving"}
    assert app["spec"]["destination"]["namespace"] == "ml-staging"
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    training = _objects(generate_argo(environments, repository_url=URL))[
        "staging/application-training.yaml"]
    assert training["metadata"]["name"] == "promoter-staging-training"
    assert training["spec"]["source"] == {"repoURL": URL,
                                          "targetRevision": "environments/staging",
                                          "path": "training"}
    assert training["spec"]["destination"] == app["spec"]["destination"]


def _without_training(env: EnvironmentSpec) -> EnvironmentSpec:
    data = env.model_dump(by_alias=True)
    data["training"] = {**data["training"], "enabled": False}
    return EnvironmentSpec.model_validate(data)


def test_training_disabled_has_no_training_kustomization_or_application(
        environments: list[EnvironmentSpec]) -> None:
    dev, *others = environments
    envs = [_without_training(dev), *others]
    flux_objects = _objects(generate_flux(envs, repository_url=URL))
    assert "dev/flux-kustomization-training.yaml" not in flux_objects
    assert "staging/flux-kustomization-training.yaml" in flux_objects
    assert [s["name"] for s in flux_objects["dev/alert.yaml"]["spec"]["eventSources"]] == [
        "promoter-dev"]
    argo_objects = _objects(generate_argo(envs, repository_url=URL))
    assert "dev/application-training.yaml" not in argo_objects
    assert "staging/application-training.yaml" in argo_objects
    # No environment trains: no TFJob health check to merge into argocd-cm either.
    none = generate_argo([_without_training(e) for e in environments], repository_url=URL)
    assert sorted(none.files) == ["dev/application.yaml", "kustomization.yaml",
                                  "prod/application.yaml", "staging/application.yaml"]
    assert none.notes == ()


def _lua_blocks_balance(script: str) -> None:
    """A structural check of the Lua, without a Lua runtime (lupa is not installed): every
    `if`/`for`/`function` block is closed by an `end`, in order."""
    depth = 0
    for line in script.splitlines():
        code = line.split("--", 1)[0].strip()
        words = re.findall(r"[A-Za-z_]+", code)
        if re.match(r"^(if|for)\b", code) or "function" in words:
            depth += 1
        depth -= words.count("end")
        assert depth >= 0, f"unbalanced 'end' at: {line}"
    assert depth == 0, "a block is not closed"


@pytest.mark.parametrize("wait", [False, True])
def test_tfjob_lua_health_check_structure(wait: bool) -> None:
    script = tfjob_health_lua(wait_for_training=wait)
    _lua_blocks_balance(script)
    statuses = re.findall(r'hs\.status = "([A-Za-z]+)"', script)
    assert set(statuses) <= set(ARGO_HEALTH_STATUSES)
    assert {"Healthy", "Degraded", "Progressing", "Suspended"} <= set(statuses)
    # Every branch that returns has set a status first.
    returns = [i for i, line in enumerate(script.splitlines()) if line.strip() == "return hs"]
    lines = script.splitlines()
    for index in returns:
        block = lines[max(0, index - 3):index]
        assert any("hs.status" in line for line in block), lines[index - 3:index + 1]
    assert lines[-1] == "return hs"
    # Failed is decided before Succeeded/Running; Running's verdict follows the setting.
    assert script.index('holds("Failed")') < script.index('holds("Succeeded")')
    assert script.index('holds("Succeeded")') < script.index('holds("Running")')
    running = script[script.index('holds("Running")'):]
    assert running.split("\n")[1].strip() == (
        'hs.status = "Progressing"' if wait else 'hs.status = "Healthy"')


def test_argocd_cm_holds_the_tfjob_check(environments: list[EnvironmentSpec]) -> None:
    cm = _objects(generate_argo(environments, repository_url=URL))["argocd-cm-patch.yaml"]
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"][TFJOB_HEALTH_KEY] == tfjob_health_lua(wait_for_training=False)
    assert TFJOB_HEALTH_KEY == "resource.customizations.health.kubeflow.org_TFJob"
    # Staging runs a JobSet: its check is there too, under Argo CD's <group>_<kind> key.
    assert cm["data"][JOBSET_HEALTH_KEY] == jobset_health_lua(wait_for_training=False)
    assert JOBSET_HEALTH_KEY == "resource.customizations.health.jobset.x-k8s.io_JobSet"
    # Only the kinds some environment runs.
    tfjob_only = [e.model_copy(update={"training": e.training.model_copy(
        update={"kind": "TFJob"})}) for e in environments]
    only = _objects(generate_argo(tfjob_only, repository_url=URL))["argocd-cm-patch.yaml"]
    assert set(only["data"]) == {TFJOB_HEALTH_KEY}


# --- CLI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "name"), [(flux, "flux"), (argo, "argo")])
def test_cli_writes_the_golden_files(tmp_path: Path, command: object, name: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(command, ["--out", str(out), "--repo-url", URL],
                                obj=_CliContext())
    assert result.exit_code == 0, result.output
    written = {p.relative_to(out).as_posix(): p.read_bytes()
               for p in sorted(out.rglob("*")) if p.is_file()}
    golden = {p.relative_to(GOLDEN / name).as_posix(): p.read_bytes()
              for p in sorted((GOLDEN / name).rglob("*")) if p.is_file()}
    assert written == golden
    assert f"wrote {len(golden)} files" in result.output


def test_cli_without_a_url_exits_2(tmp_path: Path) -> None:
    # A repository of its own, without an `origin` remote (this checkout may have one).
    repo = tmp_path / "gitops"
    repo.mkdir()
    copy_example(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    result = CliRunner().invoke(flux, ["--out", str(tmp_path / "out")],
                                obj=_CliContext(repo))
    assert result.exit_code == 2
    assert "error:" in result.output
    assert "--repo-url" in result.output
    assert not (tmp_path / "out").exists()


class _CliContext:
    """What `promoter`'s group puts in `ctx.obj`: the settings on first use."""

    def __init__(self, root: Path = REPO_ROOT) -> None:
        self.root = root

    def settings(self) -> LoadedSettings:
        return load_settings(self.root / "promoter.yaml")
