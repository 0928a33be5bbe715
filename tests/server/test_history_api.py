"""GET /api/v1/history and /api/v1/dora over the scripted week (tests/promotion/history_week):
the same values as the service's, camelCase, described in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from promoter.errors import GitError
from promoter.promotion.dora import DoraFigures
from promoter.server.metrics import ServerMetrics
from promoter.wiring import build_app
from tests.promotion.history_week import H, Week, played_week
from tests.server.support import SECRET, TOKENS


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Week:
    return played_week(tmp_path_factory)


@pytest.fixture
def api(week: Week) -> Iterator[TestClient]:
    app = build_app(week.service, webhook_secret=SECRET, api_tokens=TOKENS,
                    resync_interval_s=None)
    with TestClient(app) as client:
        assert app.state.parts.scheduler.wait_idle(30)
        yield client


def test_history(api: TestClient, week: Week) -> None:
    body = api.get("/api/v1/history").json()
    assert [e["environment"] for e in body["environments"]] == ["dev", "staging", "prod"]
    dev = body["environments"][0]
    assert dev["truncated"] is False
    assert [(d["kind"], d["version"]) for d in dev["deployments"]] == [
        ("promotion", 3), ("rollback", 1), ("promotion", 2), ("promotion", 1)]
    v2 = dev["deployments"][2]
    assert v2["rolledBackBy"] == dev["deployments"][1]["mergeSha"]
    assert v2["failedAt"] is not None
    assert v2["healthyAt"] is None
    prod = body["environments"][2]["deployments"][0]
    assert prod["approvers"] == ["rita"]
    assert prod["reviews"][0]["onMergedHead"] is True
    assert (prod["proposalToMergeSeconds"], prod["mergeToHealthySeconds"]) == (1200, 600)
    [service_prod] = week.service.history(environment="prod")
    assert prod["mergeSha"] == service_prod.deployments[0].merge_sha
    one = api.get("/api/v1/history", params={"environment": "dev", "limit": 1}).json()
    assert [len(e["deployments"]) for e in one["environments"]] == [1]
    assert one["environments"][0]["truncated"] is True


def test_dora(api: TestClient, week: Week) -> None:
    body = api.get("/api/v1/dora", params={"window": "1d"}).json()
    assert body["window"] == "1d"
    figures = {f["environment"]: f for f in body["figures"]}
    expected = week.service.dora(window=timedelta(days=1))
    for f in expected:
        answer = figures[f.environment]
        assert (answer["deployments"], answer["changeFailureRate"],
                answer["timeToRestoreSeconds"], answer["leadTimeSeconds"]) == (
            f.deployments, f.change_failure_rate, f.time_to_restore_seconds,
            f.lead_time_seconds)
    assert figures["dev"]["changeFailureRate"] == pytest.approx(1 / 3)
    assert figures["prod"]["timeToRestoreSeconds"] is None


@pytest.mark.parametrize(("path", "params", "needle"), [
    ("/api/v1/dora", {"window": "30 days"}, "--window"),
    ("/api/v1/dora", {"environment": "qa"}, "use one of: dev, staging, prod"),
    ("/api/v1/history", {"environment": "qa"}, "use one of: dev, staging, prod"),
])
def test_bad_queries_are_400_with_the_fix(api: TestClient, path: str,
                                          params: dict[str, str], needle: str) -> None:
    response = api.get(path, params=params)
    assert response.status_code == 400
    assert needle in response.json()["fix"]


def test_limit_is_bounded(api: TestClient) -> None:
    assert api.get("/api/v1/history", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/history", params={"limit": 100_000}).status_code == 422


def test_openapi_describes_history_and_dora(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    assert "/api/v1/history" in document["paths"]
    assert "/api/v1/dora" in document["paths"]
    schemas = document["components"]["schemas"]
    assert "changeFailureRate" in schemas["DoraFiguresAnswer"]["properties"]
    assert "approvers" in schemas["DeploymentAnswer"]["properties"]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("promoter_dora")}


def test_dora_gauges_on_metrics(week: Week) -> None:
    calls = []

    def figures() -> list[DoraFigures]:
        calls.append(1)
        return week.service.dora(window=timedelta(days=1), end=week.t0 + 5 * H)

    metrics = ServerMetrics()
    metrics.watch_dora(figures, window="30d")
    app = build_app(week.service, webhook_secret=SECRET, resync_interval_s=None, metrics=metrics)
    assert calls == []  # registering computes nothing: no history walk at start-up
    with TestClient(app) as client:
        samples = _samples(client.get("/metrics").text)
        client.get("/metrics")
    assert len(calls) == 1  # the second scrape within the TTL reuses the figures

    def labels(env: str) -> tuple[tuple[str, str], ...]:
        return (("environment", env), ("model", "churn"), ("window", "30d"))

    assert samples[("promoter_dora_up", ())] == 1.0
    assert samples[("promoter_dora_deployments", labels("dev"))] == 3
    assert samples[("promoter_dora_change_failure_rate", labels("dev"))] == pytest.approx(1 / 3)
    assert samples[("promoter_dora_time_to_restore_seconds", labels("dev"))] == 1800
    assert samples[("promoter_dora_change_failure_rate", labels("prod"))] == 0.0
    # Nothing failed in prod: no time to restore, so no sample at all (not a 0).
    assert ("promoter_dora_time_to_restore_seconds", labels("prod")) not in samples


def test_dora_gauges_when_the_figures_cannot_be_computed() -> None:
    now = [0.0]

    def broken() -> list[DoraFigures]:
        raise GitError("cannot read environments/dev")

    metrics = ServerMetrics()
    metrics.watch_dora(broken, window="30d", ttl_s=60, clock=lambda: now[0])
    samples = _samples(metrics.exposition().decode())
    assert samples == {("promoter_dora_up", ()): 0.0}
