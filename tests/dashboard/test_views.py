"""The page values built from the service's answers (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from promoter.dashboard.views import baseline_label, phase_tone, pipelines, short_digest
from promoter.domain.pull_requests import PullRequest, PullRequestState, StatusState
from promoter.policy import GateResult
from promoter.promotion.phase import PromotionPhase
from promoter.promotion.results import EnvironmentStatus
from promoter.render.metadata import DeployedModel

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def deployed(model: str, version: int, env: str) -> DeployedModel:
    return DeployedModel(model=model, version=version, digest="sha256:" + "0f" * 32,
                         environment=env, promoted_from=None, model_uri=f"models/{model}",
                         manifests_digest="sha256:" + "1e" * 32)


def status(env: str, *, model: str | None = None, pull: int | None = None,
           phase: PromotionPhase | None = None, health: StatusState | None = None,
           gates: tuple[GateResult, ...] = ()) -> EnvironmentStatus:
    open_pull = None if pull is None else PullRequest(
        number=pull, head_branch=f"environments/{env}-next", base_branch=f"environments/{env}",
        head_sha="a" * 40, title="t", body="", author="mia", state=PullRequestState.OPEN,
        labels=(), created_at=NOW, updated_at=NOW)
    return EnvironmentStatus(
        environment=env, branch=f"environments/{env}", head="b" * 40,
        deployed=deployed(model, 1, env) if model else None, open_promotion=open_pull,
        proposed=deployed(model or "churn", 2, env) if pull else None, gates=gates,
        phase=phase, head_rollout=health)


def test_fan_out_puts_siblings_in_one_column_in_configuration_order() -> None:
    edges = {"dev": None, "staging": "dev", "prod-eu": "staging", "prod-us": "staging"}
    statuses = [status(e, model="churn") for e in edges]
    [pipeline] = pipelines(edges, statuses)
    assert [[n.name for n in column] for column in pipeline.columns] == [
        ["dev"], ["staging"], ["prod-eu", "prod-us"]]
    assert pipeline.columns[2][1].promotes_from == "staging"
    assert pipeline.title == "churn"


def test_separate_first_environments_are_separate_pipelines_titled_by_their_models() -> None:
    edges = {"a-dev": None, "b-dev": None, "a-prod": "a-dev", "b-prod": "b-dev"}
    statuses = [status("a-dev", model="alpha"), status("b-dev", model="beta"),
                status("a-prod", pull=4, phase=PromotionPhase.WAITING_FOR_APPROVAL),
                status("b-prod")]
    first, second = pipelines(edges, statuses)
    assert [n.name for c in first.columns for n in c] == ["a-dev", "a-prod"]
    assert [n.name for c in second.columns for n in c] == ["b-dev", "b-prod"]
    assert first.title == "alpha, churn"  # alpha deployed, churn v2 proposed in a-prod
    assert second.title == "beta"
    node = first.columns[1][0]
    assert (node.promotion_number, node.promotion_version, node.phase, node.phase_tone) == (
        4, "churn v2", "waiting for approval", "wait")


def test_health_soak_and_gates_come_from_the_statuses() -> None:
    gates = (GateResult("promoter/soak", StatusState.PENDING, "ran 1h of 24h in staging"),
             GateResult("promoter/approvals", StatusState.SUCCESS, "1 of 1"),
             GateResult("ci/lint", StatusState.FAILURE, "someone else's check"))
    [pipeline] = pipelines({"dev": None}, [status("dev", model="churn", pull=9, gates=gates,
                                                  health=StatusState.FAILURE)])
    node = pipeline.columns[0][0]
    assert (node.health, node.health_tone) == ("failed", "bad")
    assert node.soak is not None
    assert node.soak.description == "ran 1h of 24h in staging"
    assert [g.name for g in node.gates] == ["soak", "approvals"]  # promoter's own only


def test_an_environment_whose_upstream_is_unknown_is_still_shown() -> None:
    [only] = pipelines({"prod": "gone"}, [status("prod")])
    assert only.columns[0][0].name == "prod"
    assert only.title == "no model deployed yet"
    assert only.columns[0][0].health == "not reported"


def test_tones_and_labels() -> None:
    assert phase_tone(PromotionPhase.BLOCKED) == "bad"
    assert phase_tone(PromotionPhase.HEALTHY) == "good"
    assert phase_tone(PromotionPhase.EVALUATING) == "wait"
    assert phase_tone(None) == "none"
    assert short_digest("sha256:" + "0123456789abcdef" * 4) == "sha256:0123456789ab"
    now = deployed("churn", 1, "prod")
    assert baseline_label(now, {"baseline": {"digest": now.digest}}) == \
        "churn v1 (deployed now)"
    assert baseline_label(now, {"baseline": {"digest": "sha256:other"}}) == \
        "the version deployed when it was evaluated"
    assert baseline_label(now, {"baseline": None}).startswith("none: a first deployment")


def test_a_soak_gate_row_carries_its_progress_in_percent() -> None:
    from datetime import UTC, datetime, timedelta

    from promoter.config.schema import SoakPolicy
    from promoter.dashboard.views import GateView
    from promoter.domain.pull_requests import StatusState
    from promoter.policy import GateResult, decide_soak

    start = datetime(2026, 11, 1, tzinfo=UTC)
    soak = decide_soak(SoakPolicy(duration="2h"), promotes_from="staging", since=start,
                       basis="since its merge", now=start + timedelta(minutes=30))
    assert GateView.of(soak).progress == 25
    other = GateResult("promoter/approvals", StatusState.PENDING, "0 of 1 approvals")
    assert GateView.of(other).progress is None
