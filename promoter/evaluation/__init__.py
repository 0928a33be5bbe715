"""The evaluation gate: score a candidate (and the deployed baseline) on a holdout, check the
metrics against a policy, and report.

Pure core: `metrics` (metric names, and what the mergeable statistics of `binary_stats`,
`multiclass_stats` and `regression_stats` share; `task_stats` picks one by task), `bootstrap`
(paired intervals), `gate` (thresholds), `report` (with `report_parts`), `holdout` (CSV reader),
`signature` (plain descriptions of a SavedModel signature and their compatibility), `graph_scan`
(which ops a model may hold, by the tables of `promoter.domain.tensorflow_ops`). `graph_scan`
and `tfrecord` use TensorFlow's protobufs and tf.data, in the worker only. The TensorFlow
adapter (`scoring`) runs only inside the worker process (`worker`, confined by `sandbox`), which
`evaluate` starts: importing this package never imports TensorFlow.

The names below are imported on first use (PEP 562), not when the package is: the worker runs
as `python -m promoter.evaluation.worker`, which imports this package first, and it must
still have a single thread (no numpy, whose BLAS starts threads) when it confines itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promoter.evaluation.binary_stats import BinaryClassificationStats
    from promoter.evaluation.evaluate import DEFAULT_TIMEOUT_S, evaluate_models
    from promoter.evaluation.gate import CheckResult, Verdict, check_thresholds
    from promoter.evaluation.metrics import METRIC_NAMES, TASK_METRICS, MetricValues
    from promoter.evaluation.multiclass_stats import MulticlassStats
    from promoter.evaluation.regression_stats import RegressionStats
    from promoter.evaluation.report import REPORT_SCHEMA_VERSION, EvaluationReport
    from promoter.evaluation.report_parts import HoldoutInfo, ModelResult, SliceResult

_EXPORTS = {
    "DEFAULT_TIMEOUT_S": "evaluate", "evaluate_models": "evaluate",
    "CheckResult": "gate", "Verdict": "gate", "check_thresholds": "gate",
    "METRIC_NAMES": "metrics", "TASK_METRICS": "metrics",
    "BinaryClassificationStats": "binary_stats", "MetricValues": "metrics",
    "MulticlassStats": "multiclass_stats", "RegressionStats": "regression_stats",
    "REPORT_SCHEMA_VERSION": "report", "EvaluationReport": "report",
    "HoldoutInfo": "report_parts", "ModelResult": "report_parts", "SliceResult": "report_parts",
}

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "METRIC_NAMES",
    "REPORT_SCHEMA_VERSION",
    "TASK_METRICS",
    "BinaryClassificationStats",
    "CheckResult",
    "EvaluationReport",
    "HoldoutInfo",
    "MetricValues",
    "ModelResult",
    "MulticlassStats",
    "RegressionStats",
    "SliceResult",
    "Verdict",
    "check_thresholds",
    "evaluate_models",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
