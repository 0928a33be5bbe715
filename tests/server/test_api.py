"""The REST API against a real PromotionService on a throwaway GitOps repository."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from promoter.errors import ConfigError
from promoter.promotion import PromotionState
from promoter.wiring import build_app
from tests.conftest import isolate_git
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World
from tests.server.support import (
    BOB_TOKEN,
    MIA_TOKEN,
    RITA_TOKEN,
    SAM_TOKEN,
    SECRET,
    TOKENS,
    FakeService,
    bearer,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    # Module scope: building the repository is the slow part; the tests that write (approve)
    # come last in this file and rely on the state the earlier ones left. The autouse
    # isolated_git fixture is function-scoped, so the same isolation is set up here.
    with pytest.MonkeyPatch.context() as env:
        isolate_git(env, tmp_path_factory.mktemp("home"))
        world = World(tmp_path_factory.mktemp("api") / "gitops", ScriptedEvaluator())
        world.promote("dev", 1)
        world.promote("staging", 1)
        result = world.service.propose(environment="prod", model="churn", version=1,
                                       author="mia")
        assert result.pull_request is not None
        outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.WAITING
    return world


@pytest.fixture
def prod_pull(world: World) -> int:
    pull = world.forge.find_open_pull_request(head="environments/prod-next",
                                              base="environments/prod")
    assert pull is not None
    return pull.number


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    app = build_app(world.service, webhook_secret=SECRET, api_tokens=TOKENS,
                    resync_interval_s=None)
    with TestClient(app) as client:
        assert app.state.parts.scheduler.wait_idle(30)
        client.app_state = app.state  # type: ignore[attr-defined]  # for tests to wait on
        yield client


def wait(api: TestClient) -> None:
    assert api.app_state.parts.scheduler.wait_idle(30)  # type: ignore[attr-defined]


def test_environments(api: TestClient, prod_pull: int) -> None:
    body = api.get("/api/v1/environments").json()
    envs = {e["name"]: e for e in body["environments"]}
    assert list(envs) == ["dev", "staging", "prod"]
    assert envs["dev"]["deployed"]["version"] == 1
    assert envs["prod"]["deployed"] is None
    promotion = envs["prod"]["openPromotion"]
    assert promotion["number"] == prod_pull
    # In the order they are decided (as in the PR and `promoter status`), not by name.
    assert [(g["context"], g["state"]) for g in promotion["gates"]] == [
        ("promoter/upstream", "success"), ("promoter/evaluation", "success"),
        ("promoter/approvals", "pending")]


def test_one_environment(api: TestClient) -> None:
    assert api.get("/api/v1/environments/staging").json()["deployed"]["version"] == 1
    missing = api.get("/api/v1/environments/qa")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no environment named 'qa'",
                              "fix": "GET /api/v1/environments lists them"}


def test_promotions_list_and_detail(api: TestClient, prod_pull: int) -> None:
    listed = api.get("/api/v1/promotions").json()["promotions"]
    assert [(p["number"], p["environment"], p["model"], p["version"]) for p in listed] == [
        (prod_pull, "prod", "churn", 1)]
    assert listed[0]["phase"] == "waiting_for_approval"
    detail = api.get(f"/api/v1/promotions/{prod_pull}").json()
    assert detail["phase"] == "waiting_for_approval"
    assert detail["evaluationReport"].startswith("## Evaluation")
    assert [g["context"] for g in detail["gates"]] == [g["context"] for g in
                                                        listed[0]["gates"]] == [
        "promoter/upstream", "promoter/evaluation", "promoter/approvals"]
    assert api.get("/api/v1/promotions/9999").status_code == 404
    assert api.get("/api/v1/promotions/not-a-number").status_code == 422


def test_mutating_endpoints_need_a_known_bearer_token(api: TestClient, prod_pull: int) -> None:
    url = f"/api/v1/promotions/{prod_pull}/approve"
    assert api.post(url).status_code == 401
    unknown = api.post(url, headers=bearer("nope"))
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == "Bearer"
    assert unknown.json()["error"] == "missing or unknown bearer token"
    assert api.post(url, headers={"Authorization": f"Basic {RITA_TOKEN}"}).status_code == 401
    # The hash's hex is not a token either: the file's contents grant nothing.
    digest = TOKENS.entries[0].digest.hex()
    assert api.post(url, headers=bearer(digest)).status_code == 401
    assert api.post(url, headers=bearer(f"sha256:{digest}")).status_code == 401


def test_without_a_tokens_file_approvals_are_off(world: World, prod_pull: int) -> None:
    app = build_app(world.service, webhook_secret=SECRET, api_tokens=None,
                    resync_interval_s=None)
    with TestClient(app) as client:
        response = client.post(f"/api/v1/promotions/{prod_pull}/approve",
                               headers=bearer(RITA_TOKEN))
        assert app.state.parts.scheduler.wait_idle(30)
    assert response.status_code == 403
    assert "PROMOTER_API_TOKENS_FILE" in response.json()["fix"]


def test_a_token_cannot_act_as_another_user(api: TestClient, world: World,
                                           prod_pull: int) -> None:
    url = f"/api/v1/promotions/{prod_pull}/approve"
    refused = api.post(url, json={"user": "sam"}, headers=bearer(RITA_TOKEN))
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "this token belongs to rita; it cannot act as sam",
        "fix": "leave out \"user\" (the review is recorded as rita), or send sam's own token"}
    assert api.post(f"/api/v1/promotions/{prod_pull}/reject", json={"user": "rita"},
                    headers=bearer(SAM_TOKEN)).status_code == 403
    wait(api)
    assert world.forge.list_reviews(prod_pull) == []  # nothing was recorded


def test_refused_approvals_answer_with_the_promoter_error(api: TestClient,
                                                          prod_pull: int) -> None:
    url = f"/api/v1/promotions/{prod_pull}/approve"
    own = api.post(url, headers=bearer(MIA_TOKEN))
    assert own.status_code == 422
    assert own.json() == {
        "error": f"mia proposed a revision of PR #{prod_pull} and cannot approve it",
        "fix": "ask another release manager: rita, sam"}
    stranger = api.post(url, json={"user": "bob"}, headers=bearer(BOB_TOKEN))
    assert stranger.status_code == 422
    assert "policies/prod.yaml" in stranger.json()["fix"]
    rita = bearer(RITA_TOKEN)
    assert api.post("/api/v1/promotions/9999/approve", headers=rita).status_code == 404
    assert api.post(url, json={"user": ""}, headers=rita).status_code == 422
    assert api.post(url, json={"user": "bad user; rm"}, headers=rita).status_code == 422
    assert api.post(url, content=b"{", headers={**rita, "Content-Type": "application/json"}
                    ).status_code == 422


def test_rejection_blocks_then_approval_merges(api: TestClient, world: World,
                                               prod_pull: int) -> None:
    # No body at all: the reviewer is the token's user.
    rejected = api.post(f"/api/v1/promotions/{prod_pull}/reject", headers=bearer(SAM_TOKEN))
    assert rejected.status_code == 200
    assert (rejected.json()["user"], rejected.json()["state"]) == ("sam", "CHANGES_REQUESTED")
    wait(api)
    gates = {g["context"]: g["state"] for g in
             api.get(f"/api/v1/promotions/{prod_pull}").json()["gates"]}
    assert gates["promoter/approvals"] == "failure"

    # A body naming the token's own user is accepted (older clients send one).
    approved = api.post(f"/api/v1/promotions/{prod_pull}/approve", json={"user": "sam"},
                        headers=bearer(SAM_TOKEN))
    assert approved.status_code == 200
    assert approved.json()["user"] == "sam"
    wait(api)  # the approval scheduled a reconcile, which merges
    # Recorded on the forge under the token's user.
    assert [(r.user, str(r.state)) for r in world.forge.list_reviews(prod_pull)] == [
        ("sam", "CHANGES_REQUESTED"), ("sam", "APPROVED")]
    prod = api.get("/api/v1/environments/prod").json()
    assert prod["deployed"]["version"] == 1
    assert prod["openPromotion"] is None


def test_readyz_reports_a_broken_configuration() -> None:
    service = FakeService()
    service.broken_config = ConfigError("promoter.yaml", "the repository has no branch 'main'",
                                        fix="commit the dry source")
    app = build_app(service, webhook_secret=SECRET, resync_interval_s=None)
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/environments").status_code == 200  # fake status works
        assert app.state.parts.scheduler.wait_idle(5)
    assert response.status_code == 503
    assert response.json() == {"status": "unready",
                               "error": "promoter.yaml: the repository has no branch 'main'",
                               "fix": "commit the dry source"}


def test_readyz_on_a_real_repository(api: TestClient) -> None:
    body = api.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["environments"] == ["dev", "staging", "prod"]


def test_openapi_docs(api: TestClient) -> None:
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/webhooks/github", "/api/v1/environments", "/api/v1/promotions/{number}",
            "/api/v1/promotions/{number}/approve", "/healthz", "/readyz",
            "/metrics"} <= set(paths)
    approve = paths["/api/v1/promotions/{number}/approve"]["post"]
    assert approve["requestBody"].get("required", False) is False  # the body is optional
    assert {"401", "403", "404", "422"} <= set(approve["responses"])
    assert "token" in approve["responses"]["403"]["description"]
    assert approve["security"] == [{"HTTPBearer": []}]
