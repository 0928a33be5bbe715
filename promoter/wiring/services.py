"""The services built on the adapters: promotions, rollbacks, discovery, holdouts.

Every CLI command gets its promotion service from `build_service`, and `promoter serve` the
same one over instrumented adapters, so a command and the server never disagree about how
the service is put together (the evaluator, the verdict store, the holdouts' cache).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from promoter.config.loader import LoadedSettings
from promoter.model_store import ModelStore
from promoter.model_store.holdouts import Holdouts
from promoter.promotion.autopropose import AutoProposer
from promoter.promotion.evaluator import SubprocessEvaluator
from promoter.promotion.rollback import RollbackService
from promoter.promotion.service import PromotionService
from promoter.wiring.adapters import Adapters, build_adapters, cache_dir, forge_identity

if TYPE_CHECKING:
    from promoter.evaluation.worker_pool import WorkerPool


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
                            identity=forge_identity(loaded), cluster=parts.cluster,
                            rollbacks=build_rollback_service(parts), verdicts=parts.verdicts,
                            holdouts=build_holdouts(resolve=loaded.resolve, environ=environ))


def build_holdouts(*, resolve: Callable[[str], Path],
                   environ: Mapping[str, str] | None = None) -> Holdouts:
    """Where evaluations find their holdouts: local paths through `resolve` (relative to
    promoter.yaml for environments, to the working directory for `promoter evaluate`),
    `s3://` and `gs://` objects fetched into `$PROMOTER_CACHE_DIR/holdouts` (default
    ~/.cache/promoter) on the standard credential chains, by digest."""
    environ = os.environ if environ is None else environ
    return Holdouts(resolve=resolve, cache_dir=cache_dir(environ) / "holdouts")


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
        cache_dir(environ) / "models", max_bytes=int(spec.evaluation_cache_gib * GIB)))


def build_rollback_service(adapters: Adapters) -> RollbackService:
    """Rollbacks over the same repository and forge as promotions."""
    return RollbackService(repo=adapters.repo, forge=adapters.forge)


def build_auto_proposer(loaded: LoadedSettings, *, adapters: Adapters,
                        service: PromotionService) -> AutoProposer:
    """Discovery over `service` and the `adapters` it was built on: proposals are made as
    promoter's own identity."""
    return AutoProposer(service=service, store=adapters.store, settings=loaded.settings,
                        rollbacks=build_rollback_service(adapters),
                        author=forge_identity(loaded))

