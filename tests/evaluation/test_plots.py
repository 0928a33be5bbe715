"""The plotted points equal scikit-learn's curves on the same rows: every point of a short
curve, and a subset of the exact curve (ends included) when it is thinned; calibration bins
equal `calibration_curve`'s. Reports keep them in JSON and still read version-2 reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from promoter.evaluation import EvaluationReport, HoldoutInfo, ModelResult
from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.plots import MAX_CURVE_POINTS, ModelPlots, binary_plots


def _stats(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None,
           shards: int = 3) -> BinaryClassificationStats:
    parts = [BinaryClassificationStats.from_batch(
        y[i], p[i], threshold=0.5, weights=None if w is None else w[i])
        for i in np.array_split(np.arange(y.shape[0]), shards)]
    return BinaryClassificationStats.merge_all(parts, threshold=0.5)


def _data(seed: int, rows: int, decimals: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.25, rows), 0, 1)
    return y, p if decimals is None else np.round(p, decimals)


def _none_as_inf(thresholds: tuple[float | None, ...]) -> np.ndarray:
    return np.array([np.inf if t is None else t for t in thresholds])


@pytest.mark.parametrize("weighted", [False, True])
def test_short_curves_are_scikit_learns_point_for_point(weighted: bool) -> None:
    y, p = _data(1, 3000, decimals=2)  # ~100 distinct scores, many ties: nothing thinned
    w = np.random.default_rng(2).uniform(0.1, 3.0, y.shape[0]) if weighted else None
    plots = binary_plots(_stats(y, p, w), max_points=200)
    assert plots.roc is not None
    assert plots.precision_recall is not None
    fpr, tpr, thresholds = roc_curve(y, p, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(plots.roc.fpr, fpr, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(plots.roc.tpr, tpr, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(_none_as_inf(plots.roc.thresholds), thresholds)
    precision, recall, pr_thresholds = precision_recall_curve(y, p, sample_weight=w)
    # scikit-learn lists them from the lowest threshold up; ours from the highest down.
    np.testing.assert_allclose(plots.precision_recall.precision, precision[::-1], rtol=1e-12)
    np.testing.assert_allclose(plots.precision_recall.recall, recall[::-1], rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_array_equal(_none_as_inf(plots.precision_recall.thresholds)[1:],
                                  pr_thresholds[::-1])


def test_long_curves_are_thinned_to_points_of_the_exact_curve() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 20_000)
    p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.5, y.shape[0]))))  # all distinct
    plots = binary_plots(_stats(y, p))
    assert plots.roc is not None
    assert plots.precision_recall is not None
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    kept = _none_as_inf(plots.roc.thresholds)
    assert 90 <= kept.shape[0] <= MAX_CURVE_POINTS
    assert (plots.roc.fpr[0], plots.roc.tpr[0]) == (0.0, 0.0)
    assert (plots.roc.fpr[-1], plots.roc.tpr[-1]) == (1.0, 1.0)
    index = {t: i for i, t in enumerate(thresholds)}
    at = np.array([index[t] for t in kept])  # KeyError: a threshold that is not sklearn's
    assert (np.diff(at) > 0).all()
    np.testing.assert_allclose(plots.roc.fpr, fpr[at], rtol=1e-12)
    np.testing.assert_allclose(plots.roc.tpr, tpr[at], rtol=1e-12)
    # Spread along the curve: no gap in fpr + tpr over 3x the even spacing, so the thinned
    # curve's area is the exact one's to 1e-3.
    assert np.diff(np.add(plots.roc.fpr, plots.roc.tpr)).max() < 3 * 2 / 100
    assert auc(plots.roc.fpr, plots.roc.tpr) == pytest.approx(auc(fpr, tpr), abs=1e-3)
    precision, recall, _ = precision_recall_curve(y, p)
    np.testing.assert_allclose(plots.precision_recall.precision, precision[::-1][at],
                               rtol=1e-12)
    np.testing.assert_allclose(plots.precision_recall.recall, recall[::-1][at], rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_calibration_bins_equal_calibration_curve(weighted: bool) -> None:
    y, p = _data(4, 5000, decimals=None)  # continuous: no score on a bin edge
    w = np.random.default_rng(5).uniform(0.1, 3.0, y.shape[0]) if weighted else None
    calibration = binary_plots(_stats(y, p, w)).calibration
    assert calibration is not None
    assert calibration.edges == tuple(b / 10 for b in range(11))
    filled = [i for i, c in enumerate(calibration.count) if c > 0]
    assert [calibration.mean_predicted[i] is None for i in range(10)] == [
        i not in filled for i in range(10)]
    if w is None:
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    else:  # calibration_curve takes no weights: weighted means by histogram sums
        def binned(values: np.ndarray) -> np.ndarray:
            return np.histogram(p, bins=10, range=(0, 1), weights=values)[0]
        observed, predicted = (binned(w * y) / binned(w))[filled], (
            binned(w * p) / binned(w))[filled]
    np.testing.assert_allclose([calibration.observed[i] for i in filled], observed, rtol=1e-12)
    np.testing.assert_allclose([calibration.mean_predicted[i] for i in filled], predicted,
                               rtol=1e-12)
    expected_count = np.histogram(p, bins=10, range=(0, 1), weights=w)[0]
    np.testing.assert_allclose(calibration.count, expected_count, rtol=1e-12)


def test_a_holdout_of_one_class_has_no_curves_it_cannot_draw() -> None:
    negatives = binary_plots(_stats(np.zeros(50, int), np.linspace(0, 1, 50)))
    assert (negatives.roc, negatives.precision_recall) == (None, None)
    assert negatives.calibration is not None
    assert negatives.calibration.observed[0] == 0.0
    positives = binary_plots(_stats(np.ones(50, int), np.linspace(0, 1, 50)))
    assert positives.roc is None  # no negatives: the false positive rate is 0/0
    assert positives.precision_recall is not None
    assert set(positives.precision_recall.precision) == {1.0}
    empty = binary_plots(BinaryClassificationStats(threshold=0.5))
    assert empty == ModelPlots(roc=None, precision_recall=None, calibration=None)
    with pytest.raises(ValueError, match="at least 2"):
        binary_plots(empty, max_points=1)


def test_reports_carry_the_plots_in_json_and_read_version_2_reports() -> None:
    y, p = _data(6, 400, decimals=3)
    plots = binary_plots(_stats(y, p))
    candidate = ModelResult(model_dir="models/churn/2", digest=None, metrics={"auc": 0.9},
                            rows=400, plots=plots)
    report = EvaluationReport(candidate=candidate, baseline=None, checks=(),
                              holdout=HoldoutInfo(path="h.csv", digest="sha256:00", rows=400))
    data = json.loads(json.dumps(report.to_json_dict(), allow_nan=False))
    assert data["schemaVersion"] == 3
    assert data["candidate"]["plots"]["roc"]["thresholds"][0] is None
    assert len(data["candidate"]["plots"]["calibration"]["count"]) == 10
    assert EvaluationReport.from_json_dict(data) == report
    del data["candidate"]["plots"]
    old = EvaluationReport.from_json_dict({**data, "schemaVersion": 2})
    assert old.candidate.plots is None
    assert old.schema_version == 3
    with pytest.raises(ValueError, match="schema version 4 is not one of 2, 3"):
        EvaluationReport.from_json_dict({**data, "schemaVersion": 4})
