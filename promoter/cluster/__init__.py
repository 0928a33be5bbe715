"""Reading rollouts back from the cluster: has Flux or Argo CD applied commit X, and is it healthy?

- `port.py`: the `ClusterReader` port, `RolloutState` and `DeliveryTarget` (which objects to
  read for an environment).
- `health.py`: the pure decision from the objects' plain dicts, by the documented rules.
- `wait.py`: polling a reader until a commit is healthy, failed or out of time.
- `kubernetes.py`: the adapter over the `kubernetes` client, the only module importing it
  (import it directly; this package does not, so `promoter --help` stays fast).
"""

from promoter.cluster.errors import (
    ClusterError,
    ClusterObjectNotFoundError,
    ClusterShapeError,
    ClusterUnreachableError,
)
from promoter.cluster.health import (
    argo_rollout_state,
    flux_revision,
    flux_rollout_state,
    training_state,
)
from promoter.cluster.port import (
    ARGO_REFRESH_ANNOTATION,
    FLUX_RECONCILE_ANNOTATION,
    ClusterReader,
    DeliveryTarget,
    ObjectRef,
    RolloutPhase,
    RolloutState,
    TrainingPhase,
    TrainingState,
)
from promoter.cluster.wait import wait_for_rollout

__all__ = [
    "ARGO_REFRESH_ANNOTATION",
    "FLUX_RECONCILE_ANNOTATION",
    "ClusterError",
    "ClusterObjectNotFoundError",
    "ClusterReader",
    "ClusterShapeError",
    "ClusterUnreachableError",
    "DeliveryTarget",
    "ObjectRef",
    "RolloutPhase",
    "RolloutState",
    "TrainingPhase",
    "TrainingState",
    "argo_rollout_state",
    "flux_revision",
    "flux_rollout_state",
    "training_state",
    "wait_for_rollout",
]
