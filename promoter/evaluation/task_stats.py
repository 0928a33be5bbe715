"""The statistics of any task, by task name: `TaskStats` and `stats_from_arrays`.

What reads statistics back without knowing the task in advance (the evaluator, from the
worker's arrays) goes through here, so it needs none of the per-task modules by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.multiclass_stats import MulticlassStats
from promoter.evaluation.regression_stats import RegressionStats
from promoter.evaluation.score_table import ScoreTable

TaskStats = BinaryClassificationStats | MulticlassStats | RegressionStats


def stats_from_arrays(task: str, data: Mapping[str, Any]) -> TaskStats:
    """Rebuild the statistics of `task` from `to_arrays()` output."""
    if task == "binary_classification":
        stats = BinaryClassificationStats.from_arrays(data)
        return stats if "table_keys" not in data else _with_table(stats, data)
    if task == "multiclass_classification":
        return MulticlassStats.from_arrays(data)
    if task == "regression":
        return RegressionStats.from_arrays(data)
    raise ValueError(f"unknown task {task!r}")


def _with_table(stats: BinaryClassificationStats,
                data: Mapping[str, Any]) -> BinaryClassificationStats:
    """`stats` (its distinct scores empty) with the distinct scores of the worker's
    `ScoreTable`; ValueError unless the table counts the same rows and positives."""
    if stats.scores.shape[0]:
        raise ValueError("binary statistics hold both distinct scores and a score table")
    table = ScoreTable.from_arrays(data["table_keys"], data["table_counts"])
    scores, at_positive, at_negative = table.distinct()
    if (at_positive.sum() + at_negative.sum() != stats.rows
            or at_positive.sum() != stats.positives):
        raise ValueError("the score table does not count the statistics' rows and positives")
    return dataclasses.replace(stats, scores=scores, score_positives=at_positive,
                               score_negatives=at_negative)
