"""Webhook load benchmark: signed GitHub deliveries at a fixed rate against the real server.

Starts the real app with uvicorn on 127.0.0.1 (an ephemeral port) in a child process, over a
fake promotion service that counts reconciles; sends `--rate` signed `pull_request` deliveries
per second for `--duration` seconds from httpx client threads (open loop: each request has
a scheduled send time, so a slow answer does not slow the sender), a fraction of them
redeliveries of earlier ids; then waits for the background reconciles and checks that every
unique delivery was reconciled exactly once and no redelivery was processed again. Server and
client are separate processes so they do not share one interpreter lock.

    .venv/bin/python benchmarks/webhooks.py                 # 200 req/s for 30 s
    .venv/bin/python benchmarks/webhooks.py --duration 3    # a quick run

Loopback traffic only. Exit status 1 if any request was dropped (non-2xx or error) or any
delivery was processed twice or never.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promoter.config.loader import DryConfig
from promoter.promotion.results import PromotionState, ReconcileOutcome
from promoter.server.runner import serve_in_thread
from promoter.server.signature import sign
from promoter.wiring import build_app

SECRET = b"benchmark-secret"
ENVIRONMENTS = ("dev", "staging", "prod")


class CountingService:
    """Counts reconciles per pull request; each takes `delay_s` (a stand-in for git work)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.counts: Counter[int] = Counter()
        self._lock = threading.Lock()

    def dry_config(self) -> tuple[str, DryConfig]:
        return "0" * 40, DryConfig(environments={}, policies={}, templates={}, source="bench")

    def status(self, *, rollouts: bool = False) -> list[Any]:
        return []

    def reconcile(self) -> list[ReconcileOutcome]:
        return []

    def reconcile_pull(self, number: int) -> ReconcileOutcome:
        with self._lock:
            self.counts[number] += 1
        time.sleep(self.delay_s)
        return ReconcileOutcome(pull_number=number, environment=ENVIRONMENTS[number % 3],
                                model="churn", version=1, state=PromotionState.WAITING,
                                gates=())

    def evaluation_report(self, number: int) -> str | None:
        return None

    def approve(self, number: int, *, user: str, reject: bool = False) -> Any:
        raise NotImplementedError

    def history(self, *, environment: str | None = None, limit: int = 0) -> list[Any]:
        return []  # no environments (dry_config), so no history

    def dora(self, *, window: Any, end: Any = None, environment: str | None = None
             ) -> list[Any]:
        return []


@dataclass(frozen=True)
class Delivery:
    index: int
    delivery_id: str
    number: int
    body: bytes
    redelivery: bool


@dataclass
class Result:
    index: int
    scheduled: float
    started: float
    finished: float
    status: int | None
    outcome: str | None
    error: str | None


def payload(number: int) -> bytes:
    env = ENVIRONMENTS[number % 3]
    return json.dumps({
        "action": "synchronize", "number": number,
        "pull_request": {"number": number, "state": "open",
                         "head": {"ref": f"environments/{env}-next", "sha": "a" * 40},
                         "base": {"ref": f"environments/{env}"}},
        "repository": {"full_name": "acme/ml-gitops"},
    }).encode()


def plan(total: int, redeliver: float, seed: int) -> list[Delivery]:
    rng = random.Random(seed)
    out: list[Delivery] = []
    for i in range(total):
        earlier = [d for d in out[max(0, i - 400):max(0, i - 50)] if not d.redelivery]
        if earlier and rng.random() < redeliver:
            original = rng.choice(earlier)  # sent at least 50 requests (~0.25 s) ago
            out.append(Delivery(i, original.delivery_id, original.number, original.body, True))
        else:
            number = i + 1
            out.append(Delivery(i, f"delivery-{number:06d}", number, payload(number), False))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def _serve(conn: Connection, args: argparse.Namespace) -> None:
    """The server process: the real app on uvicorn over a CountingService.

    Sends its URL, waits for "stop", waits until the background reconciles are done, then
    sends back how often each pull request was reconciled.
    """
    logging.basicConfig(level=logging.WARNING)
    service = CountingService(args.reconcile_ms / 1000)
    app = build_app(service, webhook_secret=SECRET, repository="acme/ml-gitops",
                    workers=args.workers, resync_interval_s=None)
    with serve_in_thread(app) as url:
        conn.send(url)
        if conn.poll(args.duration + 600):
            conn.recv()
        drained = app.state.parts.scheduler.wait_idle(60)
        conn.send({"counts": dict(service.counts), "drained": drained,
                   "metrics": app.state.parts.metrics.exposition().decode()})


