"""A real promotion service over a real git repository and local forge, served with the
dashboard by the app `promoter serve` builds (`build_app`), for the page and attack tests."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # As in tests/server/conftest.py: Starlette asks for the `httpx2` fork; httpx still works.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

from promoter.wiring import build_app
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World
from tests.server.support import SECRET, TOKENS


@dataclass
class Served:
    world: World
    client: TestClient
    number: int
    """The open promotion of churn v1 to prod, proposed by mia, waiting for an approval."""


def serve(world: World, **options: object) -> TestClient:
    app = build_app(world.service, webhook_secret=SECRET, api_tokens=TOKENS,
                    resync_interval_s=None, dashboard=world.service, **options)  # type: ignore[arg-type]
    # https: the cookies are Secure, and the client sends them back over https only.
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def waiting_world(root: Path) -> tuple[World, int]:
    world = World(root, ScriptedEvaluator())
    world.promote("dev", 1)
    world.promote("staging", 1)
    proposal = world.service.propose(environment="prod", model="churn", version=1,
                                     author="mia")
    assert proposal.pull_request is not None
    world.service.reconcile_pull(proposal.pull_request.number)
    return world, proposal.pull_request.number


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    world, number = waiting_world(tmp_path / "gitops")
    with serve(world) as client:
        assert client.app.state.parts.scheduler.wait_idle(30)  # type: ignore[attr-defined]
        yield Served(world, client, number)


def csrf_of(html: str, action: str | None = None) -> str:
    """The CSRF token in the form posting to `action` (default: the page's last form, the
    page's own after the header's logout form)."""
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>\s*'
                       r'<input type="hidden" name="csrf" value="([^"]*)"', html)
    assert forms, "no form with a CSRF field in the page"
    if action is None:
        return str(forms[-1][1])
    return next(token for target, token in forms if target == action)


def log_in(client: TestClient, token: str, *, next_path: str = "/") -> None:
    page = client.get("/login")
    response = client.post("/login", data={"token": token,
                                           "csrf": csrf_of(page.text, "/login"),
                                           "next": next_path})
    assert response.status_code == 303, response.text
