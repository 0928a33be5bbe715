"""Metrics computed from mergeable, weighted per-batch statistics. Pure (numpy only).

The evaluator never holds a holdout's predictions in one array: each batch of predictions
becomes a statistics object (`BinaryClassificationStats`, `MulticlassStats`,
`RegressionStats`), parts merge, and metrics come from the merged statistics. So one code path
serves a CSV or TFRecord read in batches, shards scored by several processes, per-slice metrics
and the bootstrap (each is a different way to group and merge statistics).

Every statistic is a weighted sum (weights are 1 without an example-weight column), so merging
is addition and several shards merged equal all rows at once up to float rounding. Exact AUC
and AUC-PR keep the distinct scores in ascending order with the positive and negative weight at
each score; merging re-aggregates them, ties included. Their memory grows with the number of
distinct scores (at most the number of rows: 24 bytes each).

Definitions follow scikit-learn, and the tests hold them to it within 1e-9 relative:
`accuracy_score` of `score >= threshold`, `precision_score`, `recall_score`, `f1_score`,
`roc_auc_score` (ties count one half), `average_precision_score` (AUC-PR), `log_loss` (clipped
to [eps, 1 - eps], eps of the predictions' dtype), `brier_score_loss`, `top_k_accuracy_score`
(ties broken towards the higher class index, like scikit-learn's reversed stable sort),
`f1_score(average="macro"|"micro")` over the classes present in labels or predictions,
`mean_absolute_error`, `root_mean_squared_error`, `r2_score`,
`mean_absolute_percentage_error`. Where scikit-learn returns a conventional number for an
undefined metric (0 for a precision without predicted positives, 0 or 1 for R² of constant
labels) we return None and say why: a gate must not pass on a made-up number.

`calibration_error` is the expected calibration error with `CALIBRATION_BINS` equal-width bins
of the score: bin b holds scores in [b/10, (b+1)/10) (1.0 in the last bin), and
ECE = sum_b (W_b / W) * |mean label in b - mean score in b|, weighted means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from promoter.errors import ModelLoadError

BINARY_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "auc_pr", "log_loss", "brier",
                  "calibration_error")
MULTICLASS_METRICS = ("accuracy", "top_k_accuracy", "macro_f1", "micro_f1", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
METRIC_NAMES = BINARY_METRICS
"""Metrics of `binary_classification`, in report order (kept for the skeleton's callers)."""
TASK_METRICS = {"binary_classification": BINARY_METRICS,
                "multiclass_classification": MULTICLASS_METRICS,
                "regression": REGRESSION_METRICS}
ALL_METRICS = tuple(dict.fromkeys(BINARY_METRICS + MULTICLASS_METRICS + REGRESSION_METRICS))

HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "auc": True,
    "auc_pr": True, "log_loss": False, "brier": False, "calibration_error": False,
    "top_k_accuracy": True, "macro_f1": True, "micro_f1": True,
    "mae": False, "rmse": False, "r2": True, "mape": False,
}
"""Direction of each metric, used by comparisons against the baseline (`gate`, `report`)
and by thresholds' "better" and "worse"."""
CALIBRATION_BINS = 10
AUC_HISTOGRAM_BINS = 256
"""Score bins per bootstrap block for the resampled AUC/AUC-PR (point values stay exact)."""


@dataclass(frozen=True, slots=True)
class MetricValues:
    """Metric values, with the reason for each one that is undefined."""

    values: Mapping[str, float | None]
    """Metric name -> value, or None where the metric is undefined on these rows."""
    undefined: Mapping[str, str] = field(default_factory=dict)
    """Metric name -> why it is undefined (e.g. the holdout has one class only)."""


def _weights(weights: np.ndarray | Sequence[float] | None, rows: int) -> np.ndarray:
    if weights is None:
        return np.ones(rows, np.float64)
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (rows,):
        raise ValueError(f"{rows} rows but weights of shape {array.shape}")
    if not (np.isfinite(array).all() and (array >= 0).all()):
        raise ValueError("example weights must be finite and non-negative")
    return array


