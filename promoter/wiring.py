"""The composition root: the one place that picks adapters and builds what runs on them.

The CLI's commands call `build_service` (and `connect_cluster` for `promoter health`);
`promoter serve` calls `build_server`, which builds the adapters, the metrics registry they
report to, the service, discovery, the reconcile scheduler and the HTTP app. Nothing else
knows which git, forge, store or cluster implementation is in use, and `promoter.server`
never imports this module: the app takes everything it runs on as arguments.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.config.loader import LoadedSettings
from promoter.errors import BadInputError, ConfigError, PromoterError
from promoter.forge.base import Forge
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import GitOpsRepository
from promoter.model_store import LocalModelStore, ModelStore
from promoter.model_store.holdouts import Holdouts
from promoter.promotion.autopropose import AutoProposer
from promoter.promotion.dora import parse_window
from promoter.promotion.evaluator import SubprocessEvaluator
from promoter.promotion.rollback import RollbackService
from promoter.promotion.service import PromotionService
from promoter.promotion.verdicts import DirectoryVerdictStore, VerdictStore

if TYPE_CHECKING:
    import github.Auth as github_auth_types
    from fastapi import FastAPI

    from promoter.cluster.kubernetes import KubernetesClusterReader
    from promoter.cluster.port import ClusterReader
    from promoter.dashboard.feed import ChangeFeed
    from promoter.dashboard.ports import DashboardPort
    from promoter.dashboard.sessions import Sessions
    from promoter.evaluation.worker_pool import WorkerPool
    from promoter.server.metrics import ServerMetrics
    from promoter.server.ports import PromotionPort
    from promoter.server.tokens import ApiTokens

DORA_GAUGE_WINDOW = "30d"
"""The window of the `promoter_dora_*` gauges `promoter serve` exposes."""
PROMOTER_IDENTITY = "promoter"


@dataclass(frozen=True, slots=True)
class Adapters:
    """The adapters promoter.yaml names, for every service built on them."""

    repo: GitOpsRepository
    forge: Forge
    store: ModelStore
    cluster: ClusterReader | None = None
    """The cluster reader of promoter.yaml's `cluster:` section; None without one."""
    verdicts: VerdictStore | None = None
    """Where evaluation verdicts are recorded; None: this process's memory only."""


def build_adapters(loaded: LoadedSettings, *, environ: Mapping[str, str] | None = None,
                   read_cluster: bool = True) -> Adapters:
    """Wire the adapters promoter.yaml names: a local git repository and LocalForge (the
    embedded default), or GitHub (a local clone, or an HTTPS URL mirrored locally and pushed
    to with the same credentials), the model store, and the cluster reader when there is a
    `cluster:` section (unless `read_cluster` is False: a command that connects with its own
    overrides, see `connect_cluster`). `environ` (default: the process's) is where the
    secrets named by `forge.github.auth` are looked up."""
    environ = os.environ if environ is None else environ
    settings = loaded.settings
    repo_url = settings.repository.url
    store = build_store(loaded, environ=environ)
    remote = "://" in repo_url or repo_url.startswith("git@")
    repo: GitOpsRepository
    forge: Forge
    if settings.forge.type == "github":
        repo, forge = _build_github(loaded, environ=environ, remote=remote)
    else:
        if remote:
            raise ConfigError(
                str(loaded.path), f"{repo_url!r}: remote repositories need the GitHub forge",
                field="repository.url",
                fix="point repository.url at a local clone, or set forge.type: github",
            )
        repo_path = loaded.resolve(repo_url)
        repo = LocalGitRepository(repo_path)
        forge = LocalForge(forge_state_path(loaded, repo_path), repo,
                           identity=PROMOTER_IDENTITY)
    cluster = build_cluster_reader(loaded) if read_cluster else None
    return Adapters(repo=repo, forge=forge, store=store, cluster=cluster,
                    verdicts=DirectoryVerdictStore(
                        _state_dir(loaded, environ=environ, remote=remote) / "verdicts"))


