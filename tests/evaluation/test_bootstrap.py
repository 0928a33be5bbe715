"""The paired block Poisson bootstrap: paired, centred on the exact value, as wide as a row
bootstrap, cheap, and deciding pass / fail / inconclusive on the interval's bound."""

from __future__ import annotations

import time

import numpy as np
import pytest

from promoter.config.schema import EvaluationPolicy
from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.bootstrap import (
    N_BLOCKS,
    binary_block_sums,
    block_ids,
    interval,
    multiclass_block_sums,
    poisson_weights,
    regression_block_sums,
    replicate_metrics,
    resample,
)
from promoter.evaluation.gate import Verdict, check_thresholds
from promoter.evaluation.multiclass_stats import MulticlassStats
from promoter.evaluation.regression_stats import RegressionStats


def _scores(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.sort(rng.integers(0, 2, rows))  # a file sorted by label: blocks must still mix
    a = np.clip(0.3 * y + rng.normal(0.35, 0.2, rows), 0, 1)
    b = np.clip(a + rng.normal(0, 0.05, rows), 0, 1)
    return y, a, b


def _blocks(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    ids = block_ids(0, y.shape[0])
    return binary_block_sums(ids, y, p, threshold=0.5, weights=np.ones(y.shape[0]))


def test_block_ids_spread_consecutive_rows_over_all_blocks() -> None:
    ids = block_ids(0, 100_000)
    counts = np.bincount(ids, minlength=N_BLOCKS)
    assert counts.min() > 0.6 * counts.mean()
    assert np.array_equal(block_ids(500, 10), ids[500:510])  # batches agree with the whole


def test_full_sample_through_the_blocks_equals_exact_additive_metrics() -> None:
    y, a, _ = _scores(5000, 0)
    full = replicate_metrics("binary_classification", _blocks(y, a).sum(axis=0)[None, :])
    exact = BinaryClassificationStats.from_batch(y, a, threshold=0.5).metrics().values
    for name in ("accuracy", "precision", "recall", "f1", "log_loss", "brier",
                 "calibration_error"):
        assert full[name][0] == pytest.approx(exact[name], rel=1e-9), name
    assert full["auc"][0] == pytest.approx(exact["auc"], abs=2e-3)  # histogram


def test_identical_models_give_a_zero_width_interval() -> None:
    y, a, _ = _scores(3000, 1)
    weights = poisson_weights(200)
    cand = resample("binary_classification", _blocks(y, a), weights)
    diff = cand.values["auc"] - cand.values["auc"]
    assert interval(0.0, diff, 0.0, confidence=0.95) == (0.0, 0.0)


def test_block_bootstrap_is_as_wide_as_a_row_bootstrap_of_the_difference() -> None:
    y, a, b = _scores(20_000, 2)
    weights = poisson_weights(1000, seed=3)
    ca = resample("binary_classification", _blocks(y, a), weights)
    cb = resample("binary_classification", _blocks(y, b), weights)
    block_sd = np.std(ca.values["log_loss"] - cb.values["log_loss"])
    # Reference: row-level Poisson bootstrap of the paired log-loss difference.
    rng = np.random.default_rng(4)
    eps = np.finfo(np.float64).eps

    def ll(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, eps, 1 - eps)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))

    d = ll(a) - ll(b)
    rows = rng.poisson(1.0, size=(300, y.shape[0]))
    row_sd = np.std((rows @ d) / rows.sum(axis=1))
    assert block_sd == pytest.approx(row_sd, rel=0.15)


def test_multiclass_and_regression_replicates_match_exact_values() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 2000)
    p = rng.dirichlet(np.ones(3), 2000)
    ids = block_ids(0, 2000)
    sums = multiclass_block_sums(ids, y, p, top_k=2, weights=np.ones(2000))
    full = replicate_metrics("multiclass_classification", sums.sum(0)[None], classes=3)
    exact = MulticlassStats.from_batch(y, p, top_k=2).metrics().values
    for name, value in exact.items():
        assert full[name][0] == pytest.approx(value, rel=1e-9), name
    t = rng.normal(100, 2, 2000)
    pred = t + rng.normal(0, 1, 2000)
    sums = regression_block_sums(ids, t, pred, center=100.0, weights=np.ones(2000))
    full = replicate_metrics("regression", sums.sum(0)[None])
    exact = RegressionStats.from_batch(t, pred).metrics().values
    for name, value in exact.items():
        assert full[name][0] == pytest.approx(value, rel=1e-8), name


def test_bootstrap_of_1000_resamples_is_cheap() -> None:
    y, a, b = _scores(50_000, 6)
    sa, sb = _blocks(y, a), _blocks(y, b)
    started = time.perf_counter()
    weights = poisson_weights(1000)
    resample("binary_classification", sa, weights)
    resample("binary_classification", sb, weights)
    assert time.perf_counter() - started < 5.0  # independent of the row count


def _check(candidate: np.ndarray, baseline: np.ndarray, *, rule: dict,
           on_inconclusive: str = "block") -> list:
    y, _, _ = _scores(candidate.shape[0], 0)
    policy = EvaluationPolicy.model_validate({
        "bootstrap": {"resamples": 500, "onInconclusive": on_inconclusive},
        "metrics": [{"name": "accuracy", "vsBaseline": rule}]})
    weights = poisson_weights(500)
    exact_c = BinaryClassificationStats.from_batch(y, candidate, threshold=0.5).metrics()
    exact_b = BinaryClassificationStats.from_batch(y, baseline, threshold=0.5).metrics()
    return check_thresholds(
        policy, exact_c.values, exact_b.values,
        candidate_replicates=resample("binary_classification", _blocks(y, candidate), weights),
        baseline_replicates=resample("binary_classification", _blocks(y, baseline), weights))


def test_verdicts_are_decided_on_the_interval_bound() -> None:
    y, a, _ = _scores(8000, 0)
    better = np.where(np.arange(8000) % 4 == 0, y * 0.9 + 0.05, a)  # fixes many rows
    row = np.arange(8000) % 50
    mixed = np.where(row == 0, y * 0.9 + 0.05, np.where(row == 25, (1 - y) * 0.9 + 0.05, a))
    [passed] = _check(better, a, rule={"minImprovement": 0.01})
    assert passed.verdict is Verdict.PASS
    assert passed.interval is not None
    assert passed.interval[0] >= 0.01
    [failed] = _check(a, better, rule={"maxRegression": 0.01})
    assert failed.verdict is Verdict.FAIL
    assert failed.interval is not None
    assert failed.interval[1] < -0.01
    # A required improvement equal to the observed one: the interval must straddle it.
    observed = float(np.mean((mixed >= 0.5) == y) - np.mean((a >= 0.5) == y))
    [unsure] = _check(mixed, a, rule={"minImprovement": observed})
    assert unsure.verdict is Verdict.INCONCLUSIVE
    assert "straddles" in unsure.reason
    assert unsure.interval is not None
    assert unsure.interval[0] < observed < unsure.interval[1]
