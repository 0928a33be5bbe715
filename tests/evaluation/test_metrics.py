"""Metrics from mergeable statistics equal scikit-learn's, computed at once or merged."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
import sklearn.metrics
from sklearn.metrics import accuracy_score, roc_auc_score

from promoter.errors import ModelLoadError
from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.metrics import BINARY_METRICS, check_scores

REL = 1e-9


def log_loss(y_true: np.ndarray, *, y_proba: np.ndarray, **kwargs: object) -> float:
    """scikit-learn's log_loss; 1.9 renamed `y_pred` to `y_proba` and warns on the old name."""
    if "y_proba" in inspect.signature(sklearn.metrics.log_loss).parameters:
        return float(sklearn.metrics.log_loss(y_true, y_proba=y_proba, **kwargs))
    return float(sklearn.metrics.log_loss(y_true, y_proba, **kwargs))


def _random(seed: int, rows: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    # Few distinct values, so many scores tie, across classes too; plus exact 0 and 1 (clipped).
    scores = np.round(np.clip(0.3 * labels + rng.normal(0.35, 0.25, rows), 0, 1), 2)
    return labels, scores


def _stats(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5,
           batches: int = 1) -> BinaryClassificationStats:
    parts = [BinaryClassificationStats.from_batch(lab, sco, threshold=threshold)
             for lab, sco in zip(np.array_split(labels, batches), np.array_split(scores, batches),
                                 strict=True)]
    return BinaryClassificationStats.merge_all(parts, threshold=threshold)


@pytest.mark.parametrize("seed", range(8))
def test_metrics_equal_scikit_learn_with_ties(seed: int) -> None:
    labels, scores = _random(seed)
    assert len(np.unique(scores)) < 120  # the data really has ties
    assert scores.min() == 0
    assert scores.max() == 1
    values = _stats(labels, scores).metrics().values

    assert values["accuracy"] == pytest.approx(accuracy_score(labels, scores >= 0.5), rel=REL)
    assert values["auc"] == pytest.approx(roc_auc_score(labels, scores), rel=REL)
    assert values["log_loss"] == pytest.approx(log_loss(labels, y_proba=scores), rel=REL)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("batches", [2, 7, 64])
def test_merged_batches_equal_all_rows_at_once(seed: int, batches: int) -> None:
    labels, scores = _random(seed, rows=1000 + 37 * seed)
    whole = _stats(labels, scores).metrics().values
    merged = _stats(labels, scores, batches=batches).metrics().values

    assert merged["accuracy"] == whole["accuracy"]
    assert merged["auc"] == whole["auc"]  # counts merge exactly, so AUC is bit-identical
    assert merged["log_loss"] == pytest.approx(whole["log_loss"], rel=REL)


def test_pairwise_merge_is_the_same_as_merge_all() -> None:
    labels, scores = _random(1, rows=500)
    first = BinaryClassificationStats.from_batch(labels[:200], scores[:200], threshold=0.5)
    second = BinaryClassificationStats.from_batch(labels[200:], scores[200:], threshold=0.5)
    merged = first.merge(second).metrics()
    whole = _stats(labels, scores).metrics()
    assert merged.undefined == whole.undefined
    for name, value in whole.values.items():
        assert merged.values[name] == pytest.approx(value, rel=1e-12)


def test_threshold_is_inclusive_like_the_model_spec_says() -> None:
    values = _stats(np.array([1, 0, 0, 0]), np.array([0.7, 0.7, 0.2, 0.1]),
                    threshold=0.7).metrics().values
    assert values["accuracy"] == 0.75  # 0.7 >= 0.7 is positive


def test_float32_scores_clip_at_float32_epsilon_like_scikit_learn() -> None:
    labels = np.array([1, 0, 1, 0])
    scores = np.array([1.0, 0.0, 0.999999, 1e-9], dtype=np.float32)
    ours = _stats(labels, scores).metrics().values["log_loss"]
    # scikit-learn computes the logarithms in float32 too; we keep them in float64.
    assert ours == pytest.approx(log_loss(labels, y_proba=scores), rel=1e-6)
    # Three rows clip to 1 - eps(float32), as 1 - 1e-9 rounds to 1.0 in float32.
    eps = float(np.finfo(np.float32).eps)
    expected = -(3 * math.log(1 - eps) + math.log(float(np.float32(0.999999)))) / 4
    assert ours == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("label", "name"), [(0, "0 (negative)"), (1, "1 (positive)")])
def test_one_class_only_makes_auc_undefined_with_a_reason(label: int, name: str) -> None:
    labels = np.full(10, label)
    scores = np.linspace(0.05, 0.95, 10)
    metrics = _stats(labels, scores).metrics()

    assert metrics.values["auc"] is None
    assert name in metrics.undefined["auc"]
    assert "both classes" in metrics.undefined["auc"]
    assert metrics.values["accuracy"] == pytest.approx(
        accuracy_score(labels, scores >= 0.5), rel=REL)
    assert metrics.values["log_loss"] == pytest.approx(
        log_loss(labels, y_proba=scores, labels=[0, 1]), rel=REL)


