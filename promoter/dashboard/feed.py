"""Change notices for the pages' live updates (server-sent events).

Whatever may move a promotion calls `changed()`: the end of every reconcile job (webhooks,
the periodic resync) and a review given through the dashboard. Each open page holds an
`EventSource`; when the feed's version moves past the one it last saw, the stream sends a
`changed` event and the page fetches itself again, so what it shows is always rendered by
the server from the service (never patched up by the script). Reconciles run on worker
threads and the streams on the event loop, so the version is a counter read under a lock and
the streams poll it: a few comparisons a second per open page, and no callback into the loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ChangeFeed:
    """A counter that moves whenever a promotion may have moved."""

    def __init__(self) -> None:
        self._version = 0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once the server is stopping: every stream ends, so none holds the shutdown
        (uvicorn waits for open responses before it stops)."""
        with self._lock:
            return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def changed(self) -> None:
        with self._lock:
            self._version += 1

    async def wait_past(self, seen: int, *, timeout_s: float, poll_s: float = 0.25) -> int:
        """The version once it is past `seen`, or the current one after `timeout_s` or once
        the feed is closed."""
        deadline = time.monotonic() + timeout_s
        while True:
            current = self.version
            if current > seen or time.monotonic() >= deadline or self.closed:
                return current
            await asyncio.sleep(poll_s)


class SinceLastChange(Generic[T]):
    """One value computed at most once per version of `feed`: the pipelines page's statuses.

    Everything that moves a promotion through the server moves the feed (reconciles after
    webhooks, reviews, the periodic resync), so between two moves the service would answer
    the same; the page then costs its rendering only. What changes outside the server
    without a webhook (the CLI on the local forge) shows after the next resync, as the
    reconciles see it (`service.resyncIntervalSeconds`)."""

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed
        self._lock = threading.Lock()
        self._computing = threading.Lock()
        self._cached: tuple[int, T] | None = None
        self.computed = 0
        """How many times the value was computed (tests, the benchmark)."""

    def get(self, compute: Callable[[], T]) -> T:
        """The value of the feed's current version; computed by one caller at a time, so
        the pages that a change reloads at once share one read of the service."""
        version = self._feed.version
        with self._lock:
            if self._cached is not None and self._cached[0] == version:
                return self._cached[1]
        with self._computing:
            with self._lock:  # another caller may have computed it meanwhile
                if self._cached is not None and self._cached[0] >= version:
                    return self._cached[1]
            value = compute()
            with self._lock:
                self.computed += 1
                self._cached = (version, value)
            return value
