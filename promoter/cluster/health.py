"""The rollout decision, from the plain dicts of Flux or Argo CD objects (pure).

The rules are the controllers' documented ones (summarized in the README's "Flux or Argo CD"
section); each function reads only what it is given, so it is tested table-driven without a
cluster. A field of the wrong type raises ClusterShapeError naming the object and field; a
field that is merely absent (a controller that has not reported yet) is not an error, it means
"not there yet".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NoReturn

from promoter.cluster.errors import ClusterShapeError
from promoter.cluster.port import RolloutPhase, RolloutState, TrainingPhase, TrainingState

READY_SUCCEEDED = "ReconciliationSucceeded"


def flux_revision(branch: str, commit: str) -> str:
    """Flux's revision string for `commit` on `branch`: `<branch>@sha1:<commit>`."""
    return f"{branch}@sha1:{commit}"


# --- Flux ------------------------------------------------------------------------------------


def flux_rollout_state(*, environment: str, branch: str, commit: str,
                       git_repository: Mapping[str, Any],
                       kustomization: Mapping[str, Any]) -> RolloutState:
    """Decide where `commit` stands from a GitRepository and its Kustomization.

    Healthy: the GitRepository's `status.artifact.revision` and the Kustomization's
    `status.lastAppliedRevision` are `<branch>@sha1:<commit>`, its `observedGeneration` is
    `metadata.generation`, `Ready=True` with reason `ReconciliationSucceeded`, and
    `Healthy=True` when health checks are set (`wait: true` or `healthChecks`). Failed:
    `lastAttemptedRevision` is the commit and `Ready=False`.
    """
    wanted = flux_revision(branch, commit)
    source = _Object(git_repository, "GitRepository")
    sync = _Object(kustomization, "Kustomization")

    def state(phase: RolloutPhase, reason: str) -> RolloutState:
        return RolloutState(environment=environment, commit=commit, phase=phase, reason=reason,
                            observed_revision=sync.string("status", "lastAppliedRevision"))

    artifact = source.string("status", "artifact", "revision")
    attempted = sync.string("status", "lastAttemptedRevision")
    applied = sync.string("status", "lastAppliedRevision")
    ready = sync.condition("Ready")
    healthy = sync.condition("Healthy")
    checks = sync.field("spec", "wait") is True or bool(sync.list("spec", "healthChecks"))
    current = sync.integer("status", "observedGeneration") == sync.integer(
        "metadata", "generation")

    if attempted == wanted and ready is not None and ready.get("status") == "False":
        return state(RolloutPhase.FAILED, f"Kustomization {sync.name}: {_describe(ready)}")
    if artifact != wanted:
        source_ready = source.condition("Ready")
        detail = f"; source {_describe(source_ready)}" if source_ready else ""
        return state(RolloutPhase.PENDING,
                     f"GitRepository {source.name} is at {artifact or 'no artifact'}, "
                     f"not {wanted}{detail}")
    if not current:
        return state(RolloutPhase.PROGRESSING,
                     f"Kustomization {sync.name} has not observed its latest spec yet")
    if applied != wanted:
        what = _describe(ready) if ready else "no Ready condition yet"
        return state(RolloutPhase.PROGRESSING,
                     f"Kustomization {sync.name} is applying {wanted}: {what}")
    if ready is None or ready.get("status") != "True" or ready.get("reason") != READY_SUCCEEDED:
        return state(RolloutPhase.PROGRESSING,
                     f"Kustomization {sync.name}: {_describe(ready) if ready else 'not Ready'}")
    if checks and (healthy is None or healthy.get("status") != "True"):
        what = _describe(healthy) if healthy else "no Healthy condition yet"
        return state(RolloutPhase.PROGRESSING, f"Kustomization {sync.name} health: {what}")
    since = max((t for t in (sync.condition_time("Ready"),
                             sync.condition_time("Healthy") if checks else None)
                 if t is not None), default=None)
    return replace(state(RolloutPhase.HEALTHY, f"Kustomization {sync.name} applied {wanted}"
                         + (" and its health checks passed" if checks else "")),
                   healthy_since=since)


# --- Argo CD ---------------------------------------------------------------------------------

FAILED_OPERATION_PHASES = ("Failed", "Error")


