"""Helpers for the server tests: a recording fake of the promotion service, GitHub's webhook
examples re-signed for the test secret, and an app factory."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from promoter.config.loader import DryConfig
from promoter.config.schema import EnvironmentSpec, EvaluationSpec
from promoter.domain.pull_requests import (
    PullRequest,
    PullRequestState,
    Review,
    ReviewState,
    StatusState,
)
from promoter.errors import BadInputError
from promoter.policy import GateResult
from promoter.promotion.dora import DoraFigures, Window, dora_figures
from promoter.promotion.history import DEFAULT_LIMIT, EnvironmentHistory
from promoter.promotion.results import EnvironmentStatus, PromotionState, ReconcileOutcome
from promoter.schemas import data_file
from promoter.server.signature import sign
from promoter.server.tokens import ApiTokens

WEBHOOKS = data_file("github", "webhooks")
SECRET = b"test-webhook-secret-0f3c"
RITA_TOKEN = "rita-test-token-5c2f0a8e91d34b7f8a6e2d1c0b9f"
SAM_TOKEN = "sam-test-token-77d1e0c4a9b24f3e8c5d6a7b8e9f"
MIA_TOKEN = "mia-test-token-0a1b2c3d4e5f60718293a4b5c6d7"
BOB_TOKEN = "bob-test-token-f0e1d2c3b4a5968778695a4b3c2d"
TOKENS = ApiTokens.of({RITA_TOKEN: "rita", SAM_TOKEN: "sam", MIA_TOKEN: "mia",
                       BOB_TOKEN: "bob"})
"""rita and sam approve prod (policies/prod.yaml); mia proposes; bob is no approver."""
ENVIRONMENTS = ("dev", "staging", "prod")

_log = logging.getLogger("tests.server.fake_service")


def example(event: str, name: str) -> dict[str, Any]:
    """One of GitHub's documented example payloads (octokit/webhooks, packaged in
    promoter/schemas/github/webhooks)."""
    data: dict[str, Any] = json.loads((WEBHOOKS / event / f"{name}.payload.json").read_text())
    return data


def as_promotion(payload: dict[str, Any], *, env: str = "dev", number: int = 7) -> dict[str, Any]:
    """Turn an example pull request payload into one about promoter's proposal for `env`."""
    pull = payload["pull_request"]
    pull["number"] = number
    pull["base"]["ref"] = f"environments/{env}"
    pull["head"]["ref"] = f"environments/{env}-next"
    return payload


