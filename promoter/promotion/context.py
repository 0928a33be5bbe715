"""What every part of a promotion reads: the ports, the dry source at an exact commit, and the
hydrator metadata of environment branches.

Proposing, gating, evaluating and rollouts each hold the same `PromotionContext`, so they share
one parsed dry source per commit and one definition of "what an environment runs now".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from promoter.cluster.port import ClusterReader
from promoter.config.loader import DryConfig, LoadedSettings, load_dry_config
from promoter.config.schema import EnvironmentSpec, ModelSpec, PolicySpec
from promoter.errors import ConfigError
from promoter.forge.base import Forge
from promoter.gitops.port import GitOpsRepository
from promoter.gitops.source import GitTreeSource
from promoter.model_store import ModelStore
from promoter.promotion.hydrate import model_spec
from promoter.render.metadata import (
    METADATA_FILE,
    DeployedModel,
    HydratorMetadata,
    MetadataError,
)

_DRY_CACHE_SIZE = 8
"""Dry commits whose loaded configuration is kept (the head, and a few it moved from)."""


@dataclass(frozen=True, slots=True)
class Target:
    """An environment and everything the dry source at `dry_sha` says about it."""

    dry_sha: str
    dry: DryConfig
    environment: EnvironmentSpec
    policy: PolicySpec

    @property
    def upstream(self) -> EnvironmentSpec | None:
        """The environment this one promotes from, if any."""
        env = self.environment
        return self.dry.environment(env.promotes_from) if env.promotes_from else None


class PromotionContext:
    """The ports and settings of one promotion service, and its dry-source cache.

    `identity` is who promoter is on the forge (its own reviews never count); `cluster`, when
    set, reads rollouts back.
    """

    def __init__(self, *, settings: LoadedSettings, repo: GitOpsRepository, forge: Forge,
                 store: ModelStore, clock: Callable[[], datetime], identity: str,
                 cluster: ClusterReader | None) -> None:
        self.settings = settings
        self.repo = repo
        self.forge = forge
        self.store = store
        self.clock = clock
        self.identity = identity
        self.cluster = cluster
        # The dry source at a commit never changes and DryConfig is immutable: parsing it
        # once per commit, not on every call, is what lets one instance run 150 environments
        # (benchmarks/scale.py).
        self._dry_cache: dict[str, DryConfig] = {}
        self._dry_lock = threading.Lock()

    def dry_config(self) -> tuple[str, DryConfig]:
        """Load environments, policies and templates from the head of the dry branch.

        Always from the protected dry branch at one exact commit, never from a proposal: a
        pull request cannot change the gate it is judged by.
        """
        branch = self.settings.settings.repository.dry_branch
        sha = self.repo.branch_head(branch)
        if sha is None:
            raise ConfigError(
                str(self.settings.path), f"the repository has no branch {branch!r}",
                field="repository.dryBranch",
                fix=f"commit the dry source (promoter.yaml, environments/, policies/, "
                    f"manifests/) to {branch!r} or change repository.dryBranch",
            )
        with self._dry_lock:
            cached = self._dry_cache.get(sha)
        if cached is None:
            cached = load_dry_config(GitTreeSource(self.repo, sha), self.settings.settings)
            with self._dry_lock:
                if len(self._dry_cache) >= _DRY_CACHE_SIZE:
                    self._dry_cache.pop(next(iter(self._dry_cache)))
                self._dry_cache[sha] = cached
        return sha, cached

    def target(self, environment: str) -> Target:
        """`environment` as the dry branch's head describes it (ConfigError if unknown)."""
        sha, dry = self.dry_config()
        env = dry.environment(environment)
        return Target(sha, dry, env, dry.policy_for(env))

    def target_for_branch(self, branch: str) -> Target | None:
        """The environment whose branch is `branch`, or None when no environment uses it."""
        sha, dry = self.dry_config()
        env = next((e for e in dry.environments.values() if e.branch == branch), None)
        return Target(sha, dry, env, dry.policy_for(env)) if env is not None else None

    def deployed(self, environment: EnvironmentSpec) -> DeployedModel | None:
        """The model version the environment branch renders now, or None before the first."""
        head = self.repo.branch_head(environment.branch)
        metadata = self.metadata_at(head, where=environment.branch)
        return metadata.deployed if metadata else None

    def metadata_at(self, commit: str | None, *, where: str) -> HydratorMetadata | None:
        """`hydrator.metadata` at `commit`; None without a commit or without the file.
        Raises MetadataError when the file is there but unreadable (`where` names it)."""
        if commit is None:
            return None
        raw = self.repo.read_file(commit, METADATA_FILE)
        if raw is None:
            return None
        return HydratorMetadata.from_json(raw, where=f"{where}@{commit[:12]}")

    def metadata_batch(self, points: Sequence[tuple[str, str] | None]
                       ) -> list[HydratorMetadata | MetadataError | None]:
        """`metadata_at` of each (commit, where) in `points`, read from git in one batch; a
        None point answers None, an unreadable file its MetadataError (raised by none, so one
        broken branch does not hide the others: the caller decides)."""
        wanted = [point for point in points if point is not None]
        raws = iter(self.repo.read_files([(commit, METADATA_FILE) for commit, _ in wanted]))
        answers: list[HydratorMetadata | MetadataError | None] = []
        for point in points:
            raw = next(raws) if point is not None else None
            if point is None or raw is None:
                answers.append(None)
                continue
            commit, where = point
            try:
                answers.append(HydratorMetadata.from_json(raw, where=f"{where}@{commit[:12]}"))
            except MetadataError as exc:
                answers.append(exc)
        return answers

    def model_spec(self, model: str, dry: DryConfig) -> ModelSpec:
        """`model`'s settings as the dry source `dry` has them (its promoter.yaml, else the
        running one); BadInputError if it names no such model."""
        return model_spec(dry.model_settings(self.settings.settings), model,
                          config_file=str(self.settings.path))
