from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from itertools import pairwise

import pytest

from promoter.server.scheduler import ALL, Job, Scheduler
from tests.server.support import wait_until


class Recorder:
    """Jobs that sleep and record when they ran, per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[str, str, float, float]] = []
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.max_total = 0

    def job(self, key: str, name: str, *, sleep_s: float = 0.02,
            gate: threading.Event | None = None, fail: bool = False) -> Job:
        def run() -> None:
            start = time.monotonic()
            with self.lock:
                self.active[key] = self.active.get(key, 0) + 1
                self.max_active[key] = max(self.max_active.get(key, 0), self.active[key])
                self.max_total = max(self.max_total, sum(self.active.values()))
            try:
                if gate is not None:
                    assert gate.wait(5)
                time.sleep(sleep_s)
                if fail:
                    raise RuntimeError(f"job {name} failed on purpose")
            finally:
                with self.lock:
                    self.active[key] -= 1
                    self.spans.append((key, name, start, time.monotonic()))
        return Job(key, name, run, {"branch": key})

    def names(self) -> list[str]:
        with self.lock:
            return [name for _, name, _, _ in self.spans]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    s = Scheduler(workers=4)
    s.start()
    yield s
    assert s.shutdown(timeout_s=5)


def test_one_job_per_key_at_a_time_and_keys_run_concurrently(
        scheduler: Scheduler, recorder: Recorder) -> None:
    for i in range(6):
        for key in ("environments/dev", "environments/prod"):
            scheduler.submit(recorder.job(key, f"{key} job {i}", sleep_s=0.01))
    assert scheduler.wait_idle(10)
    assert len(recorder.spans) == 12
    assert recorder.max_active == {"environments/dev": 1, "environments/prod": 1}
    assert recorder.max_total == 2  # different environments did overlap
    for key in ("environments/dev", "environments/prod"):
        spans = sorted((s, e) for k, _, s, e in recorder.spans if k == key)
        assert all(prev_end <= start for (_, prev_end), (start, _) in pairwise(spans))


def test_duplicate_requests_are_coalesced_while_queued(
        scheduler: Scheduler, recorder: Recorder) -> None:
    gate = threading.Event()
    assert scheduler.submit(recorder.job("dev", "blocker", gate=gate))
    assert wait_until(lambda: scheduler.running == 1)
    assert scheduler.submit(recorder.job("dev", "pull #7"))
    assert not scheduler.submit(recorder.job("dev", "pull #7"))   # same work, still queued
    assert not scheduler.submit(recorder.job("dev", "pull #7"))
    assert scheduler.submit(recorder.job("dev", "pull #8"))
    assert scheduler.queue_depth == 2
    gate.set()
    assert scheduler.wait_idle(5)
    assert recorder.names() == ["blocker", "pull #7", "pull #8"]


def test_a_running_job_is_not_coalesced_with_a_new_request(
        scheduler: Scheduler, recorder: Recorder) -> None:
    # The event behind the new request happened after the running job read its state.
    gate = threading.Event()
    scheduler.submit(recorder.job("dev", "pull #7", gate=gate))
    assert wait_until(lambda: scheduler.running == 1)
    assert scheduler.submit(recorder.job("dev", "pull #7"))
    gate.set()
    assert scheduler.wait_idle(5)
    assert recorder.names() == ["pull #7", "pull #7"]


def test_a_full_resync_runs_alone_and_covers_queued_work(
        scheduler: Scheduler, recorder: Recorder) -> None:
    gate = threading.Event()
    scheduler.submit(recorder.job("dev", "running", gate=gate))
    assert wait_until(lambda: scheduler.running == 1)
    scheduler.submit(recorder.job("staging", "queued before"))
    assert wait_until(lambda: "queued before" in recorder.names())
    scheduler.submit(recorder.job("prod", "waiting"))
    # Only "waiting" can still be queued when the resync arrives... unless it started already.
    assert scheduler.submit(recorder.job(ALL, "resync", sleep_s=0.05))
    assert not scheduler.submit(recorder.job("prod", "covered by the resync"))
    gate.set()
    assert scheduler.wait_idle(5)
    names = recorder.names()
    assert "covered by the resync" not in names
    resync = next(span for span in recorder.spans if span[0] == ALL)
    for key, _, start, end in recorder.spans:
        if key != ALL:  # nothing overlapped the resync
            assert end <= resync[2] or start >= resync[3]


def test_a_failing_job_is_logged_and_the_workers_go_on(
        recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[str] = []
    scheduler = Scheduler(workers=1, on_error=lambda job, exc: errors.append(job.name))
    scheduler.start()
    try:
        with caplog.at_level(logging.ERROR, logger="promoter.server.scheduler"):
            for i in range(3):
                scheduler.submit(recorder.job("dev", f"bad {i}", sleep_s=0, fail=True))
            scheduler.submit(recorder.job("dev", "good", sleep_s=0))
            assert scheduler.wait_idle(5)
    finally:
        assert scheduler.shutdown(timeout_s=5)
    assert recorder.names()[-1] == "good"
    assert errors == ["bad 0", "bad 1", "bad 2"]
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 3
    assert failures[0].branch == "dev"  # type: ignore[attr-defined]  # from the job context
    assert failures[0].exc_info is not None


def test_periodic_resync(recorder: Recorder) -> None:
    resyncs: list[float] = []
    scheduler = Scheduler(workers=2, resync=Job(ALL, "resync", lambda: resyncs.append(1)),
                          resync_interval_s=0.05)
    scheduler.start()
    try:
        assert wait_until(lambda: len(resyncs) >= 3, timeout_s=5)  # at start, then periodic
    finally:
        assert scheduler.shutdown(timeout_s=5)
    count = len(resyncs)
    time.sleep(0.15)
    assert len(resyncs) == count  # the timer stopped too


def test_shutdown_drops_queued_jobs_and_waits_for_running_ones(recorder: Recorder) -> None:
    scheduler = Scheduler(workers=1)
    scheduler.start()
    scheduler.submit(recorder.job("dev", "running", sleep_s=0.1))
    assert wait_until(lambda: scheduler.running == 1)
    scheduler.submit(recorder.job("dev", "queued"))
    assert scheduler.shutdown(timeout_s=5)
    assert recorder.names() == ["running"]
    assert not scheduler.submit(recorder.job("dev", "after shutdown"))
    assert not scheduler.alive
