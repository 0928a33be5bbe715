from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

with warnings.catch_warnings():
    # Starlette 1.x asks for the `httpx2` fork at import time; httpx (pinned by pyproject's
    # test extra) still works. Only this one warning, only for this import.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

from promoter.wiring import build_app
from tests.server.support import SECRET, TOKENS, FakeService


@pytest.fixture
def fake_service() -> FakeService:
    return FakeService()


@pytest.fixture
def app(fake_service: FakeService) -> FastAPI:
    return build_app(fake_service, webhook_secret=SECRET, api_tokens=TOKENS,
                     repository="Codertocat/Hello-World", resync_interval_s=None)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        assert app.state.parts.scheduler.wait_idle(5)  # the startup resync
        yield client
