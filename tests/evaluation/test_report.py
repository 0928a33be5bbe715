"""The report's JSON, Markdown and one-line summary. Pure: reports are built by hand."""

from __future__ import annotations

import json

import pytest

from promoter.config.schema import EvaluationPolicy
from promoter.evaluation import EvaluationReport, HoldoutInfo, ModelResult, check_thresholds
from promoter.evaluation.gate import Verdict
from promoter.evaluation.signature import SignatureInfo, TensorInfo

PROD = EvaluationPolicy.model_validate({"metrics": [
    {"name": "auc", "min": 0.8, "vsBaseline": {"maxRegression": 0.0}},
    {"name": "accuracy", "min": 0.75},
    {"name": "log_loss", "max": 0.55, "vsBaseline": {"maxRegression": 0.01}},
]})
SIGNATURE = SignatureInfo("serving_default", (TensorInfo("x", "float32", (None, 1)),),
                          (TensorInfo("probability", "float32", (None, 1)),), "probability")
HOLDOUT = HoldoutInfo(path="data/churn-holdout-prod.csv", digest="sha256:" + "ab" * 32,
                      rows=8000)


def _result(path: str, auc: float | None, accuracy: float, log_loss: float) -> ModelResult:
    return ModelResult(model_dir=path, digest="sha256:" + "cd" * 32,
                       metrics={"accuracy": accuracy, "auc": auc, "log_loss": log_loss},
                       rows=8000, signature=SIGNATURE, scoring_seconds=0.25)


def _report(candidate: ModelResult, baseline: ModelResult | None) -> EvaluationReport:
    checks = check_thresholds(PROD, candidate.metrics,
                              baseline.metrics if baseline else None, environment="prod")
    return EvaluationReport(candidate=candidate, baseline=baseline, holdout=HOLDOUT,
                            checks=tuple(checks), environment="prod")


BETTER = _result("models/churn/2", 0.9263, 0.8579, 0.3339)
DEPLOYED = _result("models/churn/1", 0.8453, 0.7826, 0.4673)
WORSE = _result("models/churn/3", 0.5569, 0.6144, 0.663)


def test_passing_report() -> None:
    report = _report(BETTER, DEPLOYED)
    assert report.passed
    assert report.headline() == "Evaluation passed: 5 of 5 checks passed"
    markdown = report.to_markdown()
    assert markdown.startswith("### ✅ Evaluation passed: 5 of 5 checks passed\n")
    assert "| auc | 0.9263 | 0.8453 | +0.0810 (better) |" in markdown
    assert "| log_loss | 0.3339 | 0.4673 | -0.1334 (better) |" in markdown
    assert "- ✅ `auc.vsBaseline`: auc 0.9263 vs baseline 0.8453" in markdown
    assert "`sha256:cdcdcdcdcdcd`" in markdown
    assert "8000 rows" in markdown


def test_failing_report_names_the_failed_checks() -> None:
    report = _report(WORSE, DEPLOYED)
    assert not report.passed
    assert report.headline() == ("Evaluation failed: 5 of 5 checks failed (auc.min, "
                                 "auc.vsBaseline, accuracy.min, log_loss.max, "
                                 "log_loss.vsBaseline)")
    markdown = report.to_markdown()
    assert markdown.startswith("### ❌ Evaluation failed")
    assert "- ❌ `auc.min`: auc 0.5569 < 0.8 (min)" in markdown
    assert "| auc | 0.5569 | 0.8453 | -0.2884 (worse) |" in markdown


def test_first_deployment_shows_skipped_checks() -> None:
    report = _report(BETTER, None)
    assert report.passed
    assert report.headline() == "Evaluation passed: 3 of 5 checks passed, 2 skipped"
    markdown = report.to_markdown()
    assert "- ⏭ `auc.vsBaseline`: no model deployed in prod yet: absolute bounds only" in markdown
    assert "| auc | 0.9263 | n/a |  |" in markdown
    assert "without a baseline" in markdown


def test_undefined_metrics_are_explained() -> None:
    candidate = ModelResult(model_dir="m", digest=None,
                            metrics={"accuracy": 1.0, "auc": None, "log_loss": 0.1}, rows=3,
                            undefined={"auc": "AUC is undefined: every row is labelled 0"})
    report = _report(candidate, None)
    markdown = report.to_markdown()
    assert "- candidate: AUC is undefined: every row is labelled 0" in markdown
    assert "| auc | n/a |" in markdown
    assert report.checks[0].verdict is Verdict.FAIL


@pytest.mark.parametrize(("candidate", "baseline", "start"), [
    (BETTER, DEPLOYED, "passed 5/5: accuracy 0.8579 (base 0.7826), auc 0.9263 (base 0.8453)"),
    (BETTER, None, "passed 3/5 (2 skipped): accuracy 0.8579, auc 0.9263, log_loss 0.3339"),
    (WORSE, DEPLOYED, "failed 5/5: auc 0.5569 < 0.8 (min); auc 0.5569 vs baseline"),
])
def test_summary_line_fits_a_commit_status(candidate: ModelResult,
                                           baseline: ModelResult | None, start: str) -> None:
    line = _report(candidate, baseline).summary_line()
    assert line.startswith(start)
    assert len(line) <= 140


def test_json_is_versioned_complete_and_round_trips() -> None:
    report = _report(BETTER, DEPLOYED)
    data = json.loads(json.dumps(report.to_json_dict(), allow_nan=False))
    assert data["schemaVersion"] == 3
    assert data["passed"] is True
    assert data["candidate"]["metrics"] == {"accuracy": 0.8579, "auc": 0.9263, "log_loss": 0.3339}
    assert data["baseline"]["modelDir"] == "models/churn/1"
    assert data["holdout"] == {"path": HOLDOUT.path, "digest": HOLDOUT.digest, "rows": 8000}
    assert data["candidate"]["signature"]["output"] == "probability"
    assert [(c["name"], c["verdict"]) for c in data["checks"]] == [
        ("auc.min", "pass"), ("auc.vsBaseline", "pass"), ("accuracy.min", "pass"),
        ("log_loss.max", "pass"), ("log_loss.vsBaseline", "pass")]
    assert EvaluationReport.from_json_dict(data) == report


def test_json_has_no_infinities_and_other_versions_are_refused() -> None:
    policy = EvaluationPolicy.model_validate({"metrics": [
        {"name": "log_loss", "vsBaseline": {"maxRegression": 0.1, "relative": True}}]})
    candidate = _result("c", 0.9, 0.9, 0.1)
    baseline = _result("b", 0.9, 0.9, 0.0)
    checks = check_thresholds(policy, candidate.metrics, baseline.metrics)
    report = EvaluationReport(candidate=candidate, baseline=baseline, holdout=HOLDOUT,
                              checks=tuple(checks))
    data = report.to_json_dict()
    json.dumps(data, allow_nan=False)
    assert data["checks"][0]["observed"] is None
    with pytest.raises(ValueError, match="schema version 1 is not one of"):
        EvaluationReport.from_json_dict({**data, "schemaVersion": 1})


def test_no_policy_means_no_checks_and_a_pass() -> None:
    report = EvaluationReport(candidate=BETTER, baseline=None, holdout=HOLDOUT, checks=())
    assert report.passed
    assert report.headline() == "Evaluation passed: no checks (no policy thresholds)"
    assert "No policy thresholds were checked." in report.to_markdown()
