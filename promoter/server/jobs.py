"""Reconcile jobs: what the scheduler runs for each trigger, with metrics and log lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from promoter.errors import PromoterError
from promoter.promotion.results import PromotionState, ReconcileOutcome
from promoter.server.logs import log_context
from promoter.server.metrics import ServerMetrics
from promoter.server.ports import PromotionPort
from promoter.server.routing import Trigger, TriggerKind
from promoter.server.scheduler import ALL, Job

log = logging.getLogger(__name__)


class ReconcileJobs:
    """Builds the scheduler's jobs over one promotion service.

    `submit` (set by `bind`) lets an environment job queue the environments downstream of it.
    `clock` (wall time; injectable for tests) times proposal -> merge.
    `discover` (optional) runs a discovery pass (`AutoProposer.run`) before each resync.
    `on_change` (optional) is called after every reconcile, e.g. the dashboard's
    `ChangeFeed.changed`, so that open pages update.
    """

    def __init__(self, service: PromotionPort, metrics: ServerMetrics, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 discover: Callable[[], object] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self._service = service
        self._on_change = on_change
        self._discover = discover
        self._metrics = metrics
        self._clock = clock
        self._submit: Callable[[Job], bool] | None = None

    def bind(self, submit: Callable[[Job], bool]) -> None:
        self._submit = submit

    def for_trigger(self, trigger: Trigger) -> Job:
        if trigger.kind is TriggerKind.ALL:
            return self.resync()
        assert trigger.branch is not None
        if trigger.kind is TriggerKind.PULL:
            assert trigger.number is not None
            return self.pull(trigger.number, branch=trigger.branch)
        return self.environment(trigger.branch, cascade=trigger.cascade)

    def resync(self) -> Job:
        return Job(ALL, "resync", self._resync)

    def pull(self, number: int, *, branch: str) -> Job:
        return Job(branch, f"pull #{number}", lambda: self._pull(number),
                   {"pr": number, "branch": branch})

    def environment(self, branch: str, *, cascade: bool) -> Job:
        name = f"environment {branch}" + (" and downstream" if cascade else "")
        return Job(branch, name, lambda: self._environment(branch, cascade=cascade),
                   {"branch": branch})

    # --- the work ---------------------------------------------------------------------------

    def _resync(self) -> None:
        if self._discover is not None:
            # First, so that new versions are proposed and then reconciled in the same pass.
            try:
                self._discover()
            except PromoterError as exc:
                # Discovery failing must not stop the promotions already open.
                log.error("discovery failed: %s", exc.message)
        with self._timed("resync"):
            outcomes = self._service.reconcile()
        self._record(outcomes)
        log.info("resync: %d open promotion(s) reconciled", len(outcomes))

    def _pull(self, number: int) -> None:
        with self._timed("pull"):
            outcome = self._service.reconcile_pull(number)
        self._record([outcome])

    def _environment(self, branch: str, *, cascade: bool) -> None:
        with self._timed("environment"):
            _, dry = self._service.dry_config()
            env = next((e for e in dry.environments.values() if e.branch == branch), None)
            if env is None:
                log.info("%s is not an environment branch; nothing to reconcile", branch)
                return
            with log_context(environment=env.name):
                status = next((s for s in self._service.status()
                               if s.environment == env.name), None)
                if status is not None and status.open_promotion is not None:
                    number = status.open_promotion.number
                    with log_context(pr=number):
                        self._record([self._service.reconcile_pull(number)])
                else:
                    log.debug("%s has no open promotion", env.name)
        if cascade and self._submit is not None:
            for downstream in dry.environments.values():
                if downstream.promotes_from == env.name:
                    self._submit(self.environment(downstream.branch, cascade=False))

    def _record(self, outcomes: Iterable[ReconcileOutcome]) -> None:
        for outcome in outcomes:
            self._metrics.reconcile_outcomes.labels(
                environment=outcome.environment, state=str(outcome.state)).inc()
            for gate in outcome.gates:
                self._metrics.gate_verdicts.labels(gate=gate.context,
                                                   state=str(gate.state)).inc()
            if (outcome.state is PromotionState.MERGED and outcome.merge_sha is not None
                    and outcome.proposed_at is not None):
                # merge_sha: a merge by this reconcile, not a proposal closed as already there.
                waited = (self._clock() - outcome.proposed_at).total_seconds()
                self._metrics.proposal_to_merge.labels(
                    environment=outcome.environment).observe(max(0.0, waited))
            what = (f"{outcome.model} v{outcome.version}" if outcome.model is not None
                    else "(model unknown)")
            extra = {"environment": outcome.environment, "pr": outcome.pull_number,
                     "promotion": what}
            note = f" ({outcome.note})" if outcome.note else ""
            log.info("PR #%s %s -> %s: %s%s", outcome.pull_number, what,
                     outcome.environment, outcome.state, note, extra=extra)
        if self._on_change is not None:
            self._on_change()

    def _timed(self, kind: str) -> _Timed:
        return _Timed(self._metrics, kind)


class _Timed:
    """Observe the duration of a block; count it as an error (by type) if it raises."""

    def __init__(self, metrics: ServerMetrics, kind: str) -> None:
        self._metrics = metrics
        self._kind = kind
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self._metrics.reconcile_duration.labels(kind=self._kind).observe(
            time.perf_counter() - self._start)
        if exc_type is not None:
            error = exc_type.__name__ if issubclass(exc_type, PromoterError) else "unexpected"
            self._metrics.reconcile_errors.labels(kind=self._kind, error=error).inc()
