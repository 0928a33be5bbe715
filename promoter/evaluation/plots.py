"""The points a dashboard plots for one model: ROC and precision-recall curves, calibration. Pure.

Computed exactly from the merged `BinaryClassificationStats` the worker returns (the distinct
scores with the positive and negative weight at each, and the calibration bins), so no row is
read twice and nothing is sampled: every point kept is a point of the exact curve, the one
scikit-learn's `roc_curve(..., drop_intermediate=False)` and `precision_recall_curve` give on
the same rows and weights. A holdout with more distinct scores than `MAX_CURVE_POINTS` has its
curves thinned to at most that many points, spread evenly along fpr + tpr (which grows at
every threshold), first and last point always kept.

Both curves list their points from the highest threshold down: the ROC curve starts at (0, 0)
and the precision-recall curve at recall 0, precision 1; that first point lies above every
score and has threshold None (scikit-learn's `inf`, which JSON cannot hold).

Only binary classification has them: a multiclass or regression model's `plots` is None (its
statistics hold no per-score counts; per-class curves would need them, and are not done).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.metrics import CALIBRATION_BINS

MAX_CURVE_POINTS = 101
"""At most this many points per curve in a report: enough to draw, small in JSON (a few KB)."""


@dataclass(frozen=True, slots=True)
class RocCurve:
    """The receiver operating characteristic, highest threshold first."""

    thresholds: tuple[float | None, ...]
    """Score at or above which a row is called positive; None for the first point (0, 0)."""
    fpr: tuple[float, ...]
    """False positive rate at each threshold, non-decreasing from 0 to 1."""
    tpr: tuple[float, ...]
    """True positive rate (recall) at each threshold, non-decreasing from 0 to 1."""

    def to_json_dict(self) -> dict[str, Any]:
        return {"thresholds": list(self.thresholds), "fpr": list(self.fpr),
                "tpr": list(self.tpr)}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> RocCurve:
        return cls(thresholds=_optional_floats(data["thresholds"]), fpr=_floats(data["fpr"]),
                   tpr=_floats(data["tpr"]))


@dataclass(frozen=True, slots=True)
class PrecisionRecallCurve:
    """Precision against recall, highest threshold first."""

    thresholds: tuple[float | None, ...]
    """Score at or above which a row is called positive; None for the first point (recall 0,
    precision 1), as scikit-learn appends it."""
    precision: tuple[float, ...]
    """Weighted share of rows at or above the threshold that are positive."""
    recall: tuple[float, ...]
    """Weighted share of positive rows at or above the threshold, non-decreasing to 1."""

    def to_json_dict(self) -> dict[str, Any]:
        return {"thresholds": list(self.thresholds), "precision": list(self.precision),
                "recall": list(self.recall)}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> PrecisionRecallCurve:
        return cls(thresholds=_optional_floats(data["thresholds"]),
                   precision=_floats(data["precision"]), recall=_floats(data["recall"]))


@dataclass(frozen=True, slots=True)
class CalibrationBins:
    """A reliability diagram: equal-width score bins, as `calibration_error` uses them.

    Bin b holds scores in [edges[b], edges[b + 1]) (the last bin also holds 1.0). scikit-learn's
    `calibration_curve(strategy="uniform")` puts a score that is exactly on an inner edge in
    the bin below; elsewhere the two agree, and it leaves empty bins out where these keep them
    with None means.
    """

    edges: tuple[float, ...]
    """`CALIBRATION_BINS + 1` bin edges, 0.0 to 1.0."""
    mean_predicted: tuple[float | None, ...]
    """Mean score in each bin (weighted); None for an empty bin."""
    observed: tuple[float | None, ...]
    """Fraction of the bin's rows labelled positive (weighted); None for an empty bin."""
    count: tuple[float, ...]
    """Rows in each bin; with a weight column, the sum of their weights."""

    def to_json_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "meanPredicted": list(self.mean_predicted),
                "observed": list(self.observed), "count": list(self.count)}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> CalibrationBins:
        return cls(edges=_floats(data["edges"]),
                   mean_predicted=_optional_floats(data["meanPredicted"]),
                   observed=_optional_floats(data["observed"]), count=_floats(data["count"]))


