"""`promoter serve` runs a discovery pass before every resync, and a failing pass does not
stop the reconcile of the promotions already open."""

from __future__ import annotations

import logging
import warnings

import pytest

with warnings.catch_warnings():
    # As in conftest: Starlette asks for the `httpx2` fork at import time; httpx still works.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

from promoter.errors import ConfigError
from promoter.server.jobs import ReconcileJobs
from promoter.server.metrics import ServerMetrics
from promoter.wiring import build_app
from tests.server.support import SECRET, FakeService


def test_discovery_runs_before_the_reconcile() -> None:
    service = FakeService()

    def discover() -> None:
        service.calls.append(("discover", None))

    ReconcileJobs(service, ServerMetrics(), discover=discover).resync().run()
    assert [name for name, _ in service.calls] == ["discover", "reconcile"]


def test_a_failing_discovery_is_logged_and_the_reconcile_still_runs(
        caplog: pytest.LogCaptureFixture) -> None:
    service = FakeService()

    def discover() -> None:
        raise ConfigError("promoter.yaml", "broken", field="models")

    with caplog.at_level(logging.ERROR, logger="promoter.server.jobs"):
        ReconcileJobs(service, ServerMetrics(), discover=discover).resync().run()
    assert service.calls_of("reconcile") == [None]
    assert "discovery failed: promoter.yaml: models: broken" in caplog.text


def test_the_app_discovers_at_its_startup_resync() -> None:
    service = FakeService()
    passes: list[str] = []
    app = build_app(service, webhook_secret=SECRET, resync_interval_s=None,
                    discover=lambda: passes.append("pass"))
    with TestClient(app):
        assert app.state.parts.scheduler.wait_idle(5)
    assert passes == ["pass"]
    assert service.calls_of("reconcile") == [None]
