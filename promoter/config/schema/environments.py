"""`environments/<env>.yaml` (`EnvironmentSpec`): what an environment runs (serving and
training sizes, namespace, holdout set), how it is delivered, and which policy gates it."""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from promoter.config.schema.common import (
    DnsName,
    Duration,
    FieldError,
    Quantity,
    Spec,
    require_usable_branch,
)

LOCAL_FETCH_IMAGE = "promoter-fetch-model:0.1.0"
"""What `docker build --target fetch -t promoter-fetch-model:0.1.0 .` names the fetch image:
the default of `serving.fetchImage` for a local cluster that has the image (kind, minikube)."""


class ResourceAmounts(Spec):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(Spec):
    """Kubernetes requests and limits. Limits must be at least the requests."""

    requests: ResourceAmounts = ResourceAmounts()
    limits: ResourceAmounts = ResourceAmounts()


_OBJECT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A Kubernetes object name (DNS-1123 subdomain): ServiceAccounts, Secrets."""
ObjectName = Annotated[str, Field(pattern=_OBJECT_NAME, max_length=253)]


class FetchSpec(Spec):
    """`serving.fetch`: the serving pods' `fetch-model` init container, which copies the
    pinned version from the store and verifies its digest before TF Serving starts."""

    resources: Resources = Resources(requests=ResourceAmounts(cpu="100m", memory="256Mi"),
                                     limits=ResourceAmounts(memory="512Mi"))
    """Its requests and limits. A copy streams in 64 MiB blocks, about two per object in
    memory, so 512Mi is enough for any model size; more CPU makes large copies faster."""
    run_as_user: int = Field(default=10001, ge=1, le=2147483647)
    """The uid it runs as: never root (0). 10001 is the fetch image's own user."""
    service_account_name: ObjectName = "default"
    """The pods' ServiceAccount (TF Serving runs as it too): for workload identity (IRSA on
    EKS, Workload Identity on GKE), the one bound to a role that may read the store."""
    secret_name: ObjectName | None = None
    """A Secret whose keys become the init container's environment (`AWS_ACCESS_KEY_ID`,
    `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, ...), for stores without workload
    identity. Named here, it must exist (the pod waits for it); unset, the optional secret
    `<model>-model-store` is used if it exists."""


class ServingSpec(Spec):
    image: str = "tensorflow/serving:2.18.0"
    """TensorFlow Serving image; pin a tag or a digest, never `latest`."""
    replicas: int = Field(default=1, ge=1, le=1000)
    """Minimum replicas (the HPA's `minReplicas`)."""
    max_replicas: int = Field(default=1, ge=1, le=1000)
    target_cpu_utilization: int = Field(default=70, ge=1, le=100)
    resources: Resources = Resources()
    model_base_uri: str = "/models"
    """Where the serving pods find the model store; the model lives at `<uri>/<model>`.
    The pod's `fetch-model` init container copies the pinned version from there (`s3://` or
    `gs://` with the pod's own credentials, or a directory the template mounts into it)
    and checks its digest; TF Serving reads only that verified copy. Nothing is mounted at
    the default `/models`: set the store's URL, or add the volume."""
    fetch_image: str = LOCAL_FETCH_IMAGE
    """Image of the `fetch-model` init container: the Dockerfile's slim `fetch` target
    (`promoter-fetch-model` without TensorFlow), pushed to a registry the cluster pulls
    from; pin a tag or a digest. The default is only the name a local build gives it
    (`docker build --target fetch -t promoter-fetch-model:0.1.0 .`), which no registry
    serves, so it is refused with an object-store `modelBaseUri`: such a cluster pulls."""
    fetch: FetchSpec = FetchSpec()
    """The `fetch-model` init container's resources, uid and credentials."""
    rest_port: int = Field(default=8501, ge=1, le=65535)
    grpc_port: int = Field(default=8500, ge=1, le=65535)

    @field_validator("model_base_uri")
    @classmethod
    def _no_credentials_in_the_uri(cls, value: str) -> str:
        # Rendered into manifests, i.e. committed: `s3://KEY:SECRET@bucket` would publish a
        # key, and fsspec would even use it.
        scheme, sep, rest = value.partition("://")
        if sep and ("@" in rest.split("/", 1)[0] or "?" in rest or "#" in rest):
            raise ValueError(f"{scheme}://… must not carry credentials or options: give "
                             "scheme://BUCKET/PREFIX; pods take credentials from their "
                             "service account or the secret the template names")
        return value

    @model_validator(mode="after")
    def _fetch_image_for_object_stores(self) -> ServingSpec:
        scheme = self.model_base_uri.partition("://")[0]
        if (scheme in ("s3", "gs") and "fetch_image" not in self.model_fields_set
                and "://" in self.model_base_uri):
            raise FieldError(
                "fetchImage",
                f"is required with modelBaseUri {scheme}://…: the serving pods' fetch-model "
                f"init container would run the default {LOCAL_FETCH_IMAGE!r}, the name of a "
                "local build, which no registry serves (the pods would never start)",
                fix="build the Dockerfile's fetch target and push it where the cluster pulls "
                    "from, e.g. `docker build --target fetch -t REGISTRY/promoter-fetch-model:"
                    "0.1.0 . && docker push REGISTRY/promoter-fetch-model:0.1.0`, then set "
                    "serving.fetchImage to that image (a pinned tag or digest)")
        return self

    @model_validator(mode="after")
    def _replicas(self) -> ServingSpec:
        if self.max_replicas < self.replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) must be at least replicas ({self.replicas})"
            )
        return self


