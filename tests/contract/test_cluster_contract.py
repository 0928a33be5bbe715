"""The `ClusterReader` contract: the real `kubernetes` client against the fake API server (for
Flux and for Argo CD) and the scripted cluster the service tests use pass the same tests,
written against the port only.

Each harness can script a rollout as healthy or failed, make the cluster unreachable, and say
whether a sync was asked for.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from promoter.cluster import ClusterError, DeliveryTarget, RolloutPhase
from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.cluster.port import ClusterReader
from promoter.config import EnvironmentSpec
from promoter.schemas import validate_crd_object
from tests.cluster.conftest import environment
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import COMMIT, application, applied, git_repository, kustomization
from tests.fakes.scripted import ScriptedCluster


@dataclass
class ClusterHarness:
    env: EnvironmentSpec
    reader: ClusterReader
    script: Callable[[RolloutPhase], None]
    """Make the rollout of COMMIT read as HEALTHY or FAILED."""
    unreachable: Callable[[], ClusterReader]
    """A reader of the same kind whose cluster cannot be reached."""
    synced: Callable[[], bool]
    """Whether a sync was asked for since the harness was made."""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _down() -> ClusterReader:
    return KubernetesClusterReader.for_host(f"http://127.0.0.1:{_closed_port()}",
                                            request_timeout_s=2)


@pytest.fixture(params=["kubernetes-flux", "kubernetes-argo", "scripted"])
def harness(request: pytest.FixtureRequest) -> Iterator[ClusterHarness]:
    if request.param == "scripted":
        cluster = ScriptedCluster()

        def script(phase: RolloutPhase) -> None:
            cluster.phases["dev"] = phase
        yield ClusterHarness(environment("flux"), cluster, script,
                             lambda: ScriptedCluster(unreachable=True),
                             lambda: cluster.reconcile_requests == ["dev"])
        return
    tool = request.param.removeprefix("kubernetes-")
    env = environment(tool)
    target = DeliveryTarget.of(env)
    with FakeKubernetesApi(validator=validate_crd_object) as api, \
            KubernetesClusterReader.for_host(api.url, request_timeout_s=5) as reader:
        def script_k8s(phase: RolloutPhase) -> None:
            healthy = phase is RolloutPhase.HEALTHY
            if tool == "flux":
                api.put(target.git_repository, git_repository(commit=COMMIT))
                api.put(target.kustomization, applied(COMMIT) if healthy else kustomization(
                    attempted=COMMIT, applied=COMMIT,
                    ready=("False", "HealthCheckFailed", "Deployment ml-dev/churn failed"),
                    healthy=("False", "HealthCheckFailed", "Deployment ml-dev/churn failed")))
            else:
                api.put(target.application, application(
                    sync_revision=COMMIT, op_phase="Succeeded", op_revision=COMMIT,
                    finished_at="2024-05-01T12:01:00Z",
                    health="Healthy" if healthy else "Degraded",
                    reconciled_at="2024-05-01T12:02:00Z"))

        def synced() -> bool:
            return bool(api.patches)
        yield ClusterHarness(env, reader, script_k8s, _down, synced)


@pytest.mark.parametrize("phase", [RolloutPhase.HEALTHY, RolloutPhase.FAILED])
def test_a_rollout_reads_as_scripted(harness: ClusterHarness, phase: RolloutPhase) -> None:
    harness.script(phase)
    state = harness.reader.rollout_state(harness.env, commit=COMMIT)
    assert (state.environment, state.commit, state.phase) == ("dev", COMMIT, phase)
    assert state.done
    assert state.reason


def test_an_unreachable_cluster_is_a_cluster_error_never_a_verdict(
        harness: ClusterHarness) -> None:
    reader = harness.unreachable()
    with pytest.raises(ClusterError) as caught:
        reader.rollout_state(harness.env, commit=COMMIT)
    assert caught.value.fix or "127.0.0.1" in caught.value.message


def test_a_sync_can_be_asked_for(harness: ClusterHarness) -> None:
    harness.script(RolloutPhase.HEALTHY)
    assert not harness.synced()
    harness.reader.request_reconcile(harness.env, requested_at="2024-05-01T12:00:05Z")
    assert harness.synced()
