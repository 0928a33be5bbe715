"""The gate's features end to end with real SavedModels: graph scan, signature compatibility,
memory limit, network isolation, tasks, weights, slices, TFRecord holdouts, budgets and the
bootstrap. Each test starts a worker (TensorFlow import), so they are marked slow."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.domain.tensorflow_ops import REFUSED_OPS
from promoter.errors import HoldoutError, ModelLoadError
from promoter.evaluation import EvaluationReport, evaluate_models
from promoter.evaluation.gate import Verdict
from promoter.evaluation.graph_model import Function, MetaGraph, Node, SaverDef
from promoter.evaluation.graph_scan import scan_meta_graph

TINY = ModelSpec(name="tiny", label_column="label")


def _evaluate(candidate: Path, holdout: Path, *, baseline: Path | None = None,
              model: ModelSpec = TINY, policy: dict[str, Any] | None = None,
              **kwargs: Any) -> EvaluationReport:
    return evaluate_models(candidate_dir=candidate, baseline_dir=baseline, holdout=holdout,
                           model=model, policy=EvaluationPolicy.model_validate(policy or {}),
                           measure_latency=kwargs.pop("measure_latency", False), **kwargs)


# --- graph scan (pure; more in test_graph_allowlist.py) -------------------------------------

@pytest.mark.parametrize("op", sorted(REFUSED_OPS))
def test_every_refused_op_is_found_in_graphs_and_functions(op: str) -> None:
    serve = Function("__inference_serve_7", ("x",), (Node("n1", op, ("x",)),))
    [in_function] = scan_meta_graph(MetaGraph(nodes=(), functions={serve.name: serve}))
    assert in_function.op == op
    assert in_function.where == "function __inference_serve_7, node n1"
    assert in_function.why == REFUSED_OPS[op]
    [in_graph] = scan_meta_graph(MetaGraph(nodes=(Node("n2", op),)))
    assert "graph node n2" in in_graph.describe()


def test_checkpoint_ops_are_allowed_in_the_saver_only() -> None:
    restore = Function("__inference__traced_restore_4", ("file_prefix",),
                       (Node("r", "RestoreV2", ("file_prefix", "names", "slices")),
                        Node("names", "Const"), Node("slices", "Const")))
    graph = MetaGraph(nodes=(Node("saver_filename", "Placeholder"),
                             Node("call", "StatefulPartitionedCall", ("saver_filename",),
                                  calls=(restore.name,))),
                      functions={restore.name: restore},
                      saver=SaverDef("saver_filename:0", "", "call"))
    assert scan_meta_graph(graph) == []
    serve = Function("__inference_serve_1", ("x",), (Node("r", "RestoreV2", ("x",)),))
    [finding] = scan_meta_graph(MetaGraph(nodes=(), functions={serve.name: serve}))
    assert "outside the SavedModel's saver" in finding.why


# --- graph scan, signature, confinement (real models) ----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("model", "op"), [("reads_file", "ReadFile"),
                                           ("writes_file", "WriteFile"), ("prints", "PrintV2"),
                                           ("matching_files", "MatchingFiles"),
                                           ("py_function", "EagerPyFunc")])
def test_models_with_refused_ops_fail_the_gate_before_loading(
        tiny_models: dict[str, Path], tiny_holdout: Path, model: str, op: str) -> None:
    report = _evaluate(tiny_models[model], tiny_holdout)
    assert not report.passed
    [check] = report.checks
    assert check.name == "security.graphScan"
    assert op in check.reason
    assert report.holdout.rows == 0  # nothing was scored
    assert op in report.to_markdown()


@pytest.mark.slow
def test_incompatible_signature_fails_before_scoring_with_a_diff(
        tiny_models: dict[str, Path], tiny_holdout: Path) -> None:
    report = _evaluate(tiny_models["float64_input"], tiny_holdout,
                       baseline=tiny_models["two_outputs"],
                       model=ModelSpec(name="tiny", output="probability"))
    assert not report.passed
    [check] = report.checks
    assert check.name == "signature.compatible"
    assert "input 'x' changed dtype float32 -> float64" in check.reason
    assert "- input  x: float32, shape [None]" in report.signature_diff
    assert "+ input  x: float64, shape [None]" in report.signature_diff
    assert "```diff" in report.to_markdown()
    assert report.to_json_dict()["signatureDiff"] == list(report.signature_diff)


@pytest.mark.slow
def test_a_model_that_exhausts_memory_fails_with_a_clear_reason(
        tiny_models: dict[str, Path], tiny_holdout: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        _evaluate(tiny_models["memory_hog"], tiny_holdout, memory_limit_mb=6144)
    # What happened and how to raise the limit, not "check the holdout's columns" (#14).
    assert "ran out of memory within the worker's memory limit of 6144 MiB" in info.value.message
    assert "--memory-limit-mb" in (info.value.fix or "")
    assert "holdout" not in (info.value.fix or "")


@pytest.mark.slow
def test_worker_reports_its_confinement(tiny_models: dict[str, Path],
                                        tiny_holdout: Path) -> None:
    report = _evaluate(tiny_models["typed_inputs"], tiny_holdout, memory_limit_mb=8192)
    assert report.confinement["memoryLimitBytes"] == 8192 * 2**20
    assert report.confinement["network"].startswith(("isolated", "unavailable"))
    assert "Worker: memory limit 8192 MiB" in report.to_markdown()
    # Every mechanism is either listed as applied or as missing, with its reason.
    mechanisms, missing = report.confinement["mechanisms"], report.confinement["missing"]
    assert {"rlimit-as", "clean-environment", "timeout"} <= set(mechanisms)
    for name in ("landlock", "seccomp"):
        assert (name in mechanisms) != (name in missing)
        assert report.confinement[name]
    assert report.confinement["mode"] == "best-effort"
    assert report.confinement["threads"] == 1  # confined before any thread started
    assert report.confinement["environment"].startswith("only ")
    assert "PATH" not in report.confinement["environment"].removeprefix("only ").split(", ")
    assert "Confined by: rlimit-as" in report.to_markdown()


# --- tasks, weights, slices, budgets ---------------------------------------------------------

@pytest.mark.slow
def test_multiclass_and_regression_models(tiny_models: dict[str, Path],
                                          tmp_path: Path) -> None:
    holdout = tmp_path / "three.csv"
    holdout.write_text("x,label,w\n-2,0,1\n-1,0,2\n0,1,1\n0.5,2,1\n2,2,3\n-0.2,1,1\n")
    multi = _evaluate(tiny_models["softmax3"], holdout, model=ModelSpec(
        name="m", task="multiclass_classification", top_k=2, weight_column="w"),
        policy={"metrics": [{"name": "macro_f1", "min": 0.5}]})
    assert multi.task == "multiclass_classification"
    # argmax of softmax([-x, 0, x]): rows 3 (a tie, first class wins) and 6 are wrong.
    assert multi.candidate.metrics["accuracy"] == pytest.approx(7 / 9)
    assert multi.passed
    reg = _evaluate(tiny_models["linear"], holdout, model=ModelSpec(
        name="r", task="regression", output="prediction"),
        policy={"metrics": [{"name": "rmse", "max": 0.5}]})
    x = np.array([-2, -1, 0, 0.5, 2, -0.2])
    y = np.array([0, 0, 1, 2, 2, 1])
    assert reg.candidate.metrics["mae"] == pytest.approx(np.mean(np.abs(2 * x + 1 - y)),
                                                         rel=1e-6)
    assert not reg.passed  # rmse is far above 0.5
    assert reg.failed_checks[0].name == "rmse.max"


@pytest.mark.slow
def test_a_failing_slice_blocks_and_is_listed_first(tiny_models: dict[str, Path],
                                                    tiny_holdout: Path) -> None:
    policy = {"metrics": [{"name": "accuracy", "min": 0.5}],
              "slices": [{"column": "s", "minRows": 2,
                          "metrics": [{"name": "accuracy", "min": 0.9}]}]}
    report = _evaluate(tiny_models["typed_inputs"], tiny_holdout, policy=policy)
    # Overall accuracy 4/6 passes; the slice s=no (x=-2,-0.5,3 -> 0.2x scores) fails.
    assert report.candidate.metrics["accuracy"] == pytest.approx(4 / 6)
    assert not report.passed
    assert report.checks[0].slice is not None
    assert report.checks[0].verdict is Verdict.FAIL
    markdown = report.to_markdown()
    assert markdown.index("Failing slices") < markdown.index("| metric |")
    assert {s.value for s in report.slices} == {"yes", "no"}


@pytest.mark.slow
def test_budgets_are_checked_and_shown_next_to_the_baseline(
        tiny_models: dict[str, Path], tiny_holdout: Path) -> None:
    report = _evaluate(tiny_models["two_outputs"], tiny_holdout,
                       baseline=tiny_models["two_outputs"],
                       model=ModelSpec(name="tiny", output="probability"),
                       policy={"budgets": {"p99LatencyMs": 1e-6, "maxModelMb": 100,
                                           "batchSize": 16}},
                       measure_latency=True)
    names = {c.name: c.verdict for c in report.checks}
    assert names == {"budget.p99LatencyMs": Verdict.FAIL, "budget.maxModelMb": Verdict.PASS}
    assert report.candidate.latency_ms is not None
    assert report.baseline is not None
    assert report.baseline.latency_ms is not None
    assert "single-request p99 (ms)" in report.to_markdown()


# --- TFRecord --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_tfrecord(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from promoter.evaluation.tfrecord import write_examples

    path = tmp_path_factory.mktemp("tfrecord") / "tiny.tfrecord"
    write_examples(path, {"x": np.array([-2.0, -0.5, 0.25, 1.5, -1.0, 3.0]),
                          "n": np.arange(1, 7), "s": np.array(["no", "no", "yes", "yes",
                                                               "yes", "no"]),
                          "label": np.array([0, 0, 1, 1, 0, 1])})
    return path


@pytest.mark.slow
def test_tfrecord_holdout_gives_the_same_metrics_as_csv(
        tiny_models: dict[str, Path], tiny_holdout: Path, tiny_tfrecord: Path) -> None:
    from_csv = _evaluate(tiny_models["typed_inputs"], tiny_holdout)
    from_tfrecord = _evaluate(tiny_models["typed_inputs"], tiny_tfrecord)
    assert from_tfrecord.holdout.rows == 6
    assert from_tfrecord.holdout.digest.startswith("sha256:")
    for name, value in from_csv.candidate.metrics.items():
        assert from_tfrecord.candidate.metrics[name] == pytest.approx(value), name


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "match"), [
    ("truncate", "truncated or corrupt"),
    ("empty", "empty"),
    ("missing", "no feature 'churned', which feeds the label"),
])
def test_bad_tfrecord_holdouts_are_clear_errors(
        tiny_models: dict[str, Path], tiny_tfrecord: Path, tmp_path: Path, damage: str,
        match: str) -> None:
    path = tmp_path / "bad.tfrecord"
    if damage == "truncate":
        data = tiny_tfrecord.read_bytes()
        path.write_bytes(data[: len(data) - 7])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        shutil.copy(tiny_tfrecord, path)
    model = TINY if damage != "missing" else ModelSpec(name="tiny", label_column="churned")
    with pytest.raises(HoldoutError, match=match):
        _evaluate(tiny_models["typed_inputs"], path, model=model)


# --- bootstrap end to end --------------------------------------------------------------------

@pytest.mark.slow
def test_bootstrap_intervals_in_the_report(demo_store: dict[int, Path],
                                           demo_holdouts: dict[str, Path],
                                           demo_model_spec: ModelSpec) -> None:
    policy = {"bootstrap": {"resamples": 500, "onInconclusive": "requireApproval"},
              "metrics": [{"name": "auc", "vsBaseline": {"maxRegression": 0.0}},
                          {"name": "log_loss", "vsBaseline": {"minImprovement": 0.0}}]}
    report = _evaluate(demo_store[2], demo_holdouts["prod"], baseline=demo_store[1],
                       model=demo_model_spec, policy=policy)
    for check in report.checks:
        assert check.interval is not None
        assert check.interval[0] <= check.observed <= check.interval[1]
    assert report.bootstrap is not None
    assert report.bootstrap["resamples"] == 500
    assert "interval of improvement" in report.to_markdown()
    data = report.to_json_dict()
    assert EvaluationReport.from_json_dict(data).checks == report.checks
