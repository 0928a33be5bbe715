"""The composition root: the one place that picks adapters and builds the promotion service.

The CLI (and later the HTTP app) call `build_service` and nothing else that knows which git,
forge or store implementation is in use.
"""

from __future__ import annotations

from pathlib import Path

from promoter.config.loader import LoadedSettings
from promoter.errors import ConfigError
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion.evaluator import SubprocessEvaluator
from promoter.promotion.service import PromotionService

PROMOTER_IDENTITY = "promoter"


def build_service(loaded: LoadedSettings) -> PromotionService:
    """Wire the embedded default: a local git repository, LocalForge and a local store."""
    settings = loaded.settings
    repo_url = settings.repository.url
    if "://" in repo_url or repo_url.startswith("git@"):
        raise ConfigError(
            str(loaded.path), f"{repo_url!r}: remote repositories need the GitHub forge, "
            "which is not available yet", field="repository.url",
            fix="point repository.url at a local clone",
        )
    repo_path = loaded.resolve(repo_url)
    repo = LocalGitRepository(repo_path)
    store = build_store(loaded)
    forge = LocalForge(forge_state_path(loaded, repo_path), repo, identity=PROMOTER_IDENTITY)
    return PromotionService(settings=loaded, repo=repo, forge=forge, store=store,
                            evaluator=SubprocessEvaluator(store), identity=PROMOTER_IDENTITY)


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
