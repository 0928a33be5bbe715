"""A holdout scored by several workers (`shards`): the report equals (==, not approx) the one
worker's, for every task, CSV and TFRecord, with a shard that scores no row; a shard that
fails fails the evaluation with the error one worker gives; shards that do not tile the rows
are refused. Slow: each evaluation starts workers (TensorFlow's import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.demo_data import write_holdout_csv
from promoter.errors import ModelLoadError
from promoter.evaluation import evaluate_models
from promoter.evaluation.shards import SHARD_FILE, default_shards, mine, replay

CSV_BATCH, TFRECORD_BATCH = 8192, 65536
"""The batches `evaluate_models` asks for: the shards are whole batches of these."""


def _same(report: Any) -> dict[str, Any]:
    """The report's JSON without what is measured time."""
    data = report.to_json_dict()
    for role in ("candidate", "baseline"):
        if data[role] is not None:
            data[role].pop("scoringSeconds", None)
    if data["bootstrap"] is not None:
        data["bootstrap"].pop("seconds")
    data["confinement"].pop("seconds")
    return data


def _both(shards: tuple[int, ...], **kwargs: Any) -> list[dict[str, Any]]:
    return [_same(evaluate_models(shards=n, measure_latency=False, **kwargs)) for n in shards]


def _policy(slices: str | None = None) -> EvaluationPolicy:
    return EvaluationPolicy.model_validate({
        "bootstrap": {"resamples": 200},
        "metrics": [{"name": "log_loss" if slices is None else "accuracy",
                     "vsBaseline": {"maxRegression": 0.5}}],
        "slices": [] if slices is None else [{"column": slices, "minRows": 1,
                                              "metrics": [{"name": "accuracy", "min": 0.0}]}]})


@pytest.mark.slow
def test_binary_csv_sharded_equals_one_worker(demo_store: dict[int, Path],
                                              demo_model_spec: ModelSpec,
                                              tmp_path: Path) -> None:
    # 3 batches (8192, 8192, 3616 rows): 2 shards score 2 + 1 of them; of 4, one scores none.
    holdout = write_holdout_csv(tmp_path / "h.csv", 2 * CSV_BATCH + 3616, seed=3)
    one, two, four = _both((1, 2, 4), candidate_dir=demo_store[2], baseline_dir=demo_store[1],
                           holdout=holdout, model=demo_model_spec,
                           policy=_policy(slices="support_calls"))
    assert one["holdout"]["rows"] == 2 * CSV_BATCH + 3616
    assert one["slices"]
    assert any(c["interval"] is not None for c in one["checks"])
    assert two == one
    assert four == one