def _no_rows(names: Sequence[str]) -> MetricValues:
    reason = "no rows (or only rows of weight 0) were evaluated"
    return MetricValues(values=dict.fromkeys(names), undefined=dict.fromkeys(names, reason))


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


# --- binary classification -------------------------------------------------------------------


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
                   weights: np.ndarray | Sequence[float] | None = None
                   ) -> BinaryClassificationStats:
        """Statistics of one batch: `labels` are 0/1, `scores` probabilities of class 1.

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
                           *(per_row.sum(axis=1) if w is None else per_row @ w)])
        bins = _calibration_bins(p64)
        calibration = np.stack([
            np.bincount(bins, weights=w, minlength=CALIBRATION_BINS).astype(np.float64),
            np.bincount(bins, weights=positive if w is None else w * positive,
                        minlength=CALIBRATION_BINS),
            np.bincount(bins, weights=p64 if w is None else w * p64,
                        minlength=CALIBRATION_BINS)])
        if w is None:
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


def check_scores(scores: np.ndarray, *, who: str = "the model",
                 lines: np.ndarray | None = None, probabilities: bool = True) -> None:
    """Raise ModelLoadError unless every score is finite (and, for `probabilities`, in [0, 1]).

    `who` names the model in the message; `lines` (holdout line of each row), when given, lets
    the message point at the first offending rows.
    """
    finite = np.isfinite(scores)
    if finite.all() and (not probabilities or scores.size == 0
                         or (scores.min() >= 0 and scores.max() <= 1)):
        return
    nan = int(np.isnan(scores).sum())
    inf = int(np.isinf(scores).sum())
    rows = scores.shape[0] if scores.ndim else 1
    if nan or inf:
        what = " and ".join(part for part in (f"NaN for {nan}" if nan else "",
                                              f"infinity for {inf}" if inf else "") if part)
        message = f"{who} returned {what} of {scores.size} " + (
            "rows" if scores.ndim <= 1 else "values")
        bad = ~finite
        fix = ("check the model's preprocessing for division by zero or log of zero, and the "
               "holdout for extreme values")
    else:
        bad = (scores < 0) | (scores > 1)
        message = (f"{who} returned {int(bad.sum())} scores outside [0, 1] (min "
                   f"{float(scores.min()):.6g}, max {float(scores.max()):.6g}): classification "
                   "needs probabilities")
        fix = "export a probability output (e.g. after a sigmoid or softmax), not logits"
    if bad.ndim > 1:
        bad = bad.reshape(rows, -1).any(axis=1)
    if lines is not None:
        first = ", ".join(str(int(line)) for line in lines[bad][:5])
        message += f" (holdout lines {first}{', ...' if bad.sum() > 5 else ''})"
    raise ModelLoadError(message, fix=fix)


# --- multi-class classification --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class MulticlassStats:
    """Weighted statistics of (class index, probability vector) pairs.

    `confusion[t, p]` is the weight of rows of true class t whose most probable class (first
    maximum, like `argmax`) is p; `sums` is [weight, top-k hits, log-loss sum].
    """

    classes: int
    top_k: int
    rows: int = 0
    confusion: np.ndarray | None = None
    sums: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float64))

    task: ClassVar[str] = "multiclass_classification"

    def __post_init__(self) -> None:
        if self.confusion is None:
            object.__setattr__(self, "confusion", np.zeros((self.classes, self.classes)))

    @classmethod
    def from_batch(cls, labels: np.ndarray | Sequence[int], probabilities: np.ndarray, *,
                   top_k: int, weights: np.ndarray | Sequence[float] | None = None
                   ) -> MulticlassStats:
        """`labels` are class indices 0..K-1; `probabilities` is [N, K].

        Raises ValueError for bad labels or shapes, ModelLoadError for non-finite or
        out-of-range probabilities.
        """
        y = np.asarray(labels)
        p = np.asarray(probabilities)
        if p.ndim != 2 or y.ndim != 1 or p.shape[0] != y.shape[0]:
            raise ValueError(f"labels [N] and probabilities [N, K] expected, got {y.shape} "
                             f"and {p.shape}")
        k = p.shape[1]
        if y.size and not (np.isin(y, np.arange(k))).all():
            raise ValueError(f"labels must be class indices 0..{k - 1}")
        y = y.astype(np.int64)
        if not np.issubdtype(p.dtype, np.floating):
            p = p.astype(np.float64)
        check_scores(p)
        w = _weights(weights, y.shape[0])
        predicted = np.argmax(p, axis=1)
        confusion = np.bincount(y * k + predicted, weights=w, minlength=k * k).reshape(k, k)
        rows = np.arange(y.shape[0])
        true_score = p[rows, y]
        index = np.arange(k)
        # Rank of the true class when sorted by score descending, ties to the higher index.
        rank = ((p > true_score[:, None]).sum(axis=1)
                + ((p == true_score[:, None]) & (index[None, :] > y[:, None])).sum(axis=1))
        eps = np.finfo(p.dtype).eps
        losses = -np.log(np.clip(true_score, eps, 1 - eps).astype(np.float64))
        sums = np.array([w.sum(), w @ (rank < top_k), losses @ w])
        return cls(classes=k, top_k=top_k, rows=int(y.shape[0]), confusion=confusion, sums=sums)

    @classmethod
    def merge_all(cls, parts: Iterable[MulticlassStats], *, classes: int,
                  top_k: int) -> MulticlassStats:
        parts = list(parts)
        for part in parts:
            if (part.classes, part.top_k) != (classes, top_k):
                raise ValueError("cannot merge statistics of different class counts or top k")
        if not parts:
            return cls(classes=classes, top_k=top_k)
        return cls(classes=classes, top_k=top_k, rows=sum(p.rows for p in parts),
                   confusion=np.sum([p.confusion for p in parts], axis=0),
                   sums=np.sum([p.sums for p in parts], axis=0))

    def merge(self, other: MulticlassStats) -> MulticlassStats:
        return MulticlassStats.merge_all([self, other], classes=self.classes, top_k=self.top_k)

    def metrics(self) -> MetricValues:
        total, top_hits, log_loss_sum = (float(v) for v in self.sums)
        if self.rows == 0 or total == 0:
            return _no_rows(MULTICLASS_METRICS)
        assert self.confusion is not None
        correct = float(np.trace(self.confusion))
        return MetricValues(values={
            "accuracy": correct / total,
            "top_k_accuracy": top_hits / total,
            "macro_f1": _macro_f1(self.confusion),
            "micro_f1": correct / total,
            "log_loss": log_loss_sum / total,
        })

    def to_arrays(self) -> dict[str, np.ndarray]:
        assert self.confusion is not None
        return {"classes": np.int64(self.classes), "top_k": np.int64(self.top_k),
                "rows": np.int64(self.rows), "confusion": self.confusion, "sums": self.sums}

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any]) -> MulticlassStats:
        classes = int(data["classes"])
        return cls(classes=classes, top_k=int(data["top_k"]), rows=int(data["rows"]),
                   confusion=np.asarray(data["confusion"], np.float64).reshape(classes, classes),
                   sums=np.asarray(data["sums"], np.float64).reshape(3))


def _macro_f1(confusion: np.ndarray) -> float:
    # Per-class F1 over the classes present in the labels or the predictions, like
    # scikit-learn's `labels=None` (a class present in neither is not counted).
    tp = np.diagonal(confusion)
    true_w = confusion.sum(axis=1)
    pred_w = confusion.sum(axis=0)
    present = (true_w > 0) | (pred_w > 0)
    den = true_w + pred_w
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    return float(f1[present].mean())


# --- regression ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class RegressionStats:
    """Weighted statistics of (target, prediction) pairs.

    `sums` is [weight, |error| sum, squared error sum, absolute percentage error sum];
    `label_mean` and `label_m2` are the weighted mean and centred sum of squares of the targets
    (Chan's parallel update), so R²'s denominator does not lose digits to cancellation.
    """

    rows: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float64))
    label_mean: float = 0.0
    label_m2: float = 0.0

    task: ClassVar[str] = "regression"

    @classmethod
    def from_batch(cls, labels: np.ndarray | Sequence[float], predictions: np.ndarray, *,
                   weights: np.ndarray | Sequence[float] | None = None) -> RegressionStats:
        y = np.asarray(labels, dtype=np.float64)
        p = np.asarray(predictions)
        if y.ndim != 1 or p.shape != y.shape:
            raise ValueError(f"labels and predictions must be 1-D of one length, got {y.shape} "
                             f"and {p.shape}")
        if not np.isfinite(y).all():
            raise ValueError("regression targets must be finite")
        check_scores(p, probabilities=False)
        p = p.astype(np.float64)
        w = _weights(weights, y.shape[0])
        error = np.abs(p - y)
        total = float(w.sum())
        mean = float(w @ y / total) if total > 0 else 0.0
        m2 = float(w @ (y - mean) ** 2) if total > 0 else 0.0
        ape = error / np.maximum(np.abs(y), np.finfo(np.float64).eps)
        return cls(rows=int(y.shape[0]), sums=np.array([total, w @ error, w @ error ** 2,
                                                       w @ ape]),
                   label_mean=mean, label_m2=m2)

    @classmethod
    def merge_all(cls, parts: Iterable[RegressionStats]) -> RegressionStats:
        merged = cls()
        for part in parts:
            merged = merged.merge(part)
        return merged

    def merge(self, other: RegressionStats) -> RegressionStats:
        wa, wb = float(self.sums[0]), float(other.sums[0])
        total = wa + wb
        if total == 0:
            return replace(self, rows=self.rows + other.rows, sums=self.sums + other.sums)
        delta = other.label_mean - self.label_mean
        return RegressionStats(rows=self.rows + other.rows, sums=self.sums + other.sums,
                               label_mean=self.label_mean + delta * wb / total,
                               label_m2=self.label_m2 + other.label_m2
                               + delta * delta * wa * wb / total)

    def metrics(self) -> MetricValues:
        total, abs_sum, sq_sum, ape_sum = (float(v) for v in self.sums)
        if self.rows == 0 or total == 0:
            return _no_rows(REGRESSION_METRICS)
        values: dict[str, float | None] = {
            "mae": abs_sum / total, "rmse": (sq_sum / total) ** 0.5, "r2": None,
            "mape": ape_sum / total}
        undefined = {}
        if self.label_m2 == 0:
            undefined["r2"] = ("R² is undefined: every target has the same value, so there is "
                               "no variance to explain")
        else:
            values["r2"] = 1 - sq_sum / self.label_m2
        return MetricValues(values=values, undefined=undefined)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"rows": np.int64(self.rows), "sums": self.sums,
                "label_moments": np.array([self.label_mean, self.label_m2])}

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any]) -> RegressionStats:
        moments = np.asarray(data["label_moments"], np.float64).reshape(2)
        return cls(rows=int(data["rows"]), sums=np.asarray(data["sums"], np.float64).reshape(4),
                   label_mean=float(moments[0]), label_m2=float(moments[1]))


TaskStats = BinaryClassificationStats | MulticlassStats | RegressionStats


def stats_from_arrays(task: str, data: Mapping[str, Any]) -> TaskStats:
    """Rebuild the statistics of `task` from `to_arrays()` output."""
    if task == "binary_classification":
        return BinaryClassificationStats.from_arrays(data)
    if task == "multiclass_classification":
        return MulticlassStats.from_arrays(data)
    if task == "regression":
        return RegressionStats.from_arrays(data)
    raise ValueError(f"unknown task {task!r}")
