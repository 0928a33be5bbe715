"""Hydration of one model version for one environment, shared by `render` and `propose`."""

from __future__ import annotations

from dataclasses import dataclass

from promoter.config.loader import DryConfig
from promoter.config.schema import EnvironmentSpec, ModelSpec, Settings
from promoter.domain.model_versions import ModelVersion
from promoter.errors import ConfigError
from promoter.model_store import ModelStore
from promoter.render import RenderedManifests, render_environment


@dataclass(frozen=True, slots=True)
class Hydrated:
    environment: EnvironmentSpec
    model: ModelSpec
    version: ModelVersion
    manifests: RenderedManifests


def model_spec(settings: Settings, name: str, *, config_file: str) -> ModelSpec:
    """The model's settings from promoter.yaml; ConfigError listing known models if absent."""
    spec = settings.model(name)
    if spec is None:
        known = ", ".join(m.name for m in settings.models)
        raise ConfigError(config_file, f"no model named {name!r}", field="models",
                          fix=f"use one of: {known}, or add it to promoter.yaml")
    return spec


def hydrate(dry: DryConfig, settings: Settings, store: ModelStore, *, environment: str,
            model: str, version: int, config_file: str) -> Hydrated:
    """Render `model` `version` for `environment`, entirely in memory.

    The model's settings come from `dry`'s own promoter.yaml when it has one, else from
    `settings` (the running configuration).

    Raises ConfigError, ModelStoreError or RenderError before anything is written anywhere.
    """
    env = dry.environment(environment)
    spec = model_spec(dry.model_settings(settings), model, config_file=config_file)
    candidate = store.get(model, version)
    manifests = render_environment(dry.templates, environment=env, model=spec,
                                   version=candidate)
    return Hydrated(environment=env, model=spec, version=candidate, manifests=manifests)
