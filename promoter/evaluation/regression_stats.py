"""`RegressionStats`: mergeable, weighted statistics of (target, prediction) pairs.

MAE, RMSE, R² and MAPE of a regression model, defined as in `metrics`; pure (numpy only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from promoter.evaluation.metrics import (
    REGRESSION_METRICS,
    MetricValues,
    _no_rows,
    _weights,
    check_scores,
    weighted_sum,
)


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
        mean = weighted_sum(w, y) / total if total > 0 else 0.0
        m2 = weighted_sum(w, (y - mean) ** 2) if total > 0 else 0.0
        ape = error / np.maximum(np.abs(y), np.finfo(np.float64).eps)
        return cls(rows=int(y.shape[0]), sums=np.array([total, weighted_sum(w, error),
                                                       weighted_sum(w, error ** 2),
                                                       weighted_sum(w, ape)]),
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
