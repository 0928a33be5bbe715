"""Every metric of every task equals scikit-learn's within 1e-9 relative, weighted or not,
computed at once or merged from shards; edge cases give undefined metrics with reasons."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sklearn.metrics as skm

from promoter.errors import ModelLoadError
from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.metrics import CALIBRATION_BINS
from promoter.evaluation.multiclass_stats import MulticlassStats
from promoter.evaluation.regression_stats import RegressionStats

REL = 1e-9


def _log_loss(y: np.ndarray, p: np.ndarray, **kwargs: object) -> float:
    if "y_proba" in inspect.signature(skm.log_loss).parameters:
        return float(skm.log_loss(y, y_proba=p, **kwargs))
    return float(skm.log_loss(y, p, **kwargs))


def _ece(y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """An independent expected calibration error: loop over bins with explicit edges."""
    total = 0.0
    edges = [b / bins for b in range(bins + 1)]  # bin b is [b/10, (b+1)/10), 1.0 in the last
    for b in range(bins):
        upper = p <= edges[b + 1] if b == bins - 1 else p < edges[b + 1]
        mask = (p >= edges[b]) & upper
        if w[mask].sum() == 0:
            continue
        gap = abs(np.average(y[mask], weights=w[mask]) - np.average(p[mask], weights=w[mask]))
        total += w[mask].sum() / w.sum() * gap
    return total


def _binary_data(seed: int, rows: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    p = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.25, rows), 0, 1), 2)  # many ties
    w = rng.uniform(0.1, 3.0, rows)
    return y, p, w


def _split_binary(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, shards: int,
                  threshold: float = 0.5) -> BinaryClassificationStats:
    idx = np.array_split(np.arange(y.shape[0]), shards)
    parts = [BinaryClassificationStats.from_batch(y[i], p[i], threshold=threshold,
                                                  weights=None if w is None else w[i])
             for i in idx]
    return BinaryClassificationStats.merge_all(parts, threshold=threshold)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_binary_metrics_equal_scikit_learn(seed: int, weighted: bool) -> None:
    y, p, w = _binary_data(seed)
    sw = w if weighted else None
    ones = w if weighted else np.ones_like(p)
    values = _split_binary(y, p, sw, shards=1).metrics().values
    predicted = p >= 0.5
    expected = {
        "accuracy": skm.accuracy_score(y, predicted, sample_weight=sw),
        "precision": skm.precision_score(y, predicted, sample_weight=sw),
        "recall": skm.recall_score(y, predicted, sample_weight=sw),
        "f1": skm.f1_score(y, predicted, sample_weight=sw),
        "auc": skm.roc_auc_score(y, p, sample_weight=sw),
        "auc_pr": skm.average_precision_score(y, p, sample_weight=sw),
        "log_loss": _log_loss(y, p, sample_weight=sw),
        "brier": skm.brier_score_loss(y, p, sample_weight=sw),
        "calibration_error": _ece(y, p, ones),
    }
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=REL), name


@pytest.mark.parametrize("shards", [2, 7, 50])
def test_binary_shards_merge_to_all_rows_at_once(shards: int) -> None:
    y, p, w = _binary_data(11, rows=3001)
    whole = _split_binary(y, p, w, shards=1).metrics().values
    merged = _split_binary(y, p, w, shards=shards).metrics().values
    for name, value in whole.items():
        assert merged[name] == pytest.approx(value, rel=1e-12), name


def test_zero_weight_rows_count_for_nothing() -> None:
    y, p, w = _binary_data(3, rows=500)
    w[::3] = 0.0
    keep = w > 0
    a = _split_binary(y, p, w, shards=3).metrics().values
    b = _split_binary(y[keep], p[keep], w[keep], shards=1).metrics().values
    for name, value in b.items():
        assert a[name] == pytest.approx(value, rel=1e-12), name


def test_all_scores_tied_gives_auc_one_half_like_scikit_learn() -> None:
    y = np.array([0, 1, 0, 1, 1])
    p = np.full(5, 0.4)
    values = _split_binary(y, p, None, shards=2).metrics().values
    assert values["auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=REL)
    assert values["auc_pr"] == pytest.approx(skm.average_precision_score(y, p), rel=REL)
    assert values["precision"] is None  # nothing predicted positive at 0.5


def test_one_class_slice_makes_ranking_metrics_undefined_but_keeps_the_rest() -> None:
    y = np.zeros(20, dtype=int)
    p = np.linspace(0.0, 0.9, 20)
    metrics = _split_binary(y, p, None, shards=3).metrics()
    assert metrics.values["auc"] is None
    assert metrics.values["auc_pr"] is None
    assert metrics.values["recall"] is None
    assert "both classes" in metrics.undefined["auc"]
    assert metrics.values["accuracy"] == pytest.approx(skm.accuracy_score(y, p >= 0.5))
    assert metrics.values["brier"] == pytest.approx(skm.brier_score_loss(y, p, labels=[0, 1]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_predictions_are_a_clear_failure_for_every_task(bad: float) -> None:
    with pytest.raises(ModelLoadError, match="returned"):
        BinaryClassificationStats.from_batch([0, 1], [0.2, bad], threshold=0.5)
    with pytest.raises(ModelLoadError, match="returned"):
        MulticlassStats.from_batch([0, 1], np.array([[0.5, 0.5], [bad, 0.5]]), top_k=1)
    with pytest.raises(ModelLoadError, match="returned"):
        RegressionStats.from_batch([0.0, 1.0], np.array([0.2, bad]))


def _multiclass_data(seed: int, rows: int = 1500, k: int = 5
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, rows)
    logits = rng.normal(size=(rows, k)) + 1.5 * np.eye(k)[y]
    logits = np.round(logits, 1)  # ties between classes
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, p, rng.uniform(0.1, 2.0, rows)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_multiclass_metrics_equal_scikit_learn(weighted: bool, top_k: int) -> None:
    y, p, w = _multiclass_data(top_k)
    sw = w if weighted else None
    parts = [MulticlassStats.from_batch(y[i], p[i], top_k=top_k,
                                        weights=None if sw is None else sw[i])
             for i in np.array_split(np.arange(y.shape[0]), 4)]
    values = MulticlassStats.merge_all(parts, classes=5, top_k=top_k).metrics().values
    predicted = np.argmax(p, axis=1)
    assert values["accuracy"] == pytest.approx(
        skm.accuracy_score(y, predicted, sample_weight=sw), rel=REL)
    assert values["top_k_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(y, p, k=top_k, sample_weight=sw, labels=range(5)), rel=REL)
    assert values["macro_f1"] == pytest.approx(
        skm.f1_score(y, predicted, average="macro", sample_weight=sw), rel=REL)
    assert values["micro_f1"] == pytest.approx(
        skm.f1_score(y, predicted, average="micro", sample_weight=sw), rel=REL)
    assert values["log_loss"] == pytest.approx(
        _log_loss(y, p, sample_weight=sw, labels=range(5)), rel=REL)


def test_multiclass_top_k_ties_break_like_scikit_learn() -> None:
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.4, 0.3, 0.3], [1 / 3] * 3])
    values = MulticlassStats.from_batch(y, p, top_k=2).metrics().values
    assert values["top_k_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(y, p, k=2, labels=range(3)))


def test_multiclass_macro_f1_ignores_classes_absent_from_labels_and_predictions() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])
    values = MulticlassStats.from_batch(y, p, top_k=1).metrics().values
    assert values["macro_f1"] == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))


def test_multiclass_label_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"class indices 0\.\.1"):
        MulticlassStats.from_batch([0, 2], np.array([[0.5, 0.5], [0.5, 0.5]]), top_k=1)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shards", [1, 3, 40])
def test_regression_metrics_equal_scikit_learn(weighted: bool, shards: int) -> None:
    rng = np.random.default_rng(shards)
    y = 1000.0 + rng.normal(0, 3, 2500)  # a large mean: R² must not lose digits
    y[:5] = 0.0  # MAPE's epsilon guard
    pred = y + rng.normal(0, 1, 2500)
    w = rng.uniform(0.1, 2.0, 2500) if weighted else None
    parts = [RegressionStats.from_batch(y[i], pred[i], weights=None if w is None else w[i])
             for i in np.array_split(np.arange(y.shape[0]), shards)]
    values = RegressionStats.merge_all(parts).metrics().values
    assert values["mae"] == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=w),
                                          rel=REL)
    assert values["rmse"] == pytest.approx(
        skm.root_mean_squared_error(y, pred, sample_weight=w), rel=REL)
    assert values["r2"] == pytest.approx(skm.r2_score(y, pred, sample_weight=w), rel=REL)
    assert values["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(y, pred, sample_weight=w), rel=REL)


def test_regression_constant_targets_make_r2_undefined() -> None:
    metrics = RegressionStats.from_batch([2.0, 2.0, 2.0], np.array([1.0, 2.0, 3.0])).metrics()
    assert metrics.values["r2"] is None
    assert "same value" in metrics.undefined["r2"]
    assert metrics.values["mae"] == pytest.approx(2 / 3)


def test_stats_survive_the_array_transport() -> None:
    y, p, w = _binary_data(5)
    stats = _split_binary(y, p, w, shards=3)
    again = BinaryClassificationStats.from_arrays(stats.to_arrays())
    assert again.metrics() == stats.metrics()
    y2, p2, _ = _multiclass_data(1)
    mc = MulticlassStats.from_batch(y2, p2, top_k=2)
    assert MulticlassStats.from_arrays(mc.to_arrays()).metrics() == mc.metrics()
    reg = RegressionStats.from_batch([1.0, 2.0, 4.0], np.array([1.5, 2.0, 3.0]))
    assert RegressionStats.from_arrays(reg.to_arrays()).metrics() == reg.metrics()
