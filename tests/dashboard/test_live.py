"""Live updates: an approval over the REST API reaches an open page's event stream."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from promoter.dashboard.feed import ChangeFeed, SinceLastChange
from promoter.server.runner import serve_in_thread
from promoter.wiring import build_app
from tests.dashboard.conftest import waiting_world
from tests.server.support import RITA_TOKEN, SECRET, TOKENS, bearer


def _events(lines: list[str], url: str, stop: threading.Event) -> None:
    with httpx.stream("GET", f"{url}/events", timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            lines.append(line)
            if stop.is_set():
                return


def test_a_reconcile_after_an_approval_sends_changed_to_open_pages(tmp_path: Path) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    app = build_app(world.service, webhook_secret=SECRET, api_tokens=TOKENS,
                    resync_interval_s=None, dashboard=world.service)
    lines: list[str] = []
    stop = threading.Event()
    with serve_in_thread(app) as url:
        assert app.state.parts.scheduler.wait_idle(30)
        reader = threading.Thread(target=_events, args=(lines, url, stop), daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while "event: hello" not in lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "event: hello" in lines
        approved = httpx.post(f"{url}/api/v1/promotions/{number}/approve",
                              headers=bearer(RITA_TOKEN))
        assert approved.status_code == 200, approved.text
        deadline = time.monotonic() + 30
        while "event: changed" not in lines and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        assert "event: changed" in lines, lines
        assert app.state.parts.scheduler.wait_idle(30)
        page = httpx.get(f"{url}/promotions/{number}").text
        assert 'data-phase>merged' in page
        # What `promoter serve` does on SIGTERM: the stream ends, so shutdown need not wait.
        app.state.dashboard.feed.close()
        reader.join(5)
        assert not reader.is_alive()


def test_a_closed_feed_ends_every_wait_at_once() -> None:
    feed = ChangeFeed()
    feed.close()
    started = time.monotonic()
    assert asyncio.run(feed.wait_past(0, timeout_s=30)) == 0
    assert time.monotonic() - started < 1


def test_a_change_ends_a_wait() -> None:
    feed = ChangeFeed()
    threading.Timer(0.2, feed.changed).start()
    assert asyncio.run(feed.wait_past(0, timeout_s=30)) == 1


def test_the_pipelines_are_read_once_per_change_and_again_after_one(tmp_path: Path) -> None:
    world, number = waiting_world(tmp_path / "gitops")
    app = build_app(world.service, webhook_secret=SECRET, api_tokens=TOKENS,
                    resync_interval_s=None, dashboard=world.service)
    with serve_in_thread(app) as url:
        assert app.state.parts.scheduler.wait_idle(30)
        statuses = app.state.dashboard.statuses
        first = httpx.get(f"{url}/").text
        computed = statuses.computed
        assert httpx.get(f"{url}/").text == first
        assert statuses.computed == computed  # nothing moved: not read again
        assert "waiting for approval" in first
        approved = httpx.post(f"{url}/api/v1/promotions/{number}/approve",
                              headers=bearer(RITA_TOKEN))
        assert approved.status_code == 200
        assert app.state.parts.scheduler.wait_idle(30)  # the reconcile merges and moves the feed
        after = httpx.get(f"{url}/").text
        assert statuses.computed == computed + 1
        assert "waiting for approval" not in after
        app.state.dashboard.feed.close()


def test_pages_reloaded_at_once_after_a_change_share_one_read() -> None:
    feed = ChangeFeed()
    cache: SinceLastChange[int] = SinceLastChange(feed)
    reads: list[int] = []

    def slow_read() -> int:
        reads.append(1)
        time.sleep(0.3)
        return len(reads)

    feed.changed()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(slow_read)))
               for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [1] * 5
    assert cache.computed == 1
