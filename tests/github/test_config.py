"""`forge: {type: github, github: ...}` in promoter.yaml, and its wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from promoter.config.loader import load_settings
from promoter.demo import copy_example
from promoter.errors import ConfigError
from promoter.forge.github import GitHubForge
from promoter.wiring import build_service
from tests.promotion.world import git

GITHUB = {"type": "github", "github": {
    "repository": "acme/gitops", "baseUrl": "https://ghe.example.com/api/v3",
    "auth": {"type": "token", "tokenEnv": "GH_TOKEN"}, "mergeMethod": "squash",
    "approverTeam": "acme/release-managers", "markerKeyEnv": "PROMOTER_MARKER_KEY"}}
MARKER_KEY = "0123456789abcdef0123456789abcdef"
ENV = {"GH_TOKEN": "ghp_x", "PROMOTER_MARKER_KEY": MARKER_KEY}


def _write(root: Path, forge: dict[str, object]) -> Path:
    if not (root / "promoter.yaml").exists():
        root.mkdir(parents=True, exist_ok=True)
        copy_example(root)
    config = root / "promoter.yaml"
    data = yaml.safe_load(config.read_text())
    data["forge"] = forge
    config.write_text(yaml.safe_dump(data))
    return config


def test_github_forge_settings_load(tmp_path: Path) -> None:
    spec = load_settings(_write(tmp_path, GITHUB)).settings.forge.github
    assert spec is not None
    assert (spec.repository, spec.base_url, spec.merge_method, spec.approver_team) == (
        "acme/gitops", "https://ghe.example.com/api/v3", "squash", "acme/release-managers")


@pytest.mark.parametrize(("change", "field"), [
    ({"auth": {"type": "token"}}, "forge.github.auth"),
    ({"auth": {"type": "app", "appId": 1, "privateKeyEnv": "K"}}, "forge.github.auth"),
    ({"repository": "just-a-name"}, "forge.github.repository"),
    ({"mergeMethod": "octopus"}, "forge.github.mergeMethod"),
    ({"baseUrl": "https://user:pw@ghe.example.com"}, "forge.github.baseUrl"),
    ({"auth": {"type": "token", "tokenEnv": "GH_TOKEN", "token": "ghp_inline_secret"}},
     "forge.github.auth.token"),
])
def test_bad_github_settings_name_the_field(tmp_path: Path, change: dict[str, object],
                                            field: str) -> None:
    forge = {**GITHUB, "github": {**GITHUB["github"], **change}}  # type: ignore[dict-item]
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, forge))
    assert caught.value.field == field
    assert "ghp_inline_secret" not in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_github_section_requires_type_github(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="github"):
        load_settings(_write(tmp_path, {"type": "github"}))
    with pytest.raises(ConfigError, match="type: github"):
        load_settings(_write(tmp_path, {"type": "local", "github": GITHUB["github"]}))


def test_wiring_builds_a_github_forge(tmp_path: Path) -> None:
    config = _write(tmp_path, GITHUB)
    git(tmp_path, "init", "-q", "-b", "main")
    service = build_service(load_settings(config), environ=ENV)
    assert isinstance(service.forge, GitHubForge)
    assert service.identity == "promoter"
    data = yaml.safe_load(config.read_text())
    data["forge"]["github"]["identity"] = "promoter-app[bot]"
    config.write_text(yaml.safe_dump(data))
    service = build_service(load_settings(config), environ=ENV)
    assert service.identity == "promoter-app[bot]"
    with pytest.raises(ConfigError, match="GH_TOKEN"):
        build_service(load_settings(config), environ={})


def test_remote_repository_urls(tmp_path: Path) -> None:
    config = _write(tmp_path, GITHUB)
    data = yaml.safe_load(config.read_text())
    data["repository"]["url"] = "git@github.com:acme/gitops.git"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="HTTPS") as caught:
        build_service(load_settings(config), environ=ENV)
    assert caught.value.field == "repository.url"
    data["forge"] = {"type": "local"}
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="GitHub forge"):
        build_service(load_settings(config), environ={})


@pytest.mark.parametrize(("change", "field"), [
    ({"markerKeyEnv": None}, "forge.github.markerKeyEnv"),  # token auth needs one
    ({"markerKeyFile": "key"}, "forge.github.markerKeyFile"),  # both given
    ({"markerKeyEnv": "not-a-variable"}, "forge.github.markerKeyEnv"),
])
def test_bad_marker_key_settings_name_the_field(tmp_path: Path, change: dict[str, object],
                                                field: str) -> None:
    github = {k: v for k, v in {**GITHUB["github"], **change}.items()  # type: ignore[dict-item]
              if v is not None}
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, {**GITHUB, "github": github}))
    assert caught.value.field == field


def test_the_marker_key_is_read_from_the_secret_and_never_shown(tmp_path: Path) -> None:
    config = _write(tmp_path, GITHUB)
    git(tmp_path, "init", "-q", "-b", "main")
    with pytest.raises(ConfigError, match="PROMOTER_MARKER_KEY") as caught:
        build_service(load_settings(config), environ={"GH_TOKEN": "ghp_x"})
    assert caught.value.field == "forge.github.markerKeyEnv"
    short = "too-short-a-key"
    with pytest.raises(ConfigError, match="32 characters") as caught:
        build_service(load_settings(config), environ={**ENV, "PROMOTER_MARKER_KEY": short})
    assert short not in str(caught.value)
    data = yaml.safe_load(config.read_text())
    del data["forge"]["github"]["markerKeyEnv"]
    data["forge"]["github"]["markerKeyFile"] = "marker.key"
    config.write_text(yaml.safe_dump(data))
    (tmp_path / "marker.key").write_text(MARKER_KEY + "\n")
    forge = build_service(load_settings(config), environ={"GH_TOKEN": "ghp_x"}).forge
    assert isinstance(forge, GitHubForge)
    assert forge._marker_key == MARKER_KEY.encode()
    assert MARKER_KEY not in repr(forge)


def test_app_auth_derives_the_marker_key_from_the_private_key(tmp_path: Path) -> None:
    from tests.github.test_auth import _app_key

    private, _ = _app_key()
    app = {"type": "app", "appId": 1, "installationId": 2, "privateKeyEnv": "APP_KEY"}
    github = {k: v for k, v in GITHUB["github"].items()  # type: ignore[attr-defined]
              if k != "markerKeyEnv"}
    config = _write(tmp_path, {**GITHUB, "github": {**github, "auth": app}})
    git(tmp_path, "init", "-q", "-b", "main")
    first = build_service(load_settings(config), environ={"APP_KEY": private}).forge
    again = build_service(load_settings(config), environ={"APP_KEY": private}).forge
    other = build_service(load_settings(config), environ={"APP_KEY": _app_key()[0]}).forge
    assert isinstance(first, GitHubForge)
    assert isinstance(again, GitHubForge)
    assert isinstance(other, GitHubForge)
    assert len(first._marker_key) == 32
    assert first._marker_key == again._marker_key != other._marker_key
