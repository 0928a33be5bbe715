"""Fixtures for the cluster reader: a fake API server, the real client on it, environments.

- `api` -> FakeKubernetesApi on loopback, validating every object it serves against its CRD.
- `reader` -> KubernetesClusterReader (the real `kubernetes` client) talking to `api`.
- `flux_env` / `argo_env` -> EnvironmentSpec `dev` delivered by Flux / Argo CD.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.config import EnvironmentSpec
from promoter.schemas import validate_crd_object
from tests.cluster.fake_api import FakeKubernetesApi


def environment(tool: str, **delivery: object) -> EnvironmentSpec:
    return EnvironmentSpec.model_validate({
        "name": "dev", "branch": "environments/dev", "namespace": "ml-dev", "policy": "dev",
        "evaluation": {"holdout": "data/{model}-holdout-dev.csv"},
        "delivery": {"tool": tool, **delivery},
    })


@pytest.fixture
def api() -> Iterator[FakeKubernetesApi]:
    with FakeKubernetesApi(validator=validate_crd_object) as server:
        yield server


@pytest.fixture
def reader(api: FakeKubernetesApi) -> Iterator[KubernetesClusterReader]:
    with KubernetesClusterReader.for_host(api.url, request_timeout_s=5) as client:
        yield client


@pytest.fixture
def flux_env() -> EnvironmentSpec:
    return environment("flux")


@pytest.fixture
def argo_env() -> EnvironmentSpec:
    return environment("argo")