def argo_rollout_state(*, environment: str, commit: str,
                       application: Mapping[str, Any]) -> RolloutState:
    """Decide where `commit` stands from an Argo CD Application.

    Healthy: `status.sync.status` Synced at `status.sync.revision` = commit; the last
    operation `Succeeded` with `syncResult.revision` = commit; no pending `operation`; and
    `status.health.status` Healthy *observed after* `operationState.finishedAt` (the later of
    `status.reconciledAt` and `health.lastTransitionTime` is strictly after it), because an
    application can look Healthy for a moment before its rollout starts. Failed: the
    operation for the commit ended `Failed`/`Error`, or the application is `Degraded` after
    that operation finished.
    """
    app = _Object(application, "Application")
    synced_revision = app.string("status", "sync", "revision")

    def state(phase: RolloutPhase, reason: str) -> RolloutState:
        return RolloutState(environment=environment, commit=commit, phase=phase, reason=reason,
                            observed_revision=synced_revision)

    sync_status = app.string("status", "sync", "status")
    op_phase = app.string("status", "operationState", "phase")
    op_revision = app.string("status", "operationState", "syncResult", "revision")
    op_message = app.string("status", "operationState", "message") or ""
    finished = app.time("status", "operationState", "finishedAt")
    health = app.string("status", "health", "status")
    health_message = app.string("status", "health", "message") or ""
    observed = max((t for t in (app.time("status", "reconciledAt"),
                                app.time("status", "health", "lastTransitionTime"))
                    if t is not None), default=None)
    name = app.name

    if op_revision == commit and op_phase in FAILED_OPERATION_PHASES:
        return state(RolloutPhase.FAILED,
                     f"Application {name}: sync {op_phase}: {op_message}".rstrip(": "))
    if app.field("operation") is not None:
        return state(RolloutPhase.PROGRESSING, f"Application {name}: an operation is pending")
    if synced_revision != commit:
        return state(RolloutPhase.PENDING, f"Application {name} is at "
                     f"{synced_revision or 'no revision'}, not {commit}")
    if op_revision != commit or op_phase != "Succeeded":
        return state(RolloutPhase.PROGRESSING, f"Application {name}: sync of {commit[:12]} "
                     f"is {op_phase or 'not started'}")
    after_sync = finished is not None and observed is not None and observed > finished
    if health == "Degraded" and after_sync:
        # Argo CD 3 no longer fills the Application's own health message: what failed is in
        # its resources' health (a Deployment past its progress deadline, because the pods'
        # fetch-model init container keeps failing).
        detail = health_message or _degraded_resources(app)
        return state(RolloutPhase.FAILED, f"Application {name} is Degraded after the sync"
                     + (f": {detail}" if detail else ""))
    if sync_status != "Synced":
        return state(RolloutPhase.PROGRESSING, f"Application {name} is {sync_status}")
    if health != "Healthy":
        return state(RolloutPhase.PROGRESSING, f"Application {name} health is "
                     f"{health or 'unknown'}" + (f": {health_message}" if health_message
                                                 else ""))
    if not after_sync:
        return state(RolloutPhase.PROGRESSING, f"Application {name} looks Healthy, but not "
                     "yet observed after its sync finished")
    since = max(t for t in (finished, app.time("status", "health", "lastTransitionTime"))
                if t is not None)
    return replace(state(RolloutPhase.HEALTHY,
                         f"Application {name} synced {commit[:12]} and is Healthy"),
                   healthy_since=since)


def _degraded_resources(app: _Object, *, at_most: int = 3) -> str:
    """`Kind name: message` of the Application's Degraded resources (its
    `status.resources[].health`), the first `at_most` of them, or ""."""
    found = []
    for index, item in enumerate(app.list("status", "resources")):
        if not isinstance(item, Mapping):
            app._wrong(("status", "resources", str(index)), "an object", item)
        health = item.get("health")
        if not isinstance(health, Mapping) or health.get("status") != "Degraded":
            continue
        what = f"{item.get('kind', '?')} {item.get('name', '?')}"
        message = health.get("message")
        found.append(f"{what}: {message}" if isinstance(message, str) and message else what)
    more = f" (and {len(found) - at_most} more)" if len(found) > at_most else ""
    return "; ".join(found[:at_most]) + more