def build_service(loaded: LoadedSettings, *,
                  environ: Mapping[str, str] | None = None,
                  adapters: Adapters | None = None,
                  pool: WorkerPool | None = None) -> PromotionService:
    """The promotion service over `adapters` (default: those promoter.yaml names), its
    evaluations in `pool`'s pre-started workers when one is given (`promoter serve`)."""
    parts = adapters or build_adapters(loaded, environ=environ)
    return PromotionService(settings=loaded, repo=parts.repo, forge=parts.forge,
                            store=parts.store,
                            evaluator=SubprocessEvaluator(
                                build_evaluation_store(loaded, parts.store, environ=environ),
                                pool=pool,
                                shards=loaded.settings.service.evaluation_shards),
                            identity=_identity(loaded), cluster=parts.cluster,
                            rollbacks=build_rollback_service(parts), verdicts=parts.verdicts,
                            holdouts=build_holdouts(resolve=loaded.resolve, environ=environ))


def build_holdouts(*, resolve: Callable[[str], Path],
                   environ: Mapping[str, str] | None = None) -> Holdouts:
    """Where evaluations find their holdouts: local paths through `resolve` (relative to
    promoter.yaml for environments, to the working directory for `promoter evaluate`),
    `s3://` and `gs://` objects fetched into `$PROMOTER_CACHE_DIR/holdouts` (default
    ~/.cache/promoter) on the standard credential chains, by digest."""
    environ = os.environ if environ is None else environ
    return Holdouts(resolve=resolve, cache_dir=_cache_dir(environ) / "holdouts")


def build_evaluation_store(loaded: LoadedSettings, store: ModelStore, *,
                           environ: Mapping[str, str] | None = None) -> ModelStore:
    """The store the evaluator copies candidates and baselines from: for `s3://`/`gs://`,
    through the digest-keyed cache in `$PROMOTER_CACHE_DIR/models` (default
    ~/.cache/promoter), bounded by `modelStore.evaluationCacheGiB`; a local store (or a
    bound of 0) as it is."""
    spec = loaded.settings.model_store
    if "://" not in spec.url or spec.evaluation_cache_gib == 0:
        return store
    from promoter.model_store.model_cache import GIB, CachedModelStore, ModelCache

    environ = os.environ if environ is None else environ
    return CachedModelStore(store, ModelCache(
        _cache_dir(environ) / "models", max_bytes=int(spec.evaluation_cache_gib * GIB)))


def instrument_adapters(adapters: Adapters, metrics: ServerMetrics) -> Adapters:
    """The same adapters, reporting to `promoter serve`'s metrics: every forge call (by
    operation and result) and, where there is a cluster, the time from a merge to promoter's
    first healthy reading of its rollout, and training's state at each reading. Behaviour is
    unchanged, capabilities included."""
    from promoter.forge.instrumented import instrument_forge
    from promoter.server.rollouts import TimedClusterReader

    repo = adapters.repo
    cluster = adapters.cluster
    if cluster is not None:
        cluster = TimedClusterReader(
            cluster, commit_time=lambda sha: repo.commit_info(sha).committed_at,
            observe=metrics.rollout_healthy, on_reading=metrics.rollout_read)
    return replace(adapters, forge=instrument_forge(adapters.forge, on_call=metrics.forge_call),
                   cluster=cluster)


def build_cluster_reader(loaded: LoadedSettings) -> ClusterReader | None:
    """The Kubernetes reader promoter.yaml's `cluster:` names, or None without one: the
    service then reads no cluster (no rollout gate, no automatic rollback)."""
    if loaded.settings.cluster is None:
        return None
    return connect_cluster(loaded)


def connect_cluster(loaded: LoadedSettings, *, kubeconfig: str | None = None,
                    context: str | None = None) -> KubernetesClusterReader:
    """A reader for a command that must read the cluster (`promoter health`).

    promoter.yaml's `cluster:` section says where (its kubeconfig relative to promoter.yaml);
    `kubeconfig` and `context`, a command's flags, override its fields one by one (a flag's
    path is as typed, relative to the working directory). Without either: the client's
    defaults, the pod's service account, else `$KUBECONFIG` or `~/.kube/config`. Raises
    ClusterError when no configuration is found.
    """
    # Lazily: the kubernetes client is slow to import and only this adapter needs it.
    from promoter.cluster.kubernetes import KubernetesClusterReader

    spec = loaded.settings.cluster
    if kubeconfig is None and spec is not None and spec.kubeconfig:
        kubeconfig = str(loaded.resolve(spec.kubeconfig))
    if context is None and spec is not None:
        context = spec.context
    return KubernetesClusterReader.from_environment(kubeconfig=kubeconfig, context=context)


