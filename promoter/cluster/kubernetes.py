"""`ClusterReader` over the official `kubernetes` client: the only module importing it.

It only fetches and patches; `health.py` decides. Library errors are translated here, at the
boundary, into ClusterError subclasses that carry the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from promoter.cluster.errors import (
    ClusterError,
    ClusterObjectNotFoundError,
    ClusterShapeError,
    ClusterUnreachableError,
)
from promoter.cluster.health import argo_rollout_state, flux_rollout_state, training_state
from promoter.cluster.port import (
    ARGO_REFRESH_ANNOTATION,
    FLUX_RECONCILE_ANNOTATION,
    DeliveryTarget,
    ObjectRef,
    RolloutState,
    TrainingPhase,
    TrainingState,
)
from promoter.config.schema import EnvironmentSpec

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"

_CLIENT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)
"""What the client raises: API answers, transport failures, undecodable bodies (pydantic's
ValidationError is a ValueError)."""


class KubernetesClusterReader:
    """Reads Flux and Argo CD objects with CustomObjectsApi; patches only annotations."""

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 10.0) -> None:
        self._api_client = api_client
        self._api = client.CustomObjectsApi(api_client)
        self._timeout = request_timeout_s

    @classmethod
    def from_environment(cls, *, kubeconfig: str | None = None, context: str | None = None,
                         request_timeout_s: float = 10.0) -> KubernetesClusterReader:
        """Connect with the in-cluster service account when running in a pod, else with
        `kubeconfig` (default `$KUBECONFIG` or `~/.kube/config`) and `context`.

        Raises ClusterError when neither configuration exists.
        """
        configuration = client.Configuration()
        try:
            if kubeconfig is None and context is None:
                try:
                    config.load_incluster_config(client_configuration=configuration)
                    return cls(client.ApiClient(configuration),
                               request_timeout_s=request_timeout_s)
                except ConfigException:
                    pass  # not in a pod: fall back to the kubeconfig, as kubectl does
            config.load_kube_config(config_file=kubeconfig, context=context,
                                    client_configuration=configuration)
        except (ConfigException, OSError) as exc:
            raise ClusterError(
                f"no cluster configuration: {exc}",
                fix="run promoter in the cluster with a service account, or pass a "
                    "kubeconfig (--kubeconfig, $KUBECONFIG)",
            ) from exc
        return cls(client.ApiClient(configuration), request_timeout_s=request_timeout_s)

    @classmethod
    def for_host(cls, host: str, *, request_timeout_s: float = 10.0) -> KubernetesClusterReader:
        """A reader for an API server at `host` without credentials (tests, `kubectl proxy`)."""
        configuration = client.Configuration(host=host)
        configuration.retries = 0  # fail fast; wait_for_rollout does the retrying
        return cls(client.ApiClient(configuration), request_timeout_s=request_timeout_s)

    def close(self) -> None:
        self._api_client.close()

    def __enter__(self) -> KubernetesClusterReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- ClusterReader ------------------------------------------------------------------------

    def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
        """Serving's verdict from the serving objects alone, with training's state beside it.

        Serving is read first and its errors are raised as before; training is read only
        after, and whatever goes wrong there (the training Kustomization missing, RBAC, a
        bad shape) becomes an UNKNOWN training state: it can never turn into a serving
        verdict, a rollback, or an error of this call.
        """
        target = DeliveryTarget.of(env)
        read: Callable[[dict[str, Any]], RolloutState]
        if target.tool == "flux":
            source = self.get(target.git_repository)

            def read_flux(kustomization: dict[str, Any]) -> RolloutState:
                return flux_rollout_state(environment=env.name, branch=env.branch,
                                          commit=commit, git_repository=source,
                                          kustomization=kustomization)

            read = read_flux
            serving = read(self.get(target.kustomization))
        else:
            def read_argo(application: dict[str, Any]) -> RolloutState:
                return argo_rollout_state(environment=env.name, commit=commit,
                                          application=application)

            read = read_argo
            serving = read(self.get(target.application))
        return replace(serving, training=self._training(env, target, read))

    def _training(self, env: EnvironmentSpec, target: DeliveryTarget,
                  read: Callable[[dict[str, Any]], RolloutState]) -> TrainingState:
        ref = target.training
        if ref is None:
            return TrainingState(TrainingPhase.DISABLED,
                                 f"training.enabled is false in environments/{env.name}.yaml")
        try:
            return training_state(read(self.get(ref)))
        except ClusterError as exc:
            log.warning("%s: training state unreadable: %s", env.name, exc.message)
            return TrainingState(TrainingPhase.UNKNOWN, exc.message)

    def request_reconcile(self, env: EnvironmentSpec, *, requested_at: str) -> None:
        target = DeliveryTarget.of(env)
        if target.tool == "flux":
            # Both Kustomizations follow this one GitRepository.
            self.annotate(target.git_repository, {FLUX_RECONCILE_ANNOTATION: requested_at})
            return
        self.annotate(target.application, {ARGO_REFRESH_ANNOTATION: "normal"})
        if target.training is not None:
            try:
                self.annotate(target.training, {ARGO_REFRESH_ANNOTATION: "normal"})
            except ClusterError as exc:  # training syncs at its next poll instead
                log.warning("%s: could not refresh the training Application: %s", env.name,
                            exc.message)

    # --- plumbing -----------------------------------------------------------------------------

    def get(self, ref: ObjectRef) -> dict[str, Any]:
        """The object as a plain dict; ClusterError subclasses on any failure."""
        try:
            obj = self._api.get_namespaced_custom_object(
                ref.group, ref.version, ref.namespace, ref.plural, ref.name,
                _request_timeout=self._timeout)
        except _CLIENT_ERRORS as exc:
            raise _translate(exc, f"reading {ref}") from exc
        if not isinstance(obj, dict):
            raise ClusterShapeError(f"{ref}: the API server answered {type(obj).__name__}, "
                                    "not an object")
        return obj

    def annotate(self, ref: ObjectRef, annotations: dict[str, str]) -> None:
        """Merge-patch `annotations` onto the object; nothing else changes."""
        try:
            self._api.patch_namespaced_custom_object(
                ref.group, ref.version, ref.namespace, ref.plural, ref.name,
                {"metadata": {"annotations": annotations}},
                _request_timeout=self._timeout, _content_type=MERGE_PATCH)
        except _CLIENT_ERRORS as exc:
            raise _translate(exc, f"annotating {ref}") from exc
        log.info("annotated %s with %s", ref, annotations)


def _translate(exc: Exception, doing: str) -> ClusterError:
    """Map a client exception to a ClusterError with the fix (callers chain it)."""
    if isinstance(exc, ApiException):
        status = exc.status
        if status == 404:
            return ClusterObjectNotFoundError(
                f"{doing}: not found",
                fix="generate the objects with `promoter flux --out DIR` or `promoter argo "
                    "--out DIR` and apply them, or set delivery.name/controllerNamespace in "
                    "the environment file to the names you use",
            )
        if status in (401, 403):
            return ClusterError(f"{doing}: {status} {exc.reason}",
                                fix="grant promoter's identity get/patch on the Flux or Argo "
                                    "CD objects (RBAC)")
        return ClusterError(f"{doing}: API server answered {status} {exc.reason}")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return ClusterUnreachableError(
            f"{doing}: the API server is unreachable ({type(exc).__name__})",
            fix="check the cluster address and network; promoter retries on its next run")
    if isinstance(exc, ValueError):  # the client could not decode the answer
        return ClusterShapeError(f"{doing}: unreadable answer: {exc}")
    return ClusterError(f"{doing}: {type(exc).__name__}: {exc}")