# --- training, beside the rollout ------------------------------------------------------------

_TRAINING_PHASES = {
    RolloutPhase.PENDING: TrainingPhase.PENDING,
    RolloutPhase.PROGRESSING: TrainingPhase.PROGRESSING,
    RolloutPhase.HEALTHY: TrainingPhase.HEALTHY,
    RolloutPhase.FAILED: TrainingPhase.FAILED,
    RolloutPhase.TIMED_OUT: TrainingPhase.FAILED,
}


def training_state(reading: RolloutState) -> TrainingState:
    """Training's state from the reading of the training Kustomization or Application.

    The same documented rules as the serving rollout (`flux_rollout_state`,
    `argo_rollout_state` on the training object), so "healthy" means the same thing in both;
    only what follows differs: nothing gates on it and nothing is rolled back for it.
    """
    return TrainingState(phase=_TRAINING_PHASES[reading.phase], reason=reading.reason)


# --- reading plain dicts, with shape errors --------------------------------------------------


class _Object:
    """Typed access to a cluster object's fields: absent is None, wrong type is an error."""

    def __init__(self, obj: Mapping[str, Any], kind: str) -> None:
        if not isinstance(obj, Mapping):
            raise ClusterShapeError(f"{kind}: expected an object, got {type(obj).__name__}")
        self._obj = obj
        self.kind = kind
        metadata = obj.get("metadata")
        self.name = str(metadata.get("name", "?")) if isinstance(metadata, Mapping) else "?"

    def field(self, *path: str) -> Any:
        node: Any = self._obj
        for index, key in enumerate(path):
            if node is None:
                return None
            if not isinstance(node, Mapping):
                self._wrong(path[:index], "an object", node)
            node = node.get(key)
        return node

    def string(self, *path: str) -> str | None:
        value = self.field(*path)
        if value is None or isinstance(value, str):
            return value
        self._wrong(path, "a string", value)

    def integer(self, *path: str) -> int | None:
        value = self.field(*path)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        self._wrong(path, "an integer", value)

    def list(self, *path: str) -> Sequence[Any]:
        value = self.field(*path)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self._wrong(path, "a list", value)

    def time(self, *path: str) -> datetime | None:
        return self._parse_time(path, self.field(*path))

    def _parse_time(self, path: Sequence[str], value: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self._wrong(path, "a string", value)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self._wrong(path, "an RFC 3339 time", value)
        if parsed.tzinfo is None:
            self._wrong(path, "an RFC 3339 time with a zone", value)
        return parsed

    def condition(self, kind: str) -> Mapping[str, Any] | None:
        """The status condition of type `kind`, or None."""
        for index, item in enumerate(self.list("status", "conditions")):
            if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
                self._wrong(("status", "conditions", str(index)), "a condition with a type",
                            item)
            if item["type"] == kind:
                if not isinstance(item.get("status"), str):
                    self._wrong(("status", "conditions", str(index), "status"), "a string",
                                item.get("status"))
                return item
        return None

    def condition_time(self, kind: str) -> datetime | None:
        """The `lastTransitionTime` of condition `kind`, or None if absent."""
        for index, item in enumerate(self.list("status", "conditions")):
            if isinstance(item, Mapping) and item.get("type") == kind:
                return self._parse_time(("status", "conditions", str(index),
                                         "lastTransitionTime"), item.get("lastTransitionTime"))
        return None

    def _wrong(self, path: Sequence[str], expected: str, value: Any) -> NoReturn:
        where = ".".join(path) or "(object)"
        raise ClusterShapeError(
            f"{self.kind} {self.name}: {where}: expected {expected}, got {value!r:.80}",
            fix=f"check that the cluster runs the {self.kind} CRD version promoter reads "
                "(listed in promoter/schemas/SOURCES.md; see the README's \"Flux or Argo CD\" "
                "section)",
        )


def _describe(condition: Mapping[str, Any] | None) -> str:
    if condition is None:
        return "no condition"
    text = f"{condition.get('type')}={condition.get('status')}"
    if condition.get("reason"):
        text += f" ({condition['reason']})"
    if condition.get("message"):
        text += f": {condition['message']}"
    return text
