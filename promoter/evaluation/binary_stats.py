"""`BinaryClassificationStats`: mergeable, weighted statistics of (label, score) pairs. Pure.

Exact AUC and AUC-PR keep the distinct scores in ascending order with the positive and negative
weight at each score; merging re-aggregates them, ties included. Their memory grows with the
number of distinct scores (at most the number of rows: 24 bytes each), which is why the
worker counts unweighted rows in a `score_table.ScoreTable` (8 bytes a distinct score) and
only the parent builds these arrays from it.

`calibration_error` is the expected calibration error with `CALIBRATION_BINS` equal-width bins
of the score: bin b holds scores in [b/10, (b+1)/10) (1.0 in the last bin), and
ECE = sum_b (W_b / W) * |mean label in b - mean score in b|, weighted means.

The definitions of every metric, and what the statistics of all tasks share, are in `metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from promoter.evaluation.metrics import (
    AUC_HISTOGRAM_BINS,
    BINARY_METRICS,
    CALIBRATION_BINS,
    MetricValues,
    _no_rows,
    _ratio,
    _weights,
    check_scores,
)


@dataclass(frozen=True, slots=True, eq=False)
class BinaryClassificationStats:
    """Weighted sufficient statistics of (label, score) pairs for every binary metric.

    Build one per batch with `from_batch`, combine with `merge` or `merge_all`, then call
    `metrics()`. Instances are immutable; merging returns a new instance.
    """

    threshold: float
    """Score at or above which a row is predicted positive."""
    rows: int = 0
    """Number of rows (unweighted)."""
    positives: int = 0
    """Rows labelled 1 (unweighted)."""
    counts: np.ndarray = field(default_factory=lambda: np.zeros(6, np.float64))
    """Weighted [tp, fp, tn, fn, log-loss sum, Brier sum]."""
    calibration: np.ndarray = field(
        default_factory=lambda: np.zeros((3, CALIBRATION_BINS), np.float64))
    """Per calibration bin: weight, weighted label sum, weighted score sum."""
    scores: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    """Distinct scores, ascending, float64."""
    score_positives: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    """Weight of rows labelled 1 at each distinct score."""
    score_negatives: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    """Weight of rows labelled 0 at each distinct score."""

    task: ClassVar[str] = "binary_classification"

    @property
    def negatives(self) -> int:
        return self.rows - self.positives

    @classmethod
    def from_batch(cls, labels: np.ndarray | Sequence[int], scores: np.ndarray | Sequence[float],
                   *, threshold: float,
                   weights: np.ndarray | Sequence[float] | None = None,
                   distinct_scores: bool = True) -> BinaryClassificationStats:
        """Statistics of one batch: `labels` are 0/1, `scores` probabilities of class 1.

        With `distinct_scores=False` the table of distinct scores (what AUC and AUC-PR need) is
        left empty: for a caller that keeps it itself (`score_table.ScoreTable`) and fills it
        in before asking for metrics.

        Raises ValueError for labels other than 0/1, mismatched lengths or bad weights, and
        ModelLoadError for NaN, infinite or out-of-range scores (they come from the model).
        """
        label_array = np.asarray(labels)
        score_array = np.asarray(scores)
        if label_array.ndim != 1 or score_array.ndim != 1:
            raise ValueError(f"labels and scores must be 1-D, got shapes {label_array.shape} "
                             f"and {score_array.shape}")
        if label_array.shape != score_array.shape:
            raise ValueError(f"{label_array.shape[0]} labels but {score_array.shape[0]} scores")
        if not ((label_array == 0) | (label_array == 1)).all():
            raise ValueError("labels must be 0 or 1")
        if not np.issubdtype(score_array.dtype, np.floating):
            score_array = score_array.astype(np.float64)
        check_scores(score_array)
        w = None if weights is None else _weights(weights, label_array.shape[0])
        positive = label_array == 1
        predicted = score_array >= threshold
        p64 = score_array.astype(np.float64)
        # One pass over the confusion cells (2 * label + prediction): tn, fp, fn, tp.
        cells = np.bincount(2 * positive.view(np.uint8) + predicted.view(np.uint8),
                            weights=w, minlength=4).astype(np.float64)
        per_row = np.stack([_log_loss_terms(positive, score_array), (positive - p64) ** 2])
        counts = np.array([cells[3], cells[1], cells[0], cells[2],
                           *(per_row.sum(axis=1) if w is None else (per_row * w).sum(axis=1))])
        bins = _calibration_bins(p64)
        calibration = np.stack([
            np.bincount(bins, weights=w, minlength=CALIBRATION_BINS).astype(np.float64),
            np.bincount(bins, weights=positive if w is None else w * positive,
                        minlength=CALIBRATION_BINS),
            np.bincount(bins, weights=p64 if w is None else w * p64,
                        minlength=CALIBRATION_BINS)])
        if not distinct_scores:
            distinct = at_positive = at_negative = np.empty(0, np.float64)
        elif w is None:
            distinct, at_positive, at_negative = _score_counts(p64, positive)
        else:
            distinct, at_positive, at_negative = _group_by_score(p64, w * positive,
                                                                 w * ~positive)
        return cls(
            threshold=threshold, rows=int(label_array.shape[0]),
            positives=int(positive.sum()), counts=counts, calibration=calibration,
            scores=distinct, score_positives=at_positive, score_negatives=at_negative)

    def merge(self, other: BinaryClassificationStats) -> BinaryClassificationStats:
        """The statistics of both sets of rows together."""
        return BinaryClassificationStats.merge_all([self, other], threshold=self.threshold)

    @classmethod
    def merge_all(cls, parts: Iterable[BinaryClassificationStats], *,
                  threshold: float) -> BinaryClassificationStats:
        """Merge any number of statistics at once: O(n log n) in the distinct scores, where
        merging them pairwise in a loop would be quadratic."""
        parts = list(parts)
        for part in parts:
            if part.threshold != threshold:
                raise ValueError(f"cannot merge statistics at threshold {part.threshold} into "
                                 f"statistics at threshold {threshold}")
        if not parts:
            return cls(threshold=threshold)
        if len(parts) == 1:
            return parts[0]
        distinct, at_positive, at_negative = _group_by_score(
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.score_positives for p in parts]),
            np.concatenate([p.score_negatives for p in parts]))
        return cls(
            threshold=threshold,
            rows=sum(p.rows for p in parts),
            positives=sum(p.positives for p in parts),
            counts=np.sum([p.counts for p in parts], axis=0),
            calibration=np.sum([p.calibration for p in parts], axis=0),
            scores=distinct, score_positives=at_positive, score_negatives=at_negative)

    def metrics(self) -> MetricValues:
        """Every binary metric; a metric is None (with a reason) where undefined."""
        tp, fp, tn, fn, log_loss_sum, brier_sum = (float(v) for v in self.counts)
        total = tp + fp + tn + fn
        if self.rows == 0 or total == 0:
            return _no_rows(BINARY_METRICS)
        pos_w, neg_w = tp + fn, fp + tn
        values: dict[str, float | None] = {
            "accuracy": (tp + tn) / total,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "auc": None,
            "auc_pr": None,
            "log_loss": log_loss_sum / total,
            "brier": brier_sum / total,
            "calibration_error": float(np.abs(self.calibration[1] - self.calibration[2]).sum()
                                       / total),
        }
        undefined: dict[str, str] = {}
        if values["precision"] is None:
            undefined["precision"] = (f"precision is undefined: no row scored at or above the "
                                      f"threshold {self.threshold:g}")
        if pos_w == 0 or neg_w == 0:
            only = "0 (negative)" if pos_w == 0 else "1 (positive)"
            one_class = (f"every one of the {self.rows} rows (with weight) is labelled {only}, "
                         "and it needs both classes")
            undefined["auc"] = f"AUC is undefined: {one_class}"
            if pos_w == 0:
                undefined["recall"] = f"recall is undefined: {one_class.replace('it', 'recall')}"
                undefined["auc_pr"] = f"AUC-PR is undefined: {one_class}"
                values["recall"] = None
                if values["f1"] is None:
                    undefined["f1"] = "F1 is undefined: no positive rows and no positive "\
                                      "predictions"
        else:
            values["auc"] = _auc(self.score_positives, self.score_negatives)
        if pos_w > 0:
            values["auc_pr"] = _average_precision(self.score_positives, self.score_negatives)
        return MetricValues(values=values, undefined=undefined)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for a compact binary transport (`np.savez`, no pickling)."""
        return {"threshold": np.float64(self.threshold),
                "rows": np.int64(self.rows), "positives": np.int64(self.positives),
                "counts": self.counts, "calibration": self.calibration, "scores": self.scores,
                "score_positives": self.score_positives,
                "score_negatives": self.score_negatives}

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any]) -> BinaryClassificationStats:
        """Inverse of `to_arrays`. Raises ValueError if the arrays are inconsistent."""
        stats = cls(threshold=float(data["threshold"]), rows=int(data["rows"]),
                    positives=int(data["positives"]),
                    counts=np.asarray(data["counts"], np.float64).reshape(6),
                    calibration=np.asarray(data["calibration"], np.float64).reshape(
                        3, CALIBRATION_BINS),
                    scores=np.asarray(data["scores"], np.float64).reshape(-1),
                    score_positives=np.asarray(data["score_positives"], np.float64).reshape(-1),
                    score_negatives=np.asarray(data["score_negatives"], np.float64).reshape(-1))
        consistent = (
            stats.scores.shape == stats.score_positives.shape == stats.score_negatives.shape
            and 0 <= stats.positives <= stats.rows
            and bool(np.all(np.diff(stats.scores) > 0))
            and bool(np.isfinite(stats.counts).all()) and bool((stats.counts[:4] >= 0).all())
        )
        if not consistent:
            raise ValueError("inconsistent binary classification statistics")
        return stats

    # Kept for the skeleton's JSON transport and its tests.
    def to_json_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v.item())
                for k, v in self.to_arrays().items()}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> BinaryClassificationStats:
        return cls.from_arrays(data)

    @staticmethod
    def block_width() -> int:
        return 6 + 3 * CALIBRATION_BINS + 2 * AUC_HISTOGRAM_BINS


