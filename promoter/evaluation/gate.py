"""The evaluation gate: compare a candidate's metrics with a policy's thresholds. Pure.

One `MetricThreshold` gives up to three checks, named after the policy fields that asked for
them: `<metric>.min`, `<metric>.max` and `<metric>.vsBaseline`. Comparisons are exact (no
tolerance): a policy that says `min: 0.8` means 0.8, and a margin belongs in the policy, where
a reviewer sees it. Numbers in reasons are printed with as few digits as tell the two sides
apart, so a failure never reads "0.8 < 0.8".

With a `bootstrap` policy, a vsBaseline check is decided on the confidence interval [lo, hi]
of the improvement (paired bootstrap, `promoter.evaluation.bootstrap`): `pass` if lo >= the
required improvement, `fail` if hi < it, `inconclusive` otherwise (the data cannot tell).
Absolute bounds are always decided on the exact point value.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from promoter.config.schema import (
    BaselineComparison,
    BootstrapPolicy,
    EvaluationPolicy,
    MetricThreshold,
    SliceThreshold,
)
from promoter.evaluation.bootstrap import Replicates, interval
from promoter.evaluation.metrics import HIGHER_IS_BETTER


class Verdict(enum.StrEnum):
    """Outcome of one check. `fail` blocks a promotion; `inconclusive` blocks or needs an
    approval, as the policy's `bootstrap.onInconclusive` says."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    """The confidence interval of the improvement straddles the required bound."""
    SKIPPED = "skipped"
    """The check could not apply (e.g. no baseline on a first deployment) and says why."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of the policy against the candidate's metrics."""

    name: str
    """`<metric>.min`, `<metric>.max` or `<metric>.vsBaseline`, after the policy field."""
    metric: str
    """The metric checked, e.g. `auc`."""
    verdict: Verdict
    reason: str
    """One sentence a reviewer understands without the policy file at hand."""
    observed: float | None
    """The candidate's value (min/max) or its improvement over the baseline (vsBaseline);
    None where it could not be computed."""
    bound: float | None
    """The policy's bound: the min or max, or the improvement vsBaseline requires (negative
    for an allowed regression)."""
    interval: tuple[float, float] | None = None
    """Confidence interval of `observed` (vsBaseline checks with a bootstrap policy)."""
    slice: str | None = None
    """`column=value` for a per-slice check; None for the whole holdout."""


def check_thresholds(policy: EvaluationPolicy, candidate: Mapping[str, float | None],
                     baseline: Mapping[str, float | None] | None, *,
                     environment: str | None = None,
                     undefined: Mapping[str, str] | None = None,
                     candidate_replicates: Replicates | None = None,
                     baseline_replicates: Replicates | None = None,
                     thresholds: Sequence[MetricThreshold | SliceThreshold] | None = None,
                     slice_name: str | None = None) -> list[CheckResult]:
    """Check `candidate`'s metrics against every threshold of `policy`, in policy order.

    `baseline` holds the metrics of the model deployed now on the same rows, or None when
    nothing is deployed yet (first deployment): then every vsBaseline check is skipped and only
    absolute bounds apply. `environment` names the environment in that message. A metric that
    is missing or None fails every check that needs it; `undefined` may say why it is None.

    With `policy.bootstrap` and both models' `*_replicates` (paired resamples), vsBaseline
    checks are decided on the interval. `thresholds` replaces `policy.metrics` (slices), and
    `slice_name` prefixes check names with `slice[<column=value>].`.
    """
    results: list[CheckResult] = []
    why = undefined or {}
    prefix = f"slice[{slice_name}]." if slice_name else ""
    replicates = (None if candidate_replicates is None or baseline_replicates is None
                  or policy.bootstrap is None
                  else (policy.bootstrap, candidate_replicates, baseline_replicates))
    for threshold in (policy.metrics if thresholds is None else thresholds):
        metric = threshold.name
        value = candidate.get(metric)
        missing = _missing_reason(metric, candidate, why, role="candidate")
        for name, bound, op in (("min", threshold.min, ">="), ("max", threshold.max, "<=")):
            if bound is None:
                continue
            check = f"{prefix}{metric}.{name}"
            if value is None:
                results.append(CheckResult(check, metric, Verdict.FAIL, missing, None, bound,
                                           slice=slice_name))
                continue
            ok = value >= bound if op == ">=" else value <= bound
            shown_value, shown_bound = _fmt_pair(value, bound)
            relation = op if ok else {">=": "<", "<=": ">"}[op]
            results.append(CheckResult(
                check, metric, Verdict.PASS if ok else Verdict.FAIL,
                f"{metric} {shown_value} {relation} {shown_bound} ({name})", value, bound,
                slice=slice_name))
        if threshold.vs_baseline is not None:
            result = _vs_baseline(metric, threshold.vs_baseline, value, missing, baseline,
                                  environment=environment, why=why, replicates=replicates)
            results.append(CheckResult(f"{prefix}{result.name}", result.metric, result.verdict,
                                       result.reason, result.observed, result.bound,
                                       result.interval, slice_name))
    return results


