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
import string
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from promoter.config.branch_names import branch_problem
from promoter.cron import CronExpression

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

    @field_validator("dry_branch")
    @classmethod
    def _branch(cls, branch: str) -> str:
        _require_usable_branch(branch)
        return branch


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_REPOSITORY = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
_TEAM = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


class GitHubAuthSpec(Spec):
    """How promoter authenticates to GitHub. Secrets are named, never written here: an
    environment variable (`tokenEnv`, `privateKeyEnv`) or a file (`tokenFile`,
    `privateKeyFile`, relative to promoter.yaml)."""

    type: Literal["token", "app"] = "token"
    token_env: str | None = Field(default=None, pattern=_ENV_NAME)
    """Environment variable holding a personal access or fine-grained token."""
    token_file: str | None = None
    """File holding the token (e.g. a mounted Kubernetes secret)."""
    app_id: int | None = Field(default=None, ge=1)
    """GitHub App id (type `app`)."""
    installation_id: int | None = Field(default=None, ge=1)
    """The App's installation on the repository's owner (type `app`)."""
    private_key_env: str | None = Field(default=None, pattern=_ENV_NAME)
    """Environment variable holding the App's PEM private key."""
    private_key_file: str | None = None
    """File holding the App's PEM private key."""

    @model_validator(mode="after")
    def _complete(self) -> GitHubAuthSpec:
        if self.type == "token":
            if (self.token_env is None) == (self.token_file is None):
                raise ValueError("token auth needs exactly one of tokenEnv or tokenFile")
            extra = [n for n, v in (("appId", self.app_id),
                                    ("installationId", self.installation_id),
                                    ("privateKeyEnv", self.private_key_env),
                                    ("privateKeyFile", self.private_key_file)) if v is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to type: app")
        else:
            missing = [n for n, v in (("appId", self.app_id),
                                      ("installationId", self.installation_id)) if v is None]
            if missing:
                raise ValueError(f"app auth needs {' and '.join(missing)}")
            if (self.private_key_env is None) == (self.private_key_file is None):
                raise ValueError("app auth needs exactly one of privateKeyEnv or privateKeyFile")
            if self.token_env is not None or self.token_file is not None:
                raise ValueError("tokenEnv and tokenFile only apply to type: token")
        return self


class GitHubSpec(Spec):
    repository: str = Field(pattern=_REPOSITORY)
    """`owner/name` of the GitOps repository on GitHub."""
    base_url: str = "https://api.github.com"
    """REST API root; GitHub Enterprise Server: `https://HOST/api/v3`."""
    auth: GitHubAuthSpec
    merge_method: Literal["merge", "squash", "rebase"] = "merge"
    """How promotion PRs are merged (GitHub's `merge_method`)."""
    approver_team: str | None = Field(default=None, pattern=_TEAM)
    """`org/team-slug` whose active members may approve promotions."""
    identity: str | None = None
    """The login promoter acts as (e.g. `promoter-app[bot]`): its reviews never count as
    approvals, and only commit statuses it created count as promoter's. Default:
    `promoter`."""
    marker_key_env: str | None = Field(default=None, pattern=_ENV_NAME)
    """Environment variable holding the key (at least 32 characters, e.g. `openssl rand -hex
    32`) promoter signs the marker in its pull-request descriptions with: who proposed the
    promotion and which head promoter wrote. Required with token auth; with App auth the
    default is a key derived from the App's private key."""
    marker_key_file: str | None = None
    """File holding that key (relative to promoter.yaml), instead of `markerKeyEnv`."""

    @model_validator(mode="after")
    def _marker_key(self) -> GitHubSpec:
        if self.marker_key_env is not None and self.marker_key_file is not None:
            raise FieldError("markerKeyFile", "give one of markerKeyEnv or markerKeyFile",
                             fix="remove one of them")
        if (self.auth.type == "token" and self.marker_key_env is None
                and self.marker_key_file is None):
            raise FieldError(
                "markerKeyEnv", "token auth needs markerKeyEnv or markerKeyFile: the secret "
                "promoter signs its pull-request markers with",
                fix="store a random key (openssl rand -hex 32) in a secret and name its "
                    "environment variable here, e.g. markerKeyEnv: PROMOTER_MARKER_KEY")
        return self

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{url!r} is not an http(s) URL")
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("credentials do not belong in baseUrl; use auth")
        return url.rstrip("/")


class ForgeSpec(Spec):
    type: Literal["local", "github"] = "local"
    """Which forge hosts the pull requests. `local` is the embedded one."""
    path: str | None = None
    """LocalForge state file (SQLite). Default: `<git dir>/promoter/forge.sqlite`."""
    github: GitHubSpec | None = None
    """Where and how to reach GitHub (type `github`)."""

    @model_validator(mode="after")
    def _github(self) -> ForgeSpec:
        if self.type == "github" and self.github is None:
            raise ValueError("type: github needs a github: section (repository, auth)")
        if self.type == "local" and self.github is not None:
            raise ValueError("the github: section only applies to type: github")
        return self


class ModelStoreSpec(Spec):
    """`modelStore:` in promoter.yaml. Never a credential: those come from the environment
    (`AWS_*`, an AWS profile or role; `GOOGLE_APPLICATION_CREDENTIALS` or the metadata
    server), so promoter.yaml can be committed."""

    url: str = "./models"
    """Root of the TensorFlow Serving layout `<root>/<model>/<version>/saved_model.pb`: a
    local path (relative to promoter.yaml), `s3://BUCKET/PREFIX` (AWS, or any S3-compatible
    store at `$AWS_ENDPOINT_URL`) or `gs://BUCKET/PREFIX` (`$STORAGE_EMULATOR_HOST` for an
    emulator)."""
    completion_marker: str | None = Field(default=None,
                                          pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    """Name of a file (an object) the uploader writes into a version once it is complete,
    e.g. `_COMPLETE`: discovery then proposes the version at once instead of waiting until
    nothing in it changed for `settleSeconds`. It is part of the version like any file."""

    @field_validator("completion_marker")
    @classmethod
    def _marker_is_no_saved_model_file(cls, value: str | None) -> str | None:
        if value in ("saved_model.pb", "saved_model.pbtxt", "variables", ".", ".."):
            raise ValueError(f"{value!r} is part of every SavedModel, not a completion marker")
        return value


class ModelSpec(Spec):
    name: DnsName
    """The model's name in the store and in TensorFlow Serving."""
    task: Literal["binary_classification", "multiclass_classification", "regression"] = (
        "binary_classification")
    """What the model predicts; decides which metrics exist. Binary: the output is the
    probability of class 1 ([N] or [N, 1]), labels 0/1. Multi-class: the output holds class
    probabilities [N, K], labels are class indices 0..K-1. Regression: a number per row."""
    signature: str = "serving_default"
    """SavedModel signature that serving and evaluation call."""
    output: str | None = None
    """Signature output holding the prediction; required when the signature has several."""
    label_column: str = "label"
    """Holdout column with the true label."""
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Score at or above which a binary prediction counts as positive (accuracy)."""
    weight_column: str | None = None
    """Holdout column with a non-negative example weight; every metric is then weighted."""
    top_k: int = Field(default=2, ge=1)
    """k of `top_k_accuracy` (multi-class)."""
    promotion: ModelPromotionSpec = Field(default_factory=lambda: ModelPromotionSpec())
    """Which environments promoter proposes this model to on its own."""


class ModelPromotionSpec(Spec):
    """`models[].promotion:` in promoter.yaml: who starts each step of this model's journey.

    An environment listed in `autoPropose` gets proposals without a person: the first
    environment when a new, complete version appears in the model store (discovery); a later
    one when the version runs (healthy, where a cluster is configured) in the environment it
    promotes from. Environments not listed wait for `promoter propose`. Proposing is not
    merging: every proposal still passes its environment's gates.
    """

    auto_propose: tuple[DnsName, ...] = ()
    """Environments (names from `environments`) that promoter proposes to by itself."""
    settle_seconds: float = Field(default=60.0, ge=0.0, le=86400.0)
    """A new version directory counts as complete only once it has `saved_model.pb` and
    `variables/` and nothing in it changed for this long (uploads are not atomic)."""


class Settings(Spec):
    """`promoter.yaml`."""

    repository: RepositorySpec = RepositorySpec()
    forge: ForgeSpec = ForgeSpec()
    model_store: ModelStoreSpec = ModelStoreSpec()
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    environments: tuple[DnsName, ...] = Field(min_length=1)
    """Promotion order, first to last, e.g. `[dev, staging, prod]`."""
    service: ServiceSpec = Field(default_factory=lambda: ServiceSpec())
    """How `promoter serve` listens and where it finds its secrets."""
    cluster: ClusterSpec | None = None
    """Where to read rollouts back (Flux/Argo CD objects). None: no cluster, as in the demo;
    promotions then gate on git and the forge only."""
    render: RenderSpec = Field(default_factory=lambda: RenderSpec())
    """What every rendered object is validated against before anything is written."""

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        _require_unique([m.name for m in self.models], "models")
        _require_unique(list(self.environments), "environments")
        for index, model in enumerate(self.models):
            for position, name in enumerate(model.promotion.auto_propose):
                if name not in self.environments:
                    raise FieldError(
                        f"models[{index}].promotion.autoPropose[{position}]",
                        f"{name!r} is not an environment",
                        fix=f"use names from environments: {', '.join(self.environments)}")
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
    """Where the serving pods find the model store; the model lives at `<uri>/<model>`.
    The pod's `fetch-model` init container copies the pinned version from there (`s3://` or
    `gs://` with the pod's own credentials, or a directory the template mounts into it)
    and checks its digest; TF Serving reads only that verified copy. Nothing is mounted at
    the default `/models`: set the store's URL, or add the volume."""
    fetch_image: str = "promoter:0.1.0"
    """Image of the `fetch-model` init container: promoter's own (the repository's
    Dockerfile), which has the `promoter-fetch-model` command; pin a tag or a digest."""
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
        _require_usable_branch(branch)
        if branch.endswith("-next"):
            raise ValueError(
                f"{branch!r} ends in '-next', the suffix of promoter's proposal branches "
                "(<branch>-next); use a name like 'environments/<env>'")
        return branch

    @property
    def proposal_branch(self) -> str:
        return f"{self.branch}-next"


# --- policies/<name>.yaml --------------------------------------------------------------------

MetricName = Literal[
    # binary classification
    "accuracy", "precision", "recall", "f1", "auc", "auc_pr", "log_loss", "brier",
    "calibration_error",
    # multi-class classification (also `accuracy`, `log_loss`)
    "top_k_accuracy", "macro_f1", "micro_f1",
    # regression
    "mae", "rmse", "r2", "mape",
]

HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "auc": True,
    "auc_pr": True, "log_loss": False, "brier": False, "calibration_error": False,
    "top_k_accuracy": True, "macro_f1": True, "micro_f1": True,
    "mae": False, "rmse": False, "r2": True, "mape": False,
}
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


class BootstrapPolicy(Spec):
    """Decide vsBaseline checks on a confidence interval of the improvement (paired Poisson
    bootstrap) instead of on the point value."""

    resamples: int = Field(default=1000, ge=100, le=20000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Two-sided level of the interval; each bound is a one-sided (1 + confidence) / 2 test."""
    seed: int = Field(default=0, ge=0)
    """Seed of the resampling weights: the same inputs always give the same verdict."""
    on_inconclusive: Literal["block", "requireApproval"] = "block"
    """What a check whose interval straddles its bound does: block the promotion, or let it
    through only with the approvals the policy requires (at least one)."""


class SliceThreshold(Spec):
    """A metric bound that every slice of a column must meet."""

    name: MetricName
    min: float | None = None
    max: float | None = None
    vs_baseline: BaselineComparison | None = None

    @model_validator(mode="after")
    def _something(self) -> SliceThreshold:
        if self.min is None and self.max is None and self.vs_baseline is None:
            raise ValueError("set at least one of min, max or vsBaseline")
        return self


class SlicePolicy(Spec):
    """Metrics per value of one holdout column, e.g. `country`."""

    column: str
    min_rows: int = Field(default=100, ge=1)
    """Values with fewer rows are reported as too small and not checked."""
    max_values: int = Field(default=100, ge=1, le=10000)
    """More distinct values than this is an error (the column is not categorical)."""
    metrics: tuple[SliceThreshold, ...] = Field(min_length=1)


class BudgetPolicy(Spec):
    """Limits on the candidate's cost, measured on the evaluating machine."""

    p50_latency_ms: float | None = Field(default=None, gt=0)
    """Median latency of a single-row request."""
    p99_latency_ms: float | None = Field(default=None, gt=0)
    """99th percentile latency of a single-row request."""
    batch_p99_latency_ms: float | None = Field(default=None, gt=0)
    """99th percentile latency of a batch of `batchSize` rows."""
    batch_size: int = Field(default=256, ge=1, le=100000)
    max_model_mb: float | None = Field(default=None, gt=0)
    """SavedModel size on disk, in MiB."""


class EvaluationPolicy(Spec):
    metrics: tuple[MetricThreshold, ...] = ()
    bootstrap: BootstrapPolicy | None = None
    """Without it, vsBaseline checks compare point values (no interval, never inconclusive)."""
    slices: tuple[SlicePolicy, ...] = ()
    budgets: BudgetPolicy | None = None


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


SPAN_PATTERN = r"^([0-9]+(d|h|m|s))+$"
"""A length of time such as `30m`, `24h`, `2d12h` (days are 24 hours)."""

_SPAN_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _check_span(value: object) -> object:
    if not isinstance(value, str) or re.fullmatch(SPAN_PATTERN, value) is None:
        raise ValueError(f"expected a length of time such as 30m, 24h or 2d12h, got {value!r}")
    return value


Span = Annotated[str, BeforeValidator(_check_span)]
MAX_WINDOW = timedelta(days=31)


def span_seconds(text: str) -> int:
    """Seconds in a `Span` string (already validated by its pattern)."""
    return sum(int(n) * _SPAN_UNITS[u] for n, u in re.findall(r"([0-9]+)([dhms])", text))


class SoakPolicy(Spec):
    """`soak:` in a policy: how long the version must have run in the environment the target
    promotes from before it may merge here."""

    duration: Span
    """E.g. `24h`. Counted from the version's first merge into the upstream environment and,
    where a cluster is configured, from when its rollout there last became healthy."""

    @property
    def seconds(self) -> int:
        return span_seconds(self.duration)


class ScheduleWindow(Spec):
    """A span of time: recurring (`cron` + `duration`) or once (`start` + `end`)."""

    cron: str | None = None
    """Five-field crontab expression for when each occurrence starts, e.g. `0 9 * * mon-thu`,
    read in the schedule's time zone."""
    duration: Span | None = None
    """How long each occurrence lasts, e.g. `7h` (at most 31 days)."""
    start: datetime | None = None
    """Start of a one-off span, e.g. `2026-12-20T00:00`; without an offset it is read in the
    schedule's time zone."""
    end: datetime | None = None
    """End of a one-off span (exclusive)."""
    reason: str | None = Field(default=None, max_length=80)
    """Shown on the pull request, e.g. `year-end freeze`."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date_is_midnight(cls, value: object) -> object:
        # YAML reads an unquoted 2026-12-20 as a date: it means that day's midnight.
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day)
        return value

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            CronExpression.parse(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleWindow:
        recurring = self.cron is not None or self.duration is not None
        once = self.start is not None or self.end is not None
        if recurring and once:
            raise ValueError("give either cron + duration (recurring) or start + end (once), "
                             "not both")
        if recurring and (self.cron is None or self.duration is None):
            raise ValueError("a recurring window needs both cron and duration, e.g. "
                             "cron: '0 9 * * mon-thu' and duration: 7h")
        if once:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            if (self.start.tzinfo is None) != (self.end.tzinfo is None):
                raise ValueError("start and end must both have a UTC offset or both have none")
            if self.end <= self.start:
                raise ValueError("end must be after start")
        if not recurring and not once:
            raise ValueError("give cron + duration (recurring) or start + end (once)")
        if self.duration is not None and not (
                0 < span_seconds(self.duration) <= MAX_WINDOW.total_seconds()):
            raise ValueError("duration must be more than 0s and at most 31d")
        return self


class SchedulePolicy(Spec):
    """`schedule:` in a policy: when promoter may merge into the environment.

    With `windows`, merges happen only inside one of them; `freezes` forbid merges whatever
    the windows say. A promotion outside a window waits (its gate is pending) and merges at
    the first reconcile inside one. Rollbacks are not held by the schedule.
    """

    timezone: str = "UTC"
    """IANA time zone the cron expressions and offset-less times are read in, e.g.
    `Europe/Berlin`."""
    windows: tuple[ScheduleWindow, ...] = ()
    freezes: tuple[ScheduleWindow, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as "
                             "'UTC' or 'Europe/Berlin'") from None
        return value


class RollbackPolicy(Spec):
    """Who may roll an environment back by hand, and what a manual rollback needs to merge.

    A rollback restores a tree the environment ran before (it was gated then), so it skips
    the evaluation, soak and change-window gates, but not a person's say: a rollback moves
    production too. Automatic rollbacks after a failed rollout follow the environment's
    `delivery.autoMergeRollback` instead; with it off, they wait for these approvals.
    """

    requesters: tuple[str, ...] = ()
    """Who may ask for a rollback; empty: the policy's approvers (anyone where it names none)."""
    approvals: int | None = Field(default=None, ge=0, le=10)
    """Approvals (from the policy's approvers, not the requester) a rollback needs before it
    merges; unset: as many as a promotion (`approvals.required`)."""


class PolicySpec(Spec):
    """`policies/<name>.yaml`."""

    name: DnsName
    evaluation: EvaluationPolicy = EvaluationPolicy()
    approvals: ApprovalPolicy = ApprovalPolicy()
    soak: SoakPolicy | None = None
    """Minimum time the version must have run in the upstream environment."""
    schedule: SchedulePolicy | None = None
    """Change windows and freezes for merges into the environment."""
    auto_merge: bool = True
    """Merge as soon as every gate passes. Off: promoter only reports; a person merges."""
    rollback: RollbackPolicy = RollbackPolicy()

    @model_validator(mode="after")
    def _rollback_approvals_possible(self) -> PolicySpec:
        needed = self.rollback_approvals
        if needed > len(set(self.approvals.approvers)):
            raise FieldError(
                "rollback.approvals",
                f"a rollback needs {needed} approvals but only "
                f"{len(set(self.approvals.approvers))} approvers are named",
                fix="name more approvers under approvals.approvers or lower rollback.approvals")
        return self

    @property
    def rollback_approvals(self) -> int:
        """Approvals a manual rollback needs (see `RollbackPolicy.approvals`)."""
        explicit = self.rollback.approvals
        return self.approvals.required if explicit is None else explicit

    def may_request_rollback(self, user: str) -> bool:
        """True if `user` may ask for a rollback (compared trimmed, case-insensitively)."""
        allowed = self.rollback.requesters or self.approvals.approvers
        wanted = user.strip().casefold()
        return not allowed or any(a.strip().casefold() == wanted for a in allowed)


class FieldError(ValueError):
    """A mistake found by a model validator, with the field it is about.

    Pydantic places a model validator's error at the model itself, so the message would
    point at the top of the file; the loader reads `field` and `fix` from here instead.
    """

    def __init__(self, field: str, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        """Path below the validated model, as the YAML spells it, e.g. `models[0].name`."""
        self.message = message
        self.fix = fix


def _require_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} lists {value!r} twice")
        seen.add(value)


def _require_usable_branch(branch: str) -> None:
    """Raise ValueError unless git accepts `branch` (promoter.config.branch_names)."""
    problem = branch_problem(branch)
    if problem is not None:
        raise ValueError(
            f"{branch!r} is not usable as a git branch: {problem} (rules: "
            "git-check-ref-format(1)); use a name like 'environments/<env>'")


# --- environments/<env>.yaml: delivery (Flux or Argo CD) --------------------------------------

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
"""A Go duration as Flux and Argo CD read it, e.g. `1m`, `5m30s`."""

Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]


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
    """Count a TFJob healthy only once it Succeeded. Off: once it runs (training may take
    hours; the serving rollout should not wait for it)."""
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
        return self.name or f"promoter-{environment}"
EnvironmentSpec.model_rebuild()


# --- promoter.yaml: service (`promoter serve`) -----------------------------------------------


EnvVarName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
"""The name of an environment variable, e.g. `PROMOTER_WEBHOOK_SECRET`."""


class ServiceSpec(Spec):
    """`service:` in promoter.yaml: how `promoter serve` listens and where its secrets are.

    Secrets are never in the file: it names the environment variables that hold them.
    """

    host: str = "127.0.0.1"
    """Address to listen on; loopback by default (put a reverse proxy or ingress in front)."""
    port: int = Field(default=8080, ge=0, le=65535)
    """TCP port; 0 picks a free one."""
    webhook_secret_env: EnvVarName = "PROMOTER_WEBHOOK_SECRET"
    """Environment variable holding the GitHub webhook secret (required by `serve`)."""
    api_tokens_file: str | None = None
    """File of hashed REST API tokens, each giving one user (relative to promoter.yaml; e.g.
    a mounted Kubernetes Secret); see `promoter.server.tokens` for its format.
    `$PROMOTER_API_TOKENS_FILE` wins over it. Neither: approve/reject answer 403."""
    api_token_env: EnvVarName = "PROMOTER_API_TOKEN"
    """Where the one shared API token of earlier versions was. That token approved as any
    user the caller named, so `promoter serve` now refuses to start while this variable is
    set; the fix points at `apiTokensFile`."""
    repository: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    """`owner/name` whose webhooks are accepted. Default: derived from a GitHub
    `repository.url`, else any repository (a local repository has no GitHub name)."""
    resync_interval_seconds: float = Field(default=300.0, ge=1.0, le=86400.0)
    """How often every open promotion is reconciled even without a webhook."""
    workers: int = Field(default=4, ge=1, le=64)
    """Reconcile worker threads; at most one works on an environment branch at a time."""


class ClusterSpec(Spec):
    """How promoter reaches the Kubernetes API server that runs Flux or Argo CD."""

    kubeconfig: str | None = None
    """A kubeconfig file (relative to promoter.yaml). Neither this nor `context`: the pod's
    in-cluster service account, else `$KUBECONFIG` or `~/.kube/config`."""
    context: str | None = None


# --- promoter.yaml: render (validation of the rendered objects) -----------------------------


DEFAULT_KUBERNETES_VERSION = "1.37"
"""The newest Kubernetes minor whose schemas kubernetes-validate ships (the floor pinned in
pyproject.toml): a fixed default rather than "whatever is installed", so upgrading the library
never changes which objects promoter accepts without a change to promoter."""

_DRY_SOURCE_DIRECTORIES = ("manifests", "environments", "policies")


class RenderSpec(Spec):
    """`render:` in promoter.yaml: what the rendered objects are validated against.

    Every object is checked before anything is written (see `promoter.render.validation`):
    a core kind against the Kubernetes schemas of `kubernetesVersion`, a custom resource
    against its CRD, packaged (Flux, Argo CD, Kubeflow) or in `crdDirectory`.
    """

    kubernetes_version: str = Field(default=DEFAULT_KUBERNETES_VERSION,
                                    pattern=r"^1\.(0|[1-9][0-9]*)$")
    """Kubernetes minor version of the clusters (`"1.30"`): an object using a field that
    version does not have, or a kind it does not serve, is refused."""
    crd_directory: str | None = None
    """Directory of the dry source (relative to the repository root, e.g. `crds`) holding the
    CustomResourceDefinitions (`*.yaml`) of the custom kinds the templates render. Read at the
    same dry commit as the templates, so a proposal is validated against the CRDs it was
    rendered with."""

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, float | int) and not isinstance(value, bool):
            raise ValueError(f"quote it, e.g. \"1.30\": unquoted, YAML reads a version as a "
                             f"number ({value!r} here), and 1.30 as 1.3")
        return value

    @field_validator("crd_directory")
    @classmethod
    def _inside_the_repository(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = value.rstrip("/")
        parts = path.split("/")
        if (not path or path.startswith("/") or "\\" in path
                or any(part in {"", ".", ".."} for part in parts)):
            raise ValueError(f"{value!r} is not a relative path inside the repository "
                             "(e.g. crds)")
        if parts[0] in _DRY_SOURCE_DIRECTORIES:
            raise ValueError(f"{value!r} is inside {parts[0]}/, which holds promoter's own dry "
                             "source; keep the CRDs in a directory of their own, e.g. crds")
        return path


ModelSpec.model_rebuild()
Settings.model_rebuild()
