"""The shape of promoter's configuration files, as pydantic models.

Three kinds of file make up the configuration:

- `promoter.yaml` (`Settings`): where the GitOps repository, the forge and the model store are,
  which models exist and the order of environments. It describes promoter's deployment.
- `environments/<env>.yaml` (`EnvironmentSpec`): what an environment runs (serving and training
  sizes, namespace, holdout set) and which policy gates it.
- `policies/<name>.yaml` (`PolicySpec`): what a promotion must prove (metric thresholds,
  approvals) and whether promoter merges on its own.

Field names are camelCase in YAML, like Kubernetes objects; unknown fields are errors so a typo
never silently disables a gate. Every model is frozen: configuration is a value.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""DNS-1123 label: environment and model names end up in Kubernetes object names."""

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
"""A Kubernetes resource quantity such as `250m`, `1`, `512Mi`."""

DnsName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=40)]
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]


class Spec(BaseModel):
    """Base of every configuration model: camelCase aliases, no unknown fields, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=False,
    )


# --- promoter.yaml ---------------------------------------------------------------------------


class RepositorySpec(Spec):
    url: str = "."
    """The GitOps repository: a local path (relative to promoter.yaml) or a URL."""
    dry_branch: str = "main"
    """Branch holding the dry source; policies are always read from it, never from a PR."""


class ForgeSpec(Spec):
    type: Literal["local"] = "local"
    """Which forge hosts the pull requests. `local` is the embedded one."""
    path: str | None = None
    """LocalForge state file (SQLite). Default: `<git dir>/promoter/forge.sqlite`."""


class ModelStoreSpec(Spec):
    url: str = "./models"
    """Root of the TensorFlow Serving layout `<root>/<model>/<version>/saved_model.pb`.
    A local path (relative to promoter.yaml); `gs://` and `s3://` are reserved for later."""


class ModelSpec(Spec):
    name: DnsName
    """The model's name in the store and in TensorFlow Serving."""
    task: Literal["binary_classification"] = "binary_classification"
    """What the model predicts; decides which metrics exist."""
    signature: str = "serving_default"
    """SavedModel signature that serving and evaluation call."""
    output: str | None = None
    """Signature output holding the prediction; required when the signature has several."""
    label_column: str = "label"
    """Holdout column with the true label."""
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Score at or above which a binary prediction counts as positive (accuracy)."""


class Settings(Spec):
    """`promoter.yaml`."""

    repository: RepositorySpec = RepositorySpec()
    forge: ForgeSpec = ForgeSpec()
    model_store: ModelStoreSpec = ModelStoreSpec()
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    environments: tuple[DnsName, ...] = Field(min_length=1)
    """Promotion order, first to last, e.g. `[dev, staging, prod]`."""

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        _require_unique([m.name for m in self.models], "models")
        _require_unique(list(self.environments), "environments")
        return self

    def model(self, name: str) -> ModelSpec | None:
        return next((m for m in self.models if m.name == name), None)


# --- environments/<env>.yaml -----------------------------------------------------------------


class ResourceAmounts(Spec):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(Spec):
    """Kubernetes requests and limits. Limits must be at least the requests."""

    requests: ResourceAmounts = ResourceAmounts()
    limits: ResourceAmounts = ResourceAmounts()


class ServingSpec(Spec):
    image: str = "tensorflow/serving:2.18.0"
    """TensorFlow Serving image; pin a tag or a digest, never `latest`."""
    replicas: int = Field(default=1, ge=1, le=1000)
    """Minimum replicas (the HPA's `minReplicas`)."""
    max_replicas: int = Field(default=1, ge=1, le=1000)
    target_cpu_utilization: int = Field(default=70, ge=1, le=100)
    resources: Resources = Resources()
    model_base_uri: str = "/models"
    """Where the serving pods find the model store; the model lives at `<uri>/<model>`."""
    rest_port: int = Field(default=8501, ge=1, le=65535)
    grpc_port: int = Field(default=8500, ge=1, le=65535)

    @model_validator(mode="after")
    def _replicas(self) -> ServingSpec:
        if self.max_replicas < self.replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) must be at least replicas ({self.replicas})"
            )
        return self


