"""The gate's semantics, table-driven, exactly as BaselineComparison's docstring states them."""

from __future__ import annotations

from typing import Any

import pytest

from promoter.config.schema import EvaluationPolicy
from promoter.evaluation.gate import CheckResult, Verdict, check_thresholds, format_number

PASS, FAIL, SKIPPED = Verdict.PASS, Verdict.FAIL, Verdict.SKIPPED


def _policy(*metrics: dict[str, Any]) -> EvaluationPolicy:
    return EvaluationPolicy.model_validate({"metrics": list(metrics)})


def _one(policy: EvaluationPolicy, candidate: dict[str, float | None],
         baseline: dict[str, float | None] | None = None, **kwargs: Any) -> CheckResult:
    [result] = check_thresholds(policy, candidate, baseline, **kwargs)
    return result


@pytest.mark.parametrize(("rule", "value", "verdict"), [
    ({"name": "auc", "min": 0.8}, 0.81, PASS),
    ({"name": "auc", "min": 0.8}, 0.8, PASS),  # the bound itself passes (>=)
    ({"name": "auc", "min": 0.8}, 0.7999999999, FAIL),
    ({"name": "log_loss", "max": 0.5}, 0.5, PASS),  # <=
    ({"name": "log_loss", "max": 0.5}, 0.5000001, FAIL),
    ({"name": "log_loss", "max": 0.5}, 0.1, PASS),
    ({"name": "accuracy", "min": 0.75}, 0.5, FAIL),
])
def test_absolute_bounds(rule: dict[str, Any], value: float, verdict: Verdict) -> None:
    result = _one(_policy(rule), {rule["name"]: value})
    assert result.verdict is verdict
    assert result.observed == value
    assert result.bound == rule.get("min", rule.get("max"))
    assert result.name == f"{rule['name']}.{'min' if 'min' in rule else 'max'}"


# (metric, vsBaseline rule, candidate, baseline, verdict, improvement)
VS_BASELINE = [
    # higher is better: improvement = candidate - baseline
    ("auc", {"maxRegression": 0.0}, 0.85, 0.85, PASS, 0.0),
    ("auc", {"maxRegression": 0.0}, 0.849, 0.85, FAIL, 0.849 - 0.85),
    ("auc", {"maxRegression": 0.01}, 0.845, 0.85, PASS, 0.845 - 0.85),
    ("auc", {"maxRegression": 0.01}, 0.835, 0.85, FAIL, 0.835 - 0.85),
    ("auc", {"minImprovement": 0.01}, 0.87, 0.85, PASS, 0.87 - 0.85),
    ("auc", {"minImprovement": 0.01}, 0.855, 0.85, FAIL, 0.855 - 0.85),
    ("auc", {"minImprovement": -0.02}, 0.84, 0.85, PASS, 0.84 - 0.85),  # negative min allowed
    # lower is better: improvement = baseline - candidate
    ("log_loss", {"maxRegression": 0.02}, 0.41, 0.40, PASS, 0.40 - 0.41),
    ("log_loss", {"maxRegression": 0.02}, 0.43, 0.40, FAIL, 0.40 - 0.43),
    ("log_loss", {"minImprovement": 0.05}, 0.30, 0.40, PASS, 0.40 - 0.30),
    ("log_loss", {"minImprovement": 0.05}, 0.38, 0.40, FAIL, 0.40 - 0.38),
    # relative: divided by |baseline|
    ("auc", {"minImprovement": 0.05, "relative": True}, 0.85, 0.80, PASS, (0.85 - 0.80) / 0.80),
    ("auc", {"minImprovement": 0.06, "relative": True}, 0.84, 0.80, FAIL, (0.84 - 0.80) / 0.80),
    ("log_loss", {"maxRegression": 0.1, "relative": True}, 0.44, 0.40, PASS,
     (0.40 - 0.44) / 0.40),
    ("log_loss", {"maxRegression": 0.1, "relative": True}, 0.45, 0.40, FAIL,
     (0.40 - 0.45) / 0.40),
]


@pytest.mark.parametrize(("metric", "rule", "candidate", "baseline", "verdict", "improvement"),
                         VS_BASELINE)
def test_vs_baseline(metric: str, rule: dict[str, Any], candidate: float, baseline: float,
                     verdict: Verdict, improvement: float) -> None:
    result = _one(_policy({"name": metric, "vsBaseline": rule}), {metric: candidate},
                  {metric: baseline})
    assert result.name == f"{metric}.vsBaseline"
    assert result.verdict is verdict, result.reason
    assert result.observed == pytest.approx(improvement, abs=1e-15)
    required = rule.get("minImprovement", -rule.get("maxRegression", 0.0))
    assert result.bound == required


