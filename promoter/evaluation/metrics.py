"""Binary classification metrics computed from mergeable per-batch statistics.

The evaluator never holds a holdout's predictions in one array: each batch of scores becomes a
`BinaryClassificationStats`, batches merge, and metrics come from the merged statistics. So the
same code serves a CSV read in batches today and sharded TFRecords, bootstrap resamples or
per-slice metrics later (each is a different way to group and merge statistics).

What is kept per batch, and why it merges exactly:

- counts of rows and positives, and the confusion counts at the decision threshold (accuracy);
- the sum of the per-row log loss terms (a float sum, so merging is exact up to float rounding);
- for exact AUC, the distinct scores in ascending order with the number of positive and
  negative rows at each score. Merging concatenates and re-aggregates these arrays, so the
  merged AUC equals the AUC of all rows at once, ties included. Its memory grows with the number
  of distinct scores (at most the number of rows); a bounded-memory approximation (a histogram)
  can replace it later behind the same `merge()`/`metrics()` methods.

The definitions follow scikit-learn, and the tests hold them to it: `accuracy_score` of
`score >= threshold`, `roc_auc_score` (ties count one half), and `log_loss` with predictions
clipped to [eps, 1 - eps] where eps is the machine epsilon of the predictions' dtype.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promoter.errors import ModelLoadError

METRIC_NAMES = ("accuracy", "auc", "log_loss")
"""Metrics computed for `binary_classification`, in report order."""


@dataclass(frozen=True, slots=True)
class MetricValues:
    """Metric values, with the reason for each one that is undefined."""

    values: Mapping[str, float | None]
    """Metric name -> value, or None where the metric is undefined on these rows."""
    undefined: Mapping[str, str] = field(default_factory=dict)
    """Metric name -> why it is undefined (e.g. the holdout has one class only)."""


@dataclass(frozen=True, slots=True, eq=False)
class BinaryClassificationStats:
    """Sufficient statistics of (label, score) pairs for accuracy, exact AUC and log loss.

    Build one per batch with `from_batch`, combine with `merge` or `merge_all`, then call
    `metrics()`. Instances are immutable; merging returns a new instance.
    """

    threshold: float
    """Score at or above which a row is predicted positive (for accuracy)."""
    rows: int = 0
    """Number of rows."""
    positives: int = 0
    """Rows labelled 1."""
    true_positives: int = 0
    """Rows labelled 1 with score >= threshold."""
    true_negatives: int = 0
    """Rows labelled 0 with score < threshold."""
    log_loss_sum: float = 0.0
    """Sum over rows of -log(p) for label 1 and -log(1 - p) for label 0, p clipped."""
    scores: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    """Distinct scores, ascending, float64."""
    score_positives: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """Rows labelled 1 at each distinct score."""
    score_negatives: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """Rows labelled 0 at each distinct score."""

    @property
    def negatives(self) -> int:
        return self.rows - self.positives

    @classmethod
    def from_batch(cls, labels: np.ndarray | Sequence[int], scores: np.ndarray | Sequence[float],
                   *, threshold: float) -> BinaryClassificationStats:
        """Statistics of one batch: `labels` are 0/1, `scores` probabilities of class 1.

        Raises ValueError for labels other than 0/1 or mismatched lengths, and ModelLoadError
        for NaN, infinite or out-of-range scores (they come from the model).
        """
        label_array = np.asarray(labels)
        score_array = np.asarray(scores)
        if label_array.ndim != 1 or score_array.ndim != 1:
            raise ValueError(f"labels and scores must be 1-D, got shapes {label_array.shape} "
                             f"and {score_array.shape}")
        if label_array.shape != score_array.shape:
            raise ValueError(f"{label_array.shape[0]} labels but {score_array.shape[0]} scores")
        if not np.isin(label_array, (0, 1)).all():
            raise ValueError("labels must be 0 or 1")
        if not np.issubdtype(score_array.dtype, np.floating):
            score_array = score_array.astype(np.float64)
        check_scores(score_array)

        positive = label_array == 1
        predicted = score_array >= threshold
        return cls(
            threshold=threshold,
            rows=int(label_array.shape[0]),
            positives=int(positive.sum()),
            true_positives=int((positive & predicted).sum()),
            true_negatives=int((~positive & ~predicted).sum()),
            log_loss_sum=_log_loss_sum(positive, score_array),
            **_score_counts(score_array.astype(np.float64), positive),
        )

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
        scores = np.concatenate([p.scores for p in parts])
        distinct, index = np.unique(scores, return_inverse=True)
        return cls(
            threshold=threshold,
            rows=sum(p.rows for p in parts),
            positives=sum(p.positives for p in parts),
            true_positives=sum(p.true_positives for p in parts),
            true_negatives=sum(p.true_negatives for p in parts),
            log_loss_sum=float(sum(p.log_loss_sum for p in parts)),
            scores=distinct,
            score_positives=np.bincount(
                index, weights=np.concatenate([p.score_positives for p in parts]),
                minlength=distinct.shape[0]).astype(np.int64),
            score_negatives=np.bincount(
                index, weights=np.concatenate([p.score_negatives for p in parts]),
                minlength=distinct.shape[0]).astype(np.int64),
        )

    def metrics(self) -> MetricValues:
        """Accuracy, AUC and log loss; a metric is None (with a reason) where undefined."""
        if self.rows == 0:
            reason = "no rows were evaluated"
            return MetricValues(values=dict.fromkeys(METRIC_NAMES),
                                undefined=dict.fromkeys(METRIC_NAMES, reason))
        values: dict[str, float | None] = {
            "accuracy": (self.true_positives + self.true_negatives) / self.rows,
            "auc": None,
            "log_loss": self.log_loss_sum / self.rows,
        }
        undefined: dict[str, str] = {}
        if self.positives == 0 or self.negatives == 0:
            only = "0 (negative)" if self.positives == 0 else "1 (positive)"
            undefined["auc"] = (f"AUC is undefined: every one of the {self.rows} holdout rows "
                                f"is labelled {only}, and AUC needs both classes")
        else:
            values["auc"] = _auc(self.score_positives, self.score_negatives,
                                 positives=self.positives, negatives=self.negatives)
        return MetricValues(values=values, undefined=undefined)

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; floats survive a JSON round trip exactly (shortest repr)."""
        return {
            "threshold": self.threshold,
            "rows": self.rows,
            "positives": self.positives,
            "truePositives": self.true_positives,
            "trueNegatives": self.true_negatives,
            "logLossSum": self.log_loss_sum,
            "scores": self.scores.tolist(),
            "scorePositives": self.score_positives.tolist(),
            "scoreNegatives": self.score_negatives.tolist(),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> BinaryClassificationStats:
        """Inverse of `to_json_dict`. Raises ValueError if `data` is inconsistent."""
        stats = cls(
            threshold=float(data["threshold"]),
            rows=int(data["rows"]),
            positives=int(data["positives"]),
            true_positives=int(data["truePositives"]),
            true_negatives=int(data["trueNegatives"]),
            log_loss_sum=float(data["logLossSum"]),
            scores=np.asarray(data["scores"], dtype=np.float64).reshape(-1),
            score_positives=np.asarray(data["scorePositives"], dtype=np.int64).reshape(-1),
            score_negatives=np.asarray(data["scoreNegatives"], dtype=np.int64).reshape(-1),
        )
        consistent = (
            stats.scores.shape == stats.score_positives.shape == stats.score_negatives.shape
            and int(stats.score_positives.sum()) == stats.positives
            and int(stats.score_negatives.sum()) == stats.negatives
            and 0 <= stats.true_positives <= stats.positives
            and 0 <= stats.true_negatives <= stats.negatives
            and bool(np.all(np.diff(stats.scores) > 0))
        )
        if not consistent:
            raise ValueError("inconsistent binary classification statistics")
        return stats


def check_scores(scores: np.ndarray, *, who: str = "the model",
                 lines: np.ndarray | None = None) -> None:
    """Raise ModelLoadError unless every score is a finite probability in [0, 1].

    `who` names the model in the message; `lines` (holdout line of each row), when given, lets
    the message point at the first offending rows.
    """
    finite = np.isfinite(scores)
    if finite.all() and (scores.size == 0 or (scores.min() >= 0 and scores.max() <= 1)):
        return
    nan = int(np.isnan(scores).sum())
    inf = int(np.isinf(scores).sum())
    if nan or inf:
        what = " and ".join(part for part in (f"NaN for {nan}" if nan else "",
                                              f"infinity for {inf}" if inf else "") if part)
        message = f"{who} returned {what} of {scores.size} rows"
        bad = ~finite
        fix = ("check the model's preprocessing for division by zero or log of zero, and the "
               "holdout for extreme values")
    else:
        bad = (scores < 0) | (scores > 1)
        message = (f"{who} returned {int(bad.sum())} scores outside [0, 1] (min "
                   f"{float(scores.min()):.6g}, max {float(scores.max()):.6g}): binary "
                   "classification needs probabilities")
        fix = "export a probability output (e.g. after a sigmoid), not logits"
    if lines is not None:
        first = ", ".join(str(int(line)) for line in lines[bad][:5])
        message += f" (holdout lines {first}{', ...' if bad.sum() > 5 else ''})"
    raise ModelLoadError(message, fix=fix)


def _log_loss_sum(positive: np.ndarray, scores: np.ndarray) -> float:
    # Same arithmetic as scikit-learn: 1 - p and the clipping happen in the scores' own dtype;
    # only the logarithms and the sum are float64.
    eps = np.finfo(scores.dtype).eps
    p_one = np.clip(scores, eps, 1 - eps).astype(np.float64)
    p_zero = np.clip(1 - scores, eps, 1 - eps).astype(np.float64)
    return float(-(np.log(p_one[positive]).sum() + np.log(p_zero[~positive]).sum()))


def _score_counts(scores: np.ndarray, positive: np.ndarray) -> dict[str, np.ndarray]:
    distinct, index = np.unique(scores, return_inverse=True)
    size = distinct.shape[0]
    return {
        "scores": distinct,
        "score_positives": np.bincount(index[positive], minlength=size).astype(np.int64),
        "score_negatives": np.bincount(index[~positive], minlength=size).astype(np.int64),
    }


def _auc(score_positives: np.ndarray, score_negatives: np.ndarray, *, positives: int,
         negatives: int) -> float:
    # Mann-Whitney: the share of (positive, negative) pairs ranked correctly, ties counting
    # one half. Twice the numerator is an integer, so the sum is exact before the division.
    negatives_below = np.cumsum(score_negatives) - score_negatives
    twice_correct = (2 * int(np.dot(score_positives, negatives_below))
                     + int(np.dot(score_positives, score_negatives)))
    return twice_correct / (2 * positives * negatives)
