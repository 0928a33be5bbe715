"""The composition root: the one place that picks adapters and builds the promotion service.

The CLI (and later the HTTP app) call `build_service` and nothing else that knows which git,
forge or store implementation is in use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from promoter.config.loader import LoadedSettings
from promoter.errors import ConfigError
from promoter.forge.base import Forge
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import GitOpsRepository
from promoter.model_store import LocalModelStore
from promoter.promotion.autopropose import AutoProposer
from promoter.promotion.evaluator import SubprocessEvaluator
from promoter.promotion.rollback import RollbackService
from promoter.promotion.service import PromotionService
from promoter.promotion.verdicts import DirectoryVerdictStore, VerdictStore

if TYPE_CHECKING:
    import github.Auth as github_auth_types

    from promoter.cluster.port import ClusterReader
    from promoter.server.metrics import ServerMetrics

PROMOTER_IDENTITY = "promoter"


@dataclass(frozen=True, slots=True)
class Adapters:
    """The adapters promoter.yaml names, for every service built on them."""

    repo: GitOpsRepository
    forge: Forge
    store: LocalModelStore
    cluster: ClusterReader | None = None
    """The cluster reader of promoter.yaml's `cluster:` section; None without one."""
    verdicts: VerdictStore | None = None
    """Where evaluation verdicts are recorded; None: this process's memory only."""


def build_adapters(loaded: LoadedSettings, *,
                   environ: Mapping[str, str] | None = None) -> Adapters:
    """Wire the adapters promoter.yaml names: a local git repository and LocalForge (the
    embedded default), or GitHub (a local clone, or an HTTPS URL mirrored locally and pushed
    to with the same credentials), a local store, and the cluster reader when there is a
    `cluster:` section. `environ` (default: the process's) is where the secrets named by
    `forge.github.auth` are looked up."""
    environ = os.environ if environ is None else environ
    settings = loaded.settings
    repo_url = settings.repository.url
    store = build_store(loaded)
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
    return Adapters(repo=repo, forge=forge, store=store, cluster=build_cluster_reader(loaded),
                    verdicts=DirectoryVerdictStore(
                        _state_dir(loaded, environ=environ, remote=remote) / "verdicts"))


def build_service(loaded: LoadedSettings, *,
                  environ: Mapping[str, str] | None = None,
                  adapters: Adapters | None = None) -> PromotionService:
    """The promotion service over `adapters` (default: those promoter.yaml names)."""
    parts = adapters or build_adapters(loaded, environ=environ)
    return PromotionService(settings=loaded, repo=parts.repo, forge=parts.forge,
                            store=parts.store, evaluator=SubprocessEvaluator(parts.store),
                            identity=_identity(loaded), cluster=parts.cluster,
                            rollbacks=build_rollback_service(parts), verdicts=parts.verdicts)


def instrument_adapters(adapters: Adapters, metrics: ServerMetrics) -> Adapters:
    """The same adapters, reporting to `promoter serve`'s metrics: every forge call (by
    operation and result) and, where there is a cluster, the time from a merge to promoter's
    first healthy reading of its rollout. Behaviour is unchanged, capabilities included."""
    from promoter.forge.instrumented import instrument_forge
    from promoter.server.rollouts import TimedClusterReader

    repo = adapters.repo
    cluster = adapters.cluster
    if cluster is not None:
        cluster = TimedClusterReader(
            cluster, commit_time=lambda sha: repo.commit_info(sha).committed_at,
            observe=metrics.rollout_healthy)
    return replace(adapters, forge=instrument_forge(adapters.forge, on_call=metrics.forge_call),
                   cluster=cluster)


def build_cluster_reader(loaded: LoadedSettings) -> ClusterReader | None:
    """The Kubernetes reader promoter.yaml's `cluster:` names, or None without one."""
    spec = loaded.settings.cluster
    if spec is None:
        return None
    # Lazily: the kubernetes client is slow to import and only this adapter needs it.
    from promoter.cluster.kubernetes import KubernetesClusterReader

    return KubernetesClusterReader.from_environment(
        kubeconfig=str(loaded.resolve(spec.kubeconfig)) if spec.kubeconfig else None,
        context=spec.context)


def build_rollback_service(adapters: Adapters) -> RollbackService:
    """Rollbacks over the same repository and forge as promotions."""
    return RollbackService(repo=adapters.repo, forge=adapters.forge)


def build_auto_proposer(loaded: LoadedSettings, *, adapters: Adapters,
                        service: PromotionService) -> AutoProposer:
    """Discovery over `service` and the `adapters` it was built on: proposals are made as
    promoter's own identity."""
    return AutoProposer(service=service, store=adapters.store, settings=loaded.settings,
                        repo=adapters.repo, rollbacks=build_rollback_service(adapters),
                        author=_identity(loaded))


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


def _cache_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("PROMOTER_CACHE_DIR") or Path.home() / ".cache" / "promoter")


def forge_state_path(loaded: LoadedSettings, repo_path: Path) -> Path:
    """Where LocalForge keeps its SQLite file: configured, or inside the git directory so it
    is never committed and travels with the repository."""
    if loaded.settings.forge.path:
        return loaded.resolve(loaded.settings.forge.path)
    git_dir = repo_path / ".git" if (repo_path / ".git").is_dir() else repo_path
    return git_dir / "promoter" / "forge.sqlite"


def build_store(loaded: LoadedSettings) -> LocalModelStore:
    """The model store named by promoter.yaml (local directories only, for now)."""
    store_url = loaded.settings.model_store.url
    if "://" in store_url:
        raise ConfigError(str(loaded.path), f"{store_url!r}: only local model stores exist yet",
                          field="modelStore.url", fix="use a local directory")
    return LocalModelStore(loaded.resolve(store_url))
