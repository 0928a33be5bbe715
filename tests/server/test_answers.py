"""The API's answers are pydantic models: the JSON they make, and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from promoter.domain.pull_requests import (
    PullRequest,
    PullRequestState,
    Review,
    ReviewState,
    StatusState,
)
from promoter.policy import GateResult
from promoter.promotion.phase import PromotionPhase
from promoter.promotion.results import EnvironmentStatus
from promoter.render.metadata import DeployedModel
from promoter.server.answers import EnvironmentsAnswer, PromotionAnswer, ReviewAnswer
from promoter.wiring import build_app
from tests.server.support import SECRET, FakeService

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32


def deployed(env: str, version: int, promoted_from: str | None) -> DeployedModel:
    return DeployedModel(environment=env, model="churn", version=version, digest=DIGEST,
                         model_uri=f"/models/churn/{version}", promoted_from=promoted_from,
                         manifests_digest=DIGEST)


def statuses() -> list[EnvironmentStatus]:
    pull = PullRequest(number=7, head_branch="environments/staging-next",
                       base_branch="environments/staging", head_sha="c" * 40, title="t",
                       body="b", author="mia", state=PullRequestState.OPEN, labels=(),
                       created_at=AT, updated_at=AT)
    return [
        EnvironmentStatus(environment="dev", branch="environments/dev", head="a" * 40,
                          deployed=deployed("dev", 2, None), open_promotion=None,
                          proposed=None, gates=()),
        EnvironmentStatus(environment="staging", branch="environments/staging", head=None,
                          deployed=None, open_promotion=pull,
                          proposed=deployed("staging", 2, "dev"),
                          gates=(GateResult("promoter/approvals", StatusState.PENDING,
                                            "needs 1 approval"),),
                          phase=PromotionPhase.WAITING_FOR_APPROVAL),
    ]


def test_environments_answer_keeps_the_documents_shape() -> None:
    # The document as the API (and `promoter status --json`) answered before the models
    # existed, key order included, plus `promotionError`, `rollout` and `rolloutError`
    # (added since, last; the rollout only with ?rollouts=true).
    assert list(EnvironmentsAnswer.of(statuses()).as_json()["environments"]) == [
        {"name": "dev", "branch": "environments/dev", "head": "a" * 40,
         "deployed": {"model": "churn", "version": 2, "digest": DIGEST, "promotedFrom": None},
         "openPromotion": None, "promotionError": None, "rollout": None, "rolloutError": None},
        {"name": "staging", "branch": "environments/staging", "head": None, "deployed": None,
         "openPromotion": {
             "number": 7, "head": "c" * 40, "author": "mia", "phase": "waiting_for_approval",
             "model": "churn", "version": 2,
             "gates": [{"context": "promoter/approvals", "state": "pending",
                        "description": "needs 1 approval"}]},
         "promotionError": None, "rollout": None, "rolloutError": None},
    ]
    first = EnvironmentsAnswer.of(statuses()).as_json()["environments"]
    assert isinstance(first, list)
    assert list(first[1]) == ["name", "branch", "head", "deployed", "openPromotion",
                              "promotionError", "rollout", "rolloutError"]


def test_promotion_and_review_answers() -> None:
    [promotion] = PromotionAnswer.all_of(statuses())
    assert list(promotion.as_json()) == ["number", "head", "author", "phase", "model",
                                         "version", "gates", "environment", "branch",
                                         "deployed"]
    assert (promotion.environment, promotion.branch, promotion.deployed) == (
        "staging", "environments/staging", None)
    review = ReviewAnswer.of(7, Review(user="rita", state=ReviewState.APPROVED,
                                       commit_sha="c" * 40, submitted_at=AT))
    assert review.as_json() == {"number": 7, "user": "rita", "state": "APPROVED",
                                "commit": "c" * 40, "submittedAt": "2024-05-01T12:00:00+00:00"}


def _schema(document: dict[str, Any], path: str, method: str = "get",
            status: str = "200") -> dict[str, Any]:
    content = document["paths"][path][method]["responses"][status]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    ref = schema["$ref"].removeprefix("#/components/schemas/")
    resolved: dict[str, Any] = document["components"]["schemas"][ref]
    return resolved


def test_openapi_document_describes_the_answers() -> None:
    app = build_app(FakeService(), webhook_secret=SECRET, resync_interval_s=None)
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
        assert app.state.parts.scheduler.wait_idle(5)
    schemas = document["components"]["schemas"]

    environments = _schema(document, "/api/v1/environments")
    assert environments["properties"]["environments"]["items"] == {
        "$ref": "#/components/schemas/EnvironmentAnswer"}
    environment = schemas["EnvironmentAnswer"]["properties"]
    assert set(environment) == {"name", "branch", "head", "deployed", "openPromotion",
                                "promotionError", "rollout", "rolloutError"}
    assert set(schemas["RolloutAnswer"]["properties"]) == {
        "environment", "commit", "phase", "reason", "observedRevision", "training"}
    assert set(schemas["TrainingAnswer"]["properties"]) == {"phase", "reason"}
    assert set(schemas["OpenPromotionAnswer"]["properties"]) == {
        "number", "head", "author", "phase", "model", "version", "gates"}
    assert schemas["GateAnswer"]["properties"]["state"] == {
        "$ref": "#/components/schemas/StatusState"}
    assert set(schemas["StatusState"]["enum"]) == {"pending", "success", "failure", "error"}

    promotions = _schema(document, "/api/v1/promotions")
    assert promotions["properties"]["promotions"]["items"] == {
        "$ref": "#/components/schemas/PromotionAnswer"}
    assert {"environment", "branch", "deployed", "gates"} <= set(
        schemas["PromotionAnswer"]["properties"])
    detail = _schema(document, "/api/v1/promotions/{number}")
    assert "evaluationReport" in detail["properties"]
    review = _schema(document, "/api/v1/promotions/{number}/approve", method="post")
    assert set(review["properties"]) == {"number", "user", "state", "commit", "submittedAt"}
    assert _schema(document, "/api/v1/environments/{name}") == schemas["EnvironmentAnswer"]
    assert set(_schema(document, "/readyz")["properties"]) == {"status", "drySha",
                                                               "environments"}
    webhook = _schema(document, "/webhooks/github", method="post", status="202")
    assert set(webhook["properties"]) == {"status", "reason", "jobs"}
