"""What an evaluation report is made of: each model's result, each slice's, the holdout.

These are the values the evaluator fills in as it scores (`evaluate`), one per model, slice
and holdout, each with its own JSON form; `report.EvaluationReport` combines them with the
gate's checks and renders the whole. Kept apart so that the report module is about the
verdict and its renderings, not the shape of every part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promoter.evaluation.plots import ModelPlots
from promoter.evaluation.signature import SignatureInfo


@dataclass(frozen=True, slots=True)
class ModelResult:
    """One model's side of the evaluation."""

    model_dir: str
    """The SavedModel directory that was scored."""
    digest: str | None
    """`sha256:` content digest of the SavedModel, when the caller knew it."""
    metrics: Mapping[str, float | None]
    """Metric name -> value; None where undefined on this holdout."""
    rows: int
    """Holdout rows scored."""
    undefined: Mapping[str, str] = field(default_factory=dict)
    """Metric name -> why it is None."""
    signature: SignatureInfo | None = None
    """The signature that was called and its chosen output."""
    scoring_seconds: float | None = None
    """Time spent inside the model, over all batches (not loading or reading the CSV)."""
    latency_ms: Mapping[str, float] | None = None
    """`p50Ms`, `p99Ms` (single row), `batchP50Ms`, `batchP99Ms`, `batchSize`."""
    size_bytes: int | None = None
    """Size of the SavedModel directory on disk."""
    plots: ModelPlots | None = None
    """ROC and precision-recall points and calibration bins (`plots`); binary
    classification only, and None in a report older than schema version 3."""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "modelDir": self.model_dir,
            "digest": self.digest,
            "rows": self.rows,
            "metrics": {name: _finite_or_none(value) for name, value in self.metrics.items()},
            "undefinedMetrics": dict(self.undefined),
            "signature": None if self.signature is None else self.signature.to_json_dict(),
            "scoringSeconds": self.scoring_seconds,
            "latencyMs": None if self.latency_ms is None else dict(self.latency_ms),
            "sizeBytes": self.size_bytes,
            "plots": None if self.plots is None else self.plots.to_json_dict(),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> ModelResult:
        signature = data.get("signature")
        plots = data.get("plots")
        return cls(
            model_dir=str(data["modelDir"]),
            digest=data.get("digest"),
            metrics={str(k): None if v is None else float(v)
                     for k, v in data["metrics"].items()},
            rows=int(data["rows"]),
            undefined={str(k): str(v) for k, v in data.get("undefinedMetrics", {}).items()},
            signature=None if signature is None else SignatureInfo.from_json_dict(signature),
            scoring_seconds=data.get("scoringSeconds"),
            latency_ms=data.get("latencyMs"),
            size_bytes=data.get("sizeBytes"),
            plots=None if plots is None else ModelPlots.from_json_dict(plots),
        )


@dataclass(frozen=True, slots=True)
class SliceResult:
    """Metrics of the rows with one value of a slice column."""

    column: str
    value: str
    rows: int
    metrics: Mapping[str, float | None]
    baseline_metrics: Mapping[str, float | None] | None
    checked: bool
    """False when the slice has fewer rows than the policy's `minRows`."""
    failed: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        return {"column": self.column, "value": self.value, "rows": self.rows,
                "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
                "baselineMetrics": None if self.baseline_metrics is None else {
                    k: _finite_or_none(v) for k, v in self.baseline_metrics.items()},
                "checked": self.checked, "failed": self.failed}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> SliceResult:
        return cls(column=str(data["column"]), value=str(data["value"]), rows=int(data["rows"]),
                   metrics=dict(data["metrics"]), baseline_metrics=data.get("baselineMetrics"),
                   checked=bool(data["checked"]), failed=bool(data.get("failed", False)))


@dataclass(frozen=True, slots=True)
class HoldoutInfo:
    """The rows both models were scored on."""

    path: str
    digest: str
    """`sha256:<hex>` of the file's bytes as read."""
    rows: int


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None