@pytest.mark.slow
def test_multiclass_and_regression_sharded_equal_one_worker(tiny_models: dict[str, Path],
                                                            tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = 2 * CSV_BATCH + 100
    x = rng.normal(size=rows).round(3)
    labels = np.clip(np.round(x + rng.normal(scale=0.7, size=rows)) + 1, 0, 2).astype(int)
    weights = rng.integers(0, 4, size=rows)
    holdout = tmp_path / "three.csv"
    holdout.write_text("x,label,w,g\n" + "".join(
        f"{a},{b},{c},{'ab'[c % 2]}\n" for a, b, c in zip(x, labels, weights, strict=True)))
    for directory, model in (
            (tiny_models["softmax3"], ModelSpec(name="m", task="multiclass_classification",
                                                top_k=2, weight_column="w")),
            (tiny_models["linear"], ModelSpec(name="r", task="regression",
                                              output="prediction"))):
        one, three = _both((1, 3), candidate_dir=directory, baseline_dir=directory,
                           holdout=holdout, model=model, policy=_policy(slices="g"))
        assert one["holdout"]["rows"] == rows
        assert three == one, model.task


@pytest.mark.slow
def test_tfrecord_sharded_equals_one_worker(tiny_models: dict[str, Path],
                                            tmp_path: Path) -> None:
    from promoter.evaluation.tfrecord import write_examples

    rng = np.random.default_rng(9)
    rows = TFRECORD_BATCH + 4464  # 2 batches: of 3 shards, one scores no row
    x = rng.normal(size=rows).astype(np.float32)
    holdout = tmp_path / "h.tfrecord"
    write_examples(holdout, {"x": x, "label": (x + rng.normal(size=rows) > 0).astype(int)})
    model = ModelSpec(name="tiny", label_column="label", output="probability")
    one, three = _both((1, 3), candidate_dir=tiny_models["two_outputs"],
                       baseline_dir=tiny_models["two_outputs"], holdout=holdout, model=model,
                       policy=_policy())
    assert one["holdout"]["rows"] == rows
    assert three == one


@pytest.mark.slow
def test_a_failing_shard_fails_the_evaluation_as_one_worker_does(
        tiny_models: dict[str, Path], tmp_path: Path) -> None:
    # The `nan` model scores NaN where x > 0: only one row of the second batch has it.
    rows = 2 * CSV_BATCH + 10
    x = np.full(rows, -1.0)
    x[CSV_BATCH + 5] = 2.0
    holdout = tmp_path / "h.csv"
    holdout.write_text("x,label\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(x)))
    model = ModelSpec(name="tiny", label_column="label", output="probability")
    errors = []
    for shards in (1, 2):
        with pytest.raises(ModelLoadError) as caught:
            evaluate_models(candidate_dir=tiny_models["nan"], baseline_dir=None,
                            holdout=holdout, model=model, policy=None, shards=shards,
                            measure_latency=False)
        errors.append((caught.value.message, caught.value.fix))
    assert errors[0] == errors[1]
    assert f"(holdout lines {CSV_BATCH + 5 + 2})" in errors[0][0]  # the header is line 1


def test_default_shards_and_batch_ownership() -> None:
    assert [default_shards(c) for c in (1, 2, 3, 4, 16)] == [1, 1, 3, 4, 4]
    owners = [[n for n in range(7) if mine(n, {"index": i, "count": 3})] for i in range(3)]
    assert owners == [[0, 3, 6], [1, 4], [2, 5]]
    assert all(mine(n, None) for n in range(3))


def _shard_file(path: Path, first_rows: list[int], sizes: list[int]) -> Path:
    total = sum(sizes)
    path.mkdir()
    np.savez(path / SHARD_FILE, first_rows=np.array(first_rows, np.int64),
             batch_rows=np.array(sizes, np.int64), lines=np.arange(total) + 2,
             labels=np.arange(total) % 2, has_weights=np.bool_(False),
             **{"scores.candidate": np.full(total, 0.25, np.float32)})
    return path / SHARD_FILE


@pytest.mark.parametrize(("shards", "rows", "match"), [
    ([([0], [4]), ([8], [4])], 12, "rows 5.. are missing"),        # a gap
    ([([0], [4]), ([0], [4])], 8, "rows 5.. are missing or scored twice"),  # twice
    ([([0], [4]), ([4], [4])], 9, "8 of the holdout's 9 rows"),     # one short
])
def test_shards_that_do_not_tile_the_rows_are_refused(
        tmp_path: Path, shards: list[tuple[list[int], list[int]]], rows: int,
        match: str) -> None:
    paths = [_shard_file(tmp_path / f"s{i}", first, sizes)
             for i, (first, sizes) in enumerate(shards)]
    request = {"task": "binary_classification", "holdout": "h.csv", "bootstrap": False}
    with pytest.raises(ModelLoadError, match=match):
        replay(paths, request, roles=["candidate"], rows=rows, out_dir=tmp_path,
               labels={"candidate": "the candidate"})


def test_replayed_shards_tile_the_rows(tmp_path: Path) -> None:
    paths = [_shard_file(tmp_path / "s0", [0, 8], [4, 2]), _shard_file(tmp_path / "s1", [4],
                                                                       [4])]
    request = {"task": "binary_classification", "holdout": "h.csv", "bootstrap": False}
    assert replay(paths, request, roles=["candidate"], rows=10, out_dir=tmp_path,
                  labels={"candidate": "the candidate"}) == {"candidate": []}
    with np.load(tmp_path / "candidate.npz") as npz:
        assert int(npz["overall.rows"]) == 10
