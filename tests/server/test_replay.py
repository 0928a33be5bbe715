"""A signed delivery replayed under a new delivery id (issue #15).

The signature covers the body, not the `X-GitHub-Delivery` header, so whoever captured one
signed body can send it again under a fresh id, and the server processes it again: the
delivery memory only catches GitHub's own redeliveries. What makes that harmless is that the
work is a reconcile of the pull request as it is now, never "apply this event": these tests
replay deliveries against a real PromotionService on a throwaway repository and show the
second processing reads the forge and writes nothing (no second merge, no duplicate status or
comment).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from promoter.config.loader import load_settings
from promoter.forge.instrumented import WRITE_OPERATIONS, instrument_forge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService
from promoter.wiring import build_app
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, refs
from tests.server.support import SECRET, as_promotion, body_of, example, signed_headers


@dataclass
class ForgeCalls:
    """Every forge call the served service makes, by operation name."""

    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, result: str, seconds: float) -> None:
        with self.lock:
            self.calls.append(operation)

    def take(self) -> list[str]:
        with self.lock:
            taken, self.calls = self.calls, []
        return taken


@dataclass
class Served:
    world: World
    app: FastAPI
    client: TestClient
    forge_calls: ForgeCalls
    pull: int

    def deliver(self, event: str, body: bytes, delivery: str) -> list[str]:
        """Deliver `body` as `delivery`, wait for its reconcile; the forge calls it made."""
        self.forge_calls.take()
        response = self.client.post("/webhooks/github", content=body,
                                    headers=signed_headers(body, event, delivery=delivery))
        assert response.status_code == 202, response.text
        assert response.json()["jobs"] == [f"pull #{self.pull}"]  # processed, not deduped
        assert self.app.state.parts.scheduler.wait_idle(30)
        return self.forge_calls.take()

    def forge_state(self) -> tuple[object, ...]:
        pull = self.world.forge.get_pull_request(self.pull)
        statuses = self.world.forge.list_statuses(pull.head_sha)
        comments = self.world.forge.list_comments(self.pull)
        return (pull.state, pull.merge_sha, pull.updated_at,
                sorted((s.context, str(s.state), s.description) for s in statuses),
                len(statuses), [(c.id, c.key, c.body, c.updated_at) for c in comments],
                refs(self.world.root))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    world.promote("dev", 1)
    world.promote("staging", 1)
    forge_calls = ForgeCalls()
    service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"),
        repo=LocalGitRepository(world.root),
        forge=instrument_forge(world.forge, on_call=forge_calls.record),
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator)
    proposal = service.propose(environment="prod", model="churn", version=1, author="mia")
    assert proposal.pull_request is not None
    app = build_app(service, webhook_secret=SECRET, resync_interval_s=None)
    with TestClient(app) as client:
        assert app.state.parts.scheduler.wait_idle(30)  # the startup resync published gates
        yield Served(world, app, client, forge_calls, proposal.pull_request.number)


def writes(calls: list[str]) -> list[str]:
    return [call for call in calls if call in WRITE_OPERATIONS]


def test_a_replayed_review_delivery_merges_once(served: Served) -> None:
    served.world.service.approve(served.pull, user="rita")  # a review on the forge
    body = body_of(as_promotion(example("pull_request_review", "submitted.with-organization"),
                                env="prod", number=served.pull))

    first = served.deliver("pull_request_review", body, delivery="review-1")
    assert writes(first) == ["set_status", "merge"]  # the approvals gate passed: merged
    after_first = served.forge_state()

    replayed = served.deliver("pull_request_review", body, delivery="review-1-replayed")
    assert "get_pull_request" in replayed  # it was reconciled again...
    assert writes(replayed) == []  # ...and wrote nothing: no second merge, status, comment
    assert served.forge_state() == after_first


def test_a_replayed_delivery_on_a_waiting_promotion_writes_nothing(served: Served) -> None:
    body = body_of(as_promotion(example("pull_request", "synchronize"), env="prod",
                                number=served.pull))
    before = served.forge_state()
    for delivery in ("sync-1", "sync-1-replayed", "sync-1-replayed-again"):
        calls = served.deliver("pull_request", body, delivery=delivery)
        assert "list_statuses" in calls  # the gates were evaluated again
        assert writes(calls) == []  # the same verdicts: nothing re-posted
    assert served.forge_state() == before
    statuses = served.world.forge.list_statuses(
        served.world.forge.get_pull_request(served.pull).head_sha)
    assert len(statuses) == 3  # upstream, evaluation, approvals: once each
    assert len(served.world.forge.list_comments(served.pull)) == 1  # one evaluation report
