"""Prometheus metrics of one server, in a registry of its own (never the global one).

Every metric here is updated by the server: the webhook route, the reconcile jobs or the
scheduler, and the adapters `promoter serve` decorates (`wiring.instrument_adapters`): forge
calls, and merge -> healthy as the cluster reader sees it. A reconcile that finds a
promotion still waiting counts again on the next reconcile, so
`promoter_reconcile_outcomes_total` counts reconcile results, not promotions; merges are
counted once (and timed from the pull request's creation), because a merged pull request is
no longer reconciled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from promoter.errors import PromoterError
from promoter.promotion.dora import DoraFigures

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WEBHOOK_EVENTS = frozenset({
    "ping", "pull_request", "pull_request_review", "push", "check_run", "check_suite",
    "status", "unverified", "unknown",
})
"""Event labels: GitHub's events promoter knows, `unverified` (the signature failed, so the
event header is not trusted) and `unknown` (no event header); anything else is `other`, so an
authenticated sender cannot grow the label set without bound."""


_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800,
                     86400, 172800, 604800)
"""Seconds to a week: promotions wait minutes for a rollout and days for a release manager."""


class ServerMetrics:
    """The server's metrics and the registry `/metrics` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_outcomes = Counter(
            "promoter_reconcile_outcomes", "Promotion states found by reconciles "
            "(waiting, ready, blocked, merged), per environment.",
            ["environment", "state"], registry=r)
        self.gate_verdicts = Counter(
            "promoter_gate_verdicts", "Gate results published by reconciles.",
            ["gate", "state"], registry=r)
        self.reconcile_duration = Histogram(
            "promoter_reconcile_duration_seconds", "Time one reconcile job took.",
            ["kind"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
                     300))
        self.reconcile_errors = Counter(
            "promoter_reconcile_errors", "Reconcile jobs that raised.", ["kind", "error"],
            registry=r)
        self.webhook_deliveries = Counter(
            "promoter_webhook_deliveries", "Webhook deliveries by event and result.",
            ["event", "result"], registry=r)
        self.duplicate_deliveries = Counter(
            "promoter_webhook_duplicate_deliveries",
            "Redeliveries recognised by X-GitHub-Delivery and not processed again.",
            registry=r)
        self.jobs_coalesced = Counter(
            "promoter_scheduler_coalesced_jobs",
            "Reconcile requests merged into one already queued.", registry=r)
        self.queue_depth = Gauge(
            "promoter_scheduler_queue_depth", "Reconcile jobs waiting to run.", registry=r)
        self.jobs_running = Gauge(
            "promoter_scheduler_running_jobs", "Reconcile jobs running now.", registry=r)
        self.proposal_to_merge = Histogram(
            "promoter_proposal_to_merge_seconds", "From a promotion pull request's creation "
            "to its merge by promoter, per environment.",
            ["environment"], registry=r, buckets=_DURATION_BUCKETS)
        self.merge_to_healthy = Histogram(
            "promoter_merge_to_healthy_seconds", "From a merge into an environment branch to "
            "its healthy rollout (the controller's time, else promoter's first healthy "
            "reading), per environment; once per commit and process.",
            ["environment"], registry=r, buckets=_DURATION_BUCKETS)
        self.forge_calls = Counter(
            "promoter_forge_calls", "Calls of the forge port by operation and result (`ok`, "
            "the error's class, or `unexpected`); one call may be several HTTP requests.",
            ["operation", "result"], registry=r)
        self.forge_call_duration = Histogram(
            "promoter_forge_call_duration_seconds", "Time one forge port call took.",
            ["operation"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                     30))

    def webhook(self, event: str, result: str) -> None:
        label = event if event in WEBHOOK_EVENTS else "other"
        self.webhook_deliveries.labels(event=label, result=result).inc()

    def forge_call(self, operation: str, result: str, seconds: float) -> None:
        """Count one forge call (`promoter.forge.instrumented.OnCall`)."""
        self.forge_calls.labels(operation=operation, result=result).inc()
        self.forge_call_duration.labels(operation=operation).observe(seconds)

    def rollout_healthy(self, environment: str, seconds: float) -> None:
        """Observe merge -> healthy (`promoter.server.rollouts.TimedClusterReader`)."""
        self.merge_to_healthy.labels(environment=environment).observe(seconds)

    def watch_scheduler(self, queue_depth: Callable[[], float],
                        running: Callable[[], float]) -> None:
        """Read the gauges from the scheduler at scrape time."""
        self.queue_depth.set_function(queue_depth)
        self.jobs_running.set_function(running)

    def watch_dora(self, source: Callable[[], Sequence[DoraFigures]], *, window: str,
                   ttl_s: float = 300.0,
                   clock: Callable[[], float] = time.monotonic) -> None:
        """Expose `source`'s DORA figures as gauges (`promoter_dora_*`), computed at scrape
        time at most once per `ttl_s` (each computation walks the history on the forge)."""
        self.registry.register(DoraCollector(source, window=window, ttl_s=ttl_s, clock=clock))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


_DORA_GAUGES = (
    ("promoter_dora_deployments", "Promotions merged in the window.", "deployments"),
    ("promoter_dora_deployments_per_day", "Promotions merged per day of the window.",
     "deployments_per_day"),
    ("promoter_dora_lead_time_seconds", "Median time from a version complete in the store "
     "to its rollout seen healthy; absent when none was measured.", "lead_time_seconds"),
    ("promoter_dora_change_failure_rate", "Failed or rolled-back promotions / promotions in "
     "the window; absent without promotions.", "change_failure_rate"),
    ("promoter_dora_time_to_restore_seconds", "Median time from a failure to the next "
     "deployment seen healthy; absent when none was measured.", "time_to_restore_seconds"),
)


class DoraCollector(Collector):
    """DORA figures per model and environment as gauges, labelled `model`, `environment` and
    `window`. A figure that cannot be measured (None) has no sample, never a 0: Prometheus
    reads an absent series as unknown. `promoter_dora_up` is 0 when the last computation
    failed (the forge or git unreadable); the gauges are then absent until the next one."""

    def __init__(self, source: Callable[[], Sequence[DoraFigures]], *, window: str,
                 ttl_s: float, clock: Callable[[], float]) -> None:
        self._source = source
        self._window = window
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Sequence[DoraFigures] | None] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without this the registry would call collect() on registration: a history walk
        # at start-up.
        yield GaugeMetricFamily("promoter_dora_up", "1 when the figures could be computed.")
        for name, help_text, _ in _DORA_GAUGES:
            yield GaugeMetricFamily(name, help_text, labels=["model", "environment", "window"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self._figures()
        up = GaugeMetricFamily("promoter_dora_up", "1 when the figures could be computed.")
        up.add_metric([], 0.0 if figures is None else 1.0)
        yield up
        for name, help_text, attribute in _DORA_GAUGES:
            family = GaugeMetricFamily(name, help_text,
                                       labels=["model", "environment", "window"])
            for f in figures or ():
                value = getattr(f, attribute)
                if value is not None:
                    family.add_metric([f.model, f.environment, self._window], float(value))
            yield family

    def _figures(self) -> Sequence[DoraFigures] | None:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._ttl_s:
                return self._cached[1]
            try:
                figures: Sequence[DoraFigures] | None = self._source()
            except PromoterError as exc:
                log.warning("DORA figures not computed: %s", exc.message)
                figures = None
            self._cached = (now, figures)
            return figures
