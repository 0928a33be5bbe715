"""The evaluation gate: compare a candidate's metrics with a policy's thresholds. Pure.

One `MetricThreshold` gives up to three checks, named after the policy fields that asked for
them: `<metric>.min`, `<metric>.max` and `<metric>.vsBaseline`. Comparisons are exact (no
tolerance): a policy that says `min: 0.8` means 0.8, and a margin belongs in the policy, where
a reviewer sees it. Numbers in reasons are printed with as few digits as tell the two sides
apart, so a failure never reads "0.8 < 0.8".
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from promoter.config.schema import HIGHER_IS_BETTER, BaselineComparison, EvaluationPolicy


class Verdict(enum.StrEnum):
    """Outcome of one check. Only `fail` blocks a promotion."""

    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"
    """The check could not apply (e.g. no baseline on a first deployment) and says why."""
    # INCONCLUSIVE ("inconclusive") is reserved for confidence intervals that straddle a bound.


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


def check_thresholds(policy: EvaluationPolicy, candidate: Mapping[str, float | None],
                     baseline: Mapping[str, float | None] | None, *,
                     environment: str | None = None,
                     undefined: Mapping[str, str] | None = None) -> list[CheckResult]:
    """Check `candidate`'s metrics against every threshold of `policy`, in policy order.

    `baseline` holds the metrics of the model deployed now on the same rows, or None when
    nothing is deployed yet (first deployment): then every vsBaseline check is skipped and only
    absolute bounds apply. `environment` names the environment in that message. A metric that
    is missing or None fails every check that needs it; `undefined` may say why it is None.
    """
    results: list[CheckResult] = []
    why = undefined or {}
    for threshold in policy.metrics:
        metric = threshold.name
        value = candidate.get(metric)
        missing = _missing_reason(metric, candidate, why, role="candidate")
        for name, bound, op in (("min", threshold.min, ">="), ("max", threshold.max, "<=")):
            if bound is None:
                continue
            check = f"{metric}.{name}"
            if value is None:
                results.append(CheckResult(check, metric, Verdict.FAIL, missing, None, bound))
                continue
            ok = value >= bound if op == ">=" else value <= bound
            shown_value, shown_bound = _fmt_pair(value, bound)
            relation = op if ok else {">=": "<", "<=": ">"}[op]
            results.append(CheckResult(
                check, metric, Verdict.PASS if ok else Verdict.FAIL,
                f"{metric} {shown_value} {relation} {shown_bound} ({name})", value, bound))
        if threshold.vs_baseline is not None:
            results.append(_vs_baseline(metric, threshold.vs_baseline, value, missing,
                                        baseline, environment=environment, why=why))
    return results


def _vs_baseline(metric: str, rule: BaselineComparison, value: float | None, missing: str,
                 baseline: Mapping[str, float | None] | None, *, environment: str | None,
                 why: Mapping[str, str]) -> CheckResult:
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
    relation = ">=" if ok else "<"
    reason = (f"{metric} {shown_value} vs baseline {shown_base}: {kind} {shown_improvement} "
              f"{relation} {shown_required} ({rule_text})")
    return CheckResult(name, metric, Verdict.PASS if ok else Verdict.FAIL, reason, improvement,
                       required)


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
