"""The demo's contract: v1 and v2 pass every environment's policy, v2 beats v1, v3 fails dev.

Scored through `evaluate_models` exactly as a promotion would, with the repository's own
`policies/*.yaml`, so tuning the demo data or a policy cannot silently break the demo.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from promoter.config.schema import ModelSpec, PolicySpec
from promoter.config.yaml_documents import parse_yaml, validate_model
from promoter.demo_data import FEATURE_COLUMNS, LABEL_COLUMN, generate_churn, write_holdout_csv
from promoter.evaluation import EvaluationReport, Verdict, check_thresholds, evaluate_models

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")


def _policy(env: str) -> PolicySpec:
    path = REPO_ROOT / "policies" / f"{env}.yaml"
    data = parse_yaml(path.read_text(), str(path))
    data.setdefault("name", env)
    return validate_model(PolicySpec, data, str(path))


def _defined(metrics: Mapping[str, float | None]) -> dict[str, float]:
    # Precision (and so on) may be undefined for a model that predicts no positive at all.
    assert all(metrics[name] is not None for name in ("accuracy", "auc", "log_loss")), metrics
    return {name: value for name, value in metrics.items() if value is not None}


@pytest.fixture(scope="module")
def v2_over_v1(demo_store: dict[int, Path], demo_holdouts: dict[str, Path],
               demo_model_spec: ModelSpec) -> dict[str, EvaluationReport]:
    """Per environment: v2 as the candidate, v1 as the deployed baseline, same rows.

    The three evaluations run at once: each is its own worker process.
    """
    with ThreadPoolExecutor(max_workers=len(ENVIRONMENTS)) as pool:
        futures = {
            env: pool.submit(evaluate_models, candidate_dir=demo_store[2],
                             baseline_dir=demo_store[1], holdout=demo_holdouts[env],
                             model=demo_model_spec, policy=_policy(env).evaluation,
                             environment=env)
            for env in ENVIRONMENTS
        }
        return {env: future.result() for env, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_v1_passes_as_the_first_deployment_and_v2_passes_over_v1(
        env: str, v2_over_v1: dict[str, EvaluationReport]) -> None:
    report = v2_over_v1[env]
    assert report.passed, report.to_markdown()
    assert report.baseline is not None
    v1_first = check_thresholds(_policy(env).evaluation, report.baseline.metrics, None,
                                environment=env)
    assert all(c.verdict is not Verdict.FAIL for c in v1_first), v1_first


@pytest.mark.slow
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_v2_clearly_beats_v1_with_margin(env: str,
                                         v2_over_v1: dict[str, EvaluationReport]) -> None:
    report = v2_over_v1[env]
    assert report.baseline is not None
    candidate = _defined(report.candidate.metrics)
    baseline = _defined(report.baseline.metrics)
    assert candidate["auc"] - baseline["auc"] > 0.04
    assert baseline["log_loss"] - candidate["log_loss"] > 0.05
    # margins to the strictest (prod) bounds, so a retrain's noise cannot flip the demo
    assert baseline["auc"] > 0.82
    assert baseline["accuracy"] > 0.76
    assert baseline["log_loss"] < 0.52


@pytest.mark.slow
def test_v3_fails_dev(demo_store: dict[int, Path], demo_holdouts: dict[str, Path],
                      demo_model_spec: ModelSpec) -> None:
    report = evaluate_models(candidate_dir=demo_store[3], baseline_dir=None,
                             holdout=demo_holdouts["dev"], model=demo_model_spec,
                             policy=_policy("dev").evaluation, environment="dev")
    assert not report.passed
    assert [c.name for c in report.failed_checks] == ["auc.min"]
    assert _defined(report.candidate.metrics)["auc"] < 0.65


@pytest.mark.slow
def test_exported_signature_is_the_serving_contract(demo_store: dict[int, Path]) -> None:
    import tensorflow as tf

    for path in demo_store.values():
        function = tf.saved_model.load(str(path)).signatures["serving_default"]
        _, inputs = function.structured_input_signature
        assert sorted(inputs) == sorted(FEATURE_COLUMNS)
        assert all(spec.dtype == tf.float32 and spec.shape.as_list() in ([None], [None, 1])
                   for spec in inputs.values())
        assert "probability" in function.structured_outputs


def test_demo_data_is_deterministic_and_written_exactly(tmp_path: Path) -> None:
    first, again = generate_churn(500, seed=7), generate_churn(500, seed=7)
    assert np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.labels, generate_churn(500, seed=8).labels)
    path = write_holdout_csv(tmp_path / "h.csv", 500, seed=7)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 500
    for name in FEATURE_COLUMNS:
        assert [float(r[name]) for r in rows] == first.features[name].tolist()
    assert [int(r[LABEL_COLUMN]) for r in rows] == first.labels.tolist()
    assert 0.3 < first.labels.mean() < 0.5  # neither class is rare
