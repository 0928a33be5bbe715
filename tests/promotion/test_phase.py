"""The promotion phase: every rule of the pure `derive_phase`, and the facts read back from a
real repository and the LocalForge (merged, rolled out, rolled back, closed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.cluster.port import RolloutPhase
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import CommitStatus, PullRequestState, StatusState
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService
from promoter.promotion.phase import PromotionFacts, PromotionPhase, derive_phase
from promoter.promotion.rollback import RollbackService
from tests.fakes.clock import ManualClock
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World

OPEN, MERGED, CLOSED = PullRequestState.OPEN, PullRequestState.MERGED, PullRequestState.CLOSED
S, P, F, E = StatusState.SUCCESS, StatusState.PENDING, StatusState.FAILURE, StatusState.ERROR


def gates(**by_context: StatusState) -> tuple[CommitStatus, ...]:
    """Statuses from keyword arguments: `evaluation=S` is `promoter/evaluation: success`."""
    return tuple(CommitStatus(f"promoter/{name.replace('_', '-')}", state, "d")
                 for name, state in by_context.items())


def core(**more: StatusState) -> tuple[CommitStatus, ...]:
    return gates(upstream=S, evaluation=S, approvals=S) + gates(**more)


CASES = [
    # closed and merged pull requests
    (PromotionFacts(CLOSED, core()), PromotionPhase.CLOSED),
    (PromotionFacts(MERGED), PromotionPhase.MERGED),
    (PromotionFacts(MERGED, rollout=P), PromotionPhase.ROLLING_OUT),
    (PromotionFacts(MERGED, rollout=S), PromotionPhase.HEALTHY),
    (PromotionFacts(MERGED, rollout=F), PromotionPhase.FAILED),
    (PromotionFacts(MERGED, rollout=E), PromotionPhase.FAILED),
    (PromotionFacts(MERGED, rollout=F, rolled_back=True), PromotionPhase.ROLLED_BACK),
    (PromotionFacts(MERGED, rolled_back=True), PromotionPhase.ROLLED_BACK),
    # open: nothing judged yet; only other tools' statuses do not count
    (PromotionFacts(OPEN), PromotionPhase.PROPOSED),
    (PromotionFacts(OPEN, (CommitStatus("ci/build", S, "ok"),)), PromotionPhase.PROPOSED),
    # open: a reconcile that has not published every core gate, or a pending evaluation
    (PromotionFacts(OPEN, gates(upstream=S)), PromotionPhase.EVALUATING),
    (PromotionFacts(OPEN, gates(upstream=S, evaluation=S)), PromotionPhase.EVALUATING),
    (PromotionFacts(OPEN, gates(upstream=S, evaluation=P, approvals=P)),
     PromotionPhase.EVALUATING),
    # open: a failure or error anywhere blocks, before any waiting
    (PromotionFacts(OPEN, gates(upstream=S, evaluation=F, approvals=P)),
     PromotionPhase.BLOCKED),
    (PromotionFacts(OPEN, gates(upstream=F)), PromotionPhase.BLOCKED),
    (PromotionFacts(OPEN, gates(proposal=E)), PromotionPhase.BLOCKED),
    (PromotionFacts(OPEN, core(change_window=P, external_checks=F)), PromotionPhase.BLOCKED),
    # open: waiting, the gate a person can act on first
    (PromotionFacts(OPEN, gates(upstream=S, evaluation=S, approvals=P)),
     PromotionPhase.WAITING_FOR_APPROVAL),
    (PromotionFacts(OPEN, gates(upstream=S, evaluation=S, approvals=P, soak=P,
                                change_window=P)), PromotionPhase.WAITING_FOR_APPROVAL),
    (PromotionFacts(OPEN, core(soak=P)), PromotionPhase.WAITING_FOR_SOAK),
    (PromotionFacts(OPEN, core(soak=P, change_window=P)), PromotionPhase.WAITING_FOR_SOAK),
    (PromotionFacts(OPEN, core(soak=S, change_window=P)), PromotionPhase.WAITING_FOR_WINDOW),
    (PromotionFacts(OPEN, core(upstream_rollout=P)), PromotionPhase.WAITING),
    (PromotionFacts(OPEN, core(external_checks=P)), PromotionPhase.WAITING),
    (PromotionFacts(OPEN, core(some_future_gate=P)), PromotionPhase.WAITING),
    # open: every gate passed; a rollout status on the head is not a gate
    (PromotionFacts(OPEN, core()), PromotionPhase.READY),
    (PromotionFacts(OPEN, core(soak=S, change_window=S, upstream_rollout=S)),
     PromotionPhase.READY),
    (PromotionFacts(OPEN, core(rollout=P)), PromotionPhase.READY),
    (PromotionFacts(OPEN, (*core(), CommitStatus("ci/build", F, "red"))),
     PromotionPhase.READY),
]


@pytest.mark.parametrize(("facts", "phase"), CASES)
def test_every_rule(facts: PromotionFacts, phase: PromotionPhase) -> None:
    assert derive_phase(facts) is phase


def test_the_latest_status_per_context_is_what_counts() -> None:
    # list_statuses gives one status per context; a later one replaced the pending approval.
    waiting = gates(upstream=S, evaluation=S, approvals=P)
    approved = gates(upstream=S, evaluation=S, approvals=S)
    assert derive_phase(PromotionFacts(OPEN, waiting)) is PromotionPhase.WAITING_FOR_APPROVAL
    assert derive_phase(PromotionFacts(OPEN, approved)) is PromotionPhase.READY


def test_every_phase_is_reachable() -> None:
    """Each phase has a rule, and CASES exercises every one."""
    assert {derive_phase(facts) for facts, _ in CASES} == set(PromotionPhase)


# --- phases read back from git and the forge ------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def with_cluster(world: World, cluster: ScriptedCluster) -> PromotionService:
    repo = LocalGitRepository(world.root)
    world.service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=world.forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
        clock=ManualClock(), cluster=cluster,
        rollbacks=RollbackService(repo=repo, forge=world.forge))
    return world.service


def test_a_promotion_through_its_phases(world: World) -> None:
    cluster = ScriptedCluster(phases={"dev": RolloutPhase.PROGRESSING})
    service = with_cluster(world, cluster)
    result = service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    number = result.pull_request.number
    assert service.promotion_phase(number) is PromotionPhase.PROPOSED
    assert [s.phase for s in service.status()] == [PromotionPhase.PROPOSED, None, None]
    service.reconcile()  # merges; the rollout is read on the next reconcile
    assert service.promotion_phase(number) is PromotionPhase.MERGED
    service.reconcile()
    assert service.promotion_phase(number) is PromotionPhase.ROLLING_OUT
    cluster.phases["dev"] = RolloutPhase.HEALTHY
    service.reconcile()
    assert service.promotion_phase(number) is PromotionPhase.HEALTHY


def test_open_promotion_phases_in_status(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    world.service.reconcile()
    prod = world.service.status()[-1]
    assert prod.phase is PromotionPhase.WAITING_FOR_APPROVAL
    assert world.service.promotion_phase(result.pull_request.number) is prod.phase
    world.evaluator.failing_versions.add(2)
    blocked = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert blocked.pull_request is not None
    world.service.reconcile()
    assert world.service.status()[0].phase is PromotionPhase.BLOCKED


def test_a_failed_rollout_then_its_rollback(world: World) -> None:
    cluster = ScriptedCluster()
    service = with_cluster(world, cluster)
    world.promote("dev", 1)  # PR #1
    service.check_rollouts()  # v1 runs healthy
    world.promote("dev", 2)  # PR #2
    cluster.phases["dev"] = RolloutPhase.FAILED
    checks = service.check_rollouts()  # failure status, then the rollback PR is merged
    assert checks[0].rollback is not None
    assert service.promotion_phase(2) is PromotionPhase.ROLLED_BACK
    # v1's promotion was not rolled back (it was restored): its last rollout report stands.
    assert service.promotion_phase(1) is PromotionPhase.HEALTHY
    assert service.promotion_phase(3) is PromotionPhase.MERGED  # the rollback PR itself
    assert world.metadata("environments/dev")["promoter"]["version"] == 1


def test_a_superseded_proposal_is_closed(world: World) -> None:
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    world.forge.close(result.pull_request.number, comment="superseded")
    assert world.service.promotion_phase(result.pull_request.number) is PromotionPhase.CLOSED
