"""A serving pod whose `fetch-model` init container fails (the bytes at the store are not the
pinned digest, or the store cannot be read) is a failed rollout, and the rollback flow
answers it: real git, the local forge, the real `kubernetes` client on the fake API server.

The cluster is served as it reports that failure, link by link (kubelet, Deployment
controller, then Flux's kstatus health checks or Argo CD's Deployment health):
- the pod stays `Pending` with `Init:Error`, then `Init:CrashLoopBackOff`: its
  `initContainerStatuses[fetch-model]` terminated with exit code 1, then waiting in
  `CrashLoopBackOff`, and TF Serving never starts;
- the Deployment's new ReplicaSet never becomes available: `Progressing=True` while it
  tries, then, after `progressDeadlineSeconds`, `Progressing=False` with reason
  `ProgressDeadlineExceeded`;
- Flux (`wait: true`): before the deadline, its health check times out (`timeout waiting
  for: [Deployment/… status: 'InProgress']`); after it, kstatus calls the Deployment
  `Failed` and Flux fails early (`failed early due to stalled resources: [Deployment/…
  status: 'Failed']`); either way `Ready=False`/`HealthCheckFailed` with
  `lastAttemptedRevision` the commit and `lastAppliedRevision` the old one;
- Argo CD: the sync succeeds (applying is all it does); the Application's health is
  `Progressing` until the deadline, then `Degraded`, with the Deployment's own health
  message in `status.resources` (`Deployment "churn" exceeded its progress deadline`).

Promoter reads only the Flux and Argo CD objects (all that its RBAC grants): the pod and the
Deployment are served too, and the test checks that nothing asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from promoter.cluster import DeliveryTarget, ObjectRef, RolloutPhase
from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.config.loader import load_settings
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService
from promoter.promotion.rollback import RollbackService
from promoter.schemas import validate_crd_object
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import (
    applied,
    git_repository,
    kustomization,
    synced_application,
)
from tests.fixtures.git import run_git
from tests.promotion.world import World

BRANCH = "environments/dev"
T_APPLIED = "2024-05-01T12:00:05Z"
T_CRASH = "2024-05-01T12:00:30Z"
T_DEADLINE = "2024-05-01T12:10:05Z"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def api() -> Iterator[FakeKubernetesApi]:
    with FakeKubernetesApi(validator=validate_crd_object) as server:
        yield server


@pytest.fixture
def reader(api: FakeKubernetesApi) -> Iterator[KubernetesClusterReader]:
    with KubernetesClusterReader.for_host(api.url, request_timeout_s=5) as client:
        yield client


def _service(world: World, reader: KubernetesClusterReader, clock: Clock) -> PromotionService:
    repo = LocalGitRepository(world.root, clock=clock)
    forge = LocalForge(world.root / ".git" / "promoter" / "forge.sqlite", repo, clock=clock)
    return PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
        clock=clock, cluster=reader, rollbacks=RollbackService(repo=repo, forge=forge))


def rendered_deployment(world: World) -> dict[str, Any]:
    """The serving Deployment as the environment branch holds it (what Flux/Argo apply)."""
    text = run_git(world.root, "show", f"{BRANCH}:serving/deployment.yaml")
    deployment: dict[str, Any] = yaml.safe_load(text)
    init = [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]]
    assert init == ["fetch-model"]
    return deployment


def failing_pod(deployment: dict[str, Any], *, crash_looping: bool) -> dict[str, Any]:
    """The Deployment's pod as the kubelet reports it: fetch-model exited 1, TF Serving
    waits in PodInitializing."""
    meta = deployment["metadata"]
    last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": T_APPLIED,
                           "finishedAt": T_CRASH, "containerID": "containerd://f3"}}
    init_state = ({"waiting": {"reason": "CrashLoopBackOff",
                               "message": "back-off 40s restarting failed container="
                                          "fetch-model pod=..."}}
                  if crash_looping else last)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{meta['name']}-6d9f7c9b8-x2x7q", "namespace": meta["namespace"],
                     "labels": deployment["spec"]["template"]["metadata"]["labels"]},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
                 "message": "containers with incomplete status: [fetch-model]"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "initContainerStatuses": [{
                "name": "fetch-model", "ready": False, "restartCount": 3 if crash_looping else 0,
                "state": init_state, "lastState": last if crash_looping else {},
                "image": deployment["spec"]["template"]["spec"]["initContainers"][0]["image"]}],
            "containerStatuses": [{
                "name": "tensorflow-serving", "ready": False, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}}}],
        },
    }


def deployment_status(deployment: dict[str, Any], *, past_deadline: bool) -> dict[str, Any]:
    """The Deployment with the status its controller writes while no new pod is ready."""
    name = deployment["metadata"]["name"]
    progressing = (
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": f'ReplicaSet "{name}-6d9f7c9b8" has timed out progressing.',
         "lastUpdateTime": T_DEADLINE, "lastTransitionTime": T_DEADLINE}
        if past_deadline else
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
         "message": f'ReplicaSet "{name}-6d9f7c9b8" is progressing.',
         "lastUpdateTime": T_APPLIED, "lastTransitionTime": T_APPLIED})
    return {**deployment, "status": {
        "observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1,
        "availableReplicas": 1, "unavailableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True",
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                        "lastUpdateTime": T_APPLIED, "lastTransitionTime": T_APPLIED},
                       progressing]}}


def serve_workload(api: FakeKubernetesApi, deployment: dict[str, Any], *,
                   past_deadline: bool) -> tuple[ObjectRef, ObjectRef]:
    """Serve the Deployment and its pod (not CRD objects: served unvalidated)."""
    meta = deployment["metadata"]
    pod = failing_pod(deployment, crash_looping=True)
    deployment_ref = ObjectRef("apps", "v1", "deployments", meta["namespace"], meta["name"])
    pod_ref = ObjectRef("", "v1", "pods", meta["namespace"], pod["metadata"]["name"])
    api.put(deployment_ref, deployment_status(deployment, past_deadline=past_deadline),
            validate=False)
    api.put(pod_ref, pod, validate=False)
    return deployment_ref, pod_ref


def assert_workload_never_read(api: FakeKubernetesApi, *refs: ObjectRef) -> None:
    asked = {(request.resource, request.name) for request in api.audit}
    assert asked
    for ref in refs:
        assert (ref.plural, ref.name) not in asked


def flux_failure(deployment: dict[str, Any], *, past_deadline: bool
                 ) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """Ready and Healthy of the serving Kustomization, in kustomize-controller's words."""
    meta = deployment["metadata"]
    what = f"Deployment/{meta['namespace']}/{meta['name']}"
    if past_deadline:
        return (("False", "HealthCheckFailed", "health check failed after 18.3ms: failed early "
                 f"due to stalled resources: [{what} status: 'Failed']"),
                ("False", "HealthCheckFailed", f"[{what} status: 'Failed']"))
    return (("False", "HealthCheckFailed", "health check failed after 5m0.04s: timeout waiting "
             f"for: [{what} status: 'InProgress']"),
            ("False", "HealthCheckFailed", f"timeout waiting for: [{what} status: 'InProgress']"))


