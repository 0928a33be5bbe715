"""Run an iterator in a background thread, a few items ahead of its consumer.

The holdout readers (`arrow_csv`, `parquet_holdout`, `tfrecord`) read, hash and parse in a
thread of their own, so the next block is parsed while the worker scores the current one
(pyarrow and hashlib release the GIL while they work). At most `depth` items wait, so memory
stays bounded by the reader's block size. A failure in the thread is raised in the consumer,
at the item where it happened.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetched(produce: Callable[[], Iterator[T]], *, depth: int = 2,
               name: str = "holdout-reader") -> Iterator[T]:
    """Yield what `produce()` yields, computed in a thread up to `depth` items ahead.

    Closing the returned generator (or an error in the consumer) stops the thread at its next
    item and waits for it, so no thread outlives the reading.
    """
    handoff: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        items: Iterator[T] | None = None
        try:
            items = produce()
            for item in items:
                if not put("item", item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put("error", exc)
            return
        finally:
            # In this thread, before the consumer's join returns: the producer's own cleanup
            # (closing its file) is done when the reading ends, early or not.
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put("done", None)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "item":
                yield value  # type: ignore[misc]  # what produce() yielded: a T
            elif kind == "done":
                return
            else:
                raise value  # type: ignore[misc]  # a BaseException from the thread
    finally:
        stop.set()
        thread.join()
