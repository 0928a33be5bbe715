"""Training apart from serving, read by the real `kubernetes` client from the fake API server:
a TFJob that is queued, failed or suspended (or a cluster without the TFJob CRD) is reported
as the rollout's `training` state and never changes serving's verdict."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from promoter.cluster import (
    DeliveryTarget,
    RolloutPhase,
    TrainingPhase,
    flux_rollout_state,
    wait_for_rollout,
)
from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.cluster.port import RolloutState
from promoter.config import EnvironmentSpec
from promoter.server.metrics import ServerMetrics
from promoter.server.rollouts import TimedClusterReader
from tests.cluster.conftest import environment
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import (
    ARGO_TRAINING,
    COMMIT,
    FLUX_TRAINING,
    TRAINING_APPLICATION,
    applied,
    git_repository,
    synced_application,
    training_kustomization,
)

FLUX = DeliveryTarget.of(environment("flux"))
ARGO = DeliveryTarget.of(environment("argo"))

FLUX_EXPECTED = {
    "queued past the timeout": (TrainingPhase.FAILED, "InProgress"),
    "failed": (TrainingPhase.FAILED, "status: 'Failed'"),
    "suspended by Kueue": (TrainingPhase.PROGRESSING, "Progressing"),
    "no TFJob CRD in the cluster": (TrainingPhase.FAILED, "no matches for kind"),
    "JobSet queued past the timeout": (TrainingPhase.FAILED, "InProgress"),
    "JobSet failed": (TrainingPhase.FAILED, "status: 'Failed'"),
    "JobSet suspended by Kueue": (TrainingPhase.PROGRESSING, "Progressing"),
    "no JobSet CRD in the cluster": (TrainingPhase.FAILED, "no matches for kind"),
}


def test_the_training_objects_are_named_apart() -> None:
    assert FLUX.training is not None
    assert ARGO.training is not None
    assert FLUX.training.path == ("/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/"
                                  "kustomizations/promoter-dev-training")
    assert ARGO.training.path == ("/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/"
                                  "promoter-dev-training")
    assert DeliveryTarget.of(environment("flux")).kustomization.name == "promoter-dev"


@pytest.mark.parametrize("case", list(FLUX_TRAINING))
def test_flux_training_never_fails_serving(case: str, api: FakeKubernetesApi,
                                           reader: KubernetesClusterReader,
                                           flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, applied(COMMIT))
    assert FLUX.training is not None
    api.put(FLUX.training, training_kustomization(COMMIT, case))
    state = reader.rollout_state(flux_env, commit=COMMIT)
    assert state.phase is RolloutPhase.HEALTHY
    assert state.training is not None
    phase, words = FLUX_EXPECTED[case]
    assert state.training.phase is phase
    assert words in state.training.reason
    assert "promoter-dev-training" in state.training.reason
    # The same Kustomization status read as serving's (one Kustomization for both, as before
    # the split) would have failed the rollout, or held it back:
    before = flux_rollout_state(environment="dev", branch="environments/dev", commit=COMMIT,
                                git_repository=git_repository(commit=COMMIT),
                                kustomization=training_kustomization(COMMIT, case))
    assert before.phase is not RolloutPhase.HEALTHY


@pytest.mark.parametrize("case", list(ARGO_TRAINING))
def test_argo_training_never_fails_serving(case: str, api: FakeKubernetesApi,
                                           reader: KubernetesClusterReader,
                                           argo_env: EnvironmentSpec) -> None:
    health, message = ARGO_TRAINING[case]
    api.put(ARGO.application, synced_application(COMMIT, health="Healthy"))
    assert ARGO.training is not None
    api.put(ARGO.training, synced_application(COMMIT, health=health, message=message,
                                              name=TRAINING_APPLICATION))
    state = reader.rollout_state(argo_env, commit=COMMIT)
    assert state.phase is RolloutPhase.HEALTHY
    assert state.training is not None
    expected = TrainingPhase.FAILED if health == "Degraded" else TrainingPhase.PROGRESSING
    assert state.training.phase is expected
    assert health in state.training.reason
    assert message in state.training.reason


def test_healthy_training_is_reported_healthy(api: FakeKubernetesApi,
                                              reader: KubernetesClusterReader,
                                              flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, applied(COMMIT))
    assert FLUX.training is not None
    api.put(FLUX.training, applied(COMMIT, name=FLUX.training.name))
    state = reader.rollout_state(flux_env, commit=COMMIT)
    assert state.training is not None
    assert state.training.phase is TrainingPhase.HEALTHY


def test_a_missing_training_kustomization_is_unknown_not_an_error(
        api: FakeKubernetesApi, reader: KubernetesClusterReader,
        flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, applied(COMMIT))
    state = reader.rollout_state(flux_env, commit=COMMIT)
    assert state.phase is RolloutPhase.HEALTHY
    assert state.training is not None
    assert state.training.phase is TrainingPhase.UNKNOWN
    assert "promoter-dev-training" in state.training.reason


def test_an_unreadable_training_application_is_unknown(api: FakeKubernetesApi,
                                                       reader: KubernetesClusterReader,
                                                       argo_env: EnvironmentSpec) -> None:
    api.put(ARGO.application, synced_application(COMMIT, health="Healthy"))
    assert ARGO.training is not None
    api.put(ARGO.training, synced_application(COMMIT, health="Healthy",
                                              name=TRAINING_APPLICATION))
    api.fail(ARGO.training, 403)
    state = reader.rollout_state(argo_env, commit=COMMIT)
    assert state.phase is RolloutPhase.HEALTHY
    assert state.training is not None
    assert state.training.phase is TrainingPhase.UNKNOWN
    assert "403" in state.training.reason


def test_training_disabled_is_not_read(api: FakeKubernetesApi,
                                       reader: KubernetesClusterReader) -> None:
    env = EnvironmentSpec.model_validate({
        **environment("flux").model_dump(by_alias=True),
        "training": {"enabled": False}})
    target = DeliveryTarget.of(env)
    assert target.training is None
    api.put(target.git_repository, git_repository(commit=COMMIT))
    api.put(target.kustomization, applied(COMMIT))
    state = reader.rollout_state(env, commit=COMMIT)
    assert state.phase is RolloutPhase.HEALTHY
    assert state.training is not None
    assert state.training.phase is TrainingPhase.DISABLED
    assert {request.name for request in api.audit} == {"promoter-dev"}


def test_a_wait_ends_when_serving_is_healthy_whatever_training_does(
        api: FakeKubernetesApi, reader: KubernetesClusterReader,
        flux_env: EnvironmentSpec) -> None:
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, applied(COMMIT))
    assert FLUX.training is not None
    api.put(FLUX.training, training_kustomization(COMMIT, "suspended by Kueue"))
    state = wait_for_rollout(reader, flux_env, commit=COMMIT, timeout_s=30, poll_s=5,
                             clock=lambda: 0.0, sleep=lambda s: None)
    assert state.phase is RolloutPhase.HEALTHY
    assert state.training is not None
    assert state.training.phase is TrainingPhase.PROGRESSING


def test_argo_refresh_reaches_the_training_application_too(api: FakeKubernetesApi,
                                                          reader: KubernetesClusterReader,
                                                          argo_env: EnvironmentSpec) -> None:
    api.put(ARGO.application, synced_application(COMMIT, health="Healthy"))
    reader.request_reconcile(argo_env, requested_at="now")  # no training app: logged only
    assert ARGO.training is not None
    api.put(ARGO.training, synced_application(COMMIT, health="Healthy",
                                              name=TRAINING_APPLICATION))
    reader.request_reconcile(argo_env, requested_at="now")
    assert api.current(ARGO.training)["metadata"]["annotations"] == {
        "argocd.argoproj.io/refresh": "normal"}


def _training_gauge(metrics: ServerMetrics) -> dict[str, float]:
    text = metrics.exposition().decode()
    found = {}
    for line in text.splitlines():
        match = re.match(r'^promoter_training_state\{environment="dev",phase="(\w+)"\} (\S+)$',
                         line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def test_training_state_is_a_metric_of_its_own(api: FakeKubernetesApi,
                                               reader: KubernetesClusterReader,
                                               flux_env: EnvironmentSpec) -> None:
    """What `promoter serve` exposes: every reading (each resync's rollout check) sets
    `promoter_training_state`, one phase at 1; serving's verdict is untouched."""
    metrics = ServerMetrics()
    timed = TimedClusterReader(reader, commit_time=lambda sha: datetime.now(UTC),
                               observe=lambda env, s: None, on_reading=metrics.rollout_read)
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, applied(COMMIT))
    assert FLUX.training is not None
    api.put(FLUX.training, training_kustomization(COMMIT, "JobSet failed"))
    assert timed.rollout_state(flux_env, commit=COMMIT).phase is RolloutPhase.HEALTHY
    assert _training_gauge(metrics) == {str(p): (1.0 if p is TrainingPhase.FAILED else 0.0)
                                        for p in TrainingPhase}
    api.put(FLUX.training, applied(COMMIT, name=FLUX.training.name))
    timed.rollout_state(flux_env, commit=COMMIT)
    assert _training_gauge(metrics)["healthy"] == 1.0
    assert _training_gauge(metrics)["failed"] == 0.0


def test_a_failing_metric_never_fails_the_reading(api: FakeKubernetesApi,
                                                  reader: KubernetesClusterReader,
                                                  flux_env: EnvironmentSpec) -> None:
    def broken(state: RolloutState) -> None:
        raise RuntimeError("registry gone")

    timed = TimedClusterReader(reader, commit_time=lambda sha: datetime.now(UTC),
                               observe=lambda env, s: None, on_reading=broken)
    api.put(FLUX.git_repository, git_repository(commit=COMMIT))
    api.put(FLUX.kustomization, applied(COMMIT))
    assert timed.rollout_state(flux_env, commit=COMMIT).phase is RolloutPhase.HEALTHY
