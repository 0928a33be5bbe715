"""The `Evaluator` contract: the real evaluator (TensorFlow in a confined child, on the demo's
trained SavedModels) and the scripted one the service tests use answer alike, against the port
only: a report that names the digests of the bytes it read, and bad input as BadInputError.

The real evaluator is slow (each evaluation starts TensorFlow).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.errors import BadInputError
from promoter.model_store import LocalModelStore
from promoter.promotion.evaluator import Evaluator, SubprocessEvaluator
from tests.fakes.scripted import ScriptedEvaluator


@pytest.fixture(scope="module")
def store(demo_store: dict[int, Path], tmp_path_factory: pytest.TempPathFactory
          ) -> LocalModelStore:
    root = tmp_path_factory.mktemp("contract-store")
    for version, path in demo_store.items():
        shutil.copytree(path, root / "churn" / str(version))
    return LocalModelStore(root)


@pytest.fixture(params=["subprocess", "scripted"])
def evaluator(request: pytest.FixtureRequest, store: LocalModelStore) -> Evaluator:
    if request.param == "subprocess":
        request.applymarker(pytest.mark.slow)
        return SubprocessEvaluator(store)
    return ScriptedEvaluator()


def _digest(path: Path) -> str:
    return f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def test_the_report_names_what_was_read(evaluator: Evaluator, store: LocalModelStore,
                                        demo_holdouts: dict[str, Path],
                                        demo_model_spec: ModelSpec) -> None:
    candidate, baseline = store.get("churn", 2), store.get("churn", 1)
    holdout = demo_holdouts["dev"]
    report = evaluator.evaluate(candidate=candidate, baseline=baseline, holdout=holdout,
                                model=demo_model_spec, policy=EvaluationPolicy(),
                                environment="dev")
    assert report.candidate.digest == candidate.digest
    assert report.baseline is not None
    assert report.baseline.digest == baseline.digest
    assert report.holdout.digest == _digest(holdout)
    assert isinstance(report.passed, bool)
    assert report.summary_line()
    assert report.to_markdown().startswith("#")


def test_a_first_deployment_has_no_baseline(evaluator: Evaluator, store: LocalModelStore,
                                            demo_holdouts: dict[str, Path],
                                            demo_model_spec: ModelSpec) -> None:
    report = evaluator.evaluate(candidate=store.get("churn", 1), baseline=None,
                                holdout=demo_holdouts["dev"], model=demo_model_spec,
                                policy=EvaluationPolicy(), environment="dev")
    assert report.baseline is None


def test_a_missing_holdout_is_bad_input(evaluator: Evaluator, store: LocalModelStore,
                                        tmp_path: Path, demo_model_spec: ModelSpec) -> None:
    with pytest.raises(BadInputError):
        evaluator.evaluate(candidate=store.get("churn", 1), baseline=None,
                           holdout=tmp_path / "absent.csv", model=demo_model_spec,
                           policy=EvaluationPolicy(), environment="dev")
