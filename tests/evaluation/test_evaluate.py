"""`evaluate_models` end to end with real SavedModels, and the worker's isolation.

Every call starts a worker process that imports TensorFlow (a few seconds each), so these
tests are marked slow; they still run in the default suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.errors import HoldoutError, ModelLoadError, ModelStoreError
from promoter.evaluation import EvaluationReport, evaluate_models
from promoter.evaluation.worker_client import run_worker

pytestmark = pytest.mark.slow

TINY = ModelSpec(name="tiny", label_column="label")
AUC_POLICY = EvaluationPolicy.model_validate({"metrics": [{"name": "auc", "min": 0.5}]})


def _evaluate(candidate: Path, holdout: Path, *, model: ModelSpec = TINY,
              **kwargs: Any) -> EvaluationReport:
    return evaluate_models(candidate_dir=candidate, baseline_dir=None, holdout=holdout,
                           model=model, policy=AUC_POLICY, **kwargs)


@pytest.fixture(scope="module")
def typed_run(tiny_models: dict[str, Path], tiny_holdout: Path) -> tuple[EvaluationReport, float]:
    """A normal run on the tiny model, and how long it took (a yardstick for timeouts)."""
    started = time.monotonic()
    report = _evaluate(tiny_models["typed_inputs"], tiny_holdout,
                       candidate_digest="sha256:feed")
    return report, time.monotonic() - started


def test_int_string_and_float_inputs_are_fed_from_csv_columns(
        typed_run: tuple[EvaluationReport, float]) -> None:
    report, _ = typed_run
    # probability = 0.2 + 0.6 * (s == "yes") + 0.01 * n; labels 0,0,1,1,0,1 -> see TINY_HOLDOUT
    assert report.candidate.metrics["accuracy"] == pytest.approx(4 / 6)
    assert report.candidate.digest == "sha256:feed"
    assert report.holdout.rows == 6
    assert report.candidate.signature is not None
    inputs = {t.name: t.describe() for t in report.candidate.signature.inputs}
    assert inputs == {"n": "int64, shape [None, 1]", "s": "string, shape [None]",
                      "x": "float32, shape [None]"}


def test_several_outputs_and_none_configured_lists_them(tiny_models: dict[str, Path],
                                                        tiny_holdout: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        _evaluate(tiny_models["two_outputs"], tiny_holdout)
    message = str(info.value)
    assert "has 2 outputs and none is configured: logit (float32, shape [None]), probability" \
        in message
    assert "--output" in message


def test_configured_output_and_missing_signature(tiny_models: dict[str, Path],
                                                 tiny_holdout: Path) -> None:
    report = _evaluate(tiny_models["two_outputs"], tiny_holdout,
                       model=TINY.model_copy(update={"output": "probability"}))
    assert report.candidate.metrics["auc"] == 1.0
    with pytest.raises(ModelLoadError, match="has no signature 'predict'; its signatures: "
                                             "serving_default"):
        _evaluate(tiny_models["two_outputs"], tiny_holdout,
                  model=TINY.model_copy(update={"signature": "predict"}))


def test_nan_predictions_fail_clearly(tiny_models: dict[str, Path], tiny_holdout: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        _evaluate(tiny_models["nan"], tiny_holdout)
    assert "returned NaN for 3 of 6 rows (holdout lines 4, 5, 7)" in str(info.value)


def test_logits_instead_of_probabilities_fail_clearly(tiny_models: dict[str, Path],
                                                      tiny_holdout: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"outside \[0, 1\]"):
        _evaluate(tiny_models["logits"], tiny_holdout)


def test_holdout_missing_a_column_names_the_signature_input(tiny_models: dict[str, Path],
                                                            tmp_path: Path) -> None:
    holdout = tmp_path / "h.csv"
    holdout.write_text("x,label\n1,1\n-1,0\n")
    with pytest.raises(HoldoutError, match=r"no column 'n', which feeds input 'n' \(int64, "
                                           r"shape \[None, 1\]\) of the candidate's signature"):
        _evaluate(tiny_models["typed_inputs"], holdout)


def test_bad_paths_fail_before_any_worker_starts(tiny_models: dict[str, Path], tmp_path: Path,
                                                 tiny_holdout: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelStoreError, match=r"is not a SavedModel: it has no saved_model\.pb"):
        _evaluate(tmp_path, tiny_holdout)
    with pytest.raises(ModelStoreError, match="is not a directory"):
        evaluate_models(candidate_dir=tiny_models["nan"], baseline_dir=tmp_path / "gone",
                        holdout=tiny_holdout, model=TINY, policy=None)
    with pytest.raises(HoldoutError, match="not found"):
        _evaluate(tiny_models["nan"], tmp_path / "missing.csv")
    with pytest.raises(HoldoutError, match="no label column 'churned'"):
        _evaluate(tiny_models["nan"], tiny_holdout,
                  model=TINY.model_copy(update={"label_column": "churned"}))
    assert time.monotonic() - started < 2  # no TensorFlow start was paid for


def test_corrupt_saved_model_is_a_load_error(tiny_models: dict[str, Path],
                                             tiny_holdout: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"the candidate model at .*corrupt cannot be loaded"):
        _evaluate(tiny_models["corrupt"], tiny_holdout)


def test_a_model_that_crashes_the_process_is_a_load_error(tiny_models: dict[str, Path],
                                                          tiny_holdout: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        _evaluate(tiny_models["abort"], tiny_holdout)
    message = str(info.value)
    assert "the evaluation worker was killed by SIGABRT while scoring" in message
    assert "with the candidate model at" in message
    assert "model aborted on purpose" in message  # TensorFlow's fatal log line, not a stack


def test_a_model_that_hangs_is_killed_at_the_timeout(
        tiny_models: dict[str, Path], tiny_holdout: Path,
        typed_run: tuple[EvaluationReport, float]) -> None:
    # Long enough for the worker to load the model on this machine, so it hangs in the graph.
    timeout = 2 * typed_run[1] + 3
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        _evaluate(tiny_models["hang"], tiny_holdout, timeout_s=timeout)
    elapsed = time.monotonic() - started
    assert f"evaluation timed out after {timeout:g} s while scoring" in str(info.value)
    assert "the candidate model at" in str(info.value)
    assert timeout <= elapsed < timeout + 10


def test_a_tiny_timeout_stops_the_worker_while_it_starts(tiny_models: dict[str, Path],
                                                         tiny_holdout: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"timed out after 0\.2 s while "):
        _evaluate(tiny_models["typed_inputs"], tiny_holdout, timeout_s=0.2)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("code", "match"), [
    ("import os; os.abort()", "killed by SIGABRT while starting up"),
    ("import sys; sys.exit(3)", "exited with status 3 while starting up"),
    ("print('not json')", "returned no valid response"),
    ("import sys, json; sys.stdin.read(); print(json.dumps({'protocol': 1, 'ok': False, "
     "'error': {'type': 'HoldoutError', 'message': 'bad rows', 'fix': 'fix them'}}))",
     "bad rows"),
    ("print('{\"ok\": false, \"error\": {\"type\": \"internal\", \"message\": \"Boom\"}}')",
     "the evaluation worker failed: Boom"),
])
def test_worker_failures_become_typed_errors(code: str, match: str) -> None:
    with pytest.raises((ModelLoadError, HoldoutError), match=match):
        run_worker({}, timeout_s=30, command=[sys.executable, "-c", code])


def test_the_parent_process_never_imports_tensorflow(demo_store: dict[int, Path],
                                                     demo_holdouts: dict[str, Path],
                                                     tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from promoter.config.schema import ModelSpec
        from promoter.evaluation import EvaluationReport, evaluate_models
        report = evaluate_models(
            candidate_dir=Path({str(demo_store[2])!r}), baseline_dir=Path({str(demo_store[1])!r}),
            holdout=Path({str(demo_holdouts['dev'])!r}),
            model=ModelSpec(name="churn", output="probability", label_column="churned"),
            policy=None)
        print(json.dumps({{"tf": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
                          "rows": report.holdout.rows}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=tmp_path, timeout=300)
    assert json.loads(result.stdout) == {"tf": False, "keras": False, "rows": 2000}
    assert result.stderr == ""  # TensorFlow's log noise stayed in the worker
