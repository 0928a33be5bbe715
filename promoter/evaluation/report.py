"""The evaluation report: what was evaluated, on which rows, the metrics and the gate's checks.

A value, rendered three ways: `to_json_dict()` (versioned, stored and compared by machines),
`to_markdown()` (a pull request comment), and `summary_line()` (a commit status description,
at most 140 characters as GitHub allows).

The parts it is made of (`ModelResult`, `SliceResult`, `HoldoutInfo`) are in `report_parts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promoter.evaluation.gate import CheckResult, Verdict
from promoter.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES, TASK_METRICS
from promoter.evaluation.report_parts import HoldoutInfo, ModelResult, SliceResult, _finite_or_none

REPORT_SCHEMA_VERSION = 3
"""Bumped on any change to `to_json_dict()`'s shape. 2: task, intervals, inconclusive
verdicts, slices, budgets (latency, size), signature diff, confinement. 3: each model's
`plots` (ROC and precision-recall points, calibration bins; `evaluation.plots`)."""
READABLE_SCHEMA_VERSIONS = (2, 3)
"""Versions `from_json_dict` reads: a version-2 report is a version-3 one without plots."""
SUMMARY_MAX_CHARS = 140

_ICONS = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.SKIPPED: "⏭",
          Verdict.INCONCLUSIVE: "❔"}


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """The outcome of one evaluation. `passed` is what gates a promotion."""

    candidate: ModelResult
    baseline: ModelResult | None
    """The model deployed now, scored on the same rows; None on a first deployment."""
    holdout: HoldoutInfo
    checks: tuple[CheckResult, ...]
    """Failing slice checks first, then policy order, then budgets; empty without a policy."""
    environment: str | None = None
    """The environment the candidate is gated for, when there is one."""
    schema_version: int = REPORT_SCHEMA_VERSION
    task: str = "binary_classification"
    slices: tuple[SliceResult, ...] = ()
    on_inconclusive: str = "block"
    """The policy's `bootstrap.onInconclusive`: `block` or `requireApproval`."""
    bootstrap: Mapping[str, Any] | None = None
    """Resamples, confidence, seed, blocks and seconds of the bootstrap, when configured."""
    signature_diff: tuple[str, ...] = ()
    """Deployed vs candidate signature, when they are incompatible."""
    confinement: Mapping[str, Any] = field(default_factory=dict)
    """What the worker achieved: `memoryLimitBytes`, `network`."""

    @property
    def passed(self) -> bool:
        """True unless some verdict blocks: a failed check, or an inconclusive one when the
        policy says `onInconclusive: block`. With `requireApproval`, inconclusive checks pass
        here and `needs_approval` is True: the approvals gate must then see an approval."""
        return not self.failed_checks and (
            self.on_inconclusive == "requireApproval" or not self.inconclusive_checks)

    @property
    def needs_approval(self) -> bool:
        """True when the gate passes only because inconclusive checks are allowed with an
        approval (`onInconclusive: requireApproval`): the promotion needs at least one."""
        return (not self.failed_checks and bool(self.inconclusive_checks)
                and self.on_inconclusive == "requireApproval")

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.verdict is Verdict.FAIL)

    @property
    def inconclusive_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.verdict is Verdict.INCONCLUSIVE)

    def headline(self) -> str:
        """E.g. "Evaluation failed: 2 of 5 checks failed (auc.min, log_loss.max)"."""
        total = len(self.checks)
        if total == 0:
            return "Evaluation passed: no checks (no policy thresholds)"
        failed = self.failed_checks
        inconclusive = self.inconclusive_checks
        if failed:
            names = ", ".join(c.name for c in failed)
            return f"Evaluation failed: {len(failed)} of {total} checks failed ({names})"
        if inconclusive:
            names = ", ".join(c.name for c in inconclusive)
            if self.needs_approval:
                return (f"Evaluation needs approval: {len(inconclusive)} of {total} checks "
                        f"inconclusive ({names})")
            return (f"Evaluation failed: {len(inconclusive)} of {total} checks inconclusive "
                    f"({names}) and the policy blocks on inconclusive")
        passed = sum(c.verdict is Verdict.PASS for c in self.checks)
        skipped = sum(c.verdict is Verdict.SKIPPED for c in self.checks)
        tail = f", {skipped} skipped" if skipped else ""
        return f"Evaluation passed: {passed} of {total} checks passed{tail}"

    def summary_line(self) -> str:
        """At most 140 characters, for a commit status: the verdict and the key numbers."""
        total = len(self.checks)
        failed = self.failed_checks
        inconclusive = self.inconclusive_checks
        if failed:
            head = f"failed {len(failed)}/{total}: "
            body = "; ".join(c.reason for c in failed)
        elif inconclusive:
            head = (f"needs approval, {len(inconclusive)}/{total} inconclusive: "
                    if self.needs_approval else f"inconclusive {len(inconclusive)}/{total}: ")
            body = "; ".join(c.reason for c in inconclusive)
        else:
            skipped = sum(c.verdict is Verdict.SKIPPED for c in self.checks)
            head = (f"passed {total - skipped}/{total}" + (f" ({skipped} skipped)" if skipped
                                                          else "") + ": ")
            body = ", ".join(self._metric_summary(name) for name in self._metric_names()[:4])
        return _truncate(head + body, SUMMARY_MAX_CHARS)

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON-safe data (camelCase keys; a non-finite number becomes null)."""
        return {
            "schemaVersion": self.schema_version,
            "passed": self.passed,
            "needsApproval": self.needs_approval,
            "summary": self.headline(),
            "environment": self.environment,
            "task": self.task,
            "onInconclusive": self.on_inconclusive,
            "candidate": self.candidate.to_json_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_json_dict(),
            "holdout": {"path": self.holdout.path, "digest": self.holdout.digest,
                        "rows": self.holdout.rows},
            "checks": [
                {"name": c.name, "metric": c.metric, "verdict": c.verdict.value,
                 "reason": c.reason, "observed": _finite_or_none(c.observed),
                 "bound": _finite_or_none(c.bound),
                 "interval": None if c.interval is None else [
                     _finite_or_none(c.interval[0]), _finite_or_none(c.interval[1])],
                 "slice": c.slice}
                for c in self.checks
            ],
            "slices": [s.to_json_dict() for s in self.slices],
            "bootstrap": None if self.bootstrap is None else dict(self.bootstrap),
            "signatureDiff": list(self.signature_diff),
            "confinement": dict(self.confinement),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> EvaluationReport:
        """Read a report written by `to_json_dict` at any of `READABLE_SCHEMA_VERSIONS` (read
        as the current version). Raises ValueError for another schema version,
        KeyError/TypeError for a malformed one."""
        version = data.get("schemaVersion")
        if version not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(f"evaluation report schema version {version!r} is not one of "
                             + ", ".join(map(str, READABLE_SCHEMA_VERSIONS)))
        baseline = data.get("baseline")
        holdout = data["holdout"]
        return cls(
            schema_version=REPORT_SCHEMA_VERSION,
            candidate=ModelResult.from_json_dict(data["candidate"]),
            baseline=None if baseline is None else ModelResult.from_json_dict(baseline),
            holdout=HoldoutInfo(path=str(holdout["path"]), digest=str(holdout["digest"]),
                                rows=int(holdout["rows"])),
            checks=tuple(
                CheckResult(name=str(c["name"]), metric=str(c["metric"]),
                            verdict=Verdict(c["verdict"]), reason=str(c["reason"]),
                            observed=c.get("observed"), bound=c.get("bound"),
                            interval=None if c.get("interval") is None
                            else (c["interval"][0], c["interval"][1]),
                            slice=c.get("slice"))
                for c in data["checks"]
            ),
            environment=data.get("environment"),
            task=str(data.get("task", "binary_classification")),
            slices=tuple(SliceResult.from_json_dict(s) for s in data.get("slices", [])),
            on_inconclusive=str(data.get("onInconclusive", "block")),
            bootstrap=data.get("bootstrap"),
            signature_diff=tuple(data.get("signatureDiff", [])),
            confinement=dict(data.get("confinement") or {}),
        )

    def to_markdown(self) -> str:
        """A pull request comment: headline, what was compared (with digests), failing slices,
        signature diff, metrics with intervals, checks, slices, budgets, confinement."""
        icon = ("✅" if self.passed and not self.needs_approval
                else "❔" if self.passed else "❌")
        lines = [f"### {icon} {self.headline()}", ""]
        where = f" for **{self.environment}**" if self.environment else ""
        against = (f" against baseline {_model_ref(self.baseline)}" if self.baseline
                   else ", without a baseline (first deployment: absolute bounds only)")
        lines += [
            f"Candidate {_model_ref(self.candidate)}{against}{where}, on holdout "
            f"`{self.holdout.path}` ({self.holdout.rows} rows, `{_short(self.holdout.digest)}`).",
        ]
        failing_slices = [s for s in self.slices if s.failed]
        if failing_slices:
            lines += ["", "**Failing slices**", ""]
            lines += [f"- ❌ `{c.name}`: {c.reason}" for c in self.checks
                      if c.slice is not None and c.verdict is Verdict.FAIL]
        if self.signature_diff:
            lines += ["", "**Signature diff** (deployed `-`, candidate `+`)", "", "```diff",
                      *self.signature_diff, "```"]
        intervals = {c.metric: c.interval for c in self.checks
                     if c.interval is not None and c.slice is None}
        if self.candidate.metrics:
            lines += ["", "| metric | candidate | baseline | delta | interval of improvement |",
                      "|---|---:|---:|---:|---:|"]
            for name in self._metric_names():
                value = self.candidate.metrics.get(name)
                base = self.baseline.metrics.get(name) if self.baseline else None
                ci = intervals.get(name)
                shown = "" if ci is None else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
                lines.append(f"| {name} | {_cell(value)} | {_cell(base)} | "
                             f"{_delta(name, value, base)} | {shown} |")
        notes = [f"- {role}: {reason}" for role, result in
                 (("candidate", self.candidate), ("baseline", self.baseline))
                 if result is not None for reason in result.undefined.values()]
        if notes:
            lines += ["", *notes]
        if self.checks:
            lines += ["", "**Checks**", ""]
            ordered = sorted(self.checks, key=lambda c: (c.verdict is not Verdict.FAIL,
                                                         c.verdict is not Verdict.INCONCLUSIVE))
            lines += [f"- {_ICONS[c.verdict]} `{c.name}`: {c.reason}" for c in ordered]
            if self.inconclusive_checks:
                lines += ["", "Inconclusive checks "
                          + ("need a release manager's approval (`onInconclusive: "
                             "requireApproval`)." if self.on_inconclusive == "requireApproval"
                             else "block the promotion (`onInconclusive: block`).")]
        else:
            lines += ["", "No policy thresholds were checked."]
        if self.slices:
            lines += ["", "**Slices** (failing first)", "",
                      "| slice | rows | candidate | baseline | status |", "|---|---:|---|---|---|"]
            for s in sorted(self.slices, key=lambda s: (not s.failed, s.column, s.value)):
                status = "❌ failed" if s.failed else "checked" if s.checked else "too small"
                lines.append(f"| {s.column}={s.value} | {s.rows} | {_metrics_cell(s.metrics)} | "
                             f"{_metrics_cell(s.baseline_metrics)} | {status} |")
        budget = self._budget_lines()
        if budget:
            lines += ["", "**Budgets** (measured on the evaluating machine)", "",
                      "| | candidate | baseline |", "|---|---:|---:|", *budget]
        if self.bootstrap:
            b = self.bootstrap
            lines += ["", f"Intervals: paired Poisson bootstrap, {b.get('resamples')} resamples, "
                          f"{float(b.get('confidence', 0)):.0%} two-sided, seed {b.get('seed')}."]
        if self.confinement:
            c = self.confinement
            limit = c.get("memoryLimitBytes")
            lines += ["", f"Worker: memory limit "
                          f"{'none' if not limit else f'{int(limit) // 2**20} MiB'}; network "
                          f"{c.get('network', 'unknown')}."]
            if "mechanisms" in c:
                lines[-1] += (f" Confined by: {', '.join(c['mechanisms']) or 'nothing'}"
                              + (f"; missing: {', '.join(c['missing'])}" if c.get("missing")
                                 else "") + f" ({c.get('mode', 'best-effort')}).")
                for key in ("landlock", "seccomp"):
                    if key in c:
                        lines[-1] += f" {key.capitalize()}: {c[key]}."
        return "\n".join(lines) + "\n"

    def _budget_lines(self) -> list[str]:
        rows = []
        for key, label in (("p50Ms", "single-request p50 (ms)"),
                           ("p99Ms", "single-request p99 (ms)"),
                           ("batchP50Ms", "batch p50 (ms)"), ("batchP99Ms", "batch p99 (ms)")):
            cand = (self.candidate.latency_ms or {}).get(key)
            base = (self.baseline.latency_ms or {}).get(key) if self.baseline else None
            if cand is not None:
                rows.append(f"| {label} | {cand:.3f} | "
                            f"{'' if base is None else f'{base:.3f}'} |")
        if self.candidate.size_bytes is not None:
            base_size = self.baseline.size_bytes if self.baseline else None
            rows.append(f"| SavedModel size (MiB) | {self.candidate.size_bytes / 2**20:.2f} | "
                        f"{'' if base_size is None else f'{base_size / 2**20:.2f}'} |")
        return rows

    def _metric_names(self) -> list[str]:
        order = TASK_METRICS.get(self.task, METRIC_NAMES)
        names = [n for n in order if n in self.candidate.metrics]
        return names + [n for n in self.candidate.metrics if n not in names]

    def _metric_summary(self, name: str) -> str:
        value = self.candidate.metrics.get(name)
        text = f"{name} {_cell(value)}"
        base = self.baseline.metrics.get(name) if self.baseline else None
        if base is not None:
            text += f" (base {_cell(base)})"
        return text


def _metrics_cell(metrics: Mapping[str, float | None] | None) -> str:
    if metrics is None:
        return ""
    return ", ".join(f"{k} {_cell(v)}" for k, v in list(metrics.items())[:3])


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


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
