"""`promoter evaluate`: exit codes 0/1/2, Markdown and JSON output, errors on stderr."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from promoter.cli.evaluate import evaluate
from promoter.evaluation.metrics import BINARY_METRICS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = ["--label-column", "churned", "--output", "probability"]


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(evaluate, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow
def test_passing_gate_exits_0_and_prints_json(demo_store: dict[int, Path],
                                              demo_holdouts: dict[str, Path],
                                              tmp_path: Path) -> None:
    # A policy file without `name`: the name comes from the file's stem.
    policy = shutil.copy(REPO_ROOT / "policies" / "staging.yaml", tmp_path / "staging.yaml")
    code, out, err = _run("--model-dir", demo_store[2], "--baseline-dir", demo_store[1],
                          "--holdout", demo_holdouts["staging"], "--policy", policy, *DEMO,
                          "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["schemaVersion"] == 3
    assert data["passed"] is True
    assert set(data["candidate"]["metrics"]) == set(BINARY_METRICS)
    assert data["baseline"]["metrics"]["auc"] < data["candidate"]["metrics"]["auc"]
    assert data["candidate"]["digest"].startswith("sha256:")
    assert data["holdout"]["rows"] == 4000
    for role in ("candidate", "baseline"):  # the points a dashboard plots, exact and thinned
        roc = data[role]["plots"]["roc"]
        assert 2 < len(roc["fpr"]) <= 101
        assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
        area = sum((b - a) * (c + d) / 2 for a, b, c, d in zip(
            roc["fpr"], roc["fpr"][1:], roc["tpr"], roc["tpr"][1:], strict=False))
        assert area == pytest.approx(data[role]["metrics"]["auc"], abs=2e-3)
        assert sum(data[role]["plots"]["calibration"]["count"]) == 4000
    assert [(c["name"], c["verdict"]) for c in data["checks"]] == [
        ("auc.min", "pass"), ("auc.vsBaseline", "pass"), ("accuracy.min", "pass"),
        ("log_loss.max", "pass"), ("log_loss.vsBaseline", "pass")]


@pytest.mark.slow
def test_failing_gate_exits_1_and_prints_markdown(demo_store: dict[int, Path],
                                                  demo_holdouts: dict[str, Path]) -> None:
    code, out, err = _run("--model-dir", demo_store[3], "--holdout", demo_holdouts["dev"],
                          "--policy", REPO_ROOT / "policies" / "dev.yaml", *DEMO)
    assert (code, err) == (1, "")
    assert out.startswith("### ❌ Evaluation failed: 1 of 2 checks failed (auc.min)")
    assert "- ❌ `auc.min`: auc 0.5" in out
    assert "| metric | candidate | baseline | delta |" in out


def test_not_a_saved_model_exits_2_with_the_fix(tmp_path: Path) -> None:
    holdout = tmp_path / "h.csv"
    holdout.write_text("x,label\n1,0\n")
    code, out, err = _run("--model-dir", tmp_path, "--holdout", holdout)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {tmp_path} is not a SavedModel: it has no saved_model.pb")
    assert "fix: export the model" in err


def test_invalid_policy_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text("evaluation:\n  metrics:\n    - name: auc\n      min: high\n")
    code, _, err = _run("--model-dir", tmp_path, "--holdout", tmp_path / "h.csv",
                        "--policy", policy)
    assert code == 2
    assert err == (f"error: {policy}: evaluation.metrics[0].min: expected a number, "
                   "got 'high'\n")


def test_missing_policy_and_holdout_exit_2(demo_store: dict[int, Path], tmp_path: Path) -> None:
    code, _, err = _run("--model-dir", demo_store[1], "--holdout", tmp_path / "h.csv",
                        "--policy", tmp_path / "nope.yaml")
    assert code == 2
    assert "nope.yaml: file not found" in err
    code, _, err = _run("--model-dir", demo_store[1], "--holdout", tmp_path / "h.csv")
    assert code == 2
    assert "h.csv not found" in err


def test_wrong_label_column_exits_2_without_loading_the_model(
        demo_store: dict[int, Path], demo_holdouts: dict[str, Path]) -> None:
    code, _, err = _run("--model-dir", demo_store[1], "--holdout", demo_holdouts["dev"])
    assert code == 2
    assert "has no label column 'label'" in err
    assert "--label-column" in err


def test_bad_arguments_are_usage_errors() -> None:
    code, _, err = _run("--model-dir", ".", "--holdout", "h.csv", "--threshold", "1.5")
    assert code == 2
    assert "--threshold" in err


@pytest.mark.slow
def test_truncated_tfrecord_exits_2_and_refused_op_exits_1(
        tiny_models: dict[str, Path], tmp_path: Path) -> None:
    import numpy as np

    from promoter.evaluation.tfrecord import write_examples

    path = tmp_path / "h.tfrecord"
    write_examples(path, {"x": np.array([0.5, -0.5]), "label": np.array([1, 0])})
    path.write_bytes(path.read_bytes()[:-5])
    code, out, err = _run("--model-dir", tiny_models["logits"], "--holdout", path)
    assert code == 2
    assert err.startswith("error: ")
    assert "truncated or corrupt" in err
    csv = tmp_path / "h.csv"
    csv.write_text("x,label\n0.5,1\n-0.5,0\n")
    code, out, err = _run("--model-dir", tiny_models["reads_file"], "--holdout", csv)
    assert code == 1
    assert "ReadFile" in out


@pytest.mark.slow
def test_wrong_task_labels_exit_2(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    csv = tmp_path / "h.csv"
    csv.write_text("x,label\n0.5,1.5\n-0.5,0\n")
    code, _, err = _run("--model-dir", tiny_models["softmax3"], "--holdout", csv, "--task",
                        "multiclass_classification")
    assert code == 2
    assert "is not a class index" in err
