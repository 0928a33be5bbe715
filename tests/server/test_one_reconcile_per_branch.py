"""One promotion at a time per environment branch, over the whole webhook path.

`test_scheduler.py` checks the scheduler's rule with synthetic jobs. This checks that the jobs
the webhooks really produce carry the right keys: a pull request event is keyed by the PR's
base (the environment branch, never `-next`), and a push to an environment branch by that
branch, so the two kinds of work on one environment never overlap, while environments run
side by side.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.server.support import FakeService, as_promotion, body_of, example, signed_headers

DEV, PROD = "environments/dev", "environments/prod"


def post(client: TestClient, event: str, payload: dict[str, object]) -> None:
    body = body_of(payload)
    response = client.post("/webhooks/github", content=body,
                           headers=signed_headers(body, event))
    assert response.status_code == 202, response.text


def test_reconciles_of_one_environment_never_overlap_and_environments_do(
        client: TestClient, app: FastAPI, fake_service: FakeService) -> None:
    fake_service.delay_s = 0.05  # each reconcile holds its branch for a while
    # Two pull requests per environment (say, a promotion and a rollback taking it over):
    # different job names, so the scheduler cannot merge them into one.
    fake_service.branch_of = {1: DEV, 11: DEV, 3: PROD, 13: PROD}
    fake_service.open = {"dev": 1, "prod": 3}
    for _ in range(3):
        for number, env in ((1, "dev"), (3, "prod"), (11, "dev"), (13, "prod")):
            post(client, "pull_request",
                 as_promotion(example("pull_request", "synchronize"), env=env, number=number))
        for branch in (DEV, PROD):  # a merge moved the environment branch
            push = example("push", "with-new-branch")
            push["ref"] = f"refs/heads/{branch}"
            post(client, "push", push)
    assert app.state.parts.scheduler.wait_idle(30)

    calls = fake_service.calls_of("reconcile_pull")
    assert {1, 3, 11, 13} <= set(calls)
    assert fake_service.max_per_branch[DEV] == 1
    assert fake_service.max_per_branch[PROD] == 1
    assert fake_service.max_total >= 2, "dev and prod never ran at the same time"
