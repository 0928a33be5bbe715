"""Sessions kept in the state directory (`SqliteSessionStore`): a login outlives a restart and
is known to every worker process; a logout ends it in all of them; a changed, made-up or
expired cookie is refused. "Another process" is a second app with its own store over the
same file, as a second `promoter serve` worker or the next one after a restart builds it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from promoter.config.loader import load_settings
from promoter.dashboard.session_db import SqliteSessionStore
from promoter.dashboard.sessions import SESSION_COOKIE
from promoter.domain.pull_requests import ReviewState
from promoter.wiring import ServeOptions, build_app, build_server
from tests.dashboard.conftest import TestClient, csrf_of, log_in, waiting_world
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World
from tests.server.support import RITA_TOKEN, SECRET, TOKENS


def process(world: World, sessions: SqliteSessionStore) -> TestClient:
    """One `promoter serve` process over `world`, its sessions in `sessions`' file."""
    app = build_app(world.service, webhook_secret=SECRET, api_tokens=TOKENS,
                    resync_interval_s=None, dashboard=world.service, sessions=sessions)
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def logged_in_as(client: TestClient, cookie: str, number: int) -> str | None:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
    html = client.get(f"/promotions/{number}").text
    return "rita" if "You review as <strong>rita</strong>" in html else None


def test_a_login_outlives_a_restart_and_works_in_another_worker(tmp_path: Path) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    path = tmp_path / "state" / "dashboard-sessions.sqlite"
    with process(world, SqliteSessionStore(path)) as first:
        log_in(first, RITA_TOKEN)
        cookie = first.cookies.get(SESSION_COOKIE)
    assert cookie
    assert cookie not in path.read_bytes().decode(errors="replace")  # only its digest is kept
    with process(world, SqliteSessionStore(path)) as restarted:  # a fresh process
        assert logged_in_as(restarted, cookie, number) == "rita"
        # The review form of the new process works with the session the old one started.
        csrf = csrf_of(restarted.get(f"/promotions/{number}").text)
        response = restarted.post(f"/promotions/{number}/approve", data={"csrf": csrf})
        assert response.status_code == 303, response.text
    assert [(r.user, r.state) for r in world.forge.list_reviews(number)] == [
        ("rita", ReviewState.APPROVED)]


def test_a_logout_in_one_worker_ends_the_session_in_all(tmp_path: Path) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    path = tmp_path / "dashboard-sessions.sqlite"
    with process(world, SqliteSessionStore(path)) as one, \
            process(world, SqliteSessionStore(path)) as two:
        log_in(one, RITA_TOKEN)
        cookie = one.cookies.get(SESSION_COOKIE)
        assert cookie
        assert logged_in_as(two, cookie, number) == "rita"
        csrf = csrf_of(two.get("/").text, "/logout")
        two.post("/logout", data={"csrf": csrf})
        # The cookie, kept by a thief, is no good in either process now.
        assert logged_in_as(one, cookie, number) is None
        assert logged_in_as(two, cookie, number) is None
        one.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
        response = one.post(f"/promotions/{number}/approve", data={"csrf": csrf})
        assert response.status_code == 401
    assert world.forge.list_reviews(number) == []


@pytest.mark.parametrize("change", [
    lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # one character changed
    lambda c: c + "x",
    lambda c: c[:20],
    lambda c: "made-up",
])
def test_a_changed_or_made_up_cookie_is_refused(tmp_path: Path, change: object) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    with process(world, SqliteSessionStore(tmp_path / "s.sqlite")) as client:
        log_in(client, RITA_TOKEN)
        cookie = client.cookies.get(SESSION_COOKIE)
        assert cookie
        assert logged_in_as(client, cookie, number) == "rita"
        assert logged_in_as(client, change(cookie), number) is None  # type: ignore[operator]


def test_a_session_expires_in_every_process(tmp_path: Path) -> None:
    now = [1_000_000.0]
    path = tmp_path / "s.sqlite"
    store = SqliteSessionStore(path, ttl_s=60, clock=lambda: now[0])
    session = store.start("rita")
    other = SqliteSessionStore(path, ttl_s=60, clock=lambda: now[0])
    assert other.get(session.id) == session
    now[0] += 61
    assert other.get(session.id) is None
    assert store.get(session.id) is None


def test_the_oldest_sessions_go_beyond_the_limit(tmp_path: Path) -> None:
    now = [0.0]
    store = SqliteSessionStore(tmp_path / "s.sqlite", max_sessions=2, clock=lambda: now[0])
    sessions = []
    for _ in range(3):
        now[0] += 1
        sessions.append(store.start("rita"))
    assert store.get(sessions[0].id) is None
    assert [store.get(s.id) for s in sessions[1:]] == sessions[1:]


def test_serve_keeps_sessions_in_the_state_directory(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        server = build_server(load_settings(world.root / "promoter.yaml"), ServeOptions(),
                              environ={"PROMOTER_WEBHOOK_SECRET": "s3cret-value"})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    sessions = server.app.state.dashboard.sessions
    assert isinstance(sessions, SqliteSessionStore)
    assert sessions.path.resolve() == (
        world.root / ".git" / "promoter" / "dashboard-sessions.sqlite").resolve()
