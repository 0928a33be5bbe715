"""Gates are listed in the order they are decided, wherever they are listed: the order of
`GATE_ORDER` is the order GateRunner decides them in (checked here with every gate a policy
can add), and `status()` answers them in that order, not the forge's (by name)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from promoter.promotion.gate_order import GATE_ORDER
from tests.fakes.clock import ManualClock
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.test_soak_and_windows import OFFICE_HOURS, use
from tests.promotion.world import World


def test_gates_are_decided_and_reported_in_pipeline_order(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    clock = ManualClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))  # Thursday, inside the window
    world.commit_dry_change("policies/staging.yaml", "autoMerge: true",
                            "soak:\n  duration: 1h\n" + OFFICE_HOURS)
    use(world, clock, cluster=ScriptedCluster())
    world.promote("dev", 1)
    result = world.service.propose(environment="staging", model="churn", version=1,
                                   author="mia")
    assert result.pull_request is not None
    outcome = world.service.reconcile_pull(result.pull_request.number)
    decided = [g.context for g in outcome.gates]
    assert decided == ["promoter/upstream", "promoter/evaluation", "promoter/approvals",
                       "promoter/upstream-rollout", "promoter/soak", "promoter/change-window"]
    assert decided == sorted(decided, key=GATE_ORDER.index)
    assert decided != sorted(decided)  # the forge's order would differ
    [staging] = [s for s in world.service.status() if s.environment == "staging"]
    assert [g.context for g in staging.gates] == decided
