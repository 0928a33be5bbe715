"""The real `kubernetes` client against a fake API server on loopback, through scripted
rollouts: every object served is valid for its CRD, and every failure is a typed error."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from promoter.cluster import (
    ARGO_REFRESH_ANNOTATION,
    FLUX_RECONCILE_ANNOTATION,
    ClusterError,
    ClusterObjectNotFoundError,
    ClusterShapeError,
    ClusterUnreachableError,
    DeliveryTarget,
    RolloutPhase,
    RolloutState,
    wait_for_rollout,
)
from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.config import EnvironmentSpec
from tests.cluster.conftest import environment
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import (
    COMMIT,
    OLD,
    application,
    applied,
    git_repository,
    kustomization,
)

FLUX = DeliveryTarget.of(environment("flux"))
ARGO = DeliveryTarget.of(environment("argo"))


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _wait(reader: KubernetesClusterReader, env: EnvironmentSpec, clock: FakeClock,
          timeout_s: float = 60) -> Callable[[], object]:
    return wait_for_rollout(reader, env, commit=COMMIT, timeout_s=timeout_s, poll_s=5,
                            clock=clock, sleep=clock.sleep)


def test_paths_are_the_api_servers() -> None:
    assert FLUX.git_repository.path == (
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/promoter-dev")
    assert FLUX.kustomization.path == (
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/"
        "promoter-dev")
    assert ARGO.application.path == (
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/promoter-dev")


# --- Flux ------------------------------------------------------------------------------------


def test_flux_rollout_pending_progressing_healthy(api: FakeKubernetesApi,
                                                  reader: KubernetesClusterReader,
                                                  flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, [git_repository(commit=OLD), git_repository(commit=COMMIT),
                                  git_repository(commit=COMMIT),
                                  git_repository(commit=COMMIT)])
    api.put(FLUX.kustomization, [
        applied(OLD),
        kustomization(attempted=COMMIT, applied=OLD,
                      ready=("Unknown", "Progressing", "Reconciliation in progress"),
                      healthy=("Unknown", "Progressing", "Running health checks")),
        kustomization(attempted=COMMIT, applied=OLD,
                      ready=("Unknown", "Progressing", "Running health checks"),
                      healthy=("Unknown", "Progressing", "Deployment ml-dev/churn: 1/3")),
        applied(COMMIT),
    ])
    phases = [reader.rollout_state(flux_env, commit=COMMIT).phase for _ in range(4)]
    assert phases == [RolloutPhase.PENDING, RolloutPhase.PROGRESSING,
                      RolloutPhase.PROGRESSING, RolloutPhase.HEALTHY]


def test_flux_wait_until_healthy(api: FakeKubernetesApi, reader: KubernetesClusterReader,
                                 flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, [git_repository(commit=OLD), git_repository(commit=COMMIT)])
    api.put(FLUX.kustomization, [applied(OLD), applied(OLD), applied(COMMIT)])
    clock = FakeClock()
    state = _wait(reader, flux_env, clock)
    assert state.phase is RolloutPhase.HEALTHY
    assert clock.sleeps == [5, 5]
    assert api.gets(FLUX.kustomization) == 3


def test_flux_failed_health_check(api: FakeKubernetesApi, reader: KubernetesClusterReader,
                                  flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, [
        kustomization(attempted=COMMIT, applied=OLD,
                      ready=("Unknown", "Progressing", "Running health checks"),
                      healthy=("Unknown", "Progressing", "Running health checks")),
        kustomization(attempted=COMMIT, applied=OLD,
                      ready=("False", "HealthCheckFailed",
                             "timeout waiting for: [Deployment/ml-dev/churn status: "
                             "'InProgress']"),
                      healthy=("False", "HealthCheckFailed", "timeout")),
    ])
    state = _wait(reader, flux_env, FakeClock())
    assert state.phase is RolloutPhase.FAILED
    assert "HealthCheckFailed" in state.reason
    assert "Deployment/ml-dev/churn" in state.reason


def test_flux_never_healthy_times_out(api: FakeKubernetesApi, reader: KubernetesClusterReader,
                                      flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, kustomization(
        attempted=COMMIT, applied=OLD, ready=("Unknown", "Progressing", "Running health checks"),
        healthy=("Unknown", "Progressing", "Running health checks")))
    clock = FakeClock()
    state = _wait(reader, flux_env, clock, timeout_s=12)
    assert state.phase is RolloutPhase.TIMED_OUT
    assert "not healthy after 12s" in state.reason
    assert "Progressing" in state.reason
    assert clock.now == 12
    assert state.done


def test_flux_wait_with_a_real_tiny_timeout(api: FakeKubernetesApi,
                                            reader: KubernetesClusterReader,
                                            flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=OLD))
    api.put(FLUX.kustomization, applied(OLD))
    state = wait_for_rollout(reader, flux_env, commit=COMMIT, timeout_s=0.2, poll_s=0.05)
    assert state.phase is RolloutPhase.TIMED_OUT
    assert api.gets(FLUX.git_repository) >= 2


def test_flux_request_reconcile_annotates_the_git_repository(
        api: FakeKubernetesApi, reader: KubernetesClusterReader,
        flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=OLD, annotations={"keep": "me"}))
    reader.request_reconcile(flux_env, requested_at="2024-05-01T12:00:05Z")
    assert api.patches == [(FLUX.git_repository.path, "application/merge-patch+json",
                            {"metadata": {"annotations": {
                                FLUX_RECONCILE_ANNOTATION: "2024-05-01T12:00:05Z"}}})]
    current = api.current(FLUX.git_repository)
    assert current["metadata"]["annotations"] == {
        "keep": "me", FLUX_RECONCILE_ANNOTATION: "2024-05-01T12:00:05Z"}
    assert current["spec"] == git_repository(commit=OLD)["spec"]


# --- Argo CD ---------------------------------------------------------------------------------

FINISHED = "2024-05-01T12:01:00Z"


def test_argo_rollout_with_the_healthy_before_finished_trap(
        api: FakeKubernetesApi, reader: KubernetesClusterReader,
        argo_env: EnvironmentSpec) -> None:
    api.put(ARGO.application, [
        application(sync_revision=OLD, op_phase="Succeeded", op_revision=OLD,
                    finished_at="2024-05-01T11:00:00Z", health="Healthy",
                    reconciled_at="2024-05-01T11:30:00Z"),
        application(sync_revision=COMMIT, sync_status="OutOfSync", op_phase="Running",
                    op_revision=COMMIT, health="Healthy",
                    reconciled_at="2024-05-01T12:00:10Z"),
        # The trap: the sync just finished and the app still shows the old pods' health.
        application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                    finished_at=FINISHED, health="Healthy",
                    reconciled_at="2024-05-01T12:00:50Z"),
        application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                    finished_at=FINISHED, health="Progressing",
                    reconciled_at="2024-05-01T12:01:10Z"),
        application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                    finished_at=FINISHED, health="Healthy",
                    reconciled_at="2024-05-01T12:02:00Z"),
    ])
    clock = FakeClock()
    phases = []
    for _ in range(5):
        phases.append(reader.rollout_state(argo_env, commit=COMMIT).phase)
    assert phases == [RolloutPhase.PENDING, RolloutPhase.PROGRESSING,
                      RolloutPhase.PROGRESSING, RolloutPhase.PROGRESSING,
                      RolloutPhase.HEALTHY]
    assert clock.sleeps == []


def test_argo_degraded_after_sync_fails(api: FakeKubernetesApi,
                                        reader: KubernetesClusterReader,
                                        argo_env: EnvironmentSpec) -> None:
    api.put(ARGO.application, [
        application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                    finished_at=FINISHED, health="Progressing",
                    reconciled_at="2024-05-01T12:01:10Z"),
        application(sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                    finished_at=FINISHED, health="Degraded",
                    reconciled_at="2024-05-01T12:11:10Z"),
    ])
    state = _wait(reader, argo_env, FakeClock())
    assert state.phase is RolloutPhase.FAILED
    assert "Degraded" in state.reason


def test_argo_request_reconcile_refreshes_the_application(
        api: FakeKubernetesApi, reader: KubernetesClusterReader,
        argo_env: EnvironmentSpec) -> None:
    api.put(ARGO.application, application(sync_revision=OLD))
    reader.request_reconcile(argo_env, requested_at="ignored")
    assert api.current(ARGO.application)["metadata"]["annotations"] == {
        ARGO_REFRESH_ANNOTATION: "normal"}


# --- bad answers -----------------------------------------------------------------------------


def test_missing_object_is_not_found_with_the_fix(reader: KubernetesClusterReader,
                                                  api: FakeKubernetesApi,
                                                  flux_env: EnvironmentSpec) -> None:
    with pytest.raises(ClusterObjectNotFoundError) as caught:
        reader.rollout_state(flux_env, commit=COMMIT)
    assert "gitrepositories.source.toolkit.fluxcd.io flux-system/promoter-dev" in str(
        caught.value)
    assert "promoter flux --out" in str(caught.value)
    with pytest.raises(ClusterObjectNotFoundError):
        reader.request_reconcile(flux_env, requested_at="now")


def test_missing_object_stops_a_wait_at_once(reader: KubernetesClusterReader,
                                             api: FakeKubernetesApi,
                                             argo_env: EnvironmentSpec) -> None:
    clock = FakeClock()
    with pytest.raises(ClusterObjectNotFoundError):
        _wait(reader, argo_env, clock)
    assert clock.sleeps == []


def test_malformed_status_is_a_shape_error(api: FakeKubernetesApi,
                                           reader: KubernetesClusterReader,
                                           flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    broken = applied(COMMIT)
    broken["status"]["conditions"] = "Ready"
    with pytest.raises(Exception, match="conditions"):
        api.put(FLUX.kustomization, broken)  # the CRD would reject it too
    api.put(FLUX.kustomization, broken, validate=False)
    with pytest.raises(ClusterShapeError, match=r"status\.conditions: expected a list"):
        reader.rollout_state(flux_env, commit=COMMIT)


def test_a_non_object_answer_is_a_shape_error(api: FakeKubernetesApi,
                                              reader: KubernetesClusterReader,
                                              argo_env: EnvironmentSpec) -> None:
    api.put(ARGO.application, b'["not", "an", "object"]', validate=False)
    with pytest.raises(ClusterShapeError, match="not an object"):
        reader.rollout_state(argo_env, commit=COMMIT)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_down_is_unreachable(flux_env: EnvironmentSpec) -> None:
    with KubernetesClusterReader.for_host(f"http://127.0.0.1:{_closed_port()}",
                                          request_timeout_s=2) as reader:
        with pytest.raises(ClusterUnreachableError, match="unreachable") as caught:
            reader.rollout_state(flux_env, commit=COMMIT)
        assert isinstance(caught.value, ClusterError)
        assert caught.value.fix
        clock = FakeClock()
        with pytest.raises(ClusterUnreachableError):
            _wait(reader, flux_env, clock, timeout_s=10)
        assert clock.now == 10  # retried until the deadline, then raised, never TIMED_OUT


def test_server_recovers_during_a_wait(api: FakeKubernetesApi,
                                       flux_env: EnvironmentSpec) -> None:
    """A wait that first finds no server and then a healthy rollout ends HEALTHY."""
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, applied(COMMIT))
    down = KubernetesClusterReader.for_host(f"http://127.0.0.1:{_closed_port()}")
    up = KubernetesClusterReader.for_host(api.url)
    readers = [down, up]

    class Flaky:
        def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
            reader = readers.pop(0) if len(readers) > 1 else readers[0]
            return reader.rollout_state(env, commit=commit)

        def request_reconcile(self, env: EnvironmentSpec, *, requested_at: str) -> None:
            raise AssertionError("not used")

    try:
        state = wait_for_rollout(Flaky(), flux_env, commit=COMMIT, timeout_s=30, poll_s=1,
                                 clock=FakeClock(), sleep=lambda s: None)
    finally:
        down.close()
        up.close()
    assert state.phase is RolloutPhase.HEALTHY


@pytest.mark.parametrize(("code", "expected"), [(500, "answered 500"), (403, "RBAC")])
def test_api_error_is_a_cluster_error(api: FakeKubernetesApi, reader: KubernetesClusterReader,
                                      argo_env: EnvironmentSpec, code: int,
                                      expected: str) -> None:
    api.put(ARGO.application, application(sync_revision=COMMIT))
    api.fail(ARGO.application, code)
    with pytest.raises(ClusterError, match=expected) as caught:
        reader.rollout_state(argo_env, commit=COMMIT)
    assert not isinstance(caught.value, ClusterUnreachableError)
