"""`ScoreTable` counts exactly what `BinaryClassificationStats.from_batch` would on all rows.

The worker keeps unweighted binary statistics in this table to save memory; AUC and AUC-PR
are computed from what `distinct()` returns, so any difference here is a wrong verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promoter.evaluation import score_table
from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.score_table import ScoreTable
from promoter.evaluation.worker_streams import _Stream


def _reference(labels: np.ndarray, scores: np.ndarray) -> BinaryClassificationStats:
    return BinaryClassificationStats.from_batch(labels, scores, threshold=0.5)


def _assert_same(table: ScoreTable, labels: np.ndarray, scores: np.ndarray) -> None:
    expected = _reference(labels, scores)
    got = table.distinct()
    for mine, theirs in zip(got, (expected.scores, expected.score_positives,
                                  expected.score_negatives), strict=True):
        assert mine.dtype == np.float64
        np.testing.assert_array_equal(mine, theirs)


# A few distinct values make ties (with both labels) common; -0.0 and 0.0 must be one score.
_SCORES = st.sampled_from([0.0, -0.0, 1.0, 0.5, 0.25, 1e-30, 0.1, 0.3, 0.7, 0.9999999])


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(st.tuples(st.booleans(), _SCORES | st.floats(0, 1)),
                                 max_size=40), max_size=8),
       float32=st.booleans(), widen_at=st.integers(0, 8), flush_rows=st.sampled_from([1, 7, 64]))
def test_the_table_equals_the_statistics_of_all_rows(batches: list[list[tuple[bool, float]]],
                                                     float32: bool, widen_at: int,
                                                     flush_rows: int) -> None:
    # Merging runs every few rows (flush_rows), and a model whose scores turn float64 after
    # `widen_at` batches (the table widens its keys), must not change a count.
    table = ScoreTable()
    labels, scores = [], []
    original = score_table._FLUSH_ROWS
    score_table._FLUSH_ROWS = flush_rows
    try:
        for number, rows in enumerate(batches):
            label = np.array([r[0] for r in rows], np.int64)
            dtype = np.float32 if float32 and number < widen_at else np.float64
            score = np.array([r[1] for r in rows], dtype)
            table.add(label == 1, score)
            labels.append(label)
            scores.append(score.astype(np.float64))
    finally:
        score_table._FLUSH_ROWS = original
    _assert_same(table, np.concatenate(labels or [np.empty(0, np.int64)]),
                 np.concatenate(scores or [np.empty(0)]))


def test_a_million_rows_in_many_batches_count_exactly() -> None:
    rng = np.random.default_rng(7)
    scores = rng.random(1_500_000, dtype=np.float32)
    scores[::3] = np.round(scores[::3], 3)  # many ties
    labels = (rng.random(scores.shape[0]) < scores).astype(np.int64)
    table = ScoreTable()
    for start in range(0, scores.shape[0], 8192):
        table.add(labels[start:start + 8192] == 1, scores[start:start + 8192])
    _assert_same(table, labels, scores.astype(np.float64))
    assert table.nbytes == 0  # distinct() handed its arrays over


def test_float32_keys_take_four_bytes_a_row() -> None:
    table = ScoreTable()
    table.add(np.zeros(1000, bool), np.arange(1000, dtype=np.float32) / 1000)
    assert table.nbytes == 4000  # pending raw keys, before the first merge


@pytest.mark.parametrize("weighted", [False, True])
def test_a_stream_gives_the_same_metrics_with_or_without_the_table(weighted: bool) -> None:
    # Unit weights take the weighted path; no weights take the table: the same numbers.
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(50_000, dtype=np.float32), 4)
    labels = (rng.random(scores.shape[0]) < scores).astype(np.int64)
    stream = _Stream("binary_classification", {"threshold": 0.5})
    for start in range(0, scores.shape[0], 4096):
        stream.add(labels[start:start + 4096], scores[start:start + 4096],
                   np.ones(min(4096, scores.shape[0] - start)) if weighted else None)
    got = stream.result()
    expected = _reference(labels, scores)
    assert got.rows == expected.rows
    assert got.positives == expected.positives
    np.testing.assert_allclose(got.counts, expected.counts, rtol=1e-12)
    np.testing.assert_allclose(got.calibration, expected.calibration, rtol=1e-12)
    np.testing.assert_array_equal(got.scores, expected.scores)
    assert got.metrics().values == pytest.approx(expected.metrics().values, rel=1e-12)


def test_a_bad_label_is_refused_before_it_is_counted() -> None:
    stream = _Stream("binary_classification", {})
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        stream.add(np.array([0, 2]), np.array([0.1, 0.2], np.float32), None)
    assert stream.table is None or stream.table.nbytes == 0
