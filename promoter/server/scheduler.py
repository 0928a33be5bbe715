"""A keyed work queue for reconciles: one job per environment branch at a time.

Webhooks only say "something about this environment changed"; the scheduler decides when the
reconcile runs. Rules:

- A job has a `key` (the environment branch it writes) and a `name` (what it does). A request
  equal to one still queued (same key and name) is coalesced into it: it would do the same
  work from the same state.
- At most one job per key runs at a time; jobs of different keys run concurrently on the
  worker threads.
- The key `ALL` (a resync of every promotion) runs alone: it waits for running jobs to finish
  and nothing queued after it starts before it ends. While it is queued it covers every new
  request, and queuing it drops the per-branch jobs still waiting.
- A job that raises is logged with its context and counted; the worker goes on.
- `shutdown()` lets running jobs finish and drops queued ones: every reconcile is derived
  from git and the forge, so the resync at the next start picks them up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from promoter.server.logs import log_context

log = logging.getLogger(__name__)

ALL = "*"
"""The key of jobs that touch every environment branch (a full resync)."""


@dataclass(frozen=True, slots=True)
class Job:
    key: str
    """Environment branch the job writes, e.g. `environments/prod`; `ALL` for every one."""
    name: str
    """What it does, e.g. `pull 7`; equal key and name mean equal work."""
    run: Callable[[], None] = field(compare=False)
    context: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Log fields for every line the job writes (`environment`, `pr`)."""

    @property
    def identity(self) -> tuple[str, str]:
        return (self.key, self.name)


class Scheduler:
    """Worker threads running `Job`s by the rules in the module docstring.

    `resync`, when given, is submitted once at `start()` and then every `resync_interval_s`.
    `on_error(job, exc)` and `on_coalesced()` let the caller count what happened. Errors of
    the `expected_errors` types are logged without a traceback (their message says it all).
    """

    def __init__(self, *, workers: int = 4, resync: Job | None = None,
                 resync_interval_s: float | None = None,
                 on_error: Callable[[Job, Exception], None] | None = None,
                 on_coalesced: Callable[[], None] | None = None,
                 expected_errors: tuple[type[Exception], ...] = ()) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if resync is not None and resync.key != ALL:
            raise ValueError("the resync job must have the key ALL")
        self._workers = workers
        self._resync = resync
        self._interval = resync_interval_s
        self._on_error = on_error
        self._on_coalesced = on_coalesced
        self._expected = expected_errors
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._queued: set[tuple[str, str]] = set()
        self._running: dict[str, int] = {}
        self._stopping = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.completed = 0
        """Jobs that finished (raised or not); for tests and the benchmark."""

    # --- control ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (and the resync timer). Calling it twice is a mistake."""
        if self._threads:
            raise RuntimeError("scheduler already started")
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"promoter-reconcile-{i}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._resync is not None:
            self.submit(self._resync)
            if self._interval:
                timer = threading.Thread(target=self._resync_loop, name="promoter-resync",
                                         daemon=True)
                timer.start()
                self._threads.append(timer)

    def shutdown(self, *, timeout_s: float = 30.0) -> bool:
        """Stop taking jobs, drop queued ones, wait for running ones; True if all stopped."""
        with self._cond:
            self._stopping = True
            dropped = len(self._pending)
            self._pending.clear()
            self._queued.clear()
            self._cond.notify_all()
        self._stop.set()
        if dropped:
            log.info("shutdown: %d queued reconcile(s) dropped; the next resync redoes them",
                     dropped)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("shutdown: %s still running after %.0fs", ", ".join(alive), timeout_s)
        return not alive

    def submit(self, job: Job) -> bool:
        """Queue `job`; False if it was coalesced into queued work (or the scheduler stops)."""
        with self._cond:
            if self._stopping:
                return False
            covered = job.identity in self._queued or (
                job.key != ALL and any(k == ALL for k, _ in self._queued))
            if covered:
                if self._on_coalesced:
                    self._on_coalesced()
                return False
            if job.key == ALL:
                # A full resync does everything the waiting per-branch jobs would do.
                kept = deque(j for j in self._pending if j.key == ALL)
                if self._on_coalesced:
                    for _ in range(len(self._pending) - len(kept)):
                        self._on_coalesced()
                self._pending = kept
                self._queued = {j.identity for j in kept}
            self._pending.append(job)
            self._queued.add(job.identity)
            self._cond.notify_all()
            return True

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until nothing is queued or running; False on timeout. For tests and tools."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    @property
    def queue_depth(self) -> int:
        with self._cond:
            return len(self._pending)

    @property
    def running(self) -> int:
        with self._cond:
            return sum(self._running.values())

    @property
    def alive(self) -> bool:
        """True while every worker thread runs (readiness)."""
        return bool(self._threads) and not self._stopping and all(
            t.is_alive() for t in self._threads)

    # --- workers ----------------------------------------------------------------------------

    def _next_runnable(self) -> Job | None:
        """Take the first queued job that may start now (called with the lock held)."""
        for index, job in enumerate(self._pending):
            if job.key == ALL:
                if self._running:
                    return None  # a barrier: nothing queued after it may start first
            elif job.key in self._running or ALL in self._running:
                continue
            del self._pending[index]
            self._queued.discard(job.identity)
            return job
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                job = None
                while not self._stopping:
                    job = self._next_runnable()
                    if job is not None:
                        break
                    self._cond.wait()
                if job is None:
                    return
                self._running[job.key] = self._running.get(job.key, 0) + 1
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running[job.key] -= 1
                    if not self._running[job.key]:
                        del self._running[job.key]
                    self.completed += 1
                    self._cond.notify_all()

    def _run(self, job: Job) -> None:
        with log_context(job=job.name, **job.context):
            try:
                job.run()
            except Exception as exc:  # a bad job must never take a worker down
                log.error("reconcile job %r failed: %s", job.name, exc,
                          exc_info=not isinstance(exc, self._expected),
                          extra={**job.context, "job": job.name})
                if self._on_error is not None:
                    try:
                        self._on_error(job, exc)
                    except Exception:
                        log.exception("error hook failed")

    def _resync_loop(self) -> None:
        resync, interval = self._resync, self._interval
        assert resync is not None
        assert interval
        while not self._stop.wait(interval):
            self.submit(resync)
