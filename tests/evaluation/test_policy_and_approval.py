"""The policy's evaluation schema (backwards compatible) and how inconclusive checks gate."""

from __future__ import annotations

import pydantic
import pytest

from promoter.config.schema import EvaluationPolicy, MetricName, ModelSpec
from promoter.evaluation.gate import CheckResult, Verdict
from promoter.evaluation.metrics import ALL_METRICS, HIGHER_IS_BETTER
from promoter.evaluation.report import EvaluationReport
from promoter.evaluation.report_parts import HoldoutInfo, ModelResult

HOLDOUT = HoldoutInfo(path="h.csv", digest="sha256:" + "0" * 64, rows=10)
RESULT = ModelResult(model_dir="m/1", digest=None, metrics={"auc": 0.8}, rows=10)


def test_every_metric_has_a_direction_and_a_policy_name() -> None:
    assert set(ALL_METRICS) == set(HIGHER_IS_BETTER) == set(MetricName.__args__)  # type: ignore[attr-defined]


def test_old_policies_still_validate_and_have_no_bootstrap() -> None:
    policy = EvaluationPolicy.model_validate({"metrics": [{"name": "auc", "min": 0.7}]})
    assert policy.bootstrap is None
    assert policy.slices == ()
    assert policy.budgets is None


def test_new_policy_fields() -> None:
    policy = EvaluationPolicy.model_validate({
        "bootstrap": {"onInconclusive": "requireApproval", "confidence": 0.9},
        "slices": [{"column": "country", "metrics": [{"name": "auc", "min": 0.7}]}],
        "budgets": {"p99LatencyMs": 10, "maxModelMb": 100}})
    assert policy.bootstrap is not None
    assert policy.bootstrap.resamples == 1000
    assert policy.slices[0].min_rows == 100
    with pytest.raises(pydantic.ValidationError, match="onInconclusive"):
        EvaluationPolicy.model_validate({"bootstrap": {"onInconclusive": "maybe"}})
    with pytest.raises(pydantic.ValidationError, match="metrics"):
        EvaluationPolicy.model_validate({"slices": [{"column": "c", "metrics": []}]})


def test_model_spec_tasks() -> None:
    assert ModelSpec(name="m").task == "binary_classification"
    assert ModelSpec(name="m", task="regression", weightColumn="w").weight_column == "w"
    with pytest.raises(pydantic.ValidationError):
        ModelSpec(name="m", task="ranking")


def _report(verdicts: list[Verdict], on_inconclusive: str) -> EvaluationReport:
    checks = tuple(CheckResult(f"c{i}.vsBaseline", "auc", v, "why", 0.0, 0.0)
                   for i, v in enumerate(verdicts))
    return EvaluationReport(candidate=RESULT, baseline=RESULT, holdout=HOLDOUT, checks=checks,
                            on_inconclusive=on_inconclusive)


@pytest.mark.parametrize(("verdicts", "mode", "passed", "needs_approval"), [
    ([Verdict.PASS, Verdict.INCONCLUSIVE], "block", False, False),
    ([Verdict.PASS, Verdict.INCONCLUSIVE], "requireApproval", True, True),
    ([Verdict.FAIL, Verdict.INCONCLUSIVE], "requireApproval", False, False),
    ([Verdict.PASS, Verdict.SKIPPED], "requireApproval", True, False),
])
def test_inconclusive_blocks_or_needs_approval(verdicts: list[Verdict], mode: str,
                                               passed: bool, needs_approval: bool) -> None:
    report = _report(verdicts, mode)
    assert report.passed is passed
    assert report.needs_approval is needs_approval
    assert report.to_json_dict()["needsApproval"] is needs_approval
    assert len(report.summary_line()) <= 140
    if needs_approval:
        assert report.headline().startswith("Evaluation needs approval")
        assert "approval" in report.to_markdown()
