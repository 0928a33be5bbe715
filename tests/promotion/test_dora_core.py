"""DORA figures and history linking on hand-built deployments: the edge cases. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from promoter.domain.pull_requests import StatusState
from promoter.errors import BadInputError
from promoter.promotion.dora import Window, dora_figures, parse_window
from promoter.promotion.history import (
    Deployment,
    DeploymentKind,
    EnvironmentHistory,
    pull_number_in,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
DAY = Window(start=T0, end=T0 + 24 * H)


def dep(sha: str, version: int, merged: timedelta, *, previous: int | None = None,
        rollout: StatusState | None = None, seen: timedelta | None = None,
        kind: DeploymentKind = DeploymentKind.PROMOTION, model: str = "churn",
        rolled_back_by: str | None = None, proposed: timedelta | None = None) -> Deployment:
    return Deployment(
        environment="prod", kind=kind, merge_sha=sha, merged_at=T0 + merged, model=model,
        version=version, digest=f"sha256:{version}", manifests_digest="m", promoted_from=None,
        previous_version=previous, previous_digest=None, pull_number=None, title=None,
        proposed_by=(), proposed_at=None if proposed is None else T0 + proposed,
        head_sha=None, reviews=(), evaluation_state=None, evaluation_summary=None,
        rollout_state=rollout, rollout_description=None,
        rollout_recorded_at=None if seen is None else T0 + seen,
        rolled_back_by=rolled_back_by)


def figures(*deployments: Deployment, truncated: bool = False,
            completed: dict[tuple[str, int], datetime] | None = None, window: Window = DAY):
    history = EnvironmentHistory("prod", "environments/prod",
                                 tuple(sorted(deployments, key=lambda d: d.merged_at,
                                              reverse=True)), truncated)
    return dora_figures([history], completed=completed or {}, window=window)


def test_an_environment_never_deployed_has_no_figures_at_all() -> None:
    assert figures() == []


def test_unknown_times_are_left_out_never_counted_as_zero() -> None:
    ok = StatusState.SUCCESS
    [f] = figures(
        dep("a", 1, 1 * H, rollout=ok, seen=2 * H),        # no completion time: no lead time
        dep("b", 2, 3 * H, previous=1),                    # rollout never read
        dep("c", 2, 4 * H, previous=2, rollout=ok, seen=5 * H),  # same version: no change
        completed={("churn", 2): T0})
    assert (f.deployments, f.lead_time_samples, f.lead_time_seconds) == (3, 0, None)
    assert (f.change_failures, f.change_failure_rate) == (0, 0.0)


def test_a_failure_not_restored_yet_and_one_without_a_start() -> None:
    [f] = figures(
        dep("a", 1, 1 * H, rollout=StatusState.SUCCESS, seen=2 * H),
        dep("b", 2, 3 * H, previous=1, rollout=StatusState.FAILURE, seen=4 * H))
    assert (f.change_failures, f.change_failure_rate, f.unrestored) == (1, 0.5, 1)
    assert f.time_to_restore_seconds is None
    # Rolled back by hand while its rollout was never read: the failure's start is the
    # rollback PR's creation; without that PR, it is unmeasured, not 0.
    rollback = dep("r", 1, 6 * H, kind=DeploymentKind.ROLLBACK, proposed=5 * H,
                   rollout=StatusState.SUCCESS, seen=7 * H)
    bad = dep("b", 2, 3 * H, previous=1, rolled_back_by="r")
    [f] = figures(bad, rollback)
    assert (f.deployments, f.rollbacks, f.change_failures) == (1, 1, 1)
    assert f.time_to_restore_seconds == 2 * 3600
    [f] = figures(bad, replace(rollback, proposed_at=None))
    assert (f.unmeasured_failures, f.restore_samples, f.time_to_restore_seconds) == (1, 0, None)


def test_models_are_apart_and_a_truncated_history_says_it_may_undercount() -> None:
    other = dep("x", 7, 2 * H, model="fraud")
    result = figures(dep("a", 1, 1 * H), other, truncated=True)
    assert [(f.model, f.deployments, f.complete) for f in result] == [
        ("fraud", 1, False), ("churn", 1, False)]
    # Truncated, but the oldest merge read is before the window: nothing in it is missing.
    late = Window(start=T0 + 90 * 60 * timedelta(seconds=1), end=T0 + 24 * H)
    assert all(f.complete for f in figures(dep("a", 1, 1 * H), other, truncated=True,
                                           window=late))


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)),
    (" 7d ", timedelta(days=7))])
def test_windows(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "30", "d", "-3d", "1.5d", "30m", "999999d"])
def test_bad_windows_name_the_fix(text: str) -> None:
    with pytest.raises(BadInputError, match="is not a duration") as caught:
        parse_window(text)
    assert "--window" in (caught.value.fix or "")


def test_only_a_subject_ending_in_a_pull_number_names_one() -> None:
    assert pull_number_in("Promote churn v3 to prod (#12)") == 12
    assert pull_number_in("Roll back prod to churn v2 (#7)\n") == 7
    assert pull_number_in("Fix (#12) by hand") is None
    assert pull_number_in("Start environment branch for prod") is None


def test_the_branch_order_counts_not_the_clock() -> None:
    # A failure and its rollback merged within the same second: git's order says which came
    # first, so the restoration is still found.
    bad = dep("b", 2, 3 * H, previous=1, rollout=StatusState.FAILURE, seen=3 * H)
    rollback = dep("r", 1, 3 * H, kind=DeploymentKind.ROLLBACK, rollout=StatusState.SUCCESS,
                   seen=4 * H)
    history = EnvironmentHistory("prod", "environments/prod", (rollback, bad), False)
    [f] = dora_figures([history], completed={}, window=DAY)
    assert (f.change_failures, f.time_to_restore_seconds) == (1, 3600)
