"""The evaluation gate: score a candidate (and the deployed baseline) on a holdout, check the
metrics against a policy, and report.

Pure core: `metrics` (mergeable statistics), `bootstrap` (paired intervals), `gate`
(thresholds), `report`, `holdout` (CSV reader), `signature` (plain descriptions of a SavedModel
signature and their compatibility). `graph_scan` and `tfrecord` use TensorFlow's protobufs and
tf.data, in the worker only. The TensorFlow adapter
(`scoring`) runs only inside the worker process (`worker`), which `evaluate` starts: importing
this package never imports TensorFlow.
"""

from promoter.evaluation.evaluate import DEFAULT_TIMEOUT_S, evaluate_models
from promoter.evaluation.gate import CheckResult, Verdict, check_thresholds
from promoter.evaluation.metrics import (
    METRIC_NAMES,
    TASK_METRICS,
    BinaryClassificationStats,
    MetricValues,
    MulticlassStats,
    RegressionStats,
)
from promoter.evaluation.report import (
    REPORT_SCHEMA_VERSION,
    EvaluationReport,
    HoldoutInfo,
    ModelResult,
    SliceResult,
)

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
