"""The rollout decision, table-driven, from plain dicts shaped like the controllers' output.

Every object in the tables is validated against its CRD first, so the rules are tested on
objects a real cluster could serve.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from promoter.cluster import (
    ClusterShapeError,
    RolloutPhase,
    argo_rollout_state,
    flux_revision,
    flux_rollout_state,
)
from promoter.schemas import data_file, validate_crd_object
from tests.cluster.objects import (
    COMMIT,
    OLD,
    application,
    applied,
    git_repository,
    kustomization,
    with_status,
)
from tests.conftest import REPO_ROOT

BRANCH = "environments/dev"
PROGRESS = ("Unknown", "Progressing", "Reconciliation in progress")

P, G, H, F = (RolloutPhase.PENDING, RolloutPhase.PROGRESSING, RolloutPhase.HEALTHY,
              RolloutPhase.FAILED)

FLUX_CASES: list[tuple[str, dict[str, Any], dict[str, Any], RolloutPhase, str]] = [
    ("nothing reconciled yet", git_repository(commit=None),
     kustomization(attempted=None, applied=None, ready=None), P, "no artifact"),
    ("source still at the old commit", git_repository(commit=OLD), applied(OLD), P,
     f"not {BRANCH}@sha1:{COMMIT}"),
    ("source fetch failing", git_repository(commit=OLD, ready=("False", "GitOperationFailed",
                                                               "auth failed")),
     applied(OLD), P, "GitOperationFailed"),
    ("fetched, not applied yet", git_repository(commit=COMMIT), applied(OLD), G, "applying"),
    ("applying", git_repository(commit=COMMIT),
     kustomization(attempted=COMMIT, applied=OLD, ready=PROGRESS), G, "Progressing"),
    ("applied, health checks running", git_repository(commit=COMMIT),
     kustomization(attempted=COMMIT, applied=COMMIT,
                   ready=("True", "ReconciliationSucceeded", "Applied revision"),
                   healthy=("Unknown", "Progressing", "Running health checks")), G,
     "health: Healthy=Unknown"),
    ("applied, no Healthy condition yet", git_repository(commit=COMMIT),
     kustomization(attempted=COMMIT, applied=COMMIT,
                   ready=("True", "ReconciliationSucceeded", "Applied revision")), G,
     "no Healthy condition"),
    ("Ready for another reason", git_repository(commit=COMMIT),
     kustomization(attempted=COMMIT, applied=COMMIT, ready=("True", "Other", "hm"),
                   healthy=("True", "Succeeded", "ok")), G, "Other"),
    ("spec changed, not observed", git_repository(commit=COMMIT),
     applied(COMMIT, generation=2, observed_generation=1), G, "latest spec"),
    ("applied and healthy", git_repository(commit=COMMIT), applied(COMMIT), H,
     "health checks passed"),
    ("healthy without health checks", git_repository(commit=COMMIT),
     kustomization(attempted=COMMIT, applied=COMMIT, wait=False,
                   ready=("True", "ReconciliationSucceeded", "Applied revision")), H,
     "applied"),
    ("health check failed", git_repository(commit=COMMIT),
     kustomization(attempted=COMMIT, applied=OLD,
                   ready=("False", "HealthCheckFailed", "Deployment/ml-dev/churn timeout"),
                   healthy=("False", "HealthCheckFailed", "timeout")), F,
     "HealthCheckFailed"),
    ("build failed", git_repository(commit=COMMIT),
     kustomization(attempted=COMMIT, applied=OLD,
                   ready=("False", "BuildFailed", "kustomize build failed")), F,
     "BuildFailed"),
    ("an older commit failed, this one not tried", git_repository(commit=COMMIT),
     kustomization(attempted=OLD, applied=None, ready=("False", "BuildFailed", "x")), G,
     "BuildFailed"),
]


@pytest.mark.parametrize(("source", "sync", "phase", "reason"),
                         [c[1:] for c in FLUX_CASES], ids=[c[0] for c in FLUX_CASES])
def test_flux_rules(source: dict, sync: dict, phase: RolloutPhase, reason: str) -> None:
    validate_crd_object(source)
    validate_crd_object(sync)
    state = flux_rollout_state(environment="dev", branch=BRANCH, commit=COMMIT,
                               git_repository=source, kustomization=sync)
    assert state.phase is phase, state.reason
    assert reason in state.reason
    assert state.environment == "dev"
    assert state.commit == COMMIT


def test_flux_revision_format() -> None:
    assert flux_revision("environments/prod", COMMIT) == f"environments/prod@sha1:{COMMIT}"


def test_flux_observed_revision_is_the_last_applied() -> None:
    state = flux_rollout_state(environment="dev", branch=BRANCH, commit=COMMIT,
                               git_repository=git_repository(commit=COMMIT),
                               kustomization=applied(OLD))
    assert state.observed_revision == f"{BRANCH}@sha1:{OLD}"
    assert not state.done



def _times(sync: dict[str, Any], **at: str) -> dict[str, Any]:
    for cond in sync["status"]["conditions"]:
        if cond["type"] in at:
            cond["lastTransitionTime"] = at[cond["type"]]
    return sync


@pytest.mark.parametrize(("sync", "since"), [
    (_times(applied(COMMIT), Ready="2024-05-01T12:00:00Z", Healthy="2024-05-01T12:03:00Z"),
     "2024-05-01T12:03:00+00:00"),
    (_times(applied(COMMIT), Ready="2024-05-01T12:05:00Z", Healthy="2024-05-01T12:03:00Z"),
     "2024-05-01T12:05:00+00:00"),
    # Without health checks the Healthy condition does not count.
    (_times(kustomization(attempted=COMMIT, applied=COMMIT, wait=False,
                          ready=("True", "ReconciliationSucceeded", "Applied"),
                          healthy=("True", "Succeeded", "stale")),
            Ready="2024-05-01T12:01:00Z", Healthy="2024-05-01T13:00:00Z"),
     "2024-05-01T12:01:00+00:00"),
])
def test_flux_healthy_since_is_the_latest_transition(sync: dict[str, Any], since: str) -> None:
    validate_crd_object(sync)
    state = flux_rollout_state(environment="dev", branch=BRANCH, commit=COMMIT,
                               git_repository=git_repository(commit=COMMIT), kustomization=sync)
    assert state.phase is H
    assert state.healthy_since is not None
    assert state.healthy_since.isoformat() == since


def test_flux_not_healthy_has_no_healthy_since() -> None:
    state = flux_rollout_state(environment="dev", branch=BRANCH, commit=COMMIT,
                               git_repository=git_repository(commit=COMMIT),
                               kustomization=applied(OLD))
    assert state.healthy_since is None


def test_flux_bad_transition_time_is_a_shape_error() -> None:
    sync = _times(applied(COMMIT), Ready="yesterday")
    with pytest.raises(ClusterShapeError) as info:
        flux_rollout_state(environment="dev", branch=BRANCH, commit=COMMIT,
                           git_repository=git_repository(commit=COMMIT), kustomization=sync)
    assert "status.conditions.0.lastTransitionTime: expected an RFC 3339 time" in str(info.value)


FINISHED = "2024-05-01T12:01:00Z"
BEFORE = "2024-05-01T12:00:30Z"
AFTER = "2024-05-01T12:01:30Z"

ARGO_CASES: list[tuple[str, dict[str, Any], RolloutPhase, str]] = [
    ("never reconciled", application(sync_revision=None), P, "no revision"),
    ("still at the old commit", application(sync_revision=OLD, op_phase="Succeeded",
                                            op_revision=OLD, finished_at=FINISHED,
                                            health="Healthy", reconciled_at=AFTER), P,
     f"not {COMMIT}"),
    ("operation pending", application(sync_revision=OLD, pending_operation=True), G,
     "pending"),
    ("syncing", application(sync_revision=COMMIT, sync_status="OutOfSync", op_phase="Running",
                            op_revision=COMMIT, health="Progressing"), G, "Running"),
    ("last sync was of an older commit", application(
        sync_revision=COMMIT, sync_status="OutOfSync", op_phase="Succeeded", op_revision=OLD,
        finished_at=FINISHED, health="Healthy", reconciled_at=AFTER), G, "Succeeded"),
    ("healthy before the operation finished (trap)", application(
        sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT, finished_at=FINISHED,
        health="Healthy", reconciled_at=BEFORE, health_since=BEFORE), G,
     "not yet observed after"),
    ("healthy in the same second as the finish", application(
        sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT, finished_at=FINISHED,
        health="Healthy", reconciled_at=FINISHED), G, "not yet observed after"),
    ("progressing after the sync", application(
        sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT, finished_at=FINISHED,
        health="Progressing", reconciled_at=AFTER), G, "health is Progressing"),
    ("out of sync after a sync", application(
        sync_revision=COMMIT, sync_status="OutOfSync", op_phase="Succeeded",
        op_revision=COMMIT, finished_at=FINISHED, health="Healthy", reconciled_at=AFTER), G,
     "OutOfSync"),
    ("healthy, observed after the sync", application(
        sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT, finished_at=FINISHED,
        health="Healthy", reconciled_at=AFTER), H, "Healthy"),
    ("turned healthy after the sync", application(
        sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT, finished_at=FINISHED,
        health="Healthy", reconciled_at=BEFORE, health_since=AFTER), H, "Healthy"),
    ("sync failed", application(sync_revision=COMMIT, sync_status="OutOfSync",
                                op_phase="Failed", op_revision=COMMIT, finished_at=FINISHED,
                                message="one or more objects failed to apply"), F,
     "failed to apply"),
    ("sync errored", application(sync_revision=OLD, op_phase="Error", op_revision=COMMIT,
                                 finished_at=FINISHED), F, "Error"),
    ("degraded after the sync", application(
        sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT, finished_at=FINISHED,
        health="Degraded", reconciled_at=AFTER), F, "Degraded"),
    ("degraded, not observed since the sync", application(
        sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT, finished_at=FINISHED,
        health="Degraded", reconciled_at=BEFORE), G, "Degraded"),
]


@pytest.mark.parametrize(("app", "phase", "reason"), [c[1:] for c in ARGO_CASES],
                         ids=[c[0] for c in ARGO_CASES])
def test_argo_rules(app: dict, phase: RolloutPhase, reason: str) -> None:
    validate_crd_object(app)
    state = argo_rollout_state(environment="dev", commit=COMMIT, application=app)
    assert state.phase is phase, state.reason
    assert reason in state.reason
    assert (state.healthy_since is not None) is (phase is H)


def test_argo_healthy_since_is_the_later_of_sync_end_and_health_transition() -> None:
    turned = application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                         finished_at=FINISHED, health="Healthy", reconciled_at=BEFORE,
                         health_since=AFTER)
    stayed = application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                         finished_at=FINISHED, health="Healthy", reconciled_at=AFTER,
                         health_since=BEFORE)
    for app, since in ((turned, AFTER), (stayed, FINISHED)):
        state = argo_rollout_state(environment="dev", commit=COMMIT, application=app)
        assert state.healthy_since == datetime.fromisoformat(since)


MALFORMED_FLUX = [
    ("conditions not a list", git_repository(commit=COMMIT),
     with_status(applied(COMMIT), conditions={"Ready": "True"}), "status.conditions"),
    ("revision not a string", with_status(git_repository(commit=COMMIT), artifact={
        "revision": 7}), applied(COMMIT), "status.artifact.revision"),
    ("generation not an integer", git_repository(commit=COMMIT),
     with_status(applied(COMMIT), observedGeneration="1"), "status.observedGeneration"),
    ("condition without a type", git_repository(commit=COMMIT),
     with_status(applied(COMMIT), conditions=[{"status": "True"}]), "status.conditions.0"),
    ("status not an object", git_repository(commit=COMMIT),
     {**applied(COMMIT), "status": "Ready"}, "status"),
]


@pytest.mark.parametrize(("source", "sync", "where"), [c[1:] for c in MALFORMED_FLUX],
                         ids=[c[0] for c in MALFORMED_FLUX])
def test_flux_unexpected_shape_is_a_typed_error(source: dict, sync: dict, where: str) -> None:
    with pytest.raises(ClusterShapeError, match=where) as caught:
        flux_rollout_state(environment="dev", branch=BRANCH, commit=COMMIT,
                           git_repository=source, kustomization=sync)
    assert caught.value.fix


def test_the_shape_error_points_at_documents_a_user_has() -> None:
    with pytest.raises(ClusterShapeError) as caught:
        flux_rollout_state(environment="dev", branch=BRANCH, commit=COMMIT,
                           git_repository=git_repository(commit=COMMIT),
                           kustomization={**applied(COMMIT), "status": "Ready"})
    fix = caught.value.fix or ""
    assert 'README\'s "Flux or Argo CD" section' in fix
    assert "\n### Flux or Argo CD\n" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "promoter/schemas/SOURCES.md" in fix
    assert data_file("SOURCES.md").is_file()


@pytest.mark.parametrize(("app", "where"), [
    ({**application(sync_revision=COMMIT), "status": {"sync": "Synced"}}, "status.sync"),
    (application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                 finished_at="yesterday"), "finishedAt"),
    (application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                 finished_at="2024-05-01T12:00:00"), "with a zone"),
    ([], "expected an object"),
])
def test_argo_unexpected_shape_is_a_typed_error(app: Any, where: str) -> None:
    with pytest.raises(ClusterShapeError, match=where):
        argo_rollout_state(environment="dev", commit=COMMIT, application=app)


def degraded(resources: list[Any], message: str = "") -> dict[str, Any]:
    app = application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                       finished_at=FINISHED, health="Degraded", reconciled_at=AFTER)
    app["status"]["resources"] = resources
    if message:
        app["status"]["health"]["message"] = message
    return app


def resource(kind: str, name: str, health: str, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "name": name, "namespace": "ml-dev", "version": "v1",
                           "health": {"status": health}}
    if message is not None:
        out["health"]["message"] = message
    return out


@pytest.mark.parametrize(("resources", "message", "reason"), [
    ([resource("Deployment", "churn", "Degraded",
               'Deployment "churn" exceeded its progress deadline'),
      resource("Service", "churn", "Healthy")],
     "", 'is Degraded after the sync: Deployment churn: Deployment "churn" exceeded its '
         "progress deadline"),
    ([resource("Deployment", "churn", "Degraded")], "",
     "is Degraded after the sync: Deployment churn"),
    ([resource("Deployment", f"d{i}", "Degraded", "x") for i in range(5)], "",
     "Deployment d0: x; Deployment d1: x; Deployment d2: x (and 2 more)"),
    ([resource("Deployment", "churn", "Degraded", "from the resource")], "from the app",
     "is Degraded after the sync: from the app"),  # Argo CD 2's own message, where it is set
    ([], "", "is Degraded after the sync"),
], ids=["the deployment's words", "no message", "at most three", "the app's message first",
        "no resources"])
def test_argo_degraded_names_what_is_degraded(resources: list[Any], message: str,
                                              reason: str) -> None:
    """Argo CD 3 leaves the Application's health message empty (deprecated, unused): what
    failed, e.g. a Deployment whose fetch-model init container never lets a pod start, is in
    `status.resources`."""
    app = degraded(resources, message)
    validate_crd_object(app)
    state = argo_rollout_state(environment="dev", commit=COMMIT, application=app)
    assert state.phase is F
    assert state.reason.endswith(reason), state.reason


def test_argo_resources_of_the_wrong_shape_are_a_typed_error() -> None:
    with pytest.raises(ClusterShapeError, match=r"status\.resources\.0"):
        argo_rollout_state(environment="dev", commit=COMMIT, application=degraded(["x"]))
