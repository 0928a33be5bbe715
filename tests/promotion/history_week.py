"""The scripted week of the history and DORA tests (see test_history_dora for its timeline):
a real git repository and local forge, one clock driving git, the forge and the service."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promoter.cluster.port import RolloutPhase
from promoter.config.loader import load_settings
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from promoter.promotion.history_reader import completion_times
from promoter.promotion.rollback import RollbackService
from tests.conftest import isolate_git
from tests.fakes.clock import ManualClock
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World

M = timedelta(minutes=1)
H = timedelta(hours=1)


class Week:
    """The world above, played once per test module (promotions take a second each)."""

    def __init__(self, root: Path) -> None:
        self.world = World(root, ScriptedEvaluator())
        self.store = LocalModelStore(root / "models")
        self.completed = completion_times(self.store, {"churn"})
        # Whole seconds: git keeps seconds, so every time compares exactly.
        latest = max(self.completed.values())
        self.t0 = datetime.fromtimestamp(math.ceil(latest.timestamp()), UTC) + H
        self.clock = ManualClock(self.t0)
        self.cluster = ScriptedCluster()
        repo = LocalGitRepository(root, clock=self.clock)
        self.forge = LocalForge(root / ".git" / "promoter" / "forge.sqlite", repo,
                                clock=self.clock)
        self.service = PromotionService(
            settings=load_settings(root / "promoter.yaml"), repo=repo, forge=self.forge,
            store=self.store, evaluator=self.world.evaluator, clock=self.clock,
            cluster=self.cluster, rollbacks=RollbackService(repo=repo, forge=self.forge))
        self.pulls: dict[tuple[str, int], int] = {}
        self._promote("dev", 1, at=0 * M, merge=10 * M)
        self._rollouts("dev", RolloutPhase.HEALTHY, at=30 * M)
        self._promote("staging", 1, at=40 * M, merge=50 * M)
        self._rollouts("staging", RolloutPhase.HEALTHY, at=60 * M)
        self._promote("prod", 1, at=70 * M, merge=90 * M, approve=("rita", 80 * M))
        self._rollouts("prod", RolloutPhase.HEALTHY, at=100 * M)
        self._promote("dev", 2, at=2 * H, merge=2 * H + 10 * M)
        self._rollouts("dev", RolloutPhase.FAILED, at=2 * H + 30 * M)  # auto rollback merges
        self._rollouts("dev", RolloutPhase.HEALTHY, at=3 * H)
        self._promote("dev", 3, at=4 * H, merge=4 * H + 10 * M)
        self._rollouts("dev", RolloutPhase.HEALTHY, at=4 * H + 40 * M)
        self.clock.now = self.t0 + 5 * H

    def _promote(self, env: str, version: int, *, at: timedelta, merge: timedelta,
                 approve: tuple[str, timedelta] | None = None) -> None:
        self.clock.now = self.t0 + at
        result = self.service.propose(environment=env, model="churn", version=version,
                                      author="mia")
        assert result.pull_request is not None
        number = result.pull_request.number
        self.pulls[(env, version)] = number
        if approve is not None:
            self.clock.now = self.t0 + approve[1]
            self.service.approve(number, user=approve[0])
        self.clock.now = self.t0 + merge
        outcome = self.service.reconcile_pull(number)
        assert outcome.state is PromotionState.MERGED, outcome

    def _rollouts(self, env: str, phase: RolloutPhase, *, at: timedelta) -> None:
        self.clock.now = self.t0 + at
        self.cluster.phases[env] = phase
        self.service.check_rollouts()


def played_week(tmp_path_factory: pytest.TempPathFactory) -> Week:
    """The week played in a fresh repository, with conftest's git isolation."""
    with pytest.MonkeyPatch.context() as patch:
        isolate_git(patch, tmp_path_factory.mktemp("home"))
        return Week(tmp_path_factory.mktemp("week") / "gitops")
