from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from promoter.wiring import build_app
from tests.server.support import SECRET, FakeService, as_promotion, body_of, example, signed_headers


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_count_what_happened(client: TestClient, app: FastAPI,
                                     fake_service: FakeService) -> None:
    fake_service.failing = {13}
    body = body_of(as_promotion(example("pull_request", "synchronize"), number=7))
    for delivery in ("a", "a", "b"):
        client.post("/webhooks/github", content=body,
                    headers=signed_headers(body, "pull_request", delivery=delivery))
    client.post("/webhooks/github", content=b"{}", headers={"X-GitHub-Event": "push"})
    bad = body_of(as_promotion(example("pull_request", "synchronize"), number=13))
    client.post("/webhooks/github", content=bad, headers=signed_headers(bad, "pull_request"))
    assert app.state.parts.scheduler.wait_idle(5)

    m = samples(client)
    deliveries = "promoter_webhook_deliveries_total"
    assert m[(deliveries, (("event", "pull_request"), ("result", "scheduled")))] == 3
    assert m[(deliveries, (("event", "pull_request"), ("result", "duplicate")))] == 1
    assert m[(deliveries, (("event", "unverified"), ("result", "unauthorized")))] == 1
    assert m[("promoter_webhook_duplicate_deliveries_total", ())] == 1
    assert m[("promoter_reconcile_outcomes_total",
              (("environment", "dev"), ("state", "waiting")))] >= 1
    assert m[("promoter_gate_verdicts_total",
              (("gate", "promoter/evaluation"), ("state", "success")))] >= 1
    assert m[("promoter_reconcile_errors_total",
              (("error", "unexpected"), ("kind", "pull")))] == 1
    # resync at startup, PR 7 (twice: a and b are different deliveries), PR 13
    assert m[("promoter_reconcile_duration_seconds_count", (("kind", "pull"),))] >= 2
    assert m[("promoter_reconcile_duration_seconds_count", (("kind", "resync"),))] == 1
    assert m[("promoter_scheduler_queue_depth", ())] == 0
    assert m[("promoter_scheduler_running_jobs", ())] == 0


def test_each_app_has_its_own_registry() -> None:
    # Two apps in one process (as in these tests) must not collide in a global registry.
    first = build_app(FakeService(), webhook_secret=SECRET, resync_interval_s=None)
    second = build_app(FakeService(), webhook_secret=SECRET, resync_interval_s=None)
    assert first.state.parts.metrics.registry is not second.state.parts.metrics.registry
