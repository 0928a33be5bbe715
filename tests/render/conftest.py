"""Fixtures for the renderer's tests: the repository's real dry source and a fixed version.

- `dry_source` (session) -> (Settings, DryConfig) loaded from the repository's own
  promoter.yaml, environments/, policies/ and manifests/, exactly as `promoter render` does.
- `churn` -> the ModelSpec of model `churn` from promoter.yaml.
- `version` -> a fixed ModelVersion: churn v3, digest "sha256:" + "ab" * 32.
- `render(env, templates=None)` -> RenderedManifests for one environment of the real dry
  source, optionally with other templates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from promoter.config import (
    DirectorySource,
    DryConfig,
    ModelSpec,
    Settings,
    load_dry_config,
    load_settings,
)
from promoter.domain.model_versions import ModelVersion
from promoter.render import RenderedManifests, render_environment
from tests.conftest import REPO_ROOT

DIGEST = "sha256:" + "ab" * 32
ENVIRONMENTS = ("dev", "staging", "prod")

Render = Callable[..., RenderedManifests]


@pytest.fixture(scope="session")
def dry_source() -> tuple[Settings, DryConfig]:
    loaded = load_settings(REPO_ROOT / "promoter.yaml")
    return loaded.settings, load_dry_config(DirectorySource(REPO_ROOT), loaded.settings)


@pytest.fixture
def churn(dry_source: tuple[Settings, DryConfig]) -> ModelSpec:
    spec = dry_source[0].model("churn")
    assert spec is not None, "the repository's promoter.yaml must name model churn"
    return spec


@pytest.fixture
def version() -> ModelVersion:
    return ModelVersion(name="churn", version=3, digest=DIGEST, uri="/models/churn/3")


@pytest.fixture
def render(dry_source: tuple[Settings, DryConfig], churn: ModelSpec,
           version: ModelVersion) -> Render:
    def _render(env: str, templates: Mapping[str, str] | None = None) -> RenderedManifests:
        dry = dry_source[1]
        return render_environment(dry.templates if templates is None else templates,
                                  environment=dry.environment(env), model=churn,
                                  version=version)
    return _render
