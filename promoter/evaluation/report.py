"""The evaluation report: what was evaluated, on which rows, the metrics and the gate's checks.

A value, rendered three ways: `to_json_dict()` (versioned, stored and compared by machines),
`to_markdown()` (a pull request comment), and `summary_line()` (a commit status description,
at most 140 characters as GitHub allows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promoter.config.schema import HIGHER_IS_BETTER
from promoter.evaluation.gate import CheckResult, Verdict
from promoter.evaluation.metrics import METRIC_NAMES
from promoter.evaluation.signature import SignatureInfo

REPORT_SCHEMA_VERSION = 1
"""Bumped on any incompatible change to `to_json_dict()`'s shape."""
SUMMARY_MAX_CHARS = 140

_ICONS = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.SKIPPED: "⏭"}


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

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "modelDir": self.model_dir,
            "digest": self.digest,
            "rows": self.rows,
            "metrics": {name: _finite_or_none(value) for name, value in self.metrics.items()},
            "undefinedMetrics": dict(self.undefined),
            "signature": None if self.signature is None else self.signature.to_json_dict(),
            "scoringSeconds": self.scoring_seconds,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> ModelResult:
        signature = data.get("signature")
        return cls(
            model_dir=str(data["modelDir"]),
            digest=data.get("digest"),
            metrics={str(k): None if v is None else float(v)
                     for k, v in data["metrics"].items()},
            rows=int(data["rows"]),
            undefined={str(k): str(v) for k, v in data.get("undefinedMetrics", {}).items()},
            signature=None if signature is None else SignatureInfo.from_json_dict(signature),
            scoring_seconds=data.get("scoringSeconds"),
        )