def build_rollback_service(adapters: Adapters) -> RollbackService:
    """Rollbacks over the same repository and forge as promotions."""
    return RollbackService(repo=adapters.repo, forge=adapters.forge)


def build_auto_proposer(loaded: LoadedSettings, *, adapters: Adapters,
                        service: PromotionService) -> AutoProposer:
    """Discovery over `service` and the `adapters` it was built on: proposals are made as
    promoter's own identity."""
    return AutoProposer(service=service, store=adapters.store, settings=loaded.settings,
                        rollbacks=build_rollback_service(adapters),
                        author=_identity(loaded))


# --- promoter serve ---------------------------------------------------------------------------

def build_app(service: PromotionPort, *, webhook_secret: bytes,
              api_tokens: ApiTokens | None = None,
              repository: str | None = None, dry_branch: str = "main", workers: int = 4,
              resync_interval_s: float | None = 300.0,
              metrics: ServerMetrics | None = None,
              discover: Callable[[], object] | None = None,
              max_webhook_bytes: int | None = None,
              max_request_bytes: int | None = None,
              dashboard: DashboardPort | None = None, feed: ChangeFeed | None = None,
              pull_url: Callable[[int], str] | None = None,
              require_auth_for_reads: bool = False,
              sessions: Sessions | None = None) -> FastAPI:
    """The HTTP app over `service`: reconcile jobs, a scheduler of `workers` threads
    resyncing every `resync_interval_s` (None: only at start), and `metrics` (default: a
    fresh registry; pass the one the service's adapters already report to, see
    `instrument_adapters`). `discover` (e.g. `AutoProposer.run`) runs before every resync.
    The body caps default to `create_app`'s (25 MiB for webhooks, 64 KiB otherwise).
    With `dashboard` (the service again, as the pages' port) the app also serves the
    dashboard's pages at `/`, their live updates from `feed` (default: a new one);
    `pull_url` links a PR on a forge that takes reviews on its own
    site (GitHub); `sessions` keeps the dashboard's logins (default: this process's memory).
    Tests and benchmarks call this with a fake service; `build_server` with the real one."""
    # Lazily: FastAPI is slow to import and only `promoter serve` needs it.
    from promoter.dashboard.feed import ChangeFeed
    from promoter.server.app import MAX_REQUEST_BYTES, MAX_WEBHOOK_BYTES, create_app
    from promoter.server.jobs import ReconcileJobs
    from promoter.server.metrics import ServerMetrics
    from promoter.server.scheduler import Scheduler

    metrics = metrics or ServerMetrics()
    feed = feed or ChangeFeed()
    jobs = ReconcileJobs(service, metrics, discover=discover, on_change=feed.changed)
    scheduler = Scheduler(
        workers=workers, resync=jobs.resync(), resync_interval_s=resync_interval_s,
        on_coalesced=metrics.jobs_coalesced.inc, expected_errors=(PromoterError,))
    jobs.bind(scheduler.submit)
    metrics.watch_scheduler(lambda: scheduler.queue_depth, lambda: scheduler.running)
    app = create_app(
        service, webhook_secret=webhook_secret, scheduler=scheduler, jobs=jobs,
        metrics=metrics, api_tokens=api_tokens, repository=repository, dry_branch=dry_branch,
        max_webhook_bytes=MAX_WEBHOOK_BYTES if max_webhook_bytes is None else max_webhook_bytes,
        max_request_bytes=MAX_REQUEST_BYTES if max_request_bytes is None else max_request_bytes,
        require_auth_for_reads=require_auth_for_reads)
    if dashboard is not None:
        from promoter.dashboard.routes import DashboardParts, install_dashboard

        def reconcile(number: int, branch: str) -> None:
            scheduler.submit(jobs.pull(number, branch=branch))

        parts = DashboardParts(
            service=dashboard, feed=feed, api_tokens=api_tokens, pull_url=pull_url,
            require_auth_for_reads=require_auth_for_reads, reconcile=reconcile)
        install_dashboard(app, parts if sessions is None else replace(parts,
                                                                      sessions=sessions))
    return app


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """`promoter serve`'s command line. None: promoter.yaml's `service:` section decides."""

    host: str | None = None
    port: int | None = None
    webhook_secret_env: str | None = None
    repository: str | None = None
    """`owner/name` whose webhooks are acted on."""
    resync_interval_s: float | None = None
    workers: int | None = None
    log_format: str = "auto"
    """auto (JSON lines unless stderr is a terminal), json or text."""
    access_log: bool = False


