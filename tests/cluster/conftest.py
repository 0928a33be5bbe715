"""Fixtures for the cluster reader: environments (`api` and `reader`, the fake API server and
the real client on it, are tests/fixtures/kubernetes.py's).

- `flux_env` / `argo_env` -> EnvironmentSpec `dev` delivered by Flux / Argo CD.
"""

from __future__ import annotations

import pytest

from promoter.config import EnvironmentSpec


def environment(tool: str, **delivery: object) -> EnvironmentSpec:
    return EnvironmentSpec.model_validate({
        "name": "dev", "branch": "environments/dev", "namespace": "ml-dev", "policy": "dev",
        "evaluation": {"holdout": "data/{model}-holdout-dev.csv"},
        "delivery": {"tool": tool, **delivery},
    })


@pytest.fixture
def flux_env() -> EnvironmentSpec:
    return environment("flux")


@pytest.fixture
def argo_env() -> EnvironmentSpec:
    return environment("argo")