@dataclass(frozen=True, slots=True)
class ModelPlots:
    """What the promotion page plots for one model (candidate or baseline)."""

    roc: RocCurve | None
    """None when the holdout lacks either class (a rate would divide by zero)."""
    precision_recall: PrecisionRecallCurve | None
    """None when the holdout has no positive rows (recall is undefined)."""
    calibration: CalibrationBins | None
    """None when no row was scored."""

    def to_json_dict(self) -> dict[str, Any]:
        return {"roc": None if self.roc is None else self.roc.to_json_dict(),
                "precisionRecall": None if self.precision_recall is None
                else self.precision_recall.to_json_dict(),
                "calibration": None if self.calibration is None
                else self.calibration.to_json_dict()}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> ModelPlots:
        roc, pr, calibration = (data.get(k) for k in ("roc", "precisionRecall", "calibration"))
        return cls(roc=None if roc is None else RocCurve.from_json_dict(roc),
                   precision_recall=None if pr is None
                   else PrecisionRecallCurve.from_json_dict(pr),
                   calibration=None if calibration is None
                   else CalibrationBins.from_json_dict(calibration))


def binary_plots(stats: BinaryClassificationStats, *,
                 max_points: int = MAX_CURVE_POINTS) -> ModelPlots:
    """The curves and calibration bins of `stats`, each curve at most `max_points` long."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    # Highest score first; one leading point above every score.
    tps = np.concatenate(([0.0], np.cumsum(stats.score_positives[::-1])))
    fps = np.concatenate(([0.0], np.cumsum(stats.score_negatives[::-1])))
    thresholds: list[float | None] = [None, *stats.scores[::-1].tolist()]
    positive, negative = float(tps[-1]), float(fps[-1])
    roc = pr = None
    keep = np.arange(tps.shape[0])
    if positive > 0:
        tpr = tps / positive
        fpr = fps / negative if negative > 0 else np.zeros_like(fps)
        keep = _thin(fpr + tpr, max_points)
        kept = [thresholds[i] for i in keep]
        predicted = tps + fps
        precision = np.divide(tps, predicted, out=np.ones_like(tps), where=predicted > 0)
        pr = PrecisionRecallCurve(thresholds=tuple(kept), precision=_tuple(precision[keep]),
                                  recall=_tuple(tpr[keep]))
        if negative > 0:
            roc = RocCurve(thresholds=tuple(kept), fpr=_tuple(fpr[keep]), tpr=_tuple(tpr[keep]))
    return ModelPlots(roc=roc, precision_recall=pr, calibration=_calibration(stats))


def _thin(position: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` points, the first and last included, nearest to evenly
    spaced targets along `position` (non-decreasing)."""
    if position.shape[0] <= max_points:
        return np.arange(position.shape[0])
    targets = np.linspace(position[0], position[-1], max_points)[1:-1]
    picked = np.searchsorted(position, targets).clip(0, position.shape[0] - 1)
    return np.unique(np.concatenate(([0], picked, [position.shape[0] - 1])))


def _calibration(stats: BinaryClassificationStats) -> CalibrationBins | None:
    weight, label_sum, score_sum = stats.calibration
    if stats.rows == 0 or float(weight.sum()) == 0:
        return None
    filled = weight > 0
    return CalibrationBins(
        edges=_tuple(np.arange(CALIBRATION_BINS + 1) / CALIBRATION_BINS),
        mean_predicted=tuple(float(s / w) if f else None
                             for s, w, f in zip(score_sum, weight, filled, strict=True)),
        observed=tuple(float(n / w) if f else None
                       for n, w, f in zip(label_sum, weight, filled, strict=True)),
        count=_tuple(weight))


def _tuple(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _optional_floats(values: Any) -> tuple[float | None, ...]:
    return tuple(None if v is None else float(v) for v in values)