def _send_all(base_url: str, deliveries: list[Delivery], args: argparse.Namespace,
              results: list[Result | None]) -> None:
    """Open loop: request i is handed to a sender thread at start + i / rate.

    Threads with one keep-alive connection each (not one asyncio pool): httpx's async pool
    scans its whole wait queue per request, so a backlog would slow the client itself.
    """
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            # TCP_NODELAY: httpx writes headers and body separately; with Nagle's algorithm
            # the body would wait for the server's delayed ACK (~40 ms) on every request.
            transport = httpx.HTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            local.client = httpx.Client(base_url=base_url, timeout=30, transport=transport)
            with lock:
                clients.append(local.client)
        return local.client

    def send(delivery: Delivery, scheduled: float) -> None:
        headers = {"X-Hub-Signature-256": sign(SECRET, delivery.body),
                   "X-GitHub-Event": "pull_request",
                   "X-GitHub-Delivery": delivery.delivery_id,
                   "Content-Type": "application/json"}
        started = time.perf_counter()
        try:
            response = client().post("/webhooks/github", content=delivery.body,
                                     headers=headers)
            status, outcome, error = response.status_code, response.json().get("status"), None
        except (httpx.HTTPError, ValueError) as exc:
            status, outcome, error = None, None, f"{type(exc).__name__}: {exc}"
        results[delivery.index] = Result(delivery.index, scheduled, started,
                                         time.perf_counter(), status, outcome, error)

    with ThreadPoolExecutor(max_workers=args.connections) as pool:
        # Warm-up, not measured: every thread opens its connection first, so the figures are
        # about webhooks, not a burst of TCP handshakes at second zero.
        barrier = threading.Barrier(args.connections)

        def warm() -> None:
            barrier.wait(30)
            client().get("/healthz")

        for future in [pool.submit(warm) for _ in range(args.connections)]:
            future.result()
        begin = time.perf_counter() + 0.2
        for delivery in deliveries:  # bounded: one pass over the plan
            scheduled = begin + delivery.index / args.rate
            pause = scheduled - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(send, delivery, scheduled)
    for c in clients:
        c.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    deliveries = plan(int(args.rate * args.duration), args.redeliver, args.seed)
    results: list[Result | None] = [None] * len(deliveries)
    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    server = context.Process(target=_serve, args=(child_conn, args), name="promoter-bench")
    server.start()
    try:
        if not conn.poll(60):
            raise RuntimeError("the server process did not start")
        base_url = conn.recv()
        _send_all(base_url, deliveries, args, results)
        conn.send("stop")
        if not conn.poll(120):
            raise RuntimeError("the server process did not report back")
        report = conn.recv()
    finally:
        server.join(30)
        if server.is_alive():
            server.terminate()
            server.join(10)
    counts: dict[int, int] = report["counts"]

    done = [r for r in results if r is not None]
    ok = [r for r in done if r.status is not None and 200 <= r.status < 300]
    latencies = [(r.finished - r.started) * 1000 for r in ok]
    from_schedule = [(r.finished - r.scheduled) * 1000 for r in ok]
    span = max(r.finished for r in done) - min(r.started for r in done)
    unique = {d.number for d in deliveries if not d.redelivery}
    redeliveries = [d for d in deliveries if d.redelivery]
    answered_duplicate = sum(1 for d in redeliveries
                             if (r := results[d.index]) is not None and r.outcome == "duplicate")
    duplicates_metric = next(
        (line.split()[-1] for line in report["metrics"].splitlines()
         if line.startswith("promoter_webhook_duplicate_deliveries_total ")), None)
    return {
        "rate_target": args.rate, "duration_s": args.duration, "requests": len(deliveries),
        "unique_deliveries": len(unique), "redeliveries": len(redeliveries),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies, default=float("nan")), 2),
        "p99_from_schedule_ms": round(percentile(from_schedule, 99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "throughput_rps": round(len(done) / span, 1) if span > 0 else None,
        "dropped": len(deliveries) - len(ok),
        "errors": sorted({r.error for r in done if r.error})[:5],
        "redeliveries_answered_duplicate": answered_duplicate,
        "duplicates_counted_by_server": duplicates_metric,
        "processed_twice": sum(c - 1 for c in counts.values() if c > 1),
        "never_processed": len(unique - set(counts)),
        "reconciles": sum(counts.values()),
        "background_drained": report["drained"],
        "cpus": os.cpu_count(),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of sending")
    parser.add_argument("--redeliver", type=float, default=0.05,
                        help="fraction of requests that redeliver an earlier delivery id")
    parser.add_argument("--connections", type=int, default=16,
                        help="client threads, one keep-alive connection each")
    parser.add_argument("--workers", type=int, default=4, help="reconcile worker threads")
    parser.add_argument("--reconcile-ms", type=float, default=2.0,
                        help="time one fake reconcile takes")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not (0 < args.rate <= 5000 and 0 < args.duration <= 600):
        parser.error("--rate must be in (0, 5000] and --duration in (0, 600]")
    logging.basicConfig(level=logging.WARNING)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>32}: {value}")
    failed = (report["dropped"] or report["processed_twice"] or report["never_processed"]
              or not report["background_drained"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