@dataclass(frozen=True, slots=True)
class Server:
    """`promoter serve`, composed: the app and where uvicorn serves it."""

    app: FastAPI
    host: str
    port: int
    access_log: bool = False
    on_exit: Callable[[], None] | None = None
    """Called first when a signal stops the server (ends the dashboard's event streams,
    which uvicorn would otherwise wait for)."""
    pool: WorkerPool | None = None
    """Pre-started evaluation workers (`service.evaluationWorkers`), started with the server
    and stopped after it; None: off."""

    def run(self) -> None:
        """Serve until interrupted (uvicorn in this thread; 30 s to finish on shutdown)."""
        import uvicorn  # lazily: `promoter --help` stays fast

        on_exit = self.on_exit

        class _Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                if on_exit is not None:
                    on_exit()
                super().handle_exit(sig, frame)

        if self.pool is not None:
            self.pool.start()
        try:
            _Server(uvicorn.Config(self.app, host=self.host, port=self.port, log_config=None,
                                   access_log=self.access_log,
                                   timeout_graceful_shutdown=30)).run()
        finally:
            if self.pool is not None:
                self.pool.close()


def build_server(loaded: LoadedSettings, options: ServeOptions, *,
                 environ: Mapping[str, str] | None = None) -> Server:
    """Everything `promoter serve` runs, from promoter.yaml and the command line.

    The secrets come from `environ` (default: the process's), never from arguments. Logging is
    configured (JSON lines, the webhook secret redacted) before any adapter is built, so
    their lines are structured and redacted too. One metrics registry serves the app and the
    adapters: /metrics shows forge calls and rollouts as well. Raises BadInputError for a
    missing webhook secret or the old shared API token.
    """
    from promoter.server.logs import configure_logging
    from promoter.server.metrics import ServerMetrics

    environ = os.environ if environ is None else environ
    spec = loaded.settings.service
    secret = _webhook_secret(options.webhook_secret_env or spec.webhook_secret_env, environ)
    tokens = _api_tokens(loaded, environ)
    if spec.require_auth_for_reads and tokens is None:
        raise BadInputError(
            "service.requireAuthForReads is set but there is no tokens file: nobody could read",
            fix="set $PROMOTER_API_TOKENS_FILE or service.apiTokensFile (`promoter token "
                "new USER`), or turn requireAuthForReads off")

    root = logging.getLogger()
    configure_logging(level=min(root.level or logging.INFO, logging.INFO),
                      json_lines=None if options.log_format == "auto"
                      else options.log_format == "json",
                      secrets=[secret])
    _log_api_tokens(tokens)

    from promoter.dashboard.feed import ChangeFeed

    metrics = ServerMetrics()
    feed = ChangeFeed()
    adapters = instrument_adapters(build_adapters(loaded, environ=environ), metrics)
    pool = build_worker_pool(spec.evaluation_workers)
    service = build_service(loaded, adapters=adapters, pool=pool)
    # The DORA gauges of /metrics, computed from the history when scraped (at most every 5 min).
    metrics.watch_dora(lambda: service.dora(window=parse_window(DORA_GAUGE_WINDOW)),
                       window=DORA_GAUGE_WINDOW)
    # New versions flow in without a person where promoter.yaml says so (autoPropose).
    proposer = build_auto_proposer(loaded, adapters=adapters, service=service)
    app = build_app(
        service, metrics=metrics, discover=proposer.run if proposer.enabled else None,
        webhook_secret=secret.encode(), api_tokens=tokens,
        repository=options.repository or spec.repository
        or github_repository(loaded.settings.repository.url),
        dry_branch=loaded.settings.repository.dry_branch,
        workers=options.workers or spec.workers,
        resync_interval_s=options.resync_interval_s or spec.resync_interval_seconds,
        dashboard=service, feed=feed, pull_url=_pull_url(loaded),
        require_auth_for_reads=spec.require_auth_for_reads,
        sessions=_dashboard_sessions(loaded, environ))
    return Server(app=app, host=options.host or spec.host,
                  port=spec.port if options.port is None else options.port,
                  access_log=options.access_log, on_exit=feed.close, pool=pool)


