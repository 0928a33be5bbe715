"""`delivery:` in environments/<env>.yaml: defaults, overrides and file:field errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from promoter.config import DirectorySource, DryConfig, load_dry_config, load_settings
from promoter.errors import ConfigError
from tests.conftest import REPO_ROOT


def _dry(tmp_path: Path, delivery: str) -> DryConfig:
    for name in ("promoter.yaml", "environments", "policies", "manifests"):
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy2(src, tmp_path / name)
    dev = tmp_path / "environments" / "dev.yaml"
    dev.write_text(dev.read_text() + delivery)
    loaded = load_settings(tmp_path / "promoter.yaml")
    return load_dry_config(DirectorySource(tmp_path), loaded.settings)


def test_defaults_are_flux_with_generated_names(tmp_path: Path) -> None:
    env = _dry(tmp_path, "").environment("dev")
    assert env.delivery.tool == "flux"
    assert env.delivery.object_name("dev") == "promoter-dev"
    assert env.delivery.namespace_for() == "flux-system"
    assert env.delivery.namespace_for("argo") == "argocd"
    assert env.delivery.health_timeout_seconds == 600
    assert env.delivery.auto_rollback
    assert env.delivery.training_timeout == "30m"
    assert env.delivery.training_object_name("dev") == "promoter-dev-training"
    assert env.training.enabled


def test_training_can_be_turned_off(tmp_path: Path) -> None:
    dry = _dry(tmp_path, "")
    dev = tmp_path / "environments" / "dev.yaml"
    dev.write_text(dev.read_text().replace("  enabled: true", "  enabled: false"))
    loaded = load_settings(tmp_path / "promoter.yaml")
    env = load_dry_config(DirectorySource(tmp_path), loaded.settings).environment("dev")
    assert dry.environment("dev").training.enabled
    assert not env.training.enabled


def test_overrides_in_camel_case(tmp_path: Path) -> None:
    env = _dry(tmp_path, (
        "delivery:\n  tool: argo\n  name: churn-dev\n  controllerNamespace: gitops\n"
        "  healthTimeoutSeconds: 900\n  repositoryUrl: https://github.com/acme/ops.git\n"
        "  autoMergeRollback: false\n")).environment("dev")
    delivery = env.delivery
    assert (delivery.tool, delivery.object_name("dev"), delivery.namespace_for()) == (
        "argo", "churn-dev", "gitops")
    assert delivery.health_timeout_seconds == 900
    assert delivery.repository_url == "https://github.com/acme/ops.git"
    assert delivery.auto_merge_rollback is False


@pytest.mark.parametrize(("delivery", "field"), [
    ("delivery:\n  tool: spinnaker\n", "delivery.tool"),
    ("delivery:\n  interval: soon\n", "delivery.interval"),
    ("delivery:\n  healthTimeout: 5\n", "delivery.healthTimeout"),
    ("delivery:\n  trainingTimeout: later\n", "delivery.trainingTimeout"),
])
def test_mistakes_name_the_file_and_field(tmp_path: Path, delivery: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _dry(tmp_path, delivery)
    assert "environments/dev.yaml" in str(caught.value)
    assert field in str(caught.value)
