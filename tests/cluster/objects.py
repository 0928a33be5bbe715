"""Builders of Flux and Argo CD objects as a cluster serves them, status included.

Each returns a plain dict shaped like the real controller's output (conditions with every
required field, RFC 3339 times), so tests can validate them against the CRDs before serving.
"""

from __future__ import annotations

import copy
from typing import Any

COMMIT = "1" * 40
"""The commit being rolled out."""
OLD = "0" * 40
"""The commit that ran before."""
T0 = "2024-05-01T12:00:00Z"

Condition = tuple[str, str, str]
"""(status, reason, message) of a condition."""


def condition(kind: str, cond: Condition, *, at: str = T0,
              generation: int | None = None) -> dict[str, Any]:
    status, reason, message = cond
    out: dict[str, Any] = {"type": kind, "status": status, "reason": reason,
                           "message": message, "lastTransitionTime": at}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def git_repository(*, commit: str | None, branch: str = "environments/dev",
                   name: str = "promoter-dev", namespace: str = "flux-system",
                   ready: Condition = ("True", "Succeeded", "stored artifact"),
                   annotations: dict[str, str] | None = None) -> dict[str, Any]:
    revision = f"{branch}@sha1:{commit}" if commit else None
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": [condition("Ready", ready, generation=1)],
    }
    if revision:
        status["artifact"] = {
            "revision": revision, "digest": "sha256:" + "ab" * 32, "lastUpdateTime": T0,
            "path": f"gitrepository/{namespace}/{name}/{commit}.tar.gz",
            "url": f"http://source-controller.flux-system.svc/{commit}.tar.gz", "size": 1024,
        }
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "generation": 1,
                                "resourceVersion": "1"}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": metadata,
        "spec": {"interval": "10m", "url": "https://github.com/acme/ml-gitops.git",
                 "ref": {"branch": branch}},
        "status": status,
    }


def kustomization(*, attempted: str | None, applied: str | None,
                  ready: Condition | None, healthy: Condition | None = None,
                  branch: str = "environments/dev", name: str = "promoter-dev",
                  namespace: str = "flux-system", wait: bool = True, generation: int = 1,
                  observed_generation: int = 1) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed_generation, "conditions": []}
    if attempted:
        status["lastAttemptedRevision"] = f"{branch}@sha1:{attempted}"
    if applied:
        status["lastAppliedRevision"] = f"{branch}@sha1:{applied}"
    if ready:
        status["conditions"].append(condition("Ready", ready, generation=observed_generation))
    if healthy:
        status["conditions"].append(condition("Healthy", healthy,
                                              generation=observed_generation))
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {"interval": "10m", "prune": True, "wait": wait, "timeout": "5m", "path": "./",
                 "sourceRef": {"kind": "GitRepository", "name": name}},
        "status": status,
    }


def applied(commit: str, **kwargs: Any) -> dict[str, Any]:
    """A Kustomization that applied `commit` and is healthy."""
    return kustomization(
        attempted=commit, applied=commit,
        ready=("True", "ReconciliationSucceeded",
               f"Applied revision: environments/dev@sha1:{commit}"),
        healthy=("True", "Succeeded", "Health check passed"), **kwargs)


def application(*, sync_revision: str | None, sync_status: str = "Synced",
                op_phase: str | None = None, op_revision: str | None = None,
                finished_at: str | None = None, health: str | None = None,
                reconciled_at: str | None = None, health_since: str | None = None,
                pending_operation: bool = False, name: str = "promoter-dev",
                namespace: str = "argocd", message: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if sync_revision is not None:
        status["sync"] = {"status": sync_status, "revision": sync_revision}
    if op_phase is not None:
        op: dict[str, Any] = {
            "operation": {"sync": {"revision": op_revision or sync_revision},
                          "initiatedBy": {"automated": True}},
            "phase": op_phase, "startedAt": "2024-05-01T12:00:00Z", "message": message,
        }
        if op_revision is not None:
            op["syncResult"] = {"revision": op_revision}
        if finished_at is not None:
            op["finishedAt"] = finished_at
        status["operationState"] = op
    if health is not None:
        status["health"] = {"status": health}
        if health_since:
            status["health"]["lastTransitionTime"] = health_since
    if reconciled_at is not None:
        status["reconciledAt"] = reconciled_at
    obj: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "generation": 3},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://github.com/acme/ml-gitops.git",
                            "targetRevision": "environments/dev", "path": "."},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": "ml-dev"}},
    }
    if status:
        obj["status"] = status
    if pending_operation:
        obj["operation"] = {"sync": {"revision": sync_revision},
                            "initiatedBy": {"username": "admin"}}
    return obj