@dataclass(frozen=True, slots=True)
class HoldoutInfo:
    """The rows both models were scored on."""

    path: str
    digest: str
    """`sha256:<hex>` of the file's bytes as read."""
    rows: int


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """The outcome of one evaluation. `passed` is what gates a promotion."""

    candidate: ModelResult
    baseline: ModelResult | None
    """The model deployed now, scored on the same rows; None on a first deployment."""
    holdout: HoldoutInfo
    checks: tuple[CheckResult, ...]
    """In policy order; empty when no policy was given."""
    environment: str | None = None
    """The environment the candidate is gated for, when there is one."""
    schema_version: int = REPORT_SCHEMA_VERSION

    @property
    def passed(self) -> bool:
        """True unless some check failed (skipped checks do not block)."""
        return not self.failed_checks

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.verdict is Verdict.FAIL)

    def headline(self) -> str:
        """E.g. "Evaluation failed: 2 of 5 checks failed (auc.min, log_loss.max)"."""
        total = len(self.checks)
        if total == 0:
            return "Evaluation passed: no checks (no policy thresholds)"
        failed = self.failed_checks
        if failed:
            names = ", ".join(c.name for c in failed)
            return f"Evaluation failed: {len(failed)} of {total} checks failed ({names})"
        passed = sum(c.verdict is Verdict.PASS for c in self.checks)
        skipped = sum(c.verdict is Verdict.SKIPPED for c in self.checks)
        tail = f", {skipped} skipped" if skipped else ""
        return f"Evaluation passed: {passed} of {total} checks passed{tail}"

    def summary_line(self) -> str:
        """At most 140 characters, for a commit status: the verdict and the key numbers."""
        total = len(self.checks)
        failed = self.failed_checks
        if failed:
            head = f"failed {len(failed)}/{total}: "
            body = "; ".join(c.reason for c in failed)
        else:
            skipped = sum(c.verdict is Verdict.SKIPPED for c in self.checks)
            head = (f"passed {total - skipped}/{total}" + (f" ({skipped} skipped)" if skipped
                                                          else "") + ": ")
            body = ", ".join(self._metric_summary(name) for name in self._metric_names())
        return _truncate(head + body, SUMMARY_MAX_CHARS)

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON-safe data (camelCase keys; a non-finite number becomes null)."""
        return {
            "schemaVersion": self.schema_version,
            "passed": self.passed,
            "summary": self.headline(),
            "environment": self.environment,
            "candidate": self.candidate.to_json_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_json_dict(),
            "holdout": {"path": self.holdout.path, "digest": self.holdout.digest,
                        "rows": self.holdout.rows},
            "checks": [
                {"name": c.name, "metric": c.metric, "verdict": c.verdict.value,
                 "reason": c.reason, "observed": _finite_or_none(c.observed),
                 "bound": _finite_or_none(c.bound)}
                for c in self.checks
            ],
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> EvaluationReport:
        """Read a report written by `to_json_dict`. Raises ValueError for another schema
        version, KeyError/TypeError for a malformed one."""
        version = data.get("schemaVersion")
        if version != REPORT_SCHEMA_VERSION:
            raise ValueError(f"evaluation report schema version {version!r} is not "
                             f"{REPORT_SCHEMA_VERSION}")
        baseline = data.get("baseline")
        holdout = data["holdout"]
        return cls(
            candidate=ModelResult.from_json_dict(data["candidate"]),
            baseline=None if baseline is None else ModelResult.from_json_dict(baseline),
            holdout=HoldoutInfo(path=str(holdout["path"]), digest=str(holdout["digest"]),
                                rows=int(holdout["rows"])),
            checks=tuple(
                CheckResult(name=str(c["name"]), metric=str(c["metric"]),
                            verdict=Verdict(c["verdict"]), reason=str(c["reason"]),
                            observed=c.get("observed"), bound=c.get("bound"))
                for c in data["checks"]
            ),
            environment=data.get("environment"),
        )

    def to_markdown(self) -> str:
        """A pull request comment: headline, what was compared, metrics table, checks."""
        icon = "✅" if self.passed else "❌"
        lines = [f"### {icon} {self.headline()}", ""]
        where = f" for **{self.environment}**" if self.environment else ""
        against = (f" against baseline {_model_ref(self.baseline)}" if self.baseline
                   else ", without a baseline")
        lines += [
            f"Candidate {_model_ref(self.candidate)}{against}{where}, on holdout "
            f"`{self.holdout.path}` ({self.holdout.rows} rows, `{_short(self.holdout.digest)}`).",
            "",
            "| metric | candidate | baseline | delta |",
            "|---|---:|---:|---:|",
        ]
        for name in self._metric_names():
            value = self.candidate.metrics.get(name)
            base = self.baseline.metrics.get(name) if self.baseline else None
            lines.append(f"| {name} | {_cell(value)} | {_cell(base)} | "
                         f"{_delta(name, value, base)} |")
        notes = [f"- {role}: {reason}" for role, result in
                 (("candidate", self.candidate), ("baseline", self.baseline))
                 if result is not None for reason in result.undefined.values()]
        if notes:
            lines += ["", *notes]
        if self.checks:
            lines += ["", "**Checks**", ""]
            lines += [f"- {_ICONS[c.verdict]} `{c.name}`: {c.reason}" for c in self.checks]
        else:
            lines += ["", "No policy thresholds were checked."]
        return "\n".join(lines) + "\n"

    def _metric_names(self) -> list[str]:
        names = [n for n in METRIC_NAMES if n in self.candidate.metrics]
        return names + [n for n in self.candidate.metrics if n not in names]

    def _metric_summary(self, name: str) -> str:
        value = self.candidate.metrics.get(name)
        text = f"{name} {_cell(value)}"
        base = self.baseline.metrics.get(name) if self.baseline else None
        if base is not None:
            text += f" (base {_cell(base)})"
        return text


def _model_ref(result: ModelResult | None) -> str:
    if result is None:
        return "none"
    digest = f" (`{_short(result.digest)}`)" if result.digest else ""
    return f"`{result.model_dir}`{digest}"


def _short(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}:{hexdigest[:12]}" if hexdigest else digest[:19]


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _delta(name: str, value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return ""
    delta = value - base
    if delta == 0:
        return "0"
    better = (delta > 0) == HIGHER_IS_BETTER.get(name, True)
    return f"{delta:+.4f} ({'better' if better else 'worse'})"


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
