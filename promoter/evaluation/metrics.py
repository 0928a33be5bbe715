"""Metrics computed from mergeable, weighted per-batch statistics. Pure (numpy only).

The evaluator never holds a holdout's predictions in one array: each batch of predictions
becomes a statistics object (`BinaryClassificationStats`, `MulticlassStats`,
`RegressionStats`), parts merge, and metrics come from the merged statistics. So one code path
serves a CSV or TFRecord read in batches, shards scored by several processes, per-slice metrics
and the bootstrap (each is a different way to group and merge statistics).

Every statistic is a weighted sum (weights are 1 without an example-weight column), so merging
is addition and several shards merged equal all rows at once up to float rounding.

The statistics of each task are in their own modules (`binary_stats`, `multiclass_stats`,
`regression_stats`; `task_stats` picks one by task name); this module holds what they share:
the metric names of each task and their direction, `MetricValues`, the weights and score checks.

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

Exact AUC and AUC-PR, and the calibration error, are described in `binary_stats`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> float:
    """Sum of `weights * values` by numpy's own pairwise summation, never BLAS.

    Why: a statistic must have the same bits in whichever process computes it (a sharded
    evaluation recomputes the worker's statistics in the parent, `shards.replay`), and BLAS does
    not promise that: measured here, the confined worker's dot product of 8,192 squared errors
    differed in the last bit from the parent's on the same arrays. numpy's loop over the same
    array is the same code in every process.
    """
    return float(np.add.reduce(weights * values))


def _no_rows(names: Sequence[str]) -> MetricValues:
    reason = "no rows (or only rows of weight 0) were evaluated"
    return MetricValues(values=dict.fromkeys(names), undefined=dict.fromkeys(names, reason))


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den



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
