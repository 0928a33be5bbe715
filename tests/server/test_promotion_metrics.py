"""The promotion metrics of `/metrics` through the real app over a real PromotionService:
proposal -> merge, merge -> healthy rollout, and forge calls and errors.

The service is wired the way `promoter serve` wires it (`wiring.instrument_adapters` over
the adapters, one `ServerMetrics` for both), with a scripted evaluator and cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from promoter.cluster.port import RolloutPhase
from promoter.config.loader import load_settings
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService
from promoter.server.metrics import ServerMetrics
from promoter.wiring import Adapters, build_app, build_rollback_service, instrument_adapters
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World
from tests.server.support import SECRET, as_promotion, body_of, example, signed_headers
from tests.server.test_metrics import samples

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Served:
    world: World
    service: PromotionService
    cluster: ScriptedCluster
    app: FastAPI
    client: TestClient

    def resync(self) -> None:
        parts = self.app.state.parts
        parts.scheduler.submit(parts.jobs.resync())
        assert parts.scheduler.wait_idle(30)

    def metrics(self) -> Samples:
        return samples(self.client)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    cluster = ScriptedCluster()
    metrics = ServerMetrics()
    adapters = instrument_adapters(
        Adapters(repo=LocalGitRepository(world.root), forge=world.forge,
                 store=LocalModelStore(world.root / "models"), cluster=cluster), metrics)
    service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=adapters.repo,
        forge=adapters.forge, store=adapters.store, evaluator=world.evaluator,
        cluster=adapters.cluster, rollbacks=build_rollback_service(adapters))
    # Proposed before the server starts: its startup resync merges it.
    service.propose(environment="dev", model="churn", version=1, author="mia")
    app = build_app(service, webhook_secret=SECRET, metrics=metrics, resync_interval_s=None)
    with TestClient(app) as client:
        assert app.state.parts.scheduler.wait_idle(30)
        yield Served(world, service, cluster, app, client)


def count(m: Samples, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_proposal_to_merge_is_observed_once_per_merge(served: Served) -> None:
    m = served.metrics()
    assert count(m, "promoter_reconcile_outcomes_total", environment="dev", state="merged") == 1
    assert count(m, "promoter_proposal_to_merge_seconds_count", environment="dev") == 1
    assert 0 <= count(m, "promoter_proposal_to_merge_seconds_sum", environment="dev") < 60
    served.resync()  # a merged pull request is not reconciled, so not timed, again
    assert count(served.metrics(), "promoter_proposal_to_merge_seconds_count",
                 environment="dev") == 1


def test_merge_to_healthy_is_observed_once_per_commit(served: Served) -> None:
    served.cluster.phases["dev"] = RolloutPhase.PROGRESSING
    served.resync()
    m = served.metrics()
    assert count(m, "promoter_merge_to_healthy_seconds_count", environment="dev") == 0

    served.cluster.phases["dev"] = RolloutPhase.HEALTHY
    served.resync()
    served.resync()  # every resync reads the rollout again; it is timed once
    result = served.service.propose(environment="staging", model="churn", version=1,
                                    author="mia")
    assert result.pull_request is not None
    served.resync()  # the upstream-rollout gate reads dev too; staging merges

    m = served.metrics()
    assert count(m, "promoter_merge_to_healthy_seconds_count", environment="dev") == 1
    assert 0 <= count(m, "promoter_merge_to_healthy_seconds_sum", environment="dev") < 60
    assert count(m, "promoter_proposal_to_merge_seconds_count", environment="staging") == 1
    served.resync()  # staging merged by this process and healthy at its first reading
    assert count(served.metrics(), "promoter_merge_to_healthy_seconds_count",
                 environment="staging") == 1


def test_forge_calls_and_errors_are_counted(served: Served) -> None:
    body = body_of(as_promotion(example("pull_request", "synchronize"), env="dev",
                                number=999))
    response = served.client.post("/webhooks/github", content=body,
                                  headers=signed_headers(body, "pull_request"))
    assert response.status_code == 202
    assert served.app.state.parts.scheduler.wait_idle(30)

    m = served.metrics()
    calls = "promoter_forge_calls_total"
    assert count(m, calls, operation="merge", result="ok") == 1
    assert count(m, calls, operation="list_open_pull_requests", result="ok") >= 1
    assert count(m, calls, operation="get_pull_request", result="PullRequestNotFoundError") == 1
    assert count(m, "promoter_forge_call_duration_seconds_count", operation="merge") == 1
    # The proposal made before the app started went through the same forge and registry.
    assert count(m, calls, operation="open_or_update_pull_request", result="ok") == 1



def test_promoter_serve_reports_forge_calls_in_its_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    import uvicorn
    from click.testing import CliRunner

    from promoter.cli import Context
    from promoter.cli.serve import serve

    world = World(tmp_path / "gitops", ScriptedEvaluator())
    apps: list[FastAPI] = []
    # `Server.run` serves through uvicorn.Server; record its app instead of serving.
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: apps.append(server.config.app))
    monkeypatch.setenv("PROMOTER_WEBHOOK_SECRET", "s3cret-value")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(serve, ["--log-format", "text"],
                                    obj=Context(str(world.root / "promoter.yaml")))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert result.exit_code == 0, result.output
    (app,) = apps
    parts = app.state.parts
    parts.service.status()  # reads the forge, as GET /api/v1/environments does
    text = parts.metrics.exposition().decode()
    assert ('promoter_forge_calls_total{operation="list_open_pull_requests",result="ok"} 1.0'
            in text)
