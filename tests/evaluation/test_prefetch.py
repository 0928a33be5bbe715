"""`prefetched`, the reading thread of every holdout reader (CSV, Parquet, TFRecord)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from promoter.evaluation.prefetch import prefetched


def test_items_arrive_in_order_and_the_producers_error_is_raised_in_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("boom")

    seen: list[int] = []

    def consume() -> None:
        seen.extend(prefetched(items, depth=2))

    with pytest.raises(ValueError, match="boom"):
        consume()
    assert seen == [0, 1, 2, 3, 4]


def test_a_consumer_that_stops_early_stops_the_thread_and_closes_the_producer() -> None:
    closed: list[str] = []

    def items() -> Iterator[int]:
        try:
            yield from range(10**9)
        finally:
            closed.append(threading.current_thread().name)

    iterator = prefetched(items, depth=2, name="test-reader")
    assert next(iterator) == 0
    iterator.close()  # joins the thread; would hang if the producer kept going
    # Closed in the reading thread, before close() returned: the reader's file is closed
    # when the reading ends.
    assert closed == ["test-reader"]
    assert "test-reader" not in [t.name for t in threading.enumerate()]


def test_at_most_depth_items_wait() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            made.append(i)
            yield i

    iterator = prefetched(items, depth=2)
    assert next(iterator) == 0
    time.sleep(0.3)  # the thread runs ahead as far as it may
    # One handed over, two waiting, and one made that waits to be put.
    assert len(made) <= 4
    iterator.close()
