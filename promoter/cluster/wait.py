"""Waiting for a rollout: poll a ClusterReader until the commit is healthy, failed, or late."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from promoter.cluster.errors import ClusterUnreachableError
from promoter.cluster.port import ClusterReader, RolloutPhase, RolloutState
from promoter.config.schema import EnvironmentSpec

log = logging.getLogger(__name__)


def wait_for_rollout(
    reader: ClusterReader, env: EnvironmentSpec, *, commit: str, timeout_s: float,
    poll_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutState:
    """Poll `reader` until `commit` of `env` is HEALTHY or FAILED; after `timeout_s`, return
    the last state with phase TIMED_OUT.

    An unreachable API server is retried until the deadline, then ClusterUnreachableError is
    raised (not TIMED_OUT): promoter could not see the rollout, which is no reason to roll it
    back. A missing object or an unexpected shape is raised at once: waiting cannot fix it.
    """
    deadline = clock() + timeout_s
    last: RolloutState | None = None
    unreachable: ClusterUnreachableError | None = None
    while True:
        try:
            last = reader.rollout_state(env, commit=commit)
            unreachable = None
            log.info("%s %s: %s (%s)", env.name, commit[:12], last.phase, last.reason)
            if last.done:
                return last
        except ClusterUnreachableError as exc:
            unreachable = exc
            log.warning("%s: cluster unreachable, retrying: %s", env.name, exc.message)
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(poll_s, remaining))
    if unreachable is not None or last is None:
        raise unreachable or ClusterUnreachableError(f"{env.name}: no answer from the cluster")
    return RolloutState(
        environment=env.name, commit=commit, phase=RolloutPhase.TIMED_OUT,
        reason=f"not healthy after {timeout_s:g}s: {last.reason}",
        observed_revision=last.observed_revision, training=last.training,
    )