TRAINING_KINDS: dict[str, str] = {
    "TFJob": "kubeflow.org/v1 TFJob (Kubeflow Training Operator v1.9; the operator injects "
             "TF_CONFIG)",
    "JobSet": "jobset.x-k8s.io/v1alpha2 JobSet (Kubernetes SIG Apps; promoter computes "
              "TF_CONFIG)",
}
"""The training job kinds an environment may run (`training.kind`), with what they need."""


class TrainingSpec(Spec):
    enabled: bool = True
    """Render `manifests/training/` for this environment. Off: no training objects on the
    environment branch and no training Kustomization/Application from `promoter flux|argo`
    (for a cluster without a training controller, or where training runs elsewhere).
    Serving never depends on it either way."""
    kind: Literal["TFJob", "JobSet"] = "TFJob"
    """Which training job this environment runs: `TFJob` (needs the Kubeflow Training
    Operator v1, which Kubeflow Trainer v2 replaces without a TensorFlow runtime) or
    `JobSet` (needs only the JobSet controller; promoter writes each replica's TF_CONFIG).
    Of the training templates, the job of the other kind is not rendered here."""
    image: str = "tensorflow/tensorflow:2.18.0"
    command: tuple[str, ...] = ("python", "/opt/train/train.py")
    workers: int = Field(default=1, ge=1, le=512)
    parameter_servers: int = Field(default=0, ge=0, le=128)
    chief: bool = False
    """Add one `Chief` replica (coordinator); at most one is allowed by the operator."""
    resources: Resources = Resources()
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    backoff_limit: int = Field(default=3, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _known_kind(cls, data: object) -> object:
        # Before pydantic's own Literal check, whose message ("Input should be 'TFJob' or
        # 'JobSet'") says neither what each kind needs nor that case matters.
        if not isinstance(data, dict) or "kind" not in data:
            return data
        kind = data["kind"]
        if kind in TRAINING_KINDS:
            return data
        close = [k for k in TRAINING_KINDS if isinstance(kind, str) and k.lower() == kind.lower()]
        known = "; ".join(f"{name}: {what}" for name, what in TRAINING_KINDS.items())
        raise FieldError(
            "kind", f"{kind!r} is not a training kind promoter renders ({known})",
            fix=(f"write {close[0]!r} (kinds are case-sensitive)" if close else
                 "set training.kind to 'JobSet' (no deprecated operator needed) or 'TFJob', "
                 "or training.enabled: false"))


_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


class EvaluationSpec(Spec):
    holdout: str
    """Holdout CSV or TFRecord: a path relative to promoter.yaml, or an `s3://`/`gs://` URL
    (fetched into promoter's cache, by digest); `{model}` is replaced by the model name."""
    holdout_digest: str | dict[DnsName, str] | None = None
    """Pins the holdout's bytes: `sha256:<hex>` (what `sha256sum` prints), or one per model
    name when `holdout` has `{model}`. An evaluation on other bytes is refused, naming the
    file and both digests. Unset: the holdout is scored as found (its digest is reported)."""

    @field_validator("holdout_digest")
    @classmethod
    def _digests(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        for digest in ([value] if isinstance(value, str) else (value or {}).values()):
            if not _SHA256.match(digest):
                raise ValueError(f"{digest!r} is not 'sha256:' and 64 lowercase hex digits "
                                 "(`sha256sum FILE` prints the hex)")
        return value

    def pinned_digest(self, model: str) -> str | None:
        """The digest `model`'s holdout is pinned to, or None when it is not pinned."""
        if isinstance(self.holdout_digest, dict):
            return self.holdout_digest.get(model)
        return self.holdout_digest

    @model_validator(mode="after")
    def _holdout_placeholders(self) -> EvaluationSpec:
        # The path is filled in with str.format(model=...) when promoter validates, proposes
        # and evaluates: any other placeholder raised IndexError or KeyError there (aborting a
        # whole reconcile), and `{model.__class__}` would read attributes. Only `{model}`.
        problem = _holdout_template_problem(self.holdout)
        if problem is not None:
            raise FieldError(
                "holdout", f"{self.holdout!r} {problem}",
                fix="the only placeholder is {model} (the model's name), e.g. "
                    "data/{model}-holdout.csv; write a literal brace as {{ or }}")
        return self


def _holdout_template_problem(template: str) -> str | None:
    """What in `template` str.format(model=...) would not fill in as the model name, or None."""
    try:
        fields = [(name, spec, conversion)
                  for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError:  # Python's own wording differs between a lone `{` and a lone `}`
        return "has a '{' or '}' without its pair"
    for name, spec, conversion in fields:
        if name != "model" or spec or conversion:
            written = "{" + name + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "") + "}"
            return f"has the placeholder {written!r}"
    return None


class EnvironmentSpec(Spec):
    """`environments/<env>.yaml`. The file name is the environment's name."""

    name: DnsName
    branch: str
    """Environment branch Flux/Argo CD syncs; the proposal branch is `<branch>-next`."""
    promotes_from: DnsName | None = None
    """Environment whose deployed version may be promoted here; default: the previous one."""
    namespace: DnsName
    policy: DnsName
    """Name of the file `policies/<policy>.yaml` that gates promotions here."""
    serving: ServingSpec = ServingSpec()
    training: TrainingSpec = TrainingSpec()
    evaluation: EvaluationSpec
    delivery: DeliverySpec = Field(default_factory=lambda: DeliverySpec())
    """How Flux or Argo CD deliver the environment branch, and how promoter reads it back."""

    @field_validator("branch")
    @classmethod
    def _branch(cls, branch: str) -> str:
        if branch == "@":
            raise ValueError(
                "'@' is git's name for HEAD, the checked-out branch (in the GitOps "
                "repository: the dry branch); use a branch of the environment's own such as "
                "'environments/<env>'")
        require_usable_branch(branch)
        if branch.endswith("-next"):
            raise ValueError(
                f"{branch!r} ends in '-next', the suffix of promoter's proposal branches "
                "(<branch>-next); use a name like 'environments/<env>'")
        return branch

    @property
    def proposal_branch(self) -> str:
        return f"{self.branch}-next"


TRAINING_SUFFIX = "-training"
"""Appended to `delivery.name` for the training Kustomization or Application."""


class DeliverySpec(Spec):
    """`delivery:` in `environments/<env>.yaml`: the GitOps controller syncing the branch.

    Everything has a default, so an environment file without `delivery:` means Flux with the
    names `promoter flux` writes (`promoter-<env>` in `flux-system`).
    """

    tool: Literal["flux", "argo"] = "flux"
    """Which controller syncs the environment branch."""
    controller_namespace: DnsName | None = None
    """Namespace of the Flux or Argo CD objects. Default: `flux-system` or `argocd`."""
    name: DnsName | None = None
    """Name of the GitRepository + Kustomization (Flux) or Application (Argo CD).
    Default: `promoter-<env>`."""
    repository_url: str | None = None
    """URL the cluster clones the GitOps repository from, when `repository.url` in
    promoter.yaml is a local path (e.g. `https://github.com/acme/ml-gitops`)."""
    git_secret_name: DnsName | None = None
    """Secret with git credentials for a private repository (Flux `secretRef`)."""
    interval: Duration = "10m"
    """How often the controller re-checks on its own; a merge also triggers a sync at once."""
    timeout: Duration = "5m"
    """How long one apply with health checks may take before the Kustomization fails."""
    health_timeout_seconds: int = Field(default=600, ge=1, le=86400)
    """How long promoter waits for a merged commit to be applied and healthy before it
    counts the rollout as failed (and proposes a rollback)."""
    wait_for_training: bool = False
    """Count the training job (TFJob, JobSet) healthy only once it Succeeded (Completed).
    Off: once it runs. Either way this is the health of the training Kustomization/Application
    only: training never gates the serving rollout."""
    training_timeout: Duration = "30m"
    """How long the training Kustomization waits for its objects (the job running, or
    succeeded with `waitForTraining`) before Flux reports it failed. Reported as the
    rollout's `training` state; never a reason to roll serving back."""
    argo_project: DnsName = "default"
    """Argo CD project of the Application."""
    auto_rollback: bool = True
    """Open a rollback PR when a merged commit fails or times out in this environment."""
    auto_merge_rollback: bool = True
    """Merge that rollback PR without the environment's promotion gates."""

    def namespace_for(self, tool: str | None = None) -> str:
        """Namespace of the `tool` objects (default: this environment's tool)."""
        if self.controller_namespace:
            return self.controller_namespace
        return "flux-system" if (tool or self.tool) == "flux" else "argocd"

    def object_name(self, environment: str) -> str:
        """The serving GitRepository/Kustomization (Flux) or Application (Argo CD)."""
        return self.name or f"promoter-{environment}"

    def training_object_name(self, environment: str) -> str:
        """The training Kustomization (Flux) or Application (Argo CD): a separate object, so
        that training's health never gates serving's."""
        return f"{self.object_name(environment)}{TRAINING_SUFFIX}"
EnvironmentSpec.model_rebuild()
