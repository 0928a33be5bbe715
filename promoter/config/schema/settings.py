"""`promoter.yaml` (`Settings`): where the GitOps repository, the forge, the model store and
the cluster are, which models exist, and the order of environments. It describes promoter's
deployment."""

from __future__ import annotations

import urllib.parse
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from promoter.config.schema.common import (
    DnsName,
    EnvVarName,
    FieldError,
    Spec,
    require_unique,
    require_usable_branch,
)


class RepositorySpec(Spec):
    url: str = "."
    """The GitOps repository: a local path (relative to promoter.yaml) or a URL."""
    dry_branch: str = "main"
    """Branch holding the dry source; policies are always read from it, never from a PR."""

    @field_validator("dry_branch")
    @classmethod
    def _branch(cls, branch: str) -> str:
        require_usable_branch(branch)
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
    evaluation_cache_gib: float = Field(default=20.0, ge=0.0, le=1_000_000.0,
                                        alias="evaluationCacheGiB")
    """GiB of `s3://`/`gs://` versions kept in `$PROMOTER_CACHE_DIR/models` by digest, so
    that evaluating a version again downloads nothing; least recently used versions not in
    use are removed beyond it. 0: no cache, every evaluation downloads. A local store is
    copied from directly and never cached."""

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
        require_unique([m.name for m in self.models], "models")
        require_unique(list(self.environments), "environments")
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


class ServiceSpec(Spec):
    """`service:` in promoter.yaml: how `promoter serve` listens and where its secrets are.

    Secrets are never in the file: it names the environment variables that hold them.
    """

    host: str = "127.0.0.1"
    """Address to listen on; loopback by default (put a reverse proxy or ingress in front)."""
    port: int = Field(default=8080, ge=0, le=65535)
    """TCP port; 0 picks a free one."""
    public_url: str | None = None
    """Where people reach this server (e.g. `https://promoter.example.com`, behind the
    ingress): the evaluation comment and check run link to `{publicUrl}/promotions/{pr}`.
    None: no link. An http(s) URL without credentials, query or fragment."""

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL with a host, e.g. "
                             "https://promoter.example.com")
        if "@" in parts.netloc or parts.query or parts.fragment or any(
                c.isspace() or not c.isprintable() for c in url):
            raise ValueError(f"{url!r}: give only scheme, host, port and path (no "
                             "credentials, query, fragment or blanks)")
        return url.rstrip("/")
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
    require_auth_for_reads: bool = False
    """The dashboard's pages (and their event stream) only for people logged in with a
    token of the tokens file, and the REST API's GETs only with one as a bearer token; by
    default both are open to read."""
    evaluation_workers: int = Field(default=2, ge=0, le=32)
    """Pre-started evaluation workers (processes with TensorFlow imported, each confined to
    an empty job directory and used for one evaluation only), so a webhook's evaluation does
    not wait for TensorFlow's import; 0 turns them off (every evaluation starts a fresh
    worker). Each waiting worker shares the imported pages of one zygote process."""
    evaluation_shards: int | None = Field(default=None, ge=1, le=32)
    """Worker processes that score one holdout together, each every n-th batch (the report is
    the same, bit for bit, as with one); pre-started ones as far as are waiting. Default: 1
    on a machine with at most 2 cores, else min(cores, 4)."""


class ClusterSpec(Spec):
    """How promoter reaches the Kubernetes API server that runs Flux or Argo CD."""

    kubeconfig: str | None = None
    """A kubeconfig file (relative to promoter.yaml). Neither this nor `context`: the pod's
    in-cluster service account, else `$KUBECONFIG` or `~/.kube/config`."""
    context: str | None = None


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