def build_worker_pool(size: int) -> WorkerPool | None:
    """`size` pre-started evaluation workers with the evaluator's memory limit, not yet
    started (`WorkerPool.start`); None for 0."""
    if size == 0:
        return None
    from promoter.evaluation.evaluate import DEFAULT_MEMORY_LIMIT_MB
    from promoter.evaluation.worker_pool import WorkerPool

    return WorkerPool(size, memory_limit_bytes=DEFAULT_MEMORY_LIMIT_MB * 2**20)


_GITHUB_URL = re.compile(
    r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<name>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


def github_repository(url: str) -> str | None:
    """`owner/name` of a github.com repository URL, or None for anything else."""
    match = _GITHUB_URL.match(url)
    return match.group("name") if match else None


def _pull_url(loaded: LoadedSettings) -> Callable[[int], str] | None:
    """Where a PR is reviewed on a forge that takes reviews on its own site; None when the
    dashboard takes them (the local forge)."""
    if loaded.settings.forge.type != "github":
        return None
    name = github_repository(loaded.settings.repository.url)
    return None if name is None else (lambda number: f"https://github.com/{name}/pull/{number}")


def _webhook_secret(name: str, environ: Mapping[str, str]) -> str:
    secret = environ.get(name, "")
    if not secret:
        raise BadInputError(
            f"no webhook secret: ${name} is not set",
            fix=f"export {name}=<the secret configured on the GitHub webhook>")
    return secret


def _api_tokens(loaded: LoadedSettings, environ: Mapping[str, str]) -> ApiTokens | None:
    """The REST API's tokens: from `$PROMOTER_API_TOKENS_FILE`, else `service.apiTokensFile`,
    else none (approvals over HTTP off). Refuses the old single shared token outright: it let
    its holder approve as any name, and quietly ignoring it would leave an operator believing
    approvals over HTTP still work."""
    from promoter.server.tokens import TOKENS_FILE_ENV, load_api_tokens

    spec = loaded.settings.service
    if environ.get(spec.api_token_env):
        raise BadInputError(
            f"${spec.api_token_env} is set, but one shared API token is no longer accepted: "
            "it approved as whichever user the request named",
            fix=f"give each release manager a token of their own (`promoter token new USER "
                f">> api-tokens`), point ${TOKENS_FILE_ENV} (or service.apiTokensFile) at that "
                f"file, and unset {spec.api_token_env}")
    from_env = environ.get(TOKENS_FILE_ENV)
    if from_env:
        return load_api_tokens(Path(from_env).expanduser(), named_by=f"${TOKENS_FILE_ENV}")
    if spec.api_tokens_file:
        return load_api_tokens(loaded.resolve(spec.api_tokens_file),
                               named_by="service.apiTokensFile")
    return None


def _log_api_tokens(tokens: ApiTokens | None) -> None:
    """Who may approve over HTTP, never where the tokens are: the file's path and contents
    stay out of the logs."""
    from promoter.server.tokens import TOKENS_FILE_ENV

    log = logging.getLogger("promoter.serve")
    if tokens is None:
        log.warning("no API tokens file ($%s, service.apiTokensFile): approve/reject over "
                    "HTTP are off", TOKENS_FILE_ENV)
    else:
        log.info("approve/reject over HTTP: %d token(s) for %s", len(tokens),
                 ", ".join(tokens.users))


def _github_forge(loaded: LoadedSettings, *,
                  environ: Mapping[str, str]) -> tuple[github_auth_types.Auth, Forge]:
    # Lazily: PyGithub is slow to import and only the GitHub forge needs it.
    from promoter.forge.github import GitHubForge
    from promoter.forge.github_auth import build_auth, build_client, marker_key

    spec = loaded.settings.forge.github
    assert spec is not None  # the schema requires it for type github
    auth = build_auth(spec.auth, environ=environ, resolve=loaded.resolve,
                      config_file=str(loaded.path))
    key = marker_key(spec, environ=environ, resolve=loaded.resolve,
                     config_file=str(loaded.path))
    forge = GitHubForge(build_client(spec, auth), spec.repository, marker_key=key,
                        merge_method=spec.merge_method, identity=_identity(loaded),
                        approver_team=spec.approver_team)
    return auth, forge


def _build_github(loaded: LoadedSettings, *, environ: Mapping[str, str],
                  remote: bool) -> tuple[GitOpsRepository, Forge]:
    """GitHubForge, and the repository: a local clone, or an HTTPS remote through a mirror."""
    auth, forge = _github_forge(loaded, environ=environ)
    repo_url = loaded.settings.repository.url
    repo: GitOpsRepository
    if remote:
        if not repo_url.startswith("https://"):
            raise ConfigError(str(loaded.path), f"{repo_url!r}: only HTTPS remotes are "
                              "supported", field="repository.url",
                              fix="use https://HOST/OWNER/NAME.git")
        from promoter.forge.github_auth import git_credentials
        from promoter.gitops.remote import RemoteGitRepository, mirror_path

        cache = _cache_dir(environ) / "mirrors"
        repo = RemoteGitRepository(repo_url, mirror_path(cache, repo_url),
                                   credentials=git_credentials(auth))
    else:
        repo = LocalGitRepository(loaded.resolve(repo_url))
    return repo, forge


def _identity(loaded: LoadedSettings) -> str:
    """Who promoter is on the forge: its own reviews never count as approvals."""
    github = loaded.settings.forge.github
    return (github.identity if github is not None else None) or PROMOTER_IDENTITY


def _state_dir(loaded: LoadedSettings, *, environ: Mapping[str, str], remote: bool) -> Path:
    """Where promoter keeps records only it writes (verdicts): inside the git directory of
    the local repository (never committed), or beside the mirror of a remote one."""
    repo_url = loaded.settings.repository.url
    if remote:
        from promoter.gitops.remote import mirror_path

        return mirror_path(_cache_dir(environ) / "mirrors", repo_url) / "promoter"
    repo_path = loaded.resolve(repo_url)
    git_dir = repo_path / ".git" if (repo_path / ".git").is_dir() else repo_path
    return git_dir / "promoter"


def _dashboard_sessions(loaded: LoadedSettings, environ: Mapping[str, str]) -> Sessions:
    """The dashboard's logins, in the state directory: every process of `promoter serve` on
    it (workers, or the next one after a restart) knows them, and a logout ends them all."""
    from promoter.dashboard.session_db import SqliteSessionStore

    url = loaded.settings.repository.url
    remote = "://" in url or url.startswith("git@")  # as build_adapters decides
    return SqliteSessionStore(_state_dir(loaded, environ=environ, remote=remote)
                              / "dashboard-sessions.sqlite")


def _cache_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("PROMOTER_CACHE_DIR") or Path.home() / ".cache" / "promoter")