def test_relative_comparison_against_a_zero_baseline_does_not_divide_by_zero() -> None:
    policy = _policy({"name": "log_loss", "vsBaseline": {"maxRegression": 0.1, "relative": True}})
    worse = _one(policy, {"log_loss": 0.1}, {"log_loss": 0.0})
    same = _one(policy, {"log_loss": 0.0}, {"log_loss": 0.0})
    assert worse.verdict is FAIL
    assert worse.observed == float("-inf")
    assert same.verdict is PASS
    assert same.observed == 0.0


def test_first_deployment_skips_vs_baseline_but_keeps_absolute_bounds() -> None:
    policy = _policy({"name": "auc", "min": 0.8, "vsBaseline": {"maxRegression": 0.0}})
    results = check_thresholds(policy, {"auc": 0.9}, None, environment="prod")
    assert [(r.name, r.verdict) for r in results] == [("auc.min", PASS),
                                                      ("auc.vsBaseline", SKIPPED)]
    assert results[1].reason == "no model deployed in prod yet: absolute bounds only"


def test_missing_baseline_without_an_environment_still_says_why() -> None:
    policy = _policy({"name": "auc", "vsBaseline": {"maxRegression": 0.0}})
    reason = _one(policy, {"auc": 0.9}, None).reason
    assert reason == "no baseline model given: absolute bounds only"


@pytest.mark.parametrize("candidate", [{}, {"auc": None}])
def test_missing_candidate_metric_fails_every_check_explicitly(
        candidate: dict[str, float | None]) -> None:
    policy = _policy({"name": "auc", "min": 0.7, "max": 0.99, "vsBaseline": {"maxRegression": 0}})
    results = check_thresholds(policy, candidate, {"auc": 0.8},
                               undefined={"auc": "every row is labelled 0"})
    assert [r.verdict for r in results] == [FAIL, FAIL, FAIL]
    assert all(r.observed is None for r in results)
    expected = ("was not computed for the candidate" if not candidate
                else "undefined for the candidate: every row is labelled 0")
    assert all(expected in r.reason for r in results)


def test_missing_baseline_metric_fails_the_comparison() -> None:
    policy = _policy({"name": "auc", "vsBaseline": {"maxRegression": 0.0}})
    result = _one(policy, {"auc": 0.9}, {"auc": None})
    assert result.verdict is FAIL
    assert "undefined for the baseline" in result.reason


def test_checks_follow_policy_order_and_no_policy_means_no_checks() -> None:
    policy = _policy({"name": "log_loss", "max": 0.6}, {"name": "auc", "min": 0.7, "max": 1.0})
    names = [r.name for r in check_thresholds(policy, {"auc": 0.8, "log_loss": 0.5}, None)]
    assert names == ["log_loss.max", "auc.min", "auc.max"]
    assert check_thresholds(EvaluationPolicy(), {"auc": 0.1}, None) == []


def test_reasons_print_numbers_cleanly_but_never_hide_a_difference() -> None:
    failed = _one(_policy({"name": "auc", "min": 0.8}), {"auc": 0.79999999})
    assert failed.reason == "auc 0.79999999 < 0.8 (min)"
    passed = _one(_policy({"name": "auc", "min": 0.7}), {"auc": 0.8312345678})
    assert passed.reason == "auc 0.8312 >= 0.7 (min)"
    compared = _one(_policy({"name": "auc", "vsBaseline": {"maxRegression": 0.005}}),
                    {"auc": 0.8}, {"auc": 0.805})
    # 0.8 - 0.805 is -0.0050000000000000044 in floats: exact comparison, honest printing.
    assert compared.verdict is FAIL
    assert "-0.005000000000000004 < -0.005" in compared.reason
    assert "a regression of at most" in compared.reason


@pytest.mark.parametrize(("value", "signed", "text"), [
    (0.1, False, "0.1"), (0.83124567, False, "0.8312"), (1e-7, False, "1e-07"),
    (0.0, True, "0"), (-0.0, False, "0"), (0.05, True, "+0.05"), (-0.05, True, "-0.05"),
    (float("inf"), True, "+inf"), (float("-inf"), False, "-inf"), (12.0, False, "12"),
])
def test_format_number(value: float, signed: bool, text: str) -> None:
    assert format_number(value, signed=signed) == text
