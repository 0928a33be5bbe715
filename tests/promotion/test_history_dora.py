"""History and DORA figures of a scripted week, on a real git repository and the local forge.

One clock drives git, the forge and the service, so every time below is known: the figures
are computed by hand in the comments and compared exactly.

    dev:     v1 proposed T0, merged +10m, healthy +30m
    staging: v1 proposed +40m, merged +50m, healthy +60m
    prod:    v1 proposed +70m, approved by rita +80m, merged +90m, healthy +100m
    dev:     v2 proposed +2h, merged +2h10m, rollout failed +2h30m -> rolled back at once
             (auto rollback, merged +2h30m), healthy again +3h
    dev:     v3 proposed +4h, merged +4h10m, healthy +4h40m
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from promoter.cluster.gate import ROLLOUT_CONTEXT
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import CommitStatus, ReviewState, StatusState
from promoter.forge.instrumented import instrument_forge
from promoter.gitops.local import LocalGitRepository
from promoter.promotion import PromotionService
from promoter.promotion.dora import DoraFigures
from promoter.promotion.history import DeploymentKind, EnvironmentHistory
from tests.promotion.history_week import H, M, Week, played_week
from tests.promotion.world import git


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Week:
    return played_week(tmp_path_factory)


def _env(histories: list[EnvironmentHistory], name: str) -> EnvironmentHistory:
    return next(h for h in histories if h.environment == name)


def test_history_lists_every_merge_and_rollback_with_its_audit_trail(week: Week) -> None:
    histories = week.service.history()
    assert [h.environment for h in histories] == ["dev", "staging", "prod"]
    dev = _env(histories, "dev")
    assert not dev.truncated
    assert [(d.kind, d.version, d.previous_version) for d in dev.deployments] == [
        (DeploymentKind.PROMOTION, 3, 1), (DeploymentKind.ROLLBACK, 1, 2),
        (DeploymentKind.PROMOTION, 2, 1), (DeploymentKind.PROMOTION, 1, None)]
    v3, rollback, v2, v1 = dev.deployments
    t0 = week.t0
    assert (v1.proposed_at, v1.merged_at, v1.healthy_at) == (t0, t0 + 10 * M, t0 + 30 * M)
    assert (v1.proposal_to_merge_seconds, v1.merge_to_healthy_seconds) == (600, 1200)
    assert v1.pull_number == week.pulls[("dev", 1)]
    assert v1.proposed_by == ("mia",)
    assert v1.evaluation_state is StatusState.SUCCESS
    assert v1.evaluation_summary == "Evaluation passed (v1)"
    assert v1.digest.startswith("sha256:")
    assert v1.digest != v2.digest
    # v2 failed, and the rollback that took it out names it and what it restored.
    assert v2.failed_at == t0 + 2 * H + 30 * M
    assert v2.healthy_at is None
    assert v2.rolled_back_by == rollback.merge_sha
    assert (rollback.rolls_back, rollback.restores) == (v2.merge_sha, v1.merge_sha)
    assert rollback.pull_number is not None
    assert rollback.pull_number != v2.pull_number
    assert rollback.proposed_at == t0 + 2 * H + 30 * M
    assert rollback.healthy_at == t0 + 3 * H
    assert rollback.evaluation_state is None  # rollbacks are not evaluated
    assert rollback.digest == v1.digest
    assert not v3.failed
    assert v3.healthy_at == t0 + 4 * H + 40 * M
    # prod: who approved, and on which head.
    [prod] = _env(histories, "prod").deployments
    assert prod.approvers == ("rita",)
    [review] = prod.reviews
    assert (review.user, review.state, review.on_merged_head) == (
        "rita", ReviewState.APPROVED, True)
    assert review.commit_sha == prod.head_sha
    assert review.submitted_at == t0 + 80 * M
    assert prod.promoted_from == "staging"
    assert (prod.proposal_to_merge_seconds, prod.merge_to_healthy_seconds) == (1200, 600)
    assert git(week.world.root, "rev-parse", "environments/prod") == prod.merge_sha


def test_history_of_one_environment_and_a_limit(week: Week) -> None:
    [dev] = week.service.history(environment="dev", limit=2)
    assert [d.version for d in dev.deployments] == [3, 1]
    assert dev.truncated
    [prod] = week.service.history(environment="prod", limit=1)
    assert not prod.truncated  # exactly one merge: nothing left unread


def _figures(figures: list[DoraFigures], env: str) -> DoraFigures:
    [found] = [f for f in figures if f.environment == env and f.model == "churn"]
    return found


def test_dora_figures_equal_the_hand_computed_ones(week: Week) -> None:
    t0, done = week.t0, week.completed
    figures = week.service.dora(window=timedelta(days=1))
    assert [(f.model, f.environment) for f in figures] == [
        ("churn", "dev"), ("churn", "staging"), ("churn", "prod")]
    dev = _figures(figures, "dev")
    assert dev.window.end == t0 + 5 * H
    assert (dev.deployments, dev.rollbacks, dev.deployments_per_day) == (3, 1, 3.0)
    # Lead time: v1 (healthy +30m) and v3 (healthy +4h40m); v2 never became healthy.
    lead_v1 = (t0 + 30 * M - done[("churn", 1)]).total_seconds()
    lead_v3 = (t0 + 4 * H + 40 * M - done[("churn", 3)]).total_seconds()
    assert dev.lead_time_samples == 2
    assert dev.lead_time_seconds == pytest.approx((lead_v1 + lead_v3) / 2)
    # One of three promotions failed; restored 30 minutes after the failure was seen.
    assert (dev.change_failures, dev.change_failure_rate) == (1, 1 / 3)
    assert (dev.time_to_restore_seconds, dev.restore_samples, dev.unrestored) == (1800, 1, 0)
    assert dev.complete
    prod = _figures(figures, "prod")
    assert (prod.deployments, prod.change_failures, prod.change_failure_rate) == (1, 0, 0.0)
    assert prod.lead_time_seconds == (t0 + 100 * M - done[("churn", 1)]).total_seconds()
    assert prod.time_to_restore_seconds is None  # nothing failed: nothing to restore
    staging = _figures(figures, "staging")
    assert staging.lead_time_seconds == (t0 + 60 * M - done[("churn", 1)]).total_seconds()


def test_a_window_without_deployments_has_no_rates(week: Week) -> None:
    figures = week.service.dora(window=timedelta(hours=1), end=week.t0)
    dev = _figures(figures, "dev")
    assert (dev.deployments, dev.deployments_per_day, dev.rollbacks) == (0, 0.0, 0)
    assert (dev.lead_time_seconds, dev.change_failure_rate,
            dev.time_to_restore_seconds) == (None, None, None)
    # A window holding only v2's merge and failure: failed, and not restored by its end.
    only_v2 = _figures(week.service.dora(window=timedelta(minutes=30),
                                         end=week.t0 + 2 * H + 20 * M), "dev")
    assert (only_v2.deployments, only_v2.change_failures) == (1, 1)
    assert only_v2.time_to_restore_seconds == 1800  # restored after the window: still measured


def test_a_merge_naming_another_pull_request_gets_none_of_its_audit_trail(week: Week) -> None:
    # Someone with push access writes a merge onto dev whose subject names the PR that
    # merged v1, hoping to borrow its proposer, approvals and evaluation.
    root = week.world.root
    head = git(root, "rev-parse", "environments/dev")
    number = week.pulls[("dev", 1)]
    forged = git(root, "commit-tree", f"{head}^{{tree}}", "-p", head, "-p", f"{head}^2",
                 "-m", f"Promote churn v3 to dev (#{number})")
    # and on top of it, a plain commit pushed by hand (one parent, as a squash would be).
    pushed = git(root, "commit-tree", f"{head}^{{tree}}", "-p", forged, "-m", "hotfix")
    git(root, "update-ref", "refs/heads/environments/dev", pushed, head)
    try:
        [dev] = week.service.history(environment="dev")
    finally:
        git(root, "update-ref", "refs/heads/environments/dev", head, pushed)
    by_hand, newest = dev.deployments[0], dev.deployments[1]
    assert (by_hand.merge_sha, by_hand.pull_number, by_hand.version) == (pushed, None, 3)
    assert newest.merge_sha == forged
    assert (newest.pull_number, newest.proposed_by, newest.reviews) == (None, (), ())
    assert (newest.proposed_at, newest.head_sha, newest.evaluation_state) == (None, None, None)
    assert dev.deployments[2].pull_number == week.pulls[("dev", 3)]


def test_a_second_reading_asks_the_forge_only_about_the_heads(week: Week) -> None:
    calls: list[str] = []
    forge = instrument_forge(week.forge, on_call=lambda op, result, seconds: calls.append(op))
    service = PromotionService(
        settings=load_settings(week.world.root / "promoter.yaml"),
        repo=LocalGitRepository(week.world.root), forge=forge, store=week.store,
        evaluator=week.world.evaluator, clock=week.clock)
    first = service.history()
    cold = len(calls)
    calls.clear()
    assert service.history() == first
    # Warm: the head of each of the 3 branches (PR, reviews, 2 status lists), nothing older.
    assert len(calls) == 3 * 4 < cold
    # The head's rollout is read afresh: a new status on it shows at once.
    head = first[0].deployments[0].merge_sha
    week.clock.now = week.t0 + 6 * H
    week.forge.set_status(head, CommitStatus(ROLLOUT_CONTEXT, StatusState.FAILURE,
                                             "dev: failed: scripted"))
    try:
        [dev] = service.history(environment="dev")
        assert dev.deployments[0].failed_at == week.t0 + 6 * H
    finally:  # put the week back as it was, time included
        week.clock.now = week.t0 + 4 * H + 40 * M
        week.forge.set_status(head, CommitStatus(ROLLOUT_CONTEXT, StatusState.SUCCESS,
                                                 "dev: healthy: scripted healthy"))
        week.clock.now = week.t0 + 5 * H
    assert service.history() == first
