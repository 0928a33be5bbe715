"""The cluster port: what promoter needs from the cluster running Flux or Argo CD."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from promoter.config.schema import EnvironmentSpec

FLUX_RECONCILE_ANNOTATION = "reconcile.fluxcd.io/requestedAt"
"""Set to a new value on a Flux object to make its controller reconcile it now."""
ARGO_REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
"""Set to `normal` on an Application to make Argo CD compare it with git now."""


class RolloutPhase(enum.StrEnum):
    PENDING = "pending"
    """The controller has not picked up the commit yet (it still shows an older one)."""
    PROGRESSING = "progressing"
    """The commit is being applied or its workloads are not healthy yet."""
    HEALTHY = "healthy"
    """The commit is applied and every health check passed, by the documented rules."""
    FAILED = "failed"
    """The controller tried the commit and reported failure (apply or health check)."""
    TIMED_OUT = "timed_out"
    """Only from `wait_for_rollout`: not healthy within the timeout."""


class TrainingPhase(enum.StrEnum):
    """Where the training part of an environment branch stands: reported, never gating."""

    DISABLED = "disabled"
    """`training.enabled: false`: nothing to deliver."""
    PENDING = "pending"
    """The training Kustomization/Application has not picked up the commit yet."""
    PROGRESSING = "progressing"
    """Being applied, or the job is queued, suspended or starting."""
    HEALTHY = "healthy"
    """Applied and the job runs (or, with `delivery.waitForTraining`, succeeded)."""
    FAILED = "failed"
    """The controller reported failure: the job failed, did not run within
    `delivery.trainingTimeout`, or could not be applied (no TFJob or JobSet CRD)."""
    UNKNOWN = "unknown"
    """The training objects could not be read (missing, RBAC, an unexpected shape)."""


@dataclass(frozen=True, slots=True)
class TrainingState:
    """The training part's state for the same commit, beside the serving verdict."""

    phase: TrainingPhase
    reason: str
    """One line, with the controller's own reason and message where it has one."""


@dataclass(frozen=True, slots=True)
class RolloutState:
    """What the cluster says about one commit of one environment branch.

    `phase` is the serving rollout's alone: it is what gates promotions and triggers
    rollbacks. Training's state is `training`, reported beside it.
    """

    environment: str
    commit: str
    """The environment branch commit asked about (40 hex)."""
    phase: RolloutPhase
    reason: str
    """One line saying why, with the controller's own reason and message where it has one."""
    observed_revision: str | None = None
    """What the controller last applied (Flux `lastAppliedRevision`, Argo `sync.revision`)."""
    healthy_since: datetime | None = None
    """When HEALTHY: since when, by the controller's own clock (Flux: the latest transition
    of the Kustomization's Ready/Healthy conditions; Argo CD: the later of the sync's end and
    the health status's last transition). None when not healthy or the object does not say."""
    training: TrainingState | None = None
    """The training part's state for the same commit; None when the reader does not read
    it. Never part of `phase`: a queued, failed or suspended training job leaves serving's
    verdict alone."""

    @property
    def done(self) -> bool:
        """True when waiting longer cannot change the verdict."""
        return self.phase in (RolloutPhase.HEALTHY, RolloutPhase.FAILED, RolloutPhase.TIMED_OUT)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A namespaced custom object, as the API server addresses it."""

    group: str
    version: str
    plural: str
    namespace: str
    name: str

    @property
    def path(self) -> str:
        """The API path, e.g. `/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/x`."""
        return (f"/apis/{self.group}/{self.version}/namespaces/{self.namespace}/"
                f"{self.plural}/{self.name}")

    def __str__(self) -> str:
        return f"{self.plural}.{self.group} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """Which objects deliver an environment branch, as `promoter flux`/`argo` name them."""

    environment: str
    branch: str
    tool: Literal["flux", "argo"]
    namespace: str
    name: str
    """The serving Kustomization (and the GitRepository) or Application."""
    training_name: str | None = None
    """The training Kustomization or Application; None when training is disabled."""

    @classmethod
    def of(cls, env: EnvironmentSpec) -> DeliveryTarget:
        delivery = env.delivery
        return cls(environment=env.name, branch=env.branch, tool=delivery.tool,
                   namespace=delivery.namespace_for(), name=delivery.object_name(env.name),
                   training_name=(delivery.training_object_name(env.name)
                                  if env.training.enabled else None))

    @property
    def git_repository(self) -> ObjectRef:
        return ObjectRef("source.toolkit.fluxcd.io", "v1", "gitrepositories", self.namespace,
                         self.name)

    @property
    def kustomization(self) -> ObjectRef:
        return ObjectRef("kustomize.toolkit.fluxcd.io", "v1", "kustomizations",
                         self.namespace, self.name)

    @property
    def application(self) -> ObjectRef:
        return ObjectRef("argoproj.io", "v1alpha1", "applications", self.namespace, self.name)

    @property
    def training(self) -> ObjectRef | None:
        """The training Kustomization (Flux) or Application (Argo CD), if training is on."""
        if self.training_name is None:
            return None
        serving = self.kustomization if self.tool == "flux" else self.application
        return ObjectRef(serving.group, serving.version, serving.plural, self.namespace,
                         self.training_name)


class ClusterReader(Protocol):
    """Port to the cluster where Flux or Argo CD sync the environment branches.

    Every method raises a ClusterError subclass when it cannot tell (object missing, of an
    unexpected shape, API server unreachable); never a library exception.
    """

    def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
        """Where the rollout of `commit` (a full sha on `env.branch`) stands now: serving's
        verdict, and training's state beside it (an unreadable training part is UNKNOWN,
        never an error of this call)."""
        ...

    def request_reconcile(self, env: EnvironmentSpec, *, requested_at: str) -> None:
        """Ask the controller to sync `env` now instead of at its next interval.

        Flux: sets `reconcile.fluxcd.io/requestedAt: <requested_at>` on the GitRepository
        (a new value each time, e.g. an RFC 3339 time). Argo CD: sets
        `argocd.argoproj.io/refresh: normal` on the Application, and on the training
        Application (best effort: a failure there is logged, not raised). A merge patch:
        nothing else on the object changes.
        """
        ...
