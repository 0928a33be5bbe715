"""Hydration of one model version for one environment, shared by `render`, `propose` and
`validate`."""

from __future__ import annotations

from dataclasses import dataclass

from promoter.config.loader import DryConfig
from promoter.config.schema import EnvironmentSpec, ModelSpec, Settings
from promoter.domain.model_versions import ModelVersion
from promoter.errors import ConfigError
from promoter.model_store import ModelStore
from promoter.render import ObjectSchemas, RenderedManifests, render_environment

PROBE_DIGEST = "sha256:" + "0" * 64
"""The digest of a probe version: well-formed, and obviously no SavedModel's."""


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


def object_schemas(dry: DryConfig, settings: Settings) -> ObjectSchemas:
    """What `dry`'s rendered objects are validated against: `render.kubernetesVersion` from
    the same promoter.yaml as the models' settings (`dry`'s own when it has one), and the CRD
    files read with `dry`. ConfigError for a Kubernetes version without schemas."""
    render = dry.model_settings(settings).render
    return ObjectSchemas.of(render.kubernetes_version, dry.crds)


def hydrate(dry: DryConfig, settings: Settings, store: ModelStore, *, environment: str,
            model: str, version: int, config_file: str) -> Hydrated:
    """Render `model` `version` for `environment`, entirely in memory, and validate every
    rendered object (schemas and promotion's rules).

    The model's settings come from `dry`'s own promoter.yaml when it has one, else from
    `settings` (the running configuration).

    Raises ConfigError, ModelStoreError or RenderError (InvalidManifestError for an object
    the API server would refuse) before anything is written anywhere.
    """
    env = dry.environment(environment)
    spec = model_spec(dry.model_settings(settings), model, config_file=config_file)
    candidate = store.get(model, version)
    return hydrate_version(dry, settings, environment=env, model=spec, version=candidate)


def hydrate_version(dry: DryConfig, settings: Settings, *, environment: EnvironmentSpec,
                    model: ModelSpec, version: ModelVersion) -> Hydrated:
    """Render and validate a given `version`, which need not come from the store (`promoter
    validate` renders a probe version, see `probe_version`)."""
    manifests = render_environment(dry.templates, environment=environment, model=model,
                                   version=version, schemas=object_schemas(dry, settings))
    return Hydrated(environment=environment, model=model, version=version, manifests=manifests)


def probe_version(model: str, version: int) -> ModelVersion:
    """A version of `model` to render when none is asked for (`promoter validate`), with
    `PROBE_DIGEST` instead of the SavedModel's digest.

    Whether the objects are valid does not depend on the digest's value (it only fills
    annotations), and digesting a multi-gigabyte SavedModel, or failing on an upload still in
    progress, has no place in checking templates.
    """
    return ModelVersion(name=model, version=version, digest=PROBE_DIGEST, uri="(probe)")
