"""Scripted stand-ins for the evaluator and cluster-reader ports: tests decide each answer.

`ScriptedEvaluator` implements the `Evaluator` port with the part of `EvaluationReport` the
service reads (`passed`, `summary_line`, `to_markdown`, `to_json_dict` and the digests of what was
read),
records every call so tests can assert that a verdict was reused instead of scored again, and
can raise the evaluator's bad-input errors. `ScriptedCluster` answers rollout readings per
environment. Both pass the same contract tests as the real adapters (tests/contract).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from promoter.cluster.errors import ClusterUnreachableError
from promoter.cluster.port import RolloutPhase, RolloutState
from promoter.config.schema import EnvironmentSpec, EvaluationPolicy, ModelSpec
from promoter.domain.model_versions import ModelVersion
from promoter.errors import BadInputError, HoldoutError


@dataclass(frozen=True)
class ScriptedHoldout:
    digest: str
    """`sha256:<hex>` of the holdout file as the scripted evaluator read it."""


@dataclass(frozen=True)
class ScriptedReport:
    passed: bool
    candidate: ModelVersion
    baseline: ModelVersion | None
    holdout: ScriptedHoldout
    needs_approval: bool = False

    def summary_line(self) -> str:
        verdict = "passed" if self.passed else "failed: auc 0.61 < min 0.70"
        return f"Evaluation {verdict} (v{self.candidate.version})"

    def to_markdown(self) -> str:
        base = f"v{self.baseline.version}" if self.baseline else "none"
        return f"## Evaluation\n\ncandidate v{self.candidate.version}, baseline {base}\n"

    def to_json_dict(self) -> dict[str, object]:
        """The report's JSON shape, with the fields the dashboard reads."""
        def model(version: ModelVersion) -> dict[str, object]:
            return {"modelDir": version.uri, "digest": version.digest, "rows": 0,
                    "metrics": {"auc": 0.8 if self.passed else 0.61}}
        return {"schemaVersion": 3, "passed": self.passed, "needsApproval": self.needs_approval,
                "summary": self.summary_line(), "task": "binary_classification",
                "candidate": model(self.candidate),
                "baseline": model(self.baseline) if self.baseline else None,
                "holdout": {"path": "holdout.csv", "digest": self.holdout.digest, "rows": 0},
                "checks": [], "slices": [], "signatureDiff": []}


@dataclass
class ScriptedEvaluator:
    failing_versions: set[int] = field(default_factory=set)
    inconclusive_versions: set[int] = field(default_factory=set)
    """Versions whose comparison is inconclusive and the policy allows with an approval."""
    error: BadInputError | None = None
    calls: list[tuple[int, int | None, Path]] = field(default_factory=list)

    def evaluate(self, *, candidate: ModelVersion, baseline: ModelVersion | None,
                 holdout: Path, model: ModelSpec, policy: EvaluationPolicy,
                 environment: str) -> ScriptedReport:
        self.calls.append((candidate.version, baseline.version if baseline else None, holdout))
        if self.error is not None:
            raise self.error
        # The real worker reports what it read; so does this one, and fails as it does.
        try:
            holdout_digest = f"sha256:{hashlib.sha256(holdout.read_bytes()).hexdigest()}"
        except OSError as exc:
            raise HoldoutError(f"holdout {holdout} not found", fix="check the path") from exc
        return ScriptedReport(passed=candidate.version not in self.failing_versions,
                              candidate=candidate, baseline=baseline,
                              holdout=ScriptedHoldout(holdout_digest),
                              needs_approval=candidate.version in self.inconclusive_versions)


@dataclass
class ScriptedCluster:
    """A `ClusterReader` whose answers the test sets per environment.

    The real reader (the kubernetes client against a fake API server) is tested in
    tests/cluster; here only the promotion service's use of the port matters.
    """

    phases: dict[str, RolloutPhase] = field(default_factory=dict)
    healthy_since: dict[str, datetime] = field(default_factory=dict)
    """Per environment, what a HEALTHY answer says about since when (else: not said)."""
    unreachable: bool = False
    reconcile_requests: list[str] = field(default_factory=list)

    def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
        if self.unreachable:
            raise ClusterUnreachableError("connection refused by 127.0.0.1:1")
        phase = self.phases.get(env.name, RolloutPhase.HEALTHY)
        since = self.healthy_since.get(env.name) if phase is RolloutPhase.HEALTHY else None
        return RolloutState(environment=env.name, commit=commit, phase=phase,
                            reason=f"scripted {phase}", healthy_since=since)

    def request_reconcile(self, env: EnvironmentSpec, *, requested_at: str) -> None:
        self.reconcile_requests.append(env.name)
