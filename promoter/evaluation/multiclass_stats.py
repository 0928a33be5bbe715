"""`MulticlassStats`: mergeable, weighted statistics of (class index, probability vector) pairs.

Accuracy, top-k accuracy, macro and micro F1 and log loss of a multi-class classifier, defined
as in `metrics`; pure (numpy only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from promoter.evaluation.metrics import (
    MULTICLASS_METRICS,
    MetricValues,
    _no_rows,
    _weights,
    check_scores,
    weighted_sum,
)


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
        sums = np.array([w.sum(), weighted_sum(w, rank < top_k), weighted_sum(w, losses)])
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