def signed_headers(body: bytes, event: str, *, delivery: str | None = None,
                   secret: bytes = SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": sign(secret, body),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def environment_spec(name: str, promotes_from: str | None = None) -> EnvironmentSpec:
    return EnvironmentSpec(name=name, branch=f"environments/{name}", namespace=f"ml-{name}",
                           policy=name, promotes_from=promotes_from,
                           evaluation=EvaluationSpec(holdout="data/x.csv"))


class FakeService:
    """Records every call; `reconcile_pull` sleeps `delay_s` and raises for `failing` PRs.

    Tracks the largest number of concurrent calls per environment branch and overall, so
    tests can check the scheduler's one-at-a-time rule.
    """

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.failing: set[int] = set()
        self.open: dict[str, int] = {}
        """Open promotion PR number by environment name, as status() reports it."""
        self.branch_of: dict[int, str] = {}
        self.calls: list[tuple[str, Any]] = []
        self.pull_counts: Counter[int] = Counter()
        self.max_per_branch: Counter[str] = Counter()
        self.max_total = 0
        self.broken_config: Exception | None = None
        self._active: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._envs = {"dev": environment_spec("dev"),
                      "staging": environment_spec("staging", "dev"),
                      "prod": environment_spec("prod", "staging")}

    def dry_config(self) -> tuple[str, DryConfig]:
        if self.broken_config is not None:
            raise self.broken_config
        return "0" * 40, DryConfig(environments=dict(self._envs), policies={}, templates={},
                                   source="fake")

    def status(self, *, rollouts: bool = False) -> list[EnvironmentStatus]:
        self._record("status", None)
        out = []
        for name, env in self._envs.items():
            number = self.open.get(name)
            pull = None if number is None else _pull(number, env.branch)
            out.append(EnvironmentStatus(environment=name, branch=env.branch, head="a" * 40,
                                         deployed=None, open_promotion=pull, proposed=None,
                                         gates=()))
        return out

    def reconcile(self) -> list[ReconcileOutcome]:
        self._record("reconcile", None)
        with self._busy("*"):
            time.sleep(self.delay_s)
        return []

    def reconcile_pull(self, number: int) -> ReconcileOutcome:
        self._record("reconcile_pull", number)
        _log.info("reconciling PR #%s", number)  # a service line: carries the job's context
        branch = self.branch_of.get(number, "environments/dev")
        with self._busy(branch):
            time.sleep(self.delay_s)
        if number in self.failing:
            raise RuntimeError(f"scripted failure of PR #{number}")
        gate = GateResult("promoter/evaluation", StatusState.SUCCESS, "ok")
        return ReconcileOutcome(pull_number=number, environment=branch.rsplit("/", 1)[-1],
                                model="churn", version=3, state=PromotionState.WAITING,
                                gates=(gate,))

    def evaluation_report(self, number: int) -> str | None:
        return None

    def approve(self, number: int, *, user: str, reject: bool = False) -> Review:
        self._record("approve", (number, user, reject))
        state = ReviewState.CHANGES_REQUESTED if reject else ReviewState.APPROVED
        return Review(user, state, "b" * 40, datetime(2026, 1, 1, tzinfo=UTC))

    def history(self, *, environment: str | None = None,
                limit: int = DEFAULT_LIMIT) -> list[EnvironmentHistory]:
        """Every environment with no deployment (the fake merges nothing); an unknown
        `environment` is BadInputError, as the service's."""
        self._record("history", (environment, limit))
        if environment is not None and environment not in self._envs:
            raise BadInputError(f"no environment named {environment!r}",
                                fix=f"use one of: {', '.join(self._envs)}")
        return [EnvironmentHistory(environment=name, branch=env.branch, deployments=(),
                                   truncated=False)
                for name, env in self._envs.items() if environment in (None, name)]

    def dora(self, *, window: timedelta, end: datetime | None = None,
             environment: str | None = None) -> list[DoraFigures]:
        """The figures of `history`, computed as the service computes them (none: nothing
        was deployed)."""
        self._record("dora", (window, end, environment))
        return dora_figures(self.history(environment=environment), completed={},
                            window=Window.ending(end or datetime.now(UTC), window))

    def calls_of(self, name: str) -> list[Any]:
        with self._lock:
            return [arg for call, arg in self.calls if call == name]

    def _record(self, name: str, arg: Any) -> None:
        with self._lock:
            self.calls.append((name, arg))
            if name == "reconcile_pull":
                self.pull_counts[arg] += 1

    def _busy(self, key: str) -> _Busy:
        return _Busy(self, key)


class _Busy:
    def __init__(self, service: FakeService, key: str) -> None:
        self.service, self.key = service, key

    def __enter__(self) -> None:
        s = self.service
        with s._lock:
            s._active[self.key] += 1
            s.max_per_branch[self.key] = max(s.max_per_branch[self.key], s._active[self.key])
            s.max_total = max(s.max_total, sum(s._active.values()))

    def __exit__(self, *exc: object) -> None:
        with self.service._lock:
            self.service._active[self.key] -= 1


def _pull(number: int, branch: str) -> PullRequest:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return PullRequest(number=number, head_branch=f"{branch}-next", base_branch=branch,
                       head_sha="b" * 40, title="t", body="", author="mia",
                       state=PullRequestState.OPEN, labels=("promoter",), created_at=now,
                       updated_at=now)


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()
