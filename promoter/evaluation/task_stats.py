"""The statistics of any task, by task name: `TaskStats` and `stats_from_arrays`.

What reads statistics back without knowing the task in advance (the evaluator, from the
worker's arrays) goes through here, so it needs none of the per-task modules by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.multiclass_stats import MulticlassStats
from promoter.evaluation.regression_stats import RegressionStats

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
