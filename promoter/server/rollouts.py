"""Time from a merge to its healthy rollout, measured where promoter reads rollouts back.

`TimedClusterReader` decorates the `ClusterReader` the promotion service uses (and hands every
reading to `on_reading`, which sets training's state gauge). Every rollout
promoter reads (the rollout check of each resync, the upstream-rollout gate of each reconcile)
goes through it; the first time it reads HEALTHY for an environment's commit, it reports the
time from the commit to healthy. Environment branches move only through merges (promotions and
rollbacks), so that commit is a merge, and its commit time is when it was merged. Healthy is
when the controller says it became healthy (`RolloutState.healthy_since`: Flux's condition
transitions, Argo CD's health transition) if that is after the merge; otherwise it is when
promoter *noticed*: an upper bound, late by at most the time between two reads
(`service.resyncIntervalSeconds` when nothing else reads the environment).

Each commit is reported at most once per process, not on every resync: the reader remembers
the last commit seen healthy per environment (branches only move forward, so one per
environment is enough). A commit merged before the process started and already healthy when
first read is not reported: nobody knows when it became healthy, and reporting the age of last
week's deployment after every restart would bury the real figures. (One merged before the start
but read as not yet healthy is reported when it becomes healthy.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from promoter.cluster.port import ClusterReader, RolloutPhase, RolloutState
from promoter.config.schema import EnvironmentSpec
from promoter.errors import PromoterError

log = logging.getLogger(__name__)


class TimedClusterReader:
    """A `ClusterReader` that reports merge -> healthy times to `observe(environment, s)`.

    `commit_time(sha)` says when a commit was made (for a merge: when it was merged);
    `clock` is the wall clock (injectable for tests). Reading and errors are unchanged: a
    failure to time a rollout is logged, never raised, so a metric cannot fail a gate.
    """

    def __init__(self, reader: ClusterReader, *, commit_time: Callable[[str], datetime],
                 observe: Callable[[str, float], None],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_reading: Callable[[RolloutState], None] | None = None) -> None:
        self._reader = reader
        self._on_reading = on_reading
        """Told of every reading (training's state gauge); its errors are logged only."""
        self._commit_time = commit_time
        self._observe = observe
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock().replace(microsecond=0)  # git commit times are whole seconds
        self._healthy: dict[str, str] = {}
        """Per environment, the commit last seen healthy (reported or not)."""
        self._unhealthy: dict[str, str] = {}
        """Per environment, the commit last seen not (yet) healthy."""

    def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
        state = self._reader.rollout_state(env, commit=commit)
        self._note(env.name, state)
        if self._on_reading is not None:
            try:
                self._on_reading(state)
            except Exception:  # a metric must never fail a gate or a rollout check
                log.exception("could not record the reading of %s", env.name)
        return state

    def request_reconcile(self, env: EnvironmentSpec, *, requested_at: str) -> None:
        self._reader.request_reconcile(env, requested_at=requested_at)

    def _note(self, environment: str, state: RolloutState) -> None:
        with self._lock:
            if state.phase is not RolloutPhase.HEALTHY:
                self._unhealthy[environment] = state.commit
                return
            if self._healthy.get(environment) == state.commit:
                return  # reported (or skipped) already
            self._healthy[environment] = state.commit
            watched = self._unhealthy.get(environment) == state.commit
        try:
            merged_at = self._commit_time(state.commit)
        except PromoterError as exc:
            log.warning("cannot time the rollout of %s@%s: %s", environment,
                        state.commit[:12], exc.message)
            return
        if merged_at < self._started and not watched:
            return  # healthy since an unknown time: see the module docstring
        healthy_at = state.healthy_since
        if healthy_at is None or healthy_at < merged_at:
            # The controller's time is missing, or says nothing about this commit (a condition
            # that stayed True across revisions): when promoter saw it is the best bound.
            healthy_at = self._clock()
        self._observe(environment, max(0.0, (healthy_at - merged_at).total_seconds()))
