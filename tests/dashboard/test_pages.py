"""The pages over a real service, and the ways around their login and forms that must fail."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from promoter.domain.pull_requests import PullRequestState, ReviewState
from promoter.wiring import build_app
from tests.dashboard.conftest import Served, TestClient, csrf_of, log_in, serve, waiting_world
from tests.server.support import BOB_TOKEN, MIA_TOKEN, RITA_TOKEN, SAM_TOKEN, SECRET, TOKENS


def _cookie_header(response, name: str) -> str:  # type: ignore[no-untyped-def]
    found = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    assert found, f"no {name} cookie set"
    return found[0]


def test_pipelines_page_shows_every_environment_with_what_it_runs(served: Served) -> None:
    page = served.client.get("/")
    assert page.status_code == 200
    html = page.text
    for env in ("dev", "staging", "prod"):
        assert f'data-environment="{env}"' in html
    assert "churn v1" in html
    assert f'href="/promotions/{served.number}"' in html
    assert "waiting for approval" in html  # the phase derive_phase gives, as the API says
    api = served.client.get("/api/v1/promotions").json()["promotions"]
    assert [p["phase"] for p in api] == ["waiting_for_approval"]
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_promotion_page_shows_gates_digests_and_asks_to_log_in(served: Served) -> None:
    html = served.client.get(f"/promotions/{served.number}").text
    deployed = served.world.metadata("environments/staging")["promoter"]["digest"]
    assert deployed in html  # the candidate's full digest
    assert "0 of 1 approvals" in html
    assert f"/login?next=/promotions/{served.number}" in html
    assert 'action="/promotions/' not in html  # no review form without a session
    assert served.client.get("/promotions/999").status_code == 404


def test_login_sets_a_session_cookie_that_scripts_and_other_sites_cannot_use(
        served: Served) -> None:
    client = served.client
    page = client.get("/login")
    login_cookie = _cookie_header(page, "promoter_login_csrf")
    response = client.post("/login", data={"token": RITA_TOKEN, "csrf": csrf_of(page.text),
                                           "next": "/"})
    assert response.status_code == 303
    for header in (login_cookie, _cookie_header(response, "promoter_session")):
        flags = {part.strip().lower() for part in header.split(";")}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags, header
    assert RITA_TOKEN not in response.headers.get("set-cookie", "")
    assert "Signed in as <strong>rita</strong>" in client.get("/").text


def test_login_without_the_forms_csrf_token_is_refused(served: Served) -> None:
    client = served.client
    client.get("/login")  # sets the cookie; the forged form below does not echo it
    for data in ({"token": RITA_TOKEN}, {"token": RITA_TOKEN, "csrf": "forged"}):
        response = client.post("/login", data=data)
        assert response.status_code == 403
        assert "promoter_session" not in response.headers.get("set-cookie", "")


def test_login_with_an_unknown_token_is_refused(served: Served) -> None:
    page = served.client.get("/login")
    response = served.client.post("/login", data={"token": "not-a-token" * 4,
                                                  "csrf": csrf_of(page.text)})
    assert response.status_code == 401
    assert "promoter_session" not in response.headers.get("set-cookie", "")


def test_login_never_redirects_to_another_site(served: Served) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                   "/\t/evil.example", "/\n/evil.example"):
        page = served.client.get("/login")
        response = served.client.post("/login", data={
            "token": SAM_TOKEN, "csrf": csrf_of(page.text, "/login"), "next": target})
        assert response.headers["location"] == "/", target


def test_approval_through_the_page_merges_the_promotion(served: Served) -> None:
    client, forge = served.client, served.world.forge
    log_in(client, RITA_TOKEN)
    page = client.get(f"/promotions/{served.number}")
    assert 'action="/promotions/' in page.text
    response = client.post(f"/promotions/{served.number}/approve",
                           data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303
    [review] = forge.list_reviews(served.number)
    assert (review.user, review.state) == ("rita", ReviewState.APPROVED)
    assert client.app.state.parts.scheduler.wait_idle(30)  # type: ignore[attr-defined]
    assert forge.get_pull_request(served.number).state is PullRequestState.MERGED
    assert "merged" in client.get(f"/promotions/{served.number}").text


def test_a_review_without_or_with_a_forged_csrf_token_records_nothing(served: Served) -> None:
    client = served.client
    log_in(client, RITA_TOKEN)
    other = serve(served.world)  # another session's token is no good here either
    log_in(other, SAM_TOKEN)
    sams_token = csrf_of(other.get(f"/promotions/{served.number}").text)
    for data in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": sams_token}):
        response = client.post(f"/promotions/{served.number}/approve", data=data)
        assert response.status_code == 403, data
        assert "CSRF token" in response.text
    assert served.world.forge.list_reviews(served.number) == []


def test_a_review_needs_a_live_session(served: Served) -> None:
    client = served.client
    log_in(client, RITA_TOKEN)
    csrf = csrf_of(client.get(f"/promotions/{served.number}").text)
    client.post("/logout", data={"csrf": csrf})
    client.cookies.clear()
    client.cookies.set("promoter_session", "made-up-session-id", domain="testserver.local")
    response = client.post(f"/promotions/{served.number}/approve", data={"csrf": csrf})
    assert response.status_code == 401
    assert served.world.forge.list_reviews(served.number) == []


def test_logging_out_ends_the_session_on_the_server(served: Served) -> None:
    client = served.client
    log_in(client, RITA_TOKEN)
    session = client.cookies.get("promoter_session")
    csrf = csrf_of(client.get("/").text, "/logout")
    client.post("/logout", data={"csrf": csrf})
    client.cookies.set("promoter_session", session, domain="testserver.local")  # kept by a thief
    response = client.post(f"/promotions/{served.number}/approve", data={"csrf": csrf})
    assert response.status_code == 401


def test_the_authors_token_cannot_approve_through_the_page(served: Served) -> None:
    client = served.client
    log_in(client, MIA_TOKEN)  # mia proposed the promotion
    csrf = csrf_of(client.get(f"/promotions/{served.number}").text)
    response = client.post(f"/promotions/{served.number}/approve", data={"csrf": csrf})
    assert response.status_code == 422
    assert "mia proposed a revision" in response.text
    log_in(client, BOB_TOKEN)  # no approver of prod's policy
    csrf = csrf_of(client.get(f"/promotions/{served.number}").text)
    response = client.post(f"/promotions/{served.number}/approve", data={"csrf": csrf})
    assert response.status_code == 422
    assert "bob may not approve" in response.text
    assert served.world.forge.list_reviews(served.number) == []


def test_request_changes_through_the_page_blocks_nothing_but_is_recorded(
        served: Served) -> None:
    client = served.client
    log_in(client, SAM_TOKEN)
    csrf = csrf_of(client.get(f"/promotions/{served.number}").text)
    assert client.post(f"/promotions/{served.number}/reject",
                       data={"csrf": csrf}).status_code == 303
    [review] = served.world.forge.list_reviews(served.number)
    assert (review.user, review.state) == ("sam", ReviewState.CHANGES_REQUESTED)


def test_reads_need_a_login_where_the_config_says_so(tmp_path: Path) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    with serve(world, require_auth_for_reads=True) as client:
        for path in ("/", f"/promotions/{number}", "/events"):
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == f"/login?next={path}"
        assert client.get("/api/v1/environments").status_code == 401
        assert client.get("/api/v1/history").status_code == 401
        assert client.get("/api/v1/environments",
                          headers={"Authorization": f"Bearer {BOB_TOKEN}"}).status_code == 200
        log_in(client, BOB_TOKEN)
        assert client.get("/").status_code == 200


def test_on_github_the_page_links_to_the_pull_request_and_has_no_review_form(
        tmp_path: Path) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    with serve(world, pull_url=lambda n: f"https://github.com/acme/models/pull/{n}") as client:
        log_in(client, RITA_TOKEN)
        html = client.get(f"/promotions/{number}").text
    assert f'href="https://github.com/acme/models/pull/{number}"' in html
    assert 'action="/promotions/' not in html


class ForgeLinkedService:
    """The real service, its PRs carrying `web_url` as GitHubForge gives them (on a GitHub
    Enterprise Server: tests/github/test_auth.py checks the adapter's side)."""

    def __init__(self, service: Any, web_url: str) -> None:
        self._service, self._web_url = service, web_url

    def promotion(self, number: int) -> Any:
        record = self._service.promotion(number)
        return replace(record, pull=replace(record.pull, web_url=self._web_url))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


@pytest.mark.parametrize("web_url", ["https://ghe.example.com/acme/gitops/pull/{n}",
                                     "http://git.internal:8080/acme/gitops/pull/{n}"])
def test_a_pull_request_links_to_the_forge_s_own_page(tmp_path: Path, web_url: str) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    url = web_url.format(n=number)
    service = ForgeLinkedService(world.service, url)
    app = build_app(service, webhook_secret=SECRET, api_tokens=TOKENS, resync_interval_s=None,
                    dashboard=service)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        log_in(client, RITA_TOKEN)
        html = client.get(f"/promotions/{number}").text
    assert f'href="{url}"' in html
    assert "github.com" not in html
    assert 'action="/promotions/' not in html  # reviewed there, not here


def test_a_forge_link_that_is_not_a_web_page_is_not_linked(tmp_path: Path) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    service = ForgeLinkedService(world.service, "javascript:alert(document.cookie)")
    app = build_app(service, webhook_secret=SECRET, api_tokens=TOKENS, resync_interval_s=None,
                    dashboard=service)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        html = client.get(f"/promotions/{number}").text
    assert "javascript:" not in html


def test_without_a_tokens_file_nobody_logs_in(tmp_path: Path) -> None:
    world, _ = waiting_world(tmp_path / "gitops")
    app = build_app(world.service, webhook_secret=SECRET, resync_interval_s=None,
                    dashboard=world.service)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/login")
        assert page.status_code == 403
        assert "Logging in is off" in page.text
        response = client.post("/login", data={
            "token": RITA_TOKEN, "csrf": client.cookies.get("promoter_login_csrf")})
        assert response.status_code == 403
        assert "promoter_session" not in response.headers.get("set-cookie", "")
