"""The evaluator port: score a candidate (and the deployed baseline) on a holdout set.

The promotion service depends on this small interface rather than on TensorFlow, so its tests
can run with a fake and the real scoring can move to another process or a Kubernetes Job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.model_store import ModelStore, ModelVersion

if TYPE_CHECKING:
    # The evaluation package pulls in numpy; commands that never score should not pay for it.
    from promoter.evaluation import EvaluationReport


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
    untrusted code and must not run inside the service."""

    def __init__(self, store: ModelStore, *, timeout_s: float = 600.0) -> None:
        self._store = store
        self._timeout_s = timeout_s

    def evaluate(
        self, *, candidate: ModelVersion, baseline: ModelVersion | None, holdout: Path,
        model: ModelSpec, policy: EvaluationPolicy, environment: str,
    ) -> EvaluationReport:
        from promoter.evaluation import evaluate_models

        return evaluate_models(
            candidate_dir=self._store.local_path(candidate),
            baseline_dir=self._store.local_path(baseline) if baseline else None,
            holdout=holdout,
            model=model,
            policy=policy,
            timeout_s=self._timeout_s,
            candidate_digest=candidate.digest,
            baseline_digest=baseline.digest if baseline else None,
            environment=environment,
        )
