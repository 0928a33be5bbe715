"""Discovery's rules, on plain values: which version goes to which environment, and why not.

The facts are what `AutoProposer` reads from git, the forge, the cluster and the store; here
they are written out, with a fixed clock, so each rule is one small test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from promoter.config.schema import ModelSpec
from promoter.domain.model_versions import StoredVersion
from promoter.promotion.discovery import (
    AutoProposal,
    DiscoveryPlan,
    EnvironmentFacts,
    OpenProposal,
    Rollout,
    VersionRef,
    plan_proposals,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHAIN = ("dev", "staging", "prod")


def model(*auto: str, settle: float = 60.0, name: str = "churn") -> ModelSpec:
    return ModelSpec.model_validate({"name": name, "promotion": {
        "autoPropose": list(auto), "settleSeconds": settle}})


def stored(version: int, *, age_s: float = 3600.0, saved_model: bool = True,
           variables: bool = True, problem: str | None = None,
           name: str = "churn") -> StoredVersion:
    changed = None if problem else NOW - timedelta(seconds=age_s)
    return StoredVersion(name, version, saved_model, variables, changed, problem)


def envs(**overrides: dict[str, object]) -> list[EnvironmentFacts]:
    """dev <- staging <- prod, nothing deployed, unless `overrides[env]` says otherwise."""
    out = []
    for index, name in enumerate(CHAIN):
        fields: dict[str, object] = {"deployed": None, **overrides.get(name, {})}
        out.append(EnvironmentFacts(name=name, promotes_from=CHAIN[index - 1] if index else None,
                                    **fields))  # type: ignore[arg-type]
    return out


def plan(models: Sequence[ModelSpec], environments: Sequence[EnvironmentFacts],
         *versions: StoredVersion) -> DiscoveryPlan:
    by_model: dict[str, list[StoredVersion]] = {}
    for version in versions:
        by_model.setdefault(version.model, []).append(version)
    return plan_proposals(models=models, environments=environments, store=by_model, now=NOW)


def only(result: DiscoveryPlan) -> AutoProposal:
    assert len(result.proposals) == 1, result
    return result.proposals[0]


def held_reason(result: DiscoveryPlan, env: str = "dev") -> str:
    assert result.proposals == (), result
    reasons = [h.reason for h in result.held if h.environment == env]
    assert reasons, result
    return " | ".join(reasons)


def ref(version: int, name: str = "churn") -> VersionRef:
    return VersionRef(name, version)


def pull(version: int | None, *, number: int = 4, rollback: bool = False,
         name: str = "churn") -> OpenProposal:
    return OpenProposal(number, ref(version, name) if version is not None else None, rollback)


# --- the first environment: the model store ---------------------------------------------------


def test_newest_complete_settled_version_goes_to_the_first_environment() -> None:
    result = plan([model("dev")], envs(), stored(1), stored(2), stored(3))
    proposal = only(result)
    assert (proposal.environment, proposal.model, proposal.version) == ("dev", "churn", 3)
    assert "new complete version in the model store" in proposal.reason


def test_a_version_changed_within_the_settle_period_waits() -> None:
    result = plan([model("dev", settle=60)], envs(), stored(1, age_s=59.0))
    assert "changed 59 s ago; waiting until it is unchanged for 60 s" in held_reason(result)
    assert only(plan([model("dev", settle=60)], envs(), stored(1, age_s=60.0))).version == 1


def test_a_completion_marker_proposes_a_complete_version_without_the_settle_wait() -> None:
    sealed = StoredVersion("churn", 2, True, True, NOW, sealed=True)
    proposal = only(plan([model("dev", settle=600)], envs(), stored(1), sealed))
    assert proposal.version == 2
    assert "completion marker" in proposal.reason
    # The marker does not make an incomplete upload complete.
    broken = StoredVersion("churn", 3, True, False, NOW, sealed=True)
    result = plan([model("dev", settle=600)], envs(), broken)
    assert "no variables/" in held_reason(result)


def test_settle_zero_proposes_at_once_and_a_future_change_time_waits() -> None:
    assert only(plan([model("dev", settle=0)], envs(), stored(1, age_s=0.0))).version == 1
    # A change time ahead of the clock (skew) is not "settled long ago".
    result = plan([model("dev", settle=0.5)], envs(), stored(1, age_s=-30.0))
    assert "changed 0 s ago" in held_reason(result)


@pytest.mark.parametrize(("kwargs", "missing"), [
    ({"saved_model": False}, "no saved_model.pb"),
    ({"variables": False}, "no variables/"),
    ({"saved_model": False, "variables": False}, "no saved_model.pb and no variables/"),
    ({"problem": "cannot read m/2: Permission denied"}, "cannot read m/2: Permission denied"),
])
def test_an_incomplete_directory_is_never_proposed(kwargs: dict[str, object],
                                                   missing: str) -> None:
    result = plan([model("dev")], envs(), stored(2, **kwargs))  # type: ignore[arg-type]
    assert f"not a complete SavedModel yet: {missing}" in held_reason(result)


def test_an_older_complete_version_is_proposed_while_a_newer_one_uploads() -> None:
    result = plan([model("dev")], envs(), stored(1), stored(2), stored(3, variables=False))
    assert only(result).version == 2
    assert [(h.version, h.reason) for h in result.held] == [
        (3, "not a complete SavedModel yet: no variables/")]


def test_nothing_in_the_store() -> None:
    assert held_reason(plan([model("dev")], envs())) == "no version in the model store"


def test_the_deployed_version_or_a_newer_one_is_not_proposed_again() -> None:
    same = plan([model("dev")], envs(dev={"deployed": ref(3)}), stored(2), stored(3))
    assert held_reason(same) == "dev already runs churn v3"
    newer = plan([model("dev")], envs(dev={"deployed": ref(5)}), stored(3))
    assert held_reason(newer) == "dev runs churn v5, newer than v3"


def test_an_open_proposal_of_the_same_or_a_newer_version_is_kept() -> None:
    same = plan([model("dev")], envs(dev={"open_proposal": pull(3)}), stored(3))
    assert held_reason(same) == "PR #4 already proposes churn v3"
    newer = plan([model("dev")], envs(dev={"open_proposal": pull(4)}), stored(3))
    assert held_reason(newer) == "PR #4 proposes churn v4, newer than v3"


def test_an_open_proposal_of_an_older_version_is_replaced() -> None:
    result = plan([model("dev")], envs(dev={"open_proposal": pull(2), "deployed": ref(1)}),
                  stored(3))
    proposal = only(result)
    assert proposal.version == 3
    assert proposal.reason.endswith("; replaces PR #4 (churn v2)")


def test_never_over_an_open_rollback() -> None:
    result = plan([model("dev")], envs(dev={"open_proposal": pull(1, rollback=True),
                                            "deployed": ref(2)}), stored(3))
    assert held_reason(result) == ("PR #4 is rolling dev back; promoter does not propose "
                                   "over it")


def test_a_version_rolled_back_out_of_the_environment_is_not_proposed_again() -> None:
    facts = envs(dev={"deployed": ref(2), "rolled_back": frozenset({ref(3)})})
    assert "churn v3 was rolled back out of dev" in held_reason(
        plan([model("dev")], facts, stored(2), stored(3)))
    # A newer version is a new chance.
    assert only(plan([model("dev")], facts, stored(3), stored(4))).version == 4


def test_a_proposal_a_person_closed_is_not_reopened() -> None:
    facts = envs(dev={"deployed": ref(2), "closed_proposal": ref(3)})
    assert "closed without merging" in held_reason(plan([model("dev")], facts, stored(3)))
    assert only(plan([model("dev")], facts, stored(4))).version == 4


def test_an_unreadable_open_proposal_is_left_alone() -> None:
    result = plan([model("dev")], envs(dev={"open_proposal": pull(None)}), stored(3))
    assert held_reason(result) == "PR #4 is open and what it proposes cannot be read"


def test_another_models_deployment_or_proposal_is_not_replaced() -> None:
    deployed = plan([model("dev")], envs(dev={"deployed": ref(7, "fraud")}), stored(3))
    assert "dev runs fraud v7; promoter does not replace another model" in held_reason(deployed)
    proposed = plan([model("dev")], envs(dev={"open_proposal": pull(7, name="fraud")}),
                    stored(3))
    assert "PR #4 proposes fraud v7; promoter does not replace it" in held_reason(proposed)


def test_one_proposal_per_environment_per_pass() -> None:
    result = plan([model("dev"), model("dev", name="fraud")], envs(),
                  stored(3), stored(1, name="fraud"))
    assert only(result).model == "churn"
    assert [(h.model, h.reason) for h in result.held] == [
        ("fraud", "another model is proposed here in this pass")]


def test_a_model_whose_first_environment_is_not_listed_waits_for_a_person() -> None:
    assert plan([model()], envs(), stored(3)) == DiscoveryPlan((), ())
    # Listing only a later environment does not feed the first one from the store.
    result = plan([model("staging")], envs(), stored(3))
    assert result.proposals == ()
    assert [h.environment for h in result.held] == ["staging"]


# --- later environments: what the upstream runs ----------------------------------------------


def test_a_later_environment_gets_what_its_upstream_runs() -> None:
    result = plan([model("staging")], envs(dev={"deployed": ref(3)}, staging={
        "deployed": ref(2)}), stored(4))
    proposal = only(result)
    assert (proposal.environment, proposal.version) == ("staging", 3)
    assert proposal.reason == "dev runs churn v3"


def test_a_later_environment_waits_for_its_upstream_to_run_the_model() -> None:
    result = plan([model("staging")], envs())
    assert held_reason(result, "staging") == "dev runs no version of churn"


def test_with_a_cluster_only_a_healthy_upstream_rollout_moves_on() -> None:
    sick = envs(dev={"deployed": ref(3), "rollout": Rollout(False, "progressing: 1/2 ready")})
    assert held_reason(plan([model("staging")], sick), "staging") == (
        "dev's rollout is not healthy: progressing: 1/2 ready")
    well = envs(dev={"deployed": ref(3), "rollout": Rollout(True, "healthy: ok")})
    proposal = only(plan([model("staging")], well))
    assert proposal.reason == "dev runs churn v3 (rollout healthy)"


def test_not_from_an_upstream_being_rolled_back() -> None:
    facts = envs(dev={"deployed": ref(3), "open_proposal": pull(2, rollback=True)})
    assert held_reason(plan([model("staging")], facts), "staging") == (
        "dev is being rolled back (PR #4)")


def test_a_later_environment_follows_the_same_forward_only_rules() -> None:
    running = envs(dev={"deployed": ref(3)}, staging={"deployed": ref(3)})
    assert held_reason(plan([model("staging")], running), "staging") == (
        "staging already runs churn v3")
    proposed = envs(dev={"deployed": ref(3)}, staging={"open_proposal": pull(3, number=9)})
    assert held_reason(plan([model("staging")], proposed), "staging") == (
        "PR #9 already proposes churn v3")
    rolled_back = envs(dev={"deployed": ref(3)}, staging={
        "deployed": ref(2), "rolled_back": frozenset({ref(3)})})
    assert "rolled back out of staging" in held_reason(plan([model("staging")], rolled_back),
                                                        "staging")


def test_every_listed_environment_in_one_pass() -> None:
    # Each environment moves one step: from what its upstream runs now, not what it will run.
    facts = envs(dev={"deployed": ref(2)}, staging={"deployed": ref(1)})
    result = plan([model(*CHAIN)], facts, stored(3))
    assert [(p.environment, p.version) for p in result.proposals] == [
        ("dev", 3), ("staging", 2), ("prod", 1)]
    assert result.held == ()