def forge_state_path(loaded: LoadedSettings, repo_path: Path) -> Path:
    """Where LocalForge keeps its SQLite file: configured, or inside the git directory so it
    is never committed and travels with the repository."""
    if loaded.settings.forge.path:
        return loaded.resolve(loaded.settings.forge.path)
    git_dir = repo_path / ".git" if (repo_path / ".git").is_dir() else repo_path
    return git_dir / "promoter" / "forge.sqlite"


def build_store(loaded: LoadedSettings, *,
                environ: Mapping[str, str] | None = None) -> ModelStore:
    """The model store of promoter.yaml's `modelStore.url`: a local directory (relative to
    promoter.yaml), or `s3://`/`gs://` on the standard credential chains, with its digests
    cached in `$PROMOTER_CACHE_DIR/digests` (default ~/.cache/promoter) so another process
    reads no version it has digested. Raises ConfigError for a URL it cannot use."""
    spec = loaded.settings.model_store
    store_url = spec.url
    if "://" not in store_url:
        return LocalModelStore(loaded.resolve(store_url),
                               completion_marker=spec.completion_marker)
    # Lazily: the object-store clients are slow to import and local stores never need them.
    from promoter.errors import ModelStoreError
    from promoter.model_store.objects import (
        DigestCache,
        ObjectModelStore,
        is_object_store_url,
    )

    if not is_object_store_url(store_url):
        raise ConfigError(str(loaded.path), f"{store_url!r}: not a model store URL",
                          field="modelStore.url",
                          fix="use a local directory, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
    environ = os.environ if environ is None else environ
    try:
        return ObjectModelStore(store_url, completion_marker=spec.completion_marker,
                                digest_cache=DigestCache(_cache_dir(environ) / "digests"))
    except ModelStoreError as exc:
        raise ConfigError(str(loaded.path), exc.message, field="modelStore.url",
                          fix=exc.fix) from exc
