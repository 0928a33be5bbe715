"""The evaluator port: score a candidate (and the deployed baseline) on a holdout set.

The promotion service depends on this small interface rather than on TensorFlow, so its tests
can run with a fake and the real scoring can move to another process or a Kubernetes Job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.domain.model_versions import ModelVersion
from promoter.model_store import ModelStore, saved_model_digest

if TYPE_CHECKING:
    # The evaluation package pulls in numpy; commands that never score should not pay for it.
    from promoter.evaluation import EvaluationReport
    from promoter.evaluation.worker_pool import PooledWorker, WorkerPool


class Evaluator(Protocol):
    def evaluate(
        self, *, candidate: ModelVersion, baseline: ModelVersion | None, holdout: Path,
        model: ModelSpec, policy: EvaluationPolicy, environment: str,
    ) -> EvaluationReport:
        """Score both models on the same rows and check `policy`.

        Raises BadInputError subclasses (HoldoutError, ModelLoadError, ModelStoreError) when
        the inputs cannot be scored; the caller turns those into a failed gate.
        """
        ...


class SubprocessEvaluator:
    """Scores with TensorFlow in a child process (see promoter.evaluation): a SavedModel is
    untrusted code and must not run inside the service.

    The worker loads private copies of the models, made for this evaluation in a directory
    only this process can write (copied from a local store, downloaded from an object store),
    and the report carries the digests of those copies, computed after copying: a store
    directory or object swapped while the worker runs (and swapped back) cannot put other
    bytes behind the reported digest."""

    def __init__(self, store: ModelStore, *, timeout_s: float = 600.0,
                 pool: WorkerPool | None = None, shards: int | None = None) -> None:
        """`pool`: pre-started workers (`promoter serve`); an evaluation takes one when one
        is waiting, and starts a fresh worker otherwise. `shards`: worker processes per
        evaluation (`service.evaluationShards`; None: `shards.default_shards()`); with a
        pool, as many of them as are waiting (at least one), each with its own copies."""
        self._store = store
        self._timeout_s = timeout_s
        self._pool = pool
        self._shards = shards

    def evaluate(
        self, *, candidate: ModelVersion, baseline: ModelVersion | None, holdout: Path,
        model: ModelSpec, policy: EvaluationPolicy, environment: str,
    ) -> EvaluationReport:
        from promoter.evaluation.shards import default_shards

        shards = self._shards or default_shards()
        worker = self._pool.take() if self._pool is not None else None
        if worker is None:
            with tempfile.TemporaryDirectory(prefix="promoter-models-") as private:
                return self._evaluate(Path(private), candidate=candidate, baseline=baseline,
                                      holdout=holdout, model=model, policy=policy,
                                      environment=environment, workers=[], shards=shards)
        workers = [worker]
        try:
            while self._pool is not None and len(workers) < shards:
                more = self._pool.take()
                if more is None:
                    break
                workers.append(more)
            # Each worker's job directory: made for it alone, and readable by it alone (its
            # Landlock rules), with nothing else in it.
            return self._evaluate(worker.in_dir, candidate=candidate, baseline=baseline,
                                  holdout=holdout, model=model, policy=policy,
                                  environment=environment, workers=workers,
                                  shards=len(workers))
        finally:
            for each in workers:
                each.discard()

    def _evaluate(self, private: Path, *, candidate: ModelVersion,
                  baseline: ModelVersion | None, holdout: Path, model: ModelSpec,
                  policy: EvaluationPolicy, environment: str,
                  workers: list[PooledWorker], shards: int) -> EvaluationReport:
        from promoter.errors import ModelStoreError
        from promoter.evaluation import evaluate_models

        candidate_dir = private / "candidate"
        self._store.copy_version(candidate, candidate_dir)
        baseline_dir = None
        if baseline is not None:
            baseline_dir = private / "baseline"
            self._store.copy_version(baseline, baseline_dir)
        for other in workers[1:]:  # every shard's worker reads its own copies
            self._store.copy_version(candidate, other.in_dir / "candidate")
            if baseline is not None:
                self._store.copy_version(baseline, other.in_dir / "baseline")
            for role, directory in (("candidate", candidate_dir), ("baseline", baseline_dir)):
                if directory is not None and saved_model_digest(
                        other.in_dir / role) != saved_model_digest(directory):
                    raise ModelStoreError(
                        f"the {role} model changed in the store while it was copied",
                        fix="do not modify a model version once it is in the store")
        return evaluate_models(
            candidate_dir=candidate_dir,
            baseline_dir=baseline_dir,
            holdout=holdout,
            model=model,
            policy=policy,
            timeout_s=self._timeout_s,
            candidate_digest=saved_model_digest(candidate_dir),
            baseline_digest=saved_model_digest(baseline_dir) if baseline_dir else None,
            environment=environment,
            # The gate measures what it checks: latency (about 0.3 s a model, most of a
            # small evaluation) only for a policy with budgets.
            measure_latency=policy.budgets is not None,
            worker=workers[0] if workers else None, more_workers=workers[1:],
            shards=shards,
        )
