"""The `Evaluator` contract: the real evaluator (TensorFlow in a confined child, on the demo's
trained SavedModels) and the scripted one the service tests use answer alike, against the port
only: a report that names the digests of the bytes it read, and bad input as BadInputError.

The real evaluator is slow (each evaluation starts TensorFlow, or, pooled, the pool does once).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.errors import BadInputError
from promoter.evaluation.evaluate import DEFAULT_MEMORY_LIMIT_MB
from promoter.evaluation.worker_pool import WorkerPool
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


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(1, memory_limit_bytes=DEFAULT_MEMORY_LIMIT_MB * 2**20)
    yield pool
    pool.close()


@pytest.fixture(params=["subprocess", "pooled", "scripted"])
def evaluator(request: pytest.FixtureRequest, store: LocalModelStore) -> Evaluator:
    if request.param == "subprocess":
        request.applymarker(pytest.mark.slow)
        return SubprocessEvaluator(store)
    if request.param == "pooled":  # pre-started workers, as `promoter serve` has them
        request.applymarker(pytest.mark.slow)
        pool: WorkerPool = request.getfixturevalue("pool")
        pool.start()
        assert pool.wait_ready(300)
        return SubprocessEvaluator(store, pool=pool)
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
