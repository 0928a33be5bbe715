"""Everything the server is run on implements the whole `PromotionPort`: the service, the
tests' fake, and the stand-ins of the scale and webhook benchmarks.

mypy checks only the package, and a fake missing a method fails only where a test happens to
call it (the fake and the scale benchmark's pipeline lacked `history` and `dora`), so the
port's methods and their parameters are compared here.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from promoter.errors import BadInputError
from promoter.promotion.service import PromotionService
from promoter.server.ports import PromotionPort
from tests.conftest import REPO_ROOT
from tests.server.support import FakeService


def _benchmark(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}",
                                                  REPO_ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _port_methods() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(PromotionPort).items()
            if inspect.isfunction(member) and not name.startswith("_")}


def _shape(signature: inspect.Signature) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in signature.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("implementation", [
    pytest.param(lambda: PromotionService, id="PromotionService"),
    pytest.param(lambda: FakeService, id="tests FakeService"),
    pytest.param(lambda: _benchmark("scale").Pipeline, id="benchmarks/scale.py Pipeline"),
    pytest.param(lambda: _benchmark("webhooks").CountingService,
                 id="benchmarks/webhooks.py CountingService"),
])
def test_it_has_every_method_of_the_port_with_the_same_parameters(
        implementation: Any) -> None:
    cls = implementation()
    methods = _port_methods()
    assert {"history", "dora", "reconcile_pull", "approve"} <= set(methods)
    for name, signature in methods.items():
        assert hasattr(cls, name), f"{cls.__name__} lacks {name}"
        own = inspect.signature(getattr(cls, name))
        shared = [p for p in _shape(own) if p[0] in signature.parameters]
        assert shared == _shape(signature), name
        # Anything more (the service's `status(health=...)`) must be optional.
        assert all(p.default is not inspect.Parameter.empty for p in own.parameters.values()
                   if p.name != "self" and p.name not in signature.parameters), name


def test_the_fake_answers_history_and_dora_over_the_api(
        client: TestClient, fake_service: FakeService) -> None:
    history = client.get("/api/v1/history")
    assert history.status_code == 200, history.text
    assert [e["environment"] for e in history.json()["environments"]] == \
        ["dev", "staging", "prod"]
    assert all(e["deployments"] == [] for e in history.json()["environments"])
    dora = client.get("/api/v1/dora", params={"window": "7d", "environment": "prod"})
    assert dora.status_code == 200, dora.text
    assert fake_service.calls_of("dora") == [(timedelta(days=7), None, "prod")]
    unknown = client.get("/api/v1/history", params={"environment": "qa"})
    assert unknown.status_code == 400
    assert "dev, staging, prod" in unknown.json()["fix"]
    with pytest.raises(BadInputError):
        fake_service.dora(window=timedelta(days=1), environment="qa")