def _vs_baseline(metric: str, rule: BaselineComparison, value: float | None, missing: str,
                 baseline: Mapping[str, float | None] | None, *, environment: str | None,
                 why: Mapping[str, str],
                 replicates: tuple[BootstrapPolicy, Replicates, Replicates] | None = None
                 ) -> CheckResult:
    name = f"{metric}.vsBaseline"
    required = (rule.min_improvement if rule.min_improvement is not None
                else -(rule.max_regression or 0.0))
    if baseline is None:
        where = (f"no model deployed in {environment} yet" if environment
                 else "no baseline model given")
        return CheckResult(name, metric, Verdict.SKIPPED, f"{where}: absolute bounds only",
                           None, required)
    if value is None:
        return CheckResult(name, metric, Verdict.FAIL, missing, None, required)
    base = baseline.get(metric)
    if base is None:
        reason = _missing_reason(metric, baseline, why, role="baseline")
        return CheckResult(name, metric, Verdict.FAIL, reason, None, required)

    higher = HIGHER_IS_BETTER[metric]
    difference = value - base if higher else base - value
    if rule.relative:
        improvement = (difference / abs(base) if base != 0
                       else (0.0 if difference == 0 else math.copysign(math.inf, difference)))
    else:
        improvement = difference
    ok = improvement >= required
    ci = None
    if replicates is not None and metric in replicates[1].values:
        ci = _improvement_interval(metric, rule, improvement, replicates)
    shown_value, shown_base = _fmt_pair(value, base)
    shown_improvement, shown_required = _fmt_pair(improvement, required, signed=True)
    kind = "relative improvement" if rule.relative else "improvement"
    if rule.min_improvement is not None:
        rule_text = f"at least {_fmt_pair(improvement, required)[1]} required"
    elif not rule.max_regression:
        rule_text = "no regression allowed"
    else:
        _, shown_allowed = _fmt_pair(-improvement, rule.max_regression)
        rule_text = f"a regression of at most {shown_allowed} allowed"
    if ci is not None:
        low, high = ci
        level = f"{replicates[0].confidence:.0%}" if replicates else ""
        shown_low, shown_high = _fmt_pair(low, high, signed=True)
        if low >= required:
            verdict = Verdict.PASS
            where = f"lower bound {shown_low} >= {shown_required}"
        elif high < required:
            verdict = Verdict.FAIL
            where = f"upper bound {shown_high} < {shown_required}"
        else:
            verdict = Verdict.INCONCLUSIVE
            where = f"[{shown_low}, {shown_high}] straddles {shown_required}"
        reason = (f"{metric} {shown_value} vs baseline {shown_base}: {kind} {shown_improvement}"
                  f", {level} interval {where} ({rule_text})")
        return CheckResult(name, metric, verdict, reason, improvement, required, ci)
    relation = ">=" if ok else "<"
    reason = (f"{metric} {shown_value} vs baseline {shown_base}: {kind} {shown_improvement} "
              f"{relation} {shown_required} ({rule_text})")
    return CheckResult(name, metric, Verdict.PASS if ok else Verdict.FAIL, reason, improvement,
                       required)


def _improvement_interval(metric: str, rule: BaselineComparison, exact: float,
                          replicates: tuple[BootstrapPolicy, Replicates, Replicates]
                          ) -> tuple[float, float] | None:
    policy, cand, base = replicates
    if not math.isfinite(exact):
        return None

    def improvement(c: np.ndarray, b: np.ndarray) -> np.ndarray:
        diff = c - b if HIGHER_IS_BETTER[metric] else b - c
        if not rule.relative:
            return diff
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b != 0, diff / np.abs(b), np.nan)

    reps = improvement(cand.values[metric], base.values[metric])
    full = float(improvement(np.array([cand.full[metric]]), np.array([base.full[metric]]))[0])
    return interval(exact, reps, full, confidence=policy.confidence)


def _missing_reason(metric: str, values: Mapping[str, float | None], why: Mapping[str, str],
                    *, role: str) -> str:
    if metric not in values:
        return f"{metric} was not computed for the {role}, so the check cannot pass"
    detail = why.get(metric)
    return (f"{metric} is undefined for the {role}"
            + (f": {detail}" if detail else "") + ", so the check cannot pass")


def format_number(value: float, *, digits: int = 4, signed: bool = False) -> str:
    """Print `value` with `digits` significant digits, without float noise (0.1 not
    0.1000000000000000055), and `-0` as `0`."""
    if math.isinf(value):
        return ("+" if signed and value > 0 else "") + ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    if "e" not in text and "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"+{text}" if signed and value > 0 else text


def _fmt_pair(a: float, b: float, *, signed: bool = False) -> tuple[str, str]:
    # Add digits until unequal numbers print unequal (up to 17, where repr is exact).
    for digits in range(4, 18):
        shown_a = format_number(a, digits=digits, signed=signed)
        shown_b = format_number(b, digits=digits, signed=signed)
        if (shown_a != shown_b) == (a != b):
            return shown_a, shown_b
    return shown_a, shown_b
