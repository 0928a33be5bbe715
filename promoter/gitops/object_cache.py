"""`ObjectCache`: what was read about git objects, kept by their full object ids.

A commit, tree or blob named by its full id never changes: what was read about it once (its
parents, a file at that commit, whether it descends from another commit) stays true, so these
caches need no invalidation and cannot go stale; a branch that moves only brings new keys.
Names that can move (branches, short shas, `HEAD`) are never keys: `is_object_id` tells them
apart, and reads of anything else go to git every time.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A full SHA-1 or SHA-256 object id, as git prints them (lower case)."""


def is_object_id(rev: str) -> bool:
    """True if `rev` is a full object id (git reads it as that object, never as a ref)."""
    return _OBJECT_ID.fullmatch(rev) is not None


class ObjectCache(Generic[K, V]):
    """At most `max_entries` answers, the least recently used dropped first; thread-safe."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, default: D) -> V | D:
        """The answer kept for `key`, or `default` if there is none."""
        with self._lock:
            if key not in self._entries:
                return default
            self._entries.move_to_end(key)
            return self._entries[key]

    def put(self, key: K, value: V) -> V:
        """Keep `value` for `key` and return it."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
