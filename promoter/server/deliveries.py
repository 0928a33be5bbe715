"""Memory of webhook deliveries already accepted, so a redelivery is not processed twice."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class DeliveryMemory:
    """A bounded, thread-safe set of `X-GitHub-Delivery` ids, forgetting the oldest first.

    An id is remembered for `ttl_s` seconds or until `capacity` newer ids push it out,
    whichever comes first. Forgetting is safe: a reconcile is idempotent, so a redelivery
    after that only costs one more reconcile.
    """

    def __init__(self, *, capacity: int = 10_000, ttl_s: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, delivery_id: str) -> bool:
        """Record `delivery_id`; True if it was not remembered yet (check and add are atomic)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            if delivery_id in self._seen:
                return False
            self._seen[delivery_id] = now
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self._ttl_s:
                break
            del self._seen[oldest]
