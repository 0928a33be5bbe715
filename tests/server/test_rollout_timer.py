"""`TimedClusterReader`: merge -> healthy, once per commit, never the age of an old deployment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from promoter.cluster.errors import ClusterUnreachableError
from promoter.cluster.port import RolloutPhase, RolloutState
from promoter.config.schema import EnvironmentSpec
from promoter.errors import GitError
from promoter.server.rollouts import TimedClusterReader
from tests.fakes.clock import ManualClock
from tests.fakes.scripted import ScriptedCluster
from tests.server.support import environment_spec

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DEV = environment_spec("dev")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def timer(cluster: ScriptedCluster, clock: ManualClock, commits: dict[str, datetime],
          seen: list[tuple[str, float]]) -> TimedClusterReader:
    def commit_time(sha: str) -> datetime:
        if sha not in commits:
            raise GitError(f"no commit {sha}")
        return commits[sha]

    return TimedClusterReader(cluster, commit_time=commit_time,
                              observe=lambda env, s: seen.append((env, s)), clock=clock)


def test_a_merge_is_timed_to_its_first_healthy_reading_once(clock: ManualClock) -> None:
    cluster = ScriptedCluster(phases={"dev": RolloutPhase.PROGRESSING})
    seen: list[tuple[str, float]] = []
    reader = timer(cluster, clock, {"m1": START + timedelta(seconds=10)}, seen)
    clock.now = START + timedelta(seconds=30)
    assert reader.rollout_state(DEV, commit="m1").phase is RolloutPhase.PROGRESSING
    cluster.phases["dev"] = RolloutPhase.HEALTHY
    clock.now = START + timedelta(seconds=75)
    for _ in range(3):  # every resync reads it again
        assert reader.rollout_state(DEV, commit="m1").phase is RolloutPhase.HEALTHY
    assert seen == [("dev", 65.0)]


def test_an_old_deployment_healthy_at_the_first_reading_is_not_timed(clock: ManualClock) -> None:
    cluster = ScriptedCluster()
    seen: list[tuple[str, float]] = []
    commits = {"old": START - timedelta(days=7), "new": START + timedelta(seconds=5)}
    reader = timer(cluster, clock, commits, seen)
    reader.rollout_state(DEV, commit="old")
    clock.now = START + timedelta(seconds=20)
    reader.rollout_state(DEV, commit="new")  # merged after the start: healthy at first sight
    assert seen == [("dev", 15.0)]


def test_a_merge_from_before_the_start_is_timed_if_seen_unhealthy(clock: ManualClock) -> None:
    cluster = ScriptedCluster(phases={"dev": RolloutPhase.PENDING})
    seen: list[tuple[str, float]] = []
    reader = timer(cluster, clock, {"m": START - timedelta(seconds=40)}, seen)
    reader.rollout_state(DEV, commit="m")
    cluster.phases["dev"] = RolloutPhase.HEALTHY
    clock.now = START + timedelta(seconds=20)
    reader.rollout_state(DEV, commit="m")
    assert seen == [("dev", 60.0)]


def test_an_unknown_commit_time_is_logged_not_raised(clock: ManualClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    cluster = ScriptedCluster()
    seen: list[tuple[str, float]] = []
    reader = timer(cluster, clock, {}, seen)
    assert reader.rollout_state(DEV, commit="gone" * 10).phase is RolloutPhase.HEALTHY
    assert seen == []
    assert "cannot time the rollout of dev" in caplog.text


def test_reading_errors_and_sync_requests_pass_through(clock: ManualClock) -> None:
    cluster = ScriptedCluster(unreachable=True)
    seen: list[tuple[str, float]] = []
    reader = timer(cluster, clock, {}, seen)
    with pytest.raises(ClusterUnreachableError):
        reader.rollout_state(DEV, commit="m")
    reader.request_reconcile(DEV, requested_at=START.isoformat())
    assert cluster.reconcile_requests == ["dev"]


def test_the_controllers_healthy_time_is_used_when_it_is_after_the_merge(
        clock: ManualClock) -> None:
    merged = START + timedelta(seconds=10)

    class Reporting(ScriptedCluster):
        def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
            since = {"m1": merged + timedelta(seconds=42),  # became healthy after the merge
                     "m2": merged - timedelta(hours=1)}[commit]  # a condition that stayed True
            return replace(super().rollout_state(env, commit=commit), healthy_since=since)

    seen: list[tuple[str, float]] = []
    reader = timer(Reporting(), clock, {"m1": merged, "m2": merged}, seen)
    clock.now = START + timedelta(seconds=300)
    reader.rollout_state(DEV, commit="m1")
    reader.rollout_state(DEV, commit="m2")
    assert seen == [("dev", 42.0), ("dev", 290.0)]