def _score_counts(scores: np.ndarray, positive: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (ascending) with the number of positive and negative rows at each.

    Scores are probabilities (checked: finite, >= 0), so their float64 bit patterns sort like
    the numbers once -0.0 is made +0.0; with the label in the lowest bit, one sort of uint64
    keys replaces an argsort (about 3x faster).
    """
    keys = np.sort(((scores + 0.0).view(np.uint64) << np.uint64(1))
                   | positive.astype(np.uint64))
    if keys.shape[0] == 0:
        return np.empty(0, np.float64), np.empty(0, np.float64), np.empty(0, np.float64)
    bits = keys >> np.uint64(1)
    first = np.empty(keys.shape[0], np.bool_)
    first[0] = True
    np.not_equal(bits[1:], bits[:-1], out=first[1:])
    bounds = np.append(np.flatnonzero(first), keys.shape[0])
    # Integer counts from a running sum: exact, and far cheaper than a reduceat per group.
    positives_before = np.concatenate(([0], np.cumsum(keys & np.uint64(1))))[bounds]
    at_positive = np.diff(positives_before).astype(np.float64)
    return (bits[bounds[:-1]].view(np.float64), at_positive,
            np.diff(bounds).astype(np.float64) - at_positive)


def _group_by_score(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (ascending) with the summed weights at each. A stable sort: merging
    parts that are each sorted costs about O(n) (runs), not a full re-sort."""
    if scores.shape[0] == 0:
        return scores.astype(np.float64), positive, negative
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return (ordered[starts].astype(np.float64), np.add.reduceat(positive[order], starts),
            np.add.reduceat(negative[order], starts))


def _log_loss_terms(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    # Same arithmetic as scikit-learn: clipping happens in the scores' own dtype; only the
    # logarithms are float64.
    eps = np.finfo(scores.dtype).eps
    chosen = np.clip(np.where(positive, scores, 1 - scores), eps, 1 - eps)
    return -np.log(chosen.astype(np.float64))


_CALIBRATION_EDGES = np.arange(CALIBRATION_BINS + 1) / CALIBRATION_BINS
"""b / 10 exactly as floats (not 0.1 * b), so a score of 0.3 is in bin 3."""


def _calibration_bins(scores: np.ndarray) -> np.ndarray:
    """Bin b holds edges[b] <= score < edges[b + 1] (the last bin also holds 1.0), as
    searchsorted on the edges would say, at a fraction of its cost: scaling is off by at most
    one bin near an edge, and the two comparisons correct that. Scores must be finite."""
    bins = np.clip((scores * CALIBRATION_BINS).astype(np.intp), 0, CALIBRATION_BINS - 1)
    bins -= scores < _CALIBRATION_EDGES[bins]
    bins += scores >= _CALIBRATION_EDGES[bins + 1]
    return np.clip(bins, 0, CALIBRATION_BINS - 1)


def _auc(score_positives: np.ndarray, score_negatives: np.ndarray) -> float:
    # Mann-Whitney: the weighted share of (positive, negative) pairs ranked correctly, ties
    # counting one half; equal to the trapezoidal area under the ROC curve.
    negatives_below = np.cumsum(score_negatives) - score_negatives
    correct = float(score_positives @ negatives_below) + 0.5 * float(
        score_positives @ score_negatives)
    return correct / (float(score_positives.sum()) * float(score_negatives.sum()))


def _average_precision(score_positives: np.ndarray, score_negatives: np.ndarray) -> float:
    # scikit-learn's step-wise AP: sum over thresholds (descending) of recall gain x precision.
    pos = score_positives[::-1]
    tp = np.cumsum(pos)
    predicted = tp + np.cumsum(score_negatives[::-1])
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    return float(pos @ precision) / float(tp[-1])