class TrainingSpec(Spec):
    image: str = "tensorflow/tensorflow:2.18.0"
    command: tuple[str, ...] = ("python", "/opt/train/train.py")
    workers: int = Field(default=1, ge=1, le=512)
    parameter_servers: int = Field(default=0, ge=0, le=128)
    chief: bool = False
    """Add one `Chief` replica (coordinator); at most one is allowed by the operator."""
    resources: Resources = Resources()
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    backoff_limit: int = Field(default=3, ge=0)


class EvaluationSpec(Spec):
    holdout: str
    """Holdout CSV, relative to promoter.yaml; `{model}` is replaced by the model name."""


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

    @field_validator("branch")
    @classmethod
    def _branch(cls, branch: str) -> str:
        if branch.endswith("-next") or not _valid_branch(branch):
            raise ValueError(
                f"{branch!r} is not usable: use a git branch name like "
                "'environments/<env>' that does not end in '-next'"
            )
        return branch

    @property
    def proposal_branch(self) -> str:
        return f"{self.branch}-next"


# --- policies/<name>.yaml --------------------------------------------------------------------

MetricName = Literal["accuracy", "auc", "log_loss"]

HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "auc": True, "log_loss": False}
"""Direction of each metric, used by comparisons against the baseline."""


class BaselineComparison(Spec):
    """How the candidate must compare with the model deployed now in the environment.

    `improvement` is `candidate - baseline` for a higher-is-better metric and
    `baseline - candidate` for a lower-is-better one (divided by |baseline| when `relative`).
    `minImprovement: X` requires improvement >= X ("must improve by at least X");
    `maxRegression: X` requires improvement >= -X ("may be worse by at most X").
    """

    min_improvement: float | None = None
    max_regression: float | None = Field(default=None, ge=0.0)
    relative: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> BaselineComparison:
        if (self.min_improvement is None) == (self.max_regression is None):
            raise ValueError("set exactly one of minImprovement or maxRegression")
        return self


class MetricThreshold(Spec):
    name: MetricName
    min: float | None = None
    max: float | None = None
    vs_baseline: BaselineComparison | None = None
    """Comparison with the deployed model; skipped (and reported) on a first deployment."""

    @model_validator(mode="after")
    def _something(self) -> MetricThreshold:
        if self.min is None and self.max is None and self.vs_baseline is None:
            raise ValueError("set at least one of min, max or vsBaseline")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class EvaluationPolicy(Spec):
    metrics: tuple[MetricThreshold, ...] = ()


class ApprovalPolicy(Spec):
    required: int = Field(default=0, ge=0, le=10)
    """Number of distinct eligible approvals on the current head."""
    approvers: tuple[str, ...] = ()
    """Users who may approve. The promotion's author never counts."""

    @model_validator(mode="after")
    def _enough(self) -> ApprovalPolicy:
        if self.required > len(set(self.approvers)):
            raise ValueError(
                f"required is {self.required} but only {len(set(self.approvers))} approvers "
                "are named: list more approvers or lower required"
            )
        return self


class PolicySpec(Spec):
    """`policies/<name>.yaml`."""

    name: DnsName
    evaluation: EvaluationPolicy = EvaluationPolicy()
    approvals: ApprovalPolicy = ApprovalPolicy()
    auto_merge: bool = True
    """Merge as soon as every gate passes. Off: promoter only reports; a person merges."""


def _require_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} lists {value!r} twice")
        seen.add(value)


_BRANCH_BAD = re.compile(r"(^[/.-])|(\.\.)|([\s~^:?*\[\\])|(/$)|(\.lock$)|(@\{)|(//)")


def _valid_branch(name: str) -> bool:
    return bool(name) and _BRANCH_BAD.search(name) is None
