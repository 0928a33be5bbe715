"""The real server: uvicorn on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import httpx

from promoter.server.runner import serve_in_thread
from promoter.wiring import build_app
from tests.server.support import SECRET, FakeService, as_promotion, body_of, example, signed_headers


def test_webhook_over_real_http() -> None:
    service = FakeService()
    app = build_app(service, webhook_secret=SECRET, resync_interval_s=None)
    body = body_of(as_promotion(example("pull_request", "synchronize"), number=21))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        accepted = client.post("/webhooks/github", content=body,
                               headers=signed_headers(body, "pull_request", delivery="x1"))
        again = client.post("/webhooks/github", content=body,
                            headers=signed_headers(body, "pull_request", delivery="x1"))
        forged = client.post("/webhooks/github", content=body,
                             headers={"X-GitHub-Event": "pull_request",
                                      "X-GitHub-Delivery": "x2"})
        assert app.state.parts.scheduler.wait_idle(5)
        metrics = client.get("/metrics").text
    assert (accepted.status_code, again.status_code, forged.status_code) == (202, 200, 401)
    assert service.pull_counts == {21: 1}
    assert 'promoter_webhook_deliveries_total{event="pull_request",result="scheduled"} 1.0' \
        in metrics
    assert not app.state.parts.scheduler.alive  # lifespan shut the workers down
