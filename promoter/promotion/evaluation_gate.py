"""The evaluation gate of a promotion: score the candidate against the deployed baseline on the
environment's holdout, or reuse the verdict of an identical earlier evaluation.

The report is one PR comment, edited in place; it carries the cache key of the evaluation it
describes, so a reconcile that would score the same inputs again does not.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from promoter.config.schema import EnvironmentSpec, PolicySpec
from promoter.errors import BadInputError, ForgeError
from promoter.forge.base import PullRequest, StatusState
from promoter.forge.capabilities import CheckRunPublisher
from promoter.model_store import ModelVersion
from promoter.policy import EVALUATION_CONTEXT, GateResult, fit_description
from promoter.promotion.context import PromotionContext, Target
from promoter.promotion.evaluator import Evaluator
from promoter.render.metadata import DeployedModel

log = logging.getLogger(__name__)

REPORT_COMMENT_KEY = "evaluation-report"
_CACHE_MARKER = "<!-- promoter:evaluation-key "
_NEEDS_APPROVAL = " needs-approval"


@dataclass(frozen=True, slots=True)
class EvaluationVerdict:
    """What the evaluation gate decided about one proposal head."""

    gate: GateResult
    evaluated: bool
    """True when the model was scored in this call (not reused from an earlier one)."""
    needs_approval: bool
    """The report asks a person to decide (an inconclusive result the policy allows)."""


class EvaluationGate:
    """Judges a proposal's candidate model; writes the report comment and check run."""

    def __init__(self, context: PromotionContext, evaluator: Evaluator) -> None:
        self._ctx = context
        self._evaluator = evaluator

    def judge(self, target: Target, pull: PullRequest, promo: DeployedModel) -> EvaluationVerdict:
        """Score the candidate against the deployed baseline, or reuse the earlier verdict.

        The verdict is reused only if the cache key in promoter's report comment matches:
        same proposal head, baseline, holdout contents and evaluation policy.
        """
        ctx = self._ctx
        env = target.environment
        spec = ctx.model_spec(promo.model)
        holdout = ctx.settings.resolve(env.evaluation.holdout.format(model=promo.model))
        try:
            candidate = ctx.store.get(promo.model, promo.version)
            if candidate.digest != promo.digest:
                return _failed(f"{promo.model} v{promo.version} changed in the store since it "
                               f"was proposed ({candidate.digest[:19]})")
            baseline = self._baseline(env)
            key = _cache_key(pull.head_sha, baseline, holdout, target.policy)
            cached = self._cached_verdict(pull, key)
            if cached is not None:
                return cached
            report = self._evaluator.evaluate(
                candidate=candidate, baseline=baseline, holdout=holdout, model=spec,
                policy=target.policy.evaluation, environment=env.name,
            )
        except BadInputError as exc:
            log.warning("evaluation of PR #%s failed: %s", pull.number, exc.message)
            self._upsert_report(pull.number, f"## Evaluation could not run\n\n{exc}\n", key=None)
            # Paths relative to promoter.yaml: the 140-character status must keep the reason.
            reason = exc.message.replace(f"{ctx.settings.base_dir}/", "")
            return _failed(f"evaluation could not run: {reason}", evaluated=True)
        needs_approval = report.needs_approval
        self._upsert_report(pull.number, report.to_markdown(),
                            key=f"{key}{_NEEDS_APPROVAL if needs_approval else ''}")
        state = StatusState.SUCCESS if report.passed else StatusState.FAILURE
        if isinstance(ctx.forge, CheckRunPublisher):
            try:
                ctx.forge.publish_check_run(
                    pull.head_sha, name=EVALUATION_CONTEXT, state=state,
                    title=fit_description(report.summary_line()), summary=report.to_markdown())
            except ForgeError as exc:
                # Only GitHub Apps may create check runs; the status and comment still say it.
                log.warning("no check run for PR #%s: %s", pull.number, exc.message)
        gate = GateResult(EVALUATION_CONTEXT, state, fit_description(report.summary_line()))
        return EvaluationVerdict(gate, evaluated=True, needs_approval=needs_approval)

    def report(self, number: int) -> str | None:
        """The Markdown evaluation report on PR `number`, as a reader of the PR sees it."""
        comment = next((c for c in self._ctx.forge.list_comments(number)
                        if c.key == REPORT_COMMENT_KEY), None)
        if comment is None:
            return None
        return "\n".join(line for line in comment.body.splitlines()
                         if not line.startswith(_CACHE_MARKER)).rstrip() + "\n"

    # --- internals ----------------------------------------------------------------------------

    def _baseline(self, env: EnvironmentSpec) -> ModelVersion | None:
        ctx = self._ctx
        deployed = ctx.deployed(env)
        if deployed is None:
            return None
        baseline = ctx.store.get(deployed.model, deployed.version)
        if baseline.digest != deployed.digest:
            log.warning("%s v%s in the store no longer matches what %s runs; no baseline",
                        deployed.model, deployed.version, env.name)
            return None
        return baseline

    def _cached_verdict(self, pull: PullRequest, key: str) -> EvaluationVerdict | None:
        forge = self._ctx.forge
        comment = next((c for c in forge.list_comments(pull.number)
                        if c.key == REPORT_COMMENT_KEY), None)
        if comment is None:
            return None
        if f"{_CACHE_MARKER}{key}{_NEEDS_APPROVAL} -->" in comment.body:
            needs_approval = True
        elif f"{_CACHE_MARKER}{key} -->" in comment.body:
            needs_approval = False
        else:
            return None
        status = next((s for s in forge.list_statuses(pull.head_sha)
                       if s.context == EVALUATION_CONTEXT), None)
        if status is None or status.state not in (StatusState.SUCCESS, StatusState.FAILURE):
            return None
        gate = GateResult(EVALUATION_CONTEXT, status.state, status.description)
        return EvaluationVerdict(gate, evaluated=False, needs_approval=needs_approval)

    def _upsert_report(self, number: int, markdown: str, *, key: str | None) -> None:
        forge = self._ctx.forge
        body = markdown if key is None else f"{markdown}\n{_CACHE_MARKER}{key} -->\n"
        current = next((c for c in forge.list_comments(number)
                        if c.key == REPORT_COMMENT_KEY), None)
        if current is None or current.body != body:
            forge.upsert_comment(number, key=REPORT_COMMENT_KEY, body=body)


def _failed(description: str, *, evaluated: bool = False) -> EvaluationVerdict:
    gate = GateResult(EVALUATION_CONTEXT, StatusState.FAILURE, fit_description(description))
    return EvaluationVerdict(gate, evaluated=evaluated, needs_approval=False)


def _cache_key(head_sha: str, baseline: ModelVersion | None, holdout: Path,
               policy: PolicySpec) -> str:
    """Identify one evaluation: the same key means scoring again would give the same verdict."""
    parts: Mapping[str, object] = {
        "head": head_sha,
        "baseline": baseline.digest if baseline else None,
        "holdout": _file_digest(holdout),
        "policy": policy.evaluation.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _file_digest(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None  # the evaluator reports the missing file with the fix
