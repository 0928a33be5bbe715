"""The composition root: the one place that picks adapters and builds what runs on them.

The CLI's commands call `build_service` (and `connect_cluster` for `promoter health`);
`promoter serve` calls `build_server`, which builds the adapters, the metrics registry they
report to, the service, discovery, the reconcile scheduler and the HTTP app. Nothing else
knows which git, forge, store or cluster implementation is in use, and `promoter.server`
never imports this package: the app takes everything it runs on as arguments.

Three modules, one per stage of the composition, each importing only the ones before it:
`adapters` (what promoter.yaml names: git, forge, model store, cluster reader),
`services` (the promotion service, rollbacks, discovery and holdouts over those adapters,
for every command) and `serve` (`promoter serve`: metrics, secrets, tokens, workers, the
app). Import from `promoter.wiring`; the modules are its parts, not separate entry points.
"""

from promoter.wiring.adapters import (
    PROMOTER_IDENTITY,
    Adapters,
    build_adapters,
    build_cluster_reader,
    build_store,
    connect_cluster,
    forge_state_path,
)
from promoter.wiring.serve import (
    DORA_GAUGE_WINDOW,
    ServeOptions,
    Server,
    build_app,
    build_server,
    build_worker_pool,
    github_repository,
    instrument_adapters,
)
from promoter.wiring.services import (
    build_auto_proposer,
    build_evaluation_store,
    build_holdouts,
    build_rollback_service,
    build_service,
)

__all__ = [
    "DORA_GAUGE_WINDOW",
    "PROMOTER_IDENTITY",
    "Adapters",
    "ServeOptions",
    "Server",
    "build_adapters",
    "build_app",
    "build_auto_proposer",
    "build_cluster_reader",
    "build_evaluation_store",
    "build_holdouts",
    "build_rollback_service",
    "build_server",
    "build_service",
    "build_store",
    "build_worker_pool",
    "connect_cluster",
    "forge_state_path",
    "github_repository",
    "instrument_adapters",
]
