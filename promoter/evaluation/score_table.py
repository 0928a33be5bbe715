"""`ScoreTable`: an exact count of (score, label) pairs in a few bytes per row. Pure.

Exact AUC and AUC-PR need every distinct score with the number of positive and negative rows
at it. `BinaryClassificationStats` holds that as three float64 arrays (24 bytes per distinct
score), and merging such tables by sorting their concatenation needs several times that at
once: at 10 million rows of distinct scores the worker's statistics alone peaked at 834 MiB,
most of one evaluation's memory. The worker's unweighted streams keep this table instead:

- one integer key per distinct (score, label) pair: the score's bit pattern shifted left by
  one, the label in the lowest bit. Scores are probabilities (finite, >= 0, checked before they
  get here), and the bit patterns of non-negative floats sort like the numbers, so the keys
  sort by score, then label. float32 scores (what TensorFlow models return) fit in 4 bytes,
  float64 scores in 8; a table that meets float64 scores widens itself, exactly;
- a count per key: 4 bytes (uint32) while the table has counted fewer than 2**32 rows, so
  that no count can overflow, then float64 (exact up to 2**53 rows);
- new rows wait as raw keys (4 or 8 bytes a row) until there are as many as the table holds,
  then are sorted, counted, and merged into the table with one searchsorted and one mask,
  never an argsort of the whole: amortised O(n log n), and at most about three tables' worth
  of memory at once.

`distinct()` gives exactly the arrays `BinaryClassificationStats.from_batch` would have built
from all the rows (float64 scores ascending, float64 counts), so the metrics do not change.
Weighted rows need float sums, not counts, and stay on `BinaryClassificationStats`'s path.
"""

from __future__ import annotations

import numpy as np

_FLUSH_ROWS = 1 << 20
"""Pending rows are merged once they reach the table's size, and at least this many."""
_NARROW_COUNT_ROWS = 1 << 32
"""Counts are uint32 until the table has counted this many rows (so none can overflow)."""