def with_status(obj: dict[str, Any], **status: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.setdefault("status", {}).update(status)
    return out


# --- training, delivered apart from serving --------------------------------------------------

TRAINING_KUSTOMIZATION = "promoter-dev-training"
TRAINING_APPLICATION = "promoter-dev-training"
TFJOB = "TFJob/ml-dev/churn-train-v2"
JOBSET = "JobSet/ml-dev/churn-train-v2"

FLUX_TRAINING: dict[str, tuple[Condition, Condition | None]] = {
    # Ready and Healthy of the training Kustomization, in kustomize-controller's words, for a
    # TFJob in each state (the TFJob health rules of `promoter flux`).
    "queued past the timeout": (
        ("False", "HealthCheckFailed",
         f"health check failed after 30m0s: timeout waiting for: [{TFJOB} status: "
         "'InProgress']"),
        ("False", "HealthCheckFailed", f"timeout waiting for: [{TFJOB} status: 'InProgress']")),
    "failed": (
        ("False", "HealthCheckFailed",
         f"health check failed after 1m5s: failed early due to stalled resources: [{TFJOB} "
         "status: 'Failed']"),
        ("False", "HealthCheckFailed", f"[{TFJOB} status: 'Failed']")),
    "suspended by Kueue": (
        ("Unknown", "Progressing", "Running health checks for revision with a timeout of 30m0s"),
        ("Unknown", "Progressing", f"[{TFJOB} status: 'InProgress']")),
    "no TFJob CRD in the cluster": (
        ("False", "ReconciliationFailed",
         f'{TFJOB} dry-run failed: no matches for kind "TFJob" in version "kubeflow.org/v1"'),
        None),
    # The same for a JobSet (training.kind: JobSet, the JobSet rules of `promoter flux`).
    "JobSet queued past the timeout": (
        ("False", "HealthCheckFailed",
         f"health check failed after 30m0s: timeout waiting for: [{JOBSET} status: "
         "'InProgress']"),
        ("False", "HealthCheckFailed", f"timeout waiting for: [{JOBSET} status: 'InProgress']")),
    "JobSet failed": (
        ("False", "HealthCheckFailed",
         f"health check failed after 2m10s: failed early due to stalled resources: [{JOBSET} "
         "status: 'Failed']"),
        ("False", "HealthCheckFailed", f"[{JOBSET} status: 'Failed']")),
    "JobSet suspended by Kueue": (
        ("Unknown", "Progressing", "Running health checks for revision with a timeout of 30m0s"),
        ("Unknown", "Progressing", f"[{JOBSET} status: 'InProgress']")),
    "no JobSet CRD in the cluster": (
        ("False", "ReconciliationFailed",
         f'{JOBSET} dry-run failed: no matches for kind "JobSet" in version '
         '"jobset.x-k8s.io/v1alpha2"'),
        None),
}
"""How a training Kustomization reports a TFJob or JobSet that is not running, by case."""


def training_kustomization(commit: str, case: str) -> dict[str, Any]:
    """The training Kustomization having tried `commit`, with the TFJob in state `case`."""
    ready, healthy = FLUX_TRAINING[case]
    # Flux moves lastAppliedRevision only once the health checks passed.
    return kustomization(attempted=commit, applied=OLD, ready=ready, healthy=healthy,
                         name=TRAINING_KUSTOMIZATION)


ARGO_TRAINING: dict[str, tuple[str, str]] = {
    # The training Application's health, from the argocd-cm checks of `promoter argo`.
    "queued": ("Progressing", "Waiting for the TFJob's replicas to run"),
    "failed": ("Degraded", "TFJob churn-train-v2 has failed because one Worker replica(s) "
                           "failed."),
    "suspended by Kueue": ("Suspended", "TFJob is suspended"),
    # The JobSet check's words (tests/companion/test_training_health.py runs it on such JobSets).
    "JobSet queued": ("Progressing", "Waiting for the JobSet's Jobs to run"),
    "JobSet failed": ("Degraded", "jobset failed due to reaching max number of restarts"),
    "JobSet suspended by Kueue": ("Suspended", "jobset is suspended"),
}


def synced_application(commit: str, *, health: str, message: str = "",
                       name: str = "promoter-dev") -> dict[str, Any]:
    """An Application synced to `commit`, with `health` observed after the sync finished."""
    app = application(sync_revision=commit, op_phase="Succeeded", op_revision=commit,
                      finished_at="2024-05-01T12:01:00Z", health=health,
                      reconciled_at="2024-05-01T12:02:00Z", name=name)
    if message:
        app["status"]["health"]["message"] = message
    return app
