"""Prometheus metrics of one server, in a registry of its own (never the global one).

Every metric here is updated by the server: the webhook route, the reconcile jobs or the
scheduler. A reconcile that finds a promotion still waiting counts again on the next
reconcile, so `promoter_reconcile_outcomes_total` counts reconcile results, not promotions;
merges are counted once, because a merged pull request is no longer reconciled.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WEBHOOK_EVENTS = frozenset({
    "ping", "pull_request", "pull_request_review", "push", "check_run", "check_suite",
    "status", "unverified", "unknown",
})
"""Event labels: GitHub's events promoter knows, `unverified` (the signature failed, so the
event header is not trusted) and `unknown` (no event header); anything else is `other`, so an
authenticated sender cannot grow the label set without bound."""


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

    def webhook(self, event: str, result: str) -> None:
        label = event if event in WEBHOOK_EVENTS else "other"
        self.webhook_deliveries.labels(event=label, result=result).inc()

    def watch_scheduler(self, queue_depth: Callable[[], float],
                        running: Callable[[], float]) -> None:
        """Read the gauges from the scheduler at scrape time."""
        self.queue_depth.set_function(queue_depth)
        self.jobs_running.set_function(running)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