class ScoreTable:
    """Counts of (score, label) pairs; `add` batches, read them back with `distinct()`."""

    def __init__(self) -> None:
        self.keys: np.ndarray = np.empty(0, np.uint32)
        """Sorted, distinct keys (score bits << 1 | label)."""
        self.counts: np.ndarray = np.empty(0, np.uint32)
        """Rows at each key: uint32 below 2**32 rows in all, float64 from then on."""
        self._rows = 0
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0

    @property
    def nbytes(self) -> int:
        """Memory the table and its pending keys hold (what the benchmark reports)."""
        return (self.keys.nbytes + self.counts.nbytes
                + sum(p.nbytes for p in self._pending))

    def add(self, positive: np.ndarray, scores: np.ndarray) -> None:
        """Count one batch: `positive` booleans (label 1), `scores` probabilities of class 1.

        The caller has checked the scores (finite, in [0, 1]) and the shapes."""
        wide = scores.dtype.itemsize > 4 or not np.issubdtype(scores.dtype, np.floating)
        if wide and self.keys.dtype == np.uint32:
            self._widen()
        if (self.counts.dtype == np.uint32
                and self._rows + scores.shape[0] >= _NARROW_COUNT_ROWS):
            self._flush()
            self.counts = self.counts.astype(np.float64)
        self._rows += scores.shape[0]
        keys = _keys(scores, positive, np.uint64 if self.keys.dtype == np.uint64
                     else np.uint32)
        self._pending.append(keys)
        self._pending_rows += keys.shape[0]
        if self._pending_rows >= max(self.keys.shape[0], _FLUSH_ROWS):
            self._flush()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The table as two arrays for the worker's `.npz` (8 bytes a key for float32
        scores, a third of what the distinct scores' three float64 arrays cost, and no
        conversion in the worker, whose memory TensorFlow already fills)."""
        self._flush()
        return {"table_keys": self.keys, "table_counts": self.counts}

    @classmethod
    def from_arrays(cls, keys: np.ndarray, counts: np.ndarray) -> ScoreTable:
        """Inverse of `to_arrays`, for arrays that come from another process (the worker):
        raises ValueError unless they are a table `add` could have made."""
        keys, counts = np.asarray(keys), np.asarray(counts)
        one = keys.dtype.type(1) if keys.dtype in (np.uint32, np.uint64) else None
        if (one is None or keys.ndim != 1 or counts.shape != keys.shape
                or counts.dtype not in (np.uint32, np.float64)):
            raise ValueError("a score table is two 1-D arrays of one length: uint32 or uint64 "
                             "keys and uint32 or float64 counts")
        floats = np.float64 if keys.dtype == np.uint64 else np.float32
        scores = (keys >> one).view(floats)
        if not (bool(np.all(keys[1:] > keys[:-1])) and bool(np.all(counts >= 1))
                and bool(np.all(counts == np.floor(counts))) and bool(np.all(scores <= 1))):
            raise ValueError("score table keys must ascend, each with a whole count of at "
                             "least 1, and decode to scores in [0, 1]")
        table = cls()
        table.keys, table.counts = keys, counts
        table._rows = int(counts.sum(dtype=np.float64))
        return table

    def distinct(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct scores (float64, ascending) with the positive and negative rows at each
        (float64): the arrays of `BinaryClassificationStats`.

        The table hands its arrays over to build them, so that both are never held at once:
        it is empty afterwards."""
        self._flush()
        keys, counts = self.keys, self.counts
        self.keys, self.counts = np.empty(0, keys.dtype), np.empty(0, counts.dtype)
        if keys.shape[0] == 0:
            return np.empty(0, np.float64), np.empty(0, np.float64), np.empty(0, np.float64)
        one = keys.dtype.type(1)
        positive = (keys & one).astype(np.bool_)
        bits = keys >> one
        del keys
        first = _first_of_runs(bits)
        floats = np.float64 if bits.dtype == np.uint64 else np.float32
        scores = bits[first].view(floats).astype(np.float64)
        del bits
        # A score has at most two keys, label 0 then label 1: a run's first key holds its
        # negatives unless its label is 1, and a second key holds its positives.
        second = ~first[1:]
        has_second = np.append(second, False)[first]
        first_positive = positive[first]
        del positive
        at_negative = counts[first].astype(np.float64)
        at_positive = np.where(first_positive, at_negative, 0.0)
        at_negative[first_positive] = 0.0
        at_positive[has_second] = counts[1:][second]
        return scores, at_positive, at_negative

    def _flush(self) -> None:
        if not self._pending:
            return
        run = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._pending_rows = [], 0
        run.sort()
        starts = np.flatnonzero(_first_of_runs(run))
        keys = run[starts]
        counts = np.empty(starts.shape[0], self.counts.dtype)  # uint32 cannot overflow: add
        np.subtract(starts[1:], starts[:-1], out=counts[:-1], casting="unsafe")
        counts[-1:] = run.shape[0] - starts[-1:]
        del run, starts
        if self.keys.shape[0] == 0:
            self.keys, self.counts = keys, counts
            return
        at = np.searchsorted(self.keys, keys)
        found = at < self.keys.shape[0]
        found[found] = self.keys[at[found]] == keys[found]
        self.counts[at[found]] += counts[found]  # keys are distinct: no index repeats
        new = ~found
        del found
        at, keys, counts = at[new], keys[new], counts[new]  # the full ones are freed here
        del new
        self._insert(at, keys, counts)

    def _insert(self, at: np.ndarray, keys: np.ndarray, counts: np.ndarray) -> None:
        """Insert sorted `keys` not in the table, before the table's positions `at`: one
        merged array each, filled through one mask (np.insert would sort the positions and
        build its masks once per array)."""
        size = self.keys.shape[0] + keys.shape[0]
        at += np.arange(keys.shape[0])  # where each new key lands in the merged table
        is_new = np.zeros(size, np.bool_)
        is_new[at] = True
        merged_keys = np.empty(size, self.keys.dtype)
        merged_keys[at] = keys
        merged_counts = np.empty(size, self.counts.dtype)
        merged_counts[at] = counts
        old = ~is_new
        del is_new
        merged_keys[old] = self.keys
        merged_counts[old] = self.counts
        self.keys, self.counts = merged_keys, merged_counts

    def _widen(self) -> None:
        """From 4-byte keys of float32 scores to 8-byte keys of the same float64 values."""
        self._flush()
        one = np.uint32(1)
        scores = (self.keys >> one).view(np.float32).astype(np.float64)
        self.keys = (scores.view(np.uint64) << np.uint64(1)) | (self.keys & one).astype(
            np.uint64)


def _keys(scores: np.ndarray, positive: np.ndarray, dtype: type) -> np.ndarray:
    floats = np.float64 if dtype is np.uint64 else np.float32
    # The shift drops the sign bit, so -0.0 and 0.0, the same score, share a key (scores
    # below zero were refused before they got here).
    keys: np.ndarray = np.asarray(scores, dtype=floats).view(dtype) << dtype(1)
    keys |= positive.astype(dtype)
    return keys


def _first_of_runs(sorted_values: np.ndarray) -> np.ndarray:
    """True where an element starts a run of equal values."""
    first = np.empty(sorted_values.shape[0], np.bool_)
    if first.shape[0]:
        first[0] = True
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    return first