def test_no_rows_makes_every_metric_undefined() -> None:
    metrics = BinaryClassificationStats(threshold=0.5).metrics()
    assert metrics.values == dict.fromkeys(BINARY_METRICS)
    assert set(metrics.undefined) == set(BINARY_METRICS)


@pytest.mark.parametrize(("bad", "words"), [
    (float("nan"), "NaN for 2 of 5 rows"),
    (float("inf"), "infinity for 2 of 5 rows"),
])
def test_non_finite_scores_are_a_clear_model_error(bad: float, words: str) -> None:
    scores = np.array([0.1, bad, 0.5, bad, 0.9])
    with pytest.raises(ModelLoadError, match=words):
        BinaryClassificationStats.from_batch([0, 1, 0, 1, 1], scores, threshold=0.5)
    with pytest.raises(ModelLoadError, match=r"holdout lines 3, 5\)") as info:
        check_scores(scores, who="the candidate", lines=np.arange(2, 7))
    assert str(info.value).startswith("the candidate returned")


def test_scores_outside_zero_one_are_rejected_as_logits() -> None:
    with pytest.raises(ModelLoadError, match=r"(?s)outside \[0, 1\].*logits"):
        BinaryClassificationStats.from_batch([0, 1], [-2.5, 3.0], threshold=0.5)


@pytest.mark.parametrize(("labels", "scores", "match"), [
    ([0, 2], [0.1, 0.2], "0 or 1"),
    ([0, 1, 1], [0.1, 0.2], "3 labels but 2 scores"),
    ([[0, 1]], [[0.1, 0.2]], "1-D"),
])
def test_bad_batches_raise_value_error(labels: list, scores: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BinaryClassificationStats.from_batch(labels, scores, threshold=0.5)


def test_merging_different_thresholds_is_refused() -> None:
    a = BinaryClassificationStats.from_batch([1], [0.4], threshold=0.5)
    b = BinaryClassificationStats.from_batch([1], [0.4], threshold=0.3)
    with pytest.raises(ValueError, match="threshold"):
        a.merge(b)


def test_json_round_trip_is_exact() -> None:
    labels, scores = _random(3)
    stats = _stats(labels, scores, batches=5)
    again = BinaryClassificationStats.from_json_dict(json.loads(json.dumps(stats.to_json_dict())))
    assert again.metrics() == stats.metrics()
    assert np.array_equal(again.scores, stats.scores)


def test_inconsistent_json_is_rejected() -> None:
    data = _stats(np.array([0, 1]), np.array([0.2, 0.8])).to_json_dict()
    data["positives"] = 3
    with pytest.raises(ValueError, match="inconsistent"):
        BinaryClassificationStats.from_json_dict(data)


def test_calibration_bins_are_those_of_a_search_over_the_edges() -> None:
    # The fast binning scales and corrects by one bin; it must agree with searchsorted exactly,
    # above all on the edges b/10 themselves and their float neighbours.
    from promoter.evaluation.binary_stats import _CALIBRATION_EDGES, _calibration_bins

    edges = _CALIBRATION_EDGES
    near = np.concatenate([edges, np.nextafter(edges, -1.0), np.nextafter(edges, 2.0),
                           np.arange(1, 10) * 0.1, [0.0, 1.0, -0.0, 5e-324]])
    scores = np.concatenate([near[(near >= 0) & (near <= 1)],
                             np.random.default_rng(4).random(100_000)])
    for dtype in (np.float64, np.float32):
        values = scores.astype(dtype).astype(np.float64)
        expected = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, 9)
        assert np.array_equal(_calibration_bins(values), expected)
    assert _calibration_bins(np.array([0.3]))[0] == 3  # 0.3 is not below the edge 3/10
    assert _calibration_bins(np.array([1.0]))[0] == 9  # the last bin holds 1.0


def test_weighted_and_unweighted_batches_agree_when_every_weight_is_one() -> None:
    labels, scores = _random(11)
    plain = BinaryClassificationStats.from_batch(labels, scores, threshold=0.5)
    weighted = BinaryClassificationStats.from_batch(labels, scores, threshold=0.5,
                                                    weights=np.ones(len(labels)))
    assert np.array_equal(plain.scores, weighted.scores)
    assert np.array_equal(plain.score_positives, weighted.score_positives)
    np.testing.assert_allclose(plain.counts, weighted.counts, rtol=1e-12)
    np.testing.assert_allclose(plain.calibration, weighted.calibration, rtol=1e-12)
