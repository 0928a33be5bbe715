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
from promoter.evaluation.task_stats import stats_from_arrays
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
       float32=st.booleans(), widen_at=st.integers(0, 8), flush_rows=st.sampled_from([1, 7, 64]),
       narrow_rows=st.sampled_from([1, 50, 1 << 32]))
def test_the_table_equals_the_statistics_of_all_rows(batches: list[list[tuple[bool, float]]],
                                                     float32: bool, widen_at: int,
                                                     flush_rows: int, narrow_rows: int) -> None:
    # Merging runs every few rows (flush_rows), a model whose scores turn float64 after
    # `widen_at` batches (the table widens its keys), and counts that turn float64 after
    # `narrow_rows` rows (as at 2**32 rows), must not change a count.
    table = ScoreTable()
    labels, scores = [], []
    original = score_table._FLUSH_ROWS, score_table._NARROW_COUNT_ROWS
    score_table._FLUSH_ROWS, score_table._NARROW_COUNT_ROWS = flush_rows, narrow_rows
    try:
        for number, rows in enumerate(batches):
            label = np.array([r[0] for r in rows], np.int64)
            dtype = np.float32 if float32 and number < widen_at else np.float64
            score = np.array([r[1] for r in rows], dtype)
            table.add(label == 1, score)
            labels.append(label)
            scores.append(score.astype(np.float64))
    finally:
        score_table._FLUSH_ROWS, score_table._NARROW_COUNT_ROWS = original
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
    table._flush()
    assert table.nbytes == 8000  # merged: a 4-byte key and a 4-byte count each


def test_counts_widen_before_they_could_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(score_table, "_NARROW_COUNT_ROWS", 100)
    table = ScoreTable()
    table.add(np.ones(60, bool), np.full(60, 0.5, np.float32))
    table._flush()
    assert table.counts.dtype == np.uint32
    table.add(np.ones(60, bool), np.full(60, 0.5, np.float32))  # 120 rows: past the bound
    assert table.counts.dtype == np.float64
    assert table.distinct()[1].tolist() == [120.0]


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
    again = stream.result()  # the table was handed over: asking again gives the same
    np.testing.assert_array_equal(again.scores, expected.scores)
    assert again.rows == expected.rows


def test_a_bad_label_is_refused_before_it_is_counted() -> None:
    stream = _Stream("binary_classification", {})
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        stream.add(np.array([0, 2]), np.array([0.1, 0.2], np.float32), None)
    assert stream.table is None or stream.table.nbytes == 0


def _stream_arrays() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    scores = np.round(rng.random(30_000, dtype=np.float32), 3)
    labels = (rng.random(scores.shape[0]) < scores).astype(np.int64)
    stream = _Stream("binary_classification", {"threshold": 0.5})
    for start in range(0, scores.shape[0], 8192):
        stream.add(labels[start:start + 8192], scores[start:start + 8192], None)
    return stream.arrays(), labels, scores


def test_the_worker_sends_the_table_and_the_parent_rebuilds_the_same_statistics() -> None:
    arrays, labels, scores = _stream_arrays()
    assert arrays["table_keys"].dtype == np.uint32  # 4 + 4 bytes a key on the way
    assert arrays["table_counts"].dtype == np.uint32
    assert arrays["scores"].shape == (0,)
    rebuilt = stats_from_arrays("binary_classification", arrays)
    expected = _reference(labels, scores)
    np.testing.assert_array_equal(rebuilt.scores, expected.scores)
    np.testing.assert_array_equal(rebuilt.score_positives, expected.score_positives)
    np.testing.assert_array_equal(rebuilt.score_negatives, expected.score_negatives)
    assert rebuilt.metrics().values == pytest.approx(expected.metrics().values, rel=1e-12)


def _tampered(change: str) -> dict[str, np.ndarray]:
    arrays, _, _ = _stream_arrays()
    keys, counts = arrays["table_keys"].copy(), arrays["table_counts"].astype(np.float64)
    if change == "unsorted":
        keys[[0, 1]] = keys[[1, 0]]
    elif change == "zero count":
        counts[3] = 0
    elif change == "fractional count":
        counts[3] += 0.5
    elif change == "score above 1":
        keys[-1] = np.float32(1.5).view(np.uint32) << np.uint32(1)
    elif change == "wrong dtype":
        keys = keys.astype(np.int64)
    elif change == "one row more":
        counts[0] += 1
    elif change == "a positive turned negative":
        keys = keys & ~np.uint32(1)  # duplicates too, but the count check alone must catch it
        keys = np.unique(keys)
        counts = np.ones(keys.shape[0])
    return {**arrays, "table_keys": keys, "table_counts": counts}


@pytest.mark.parametrize("change", ["unsorted", "zero count", "fractional count",
                                    "score above 1", "wrong dtype", "one row more",
                                    "a positive turned negative"])
def test_a_table_from_the_worker_that_add_could_not_have_made_is_refused(change: str) -> None:
    # The worker runs untrusted models: what it returns is checked, never trusted to be sane.
    with pytest.raises(ValueError, match="score table"):
        stats_from_arrays("binary_classification", _tampered(change))


def test_statistics_with_both_distinct_scores_and_a_table_are_refused() -> None:
    # A worker may not smuggle extra distinct scores in beside the table it sends.
    arrays, labels, scores = _stream_arrays()
    full = _reference(labels, scores)
    both = {**arrays, "scores": full.scores, "score_positives": full.score_positives,
            "score_negatives": full.score_negatives}
    with pytest.raises(ValueError, match="both distinct scores and a score table"):
        stats_from_arrays("binary_classification", both)
