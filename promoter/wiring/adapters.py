"""The adapters promoter.yaml names: which git, forge, model store and cluster reader run.

Every command and `promoter serve` builds its adapters here and nowhere else, so the choice
between the embedded default (a local repository and LocalForge) and GitHub, a local or an
object store, with or without a cluster, is made once. `services` builds the promotion
service on them; `serve` decorates them with `promoter serve`'s metrics
(`instrument_adapters`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from promoter.config.loader import LoadedSettings
from promoter.errors import ConfigError
from promoter.forge.base import Forge
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import GitOpsRepository
from promoter.model_store import LocalModelStore, ModelStore
from promoter.promotion.verdicts import DirectoryVerdictStore, VerdictStore

if TYPE_CHECKING:
    import github.Auth as github_auth_types

    from promoter.cluster.kubernetes import KubernetesClusterReader
    from promoter.cluster.port import ClusterReader

PROMOTER_IDENTITY = "promoter"
"""Who promoter is on the forge unless `forge.github.identity` names another login."""


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
                        state_dir(loaded, environ=environ, remote=remote) / "verdicts"))


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
                        merge_method=spec.merge_method, identity=forge_identity(loaded),
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

        cache = cache_dir(environ) / "mirrors"
        repo = RemoteGitRepository(repo_url, mirror_path(cache, repo_url),
                                   credentials=git_credentials(auth))
    else:
        repo = LocalGitRepository(loaded.resolve(repo_url))
    return repo, forge


def forge_identity(loaded: LoadedSettings) -> str:
    """Who promoter is on the forge: its own reviews never count as approvals."""
    github = loaded.settings.forge.github
    return (github.identity if github is not None else None) or PROMOTER_IDENTITY


def state_dir(loaded: LoadedSettings, *, environ: Mapping[str, str], remote: bool) -> Path:
    """Where promoter keeps records only it writes (verdicts): inside the git directory of
    the local repository (never committed), or beside the mirror of a remote one."""
    repo_url = loaded.settings.repository.url
    if remote:
        from promoter.gitops.remote import mirror_path

        return mirror_path(cache_dir(environ) / "mirrors", repo_url) / "promoter"
    repo_path = loaded.resolve(repo_url)
    git_dir = repo_path / ".git" if (repo_path / ".git").is_dir() else repo_path
    return git_dir / "promoter"


def cache_dir(environ: Mapping[str, str]) -> Path:
    """Where promoter caches what it can fetch again: `$PROMOTER_CACHE_DIR`, else
    ~/.cache/promoter (mirrors, digests, holdouts)."""
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
                                digest_cache=DigestCache(cache_dir(environ) / "digests"))
    except ModelStoreError as exc:
        raise ConfigError(str(loaded.path), exc.message, field="modelStore.url",
                          fix=exc.fix) from exc