@pytest.mark.parametrize("past_deadline", [False, True],
                         ids=["health-check-timeout", "progress-deadline-exceeded"])
def test_a_failing_fetch_model_under_flux_is_a_failed_rollout_and_rolled_back(
        world_at: Callable[..., World], api: FakeKubernetesApi,
        reader: KubernetesClusterReader, past_deadline: bool) -> None:
    world = world_at(1, 2)
    head = run_git(world.root, "rev-parse", BRANCH)
    before = run_git(world.root, "rev-parse", f"{BRANCH}~1")
    target = DeliveryTarget.of(world.service.dry_config()[1].environment("dev"))
    assert target.tool == "flux"
    assert target.training is not None
    deployment = rendered_deployment(world)
    workload = serve_workload(api, deployment, past_deadline=past_deadline)
    ready, healthy = flux_failure(deployment, past_deadline=past_deadline)
    api.put(target.git_repository, git_repository(commit=head))
    api.put(target.kustomization, kustomization(attempted=head, applied=before, ready=ready,
                                                healthy=healthy))
    api.put(target.training, applied(head, name=target.training.name))

    (check,) = [c for c in _service(world, reader, Clock()).check_rollouts()
                if c.environment == "dev"]

    assert check.state is not None
    assert check.state.phase is RolloutPhase.FAILED
    name = deployment["metadata"]["name"]
    assert f"Deployment/ml-dev/{name}" in check.state.reason
    assert "HealthCheckFailed" in check.state.reason
    assert check.rollback is not None
    assert check.rollback.merge_sha is not None  # autoMergeRollback: the default
    assert int(world.metadata(BRANCH)["promoter"]["version"]) == 1
    message = run_git(world.root, "log", "-1", "--format=%B", check.rollback.commit)
    assert f"Deployment/ml-dev/{name}" in message
    assert_workload_never_read(api, *workload)


