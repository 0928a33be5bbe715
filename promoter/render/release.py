"""What the rendered objects of one release must agree with, and the names promotion relies on.

`Release` is the model version, digest, environment and namespace the invariants
(`invariants`, `object_rules`, `workload_rules`) check every rendered object against; the
constants are the annotations, label, flag and container name those checks require. They are
apart from the rules so that every rule module can use them without importing another.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_VERSION_ANNOTATION = "promoter.dev/model-version"
"""Annotation on pod templates and training jobs: the model version (as a string) they run."""
MODEL_DIGEST_ANNOTATION = "promoter.dev/model-digest"
"""Annotation on pod templates and training jobs: the `sha256:` digest of the SavedModel."""
VERSION_LABEL = "app.kubernetes.io/version"
MODEL_CONFIG_FLAG = "--model_config_file"
TENSORFLOW_CONTAINER = "tensorflow"
FETCH_CONTAINER = "fetch-model"
"""The serving pod's init container that copies the pinned version and verifies its digest."""
FETCH_COMMAND = "promoter-fetch-model"
"""Its command (promoter/model_store/fetch.py), in the image `serving.fetchImage` names."""


@dataclass(frozen=True, slots=True)
class Release:
    """What every rendered object must agree with: one model version in one environment."""

    environment: str
    """Environment name, used in fixes (`environments/<env>.yaml`)."""
    namespace: str
    model: str
    version: int
    digest: str
    model_config: str
    """The ModelServerConfig text the serving ConfigMap must hold."""
    fetch_image: str
    """`serving.fetchImage`: the image the `fetch-model` init container must run."""
    model_base_path: str
    """`serving.modelBasePath`: where `fetch-model` copies the version from."""
    served_base_path: str
    """`serving.servedBasePath`: the verified copy, TF Serving's base path in the config."""