def test_a_failing_fetch_model_under_argo_is_degraded_named_and_rolled_back(
        world_at: Callable[..., World], api: FakeKubernetesApi,
        reader: KubernetesClusterReader) -> None:
    world = world_at(1, 2)
    world.commit_dry_change("environments/dev.yaml", "policy: dev\n",
                            "policy: dev\ndelivery:\n  tool: argo\n")
    head = run_git(world.root, "rev-parse", BRANCH)
    target = DeliveryTarget.of(world.service.dry_config()[1].environment("dev"))
    assert target.tool == "argo"
    assert target.training is not None
    deployment = rendered_deployment(world)
    workload = serve_workload(api, deployment, past_deadline=True)
    name = deployment["metadata"]["name"]
    app = synced_application(head, health="Degraded")
    app["status"]["health"]["lastTransitionTime"] = T_DEADLINE  # Argo CD 3: no message
    app["status"]["resources"] = [
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "ml-dev",
         "name": name, "status": "Synced",
         "health": {"status": "Degraded",
                    "message": f'Deployment "{name}" exceeded its progress deadline'}},
        {"version": "v1", "kind": "Service", "namespace": "ml-dev", "name": name,
         "status": "Synced", "health": {"status": "Healthy"}},
    ]
    api.put(target.application, app)
    api.put(target.training, synced_application(head, health="Healthy",
                                                name=target.training.name))

    (check,) = [c for c in _service(world, reader, Clock()).check_rollouts()
                if c.environment == "dev"]

    assert check.state is not None
    assert check.state.phase is RolloutPhase.FAILED
    assert check.state.reason == (
        f"Application {target.application.name} is Degraded after the sync: Deployment "
        f'{name}: Deployment "{name}" exceeded its progress deadline')
    assert check.rollback is not None
    assert check.rollback.merge_sha is not None
    assert int(world.metadata(BRANCH)["promoter"]["version"]) == 1
    message = run_git(world.root, "log", "-1", "--format=%B", check.rollback.commit)
    assert f'Deployment "{name}" exceeded its progress deadline' in message
    assert_workload_never_read(api, *workload)


def test_under_argo_a_crash_loop_before_the_deadline_times_out_into_a_rollback(
        world_at: Callable[..., World], api: FakeKubernetesApi,
        reader: KubernetesClusterReader) -> None:
    """Before `progressDeadlineSeconds` Argo CD calls the Deployment Progressing, whatever
    its pods do; promoter's own deadline (`delivery.healthTimeoutSeconds`, from the merge)
    turns that into a timed-out rollout, and rolls back."""
    world = world_at(1, 2)
    world.commit_dry_change("environments/dev.yaml", "policy: dev\n",
                            "policy: dev\ndelivery:\n  tool: argo\n")
    head = run_git(world.root, "rev-parse", BRANCH)
    target = DeliveryTarget.of(world.service.dry_config()[1].environment("dev"))
    assert target.training is not None
    deployment = rendered_deployment(world)
    serve_workload(api, deployment, past_deadline=False)
    app = synced_application(head, health="Progressing")
    api.put(target.application, app)
    api.put(target.training, synced_application(head, health="Healthy",
                                                name=target.training.name))
    clock = Clock()
    service = _service(world, reader, clock)
    (check,) = [c for c in service.check_rollouts() if c.environment == "dev"]
    assert check.state is not None
    assert check.state.phase is RolloutPhase.PROGRESSING
    assert check.rollback is None

    clock.now += timedelta(hours=1)  # past healthTimeoutSeconds since the merge
    (check,) = [c for c in service.check_rollouts() if c.environment == "dev"]
    assert check.state is not None
    assert check.state.phase is RolloutPhase.TIMED_OUT
    assert check.rollback is not None
    assert int(world.metadata(BRANCH)["promoter"]["version"]) == 1
