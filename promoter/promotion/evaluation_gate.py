"""The evaluation gate of a promotion: score the candidate against the deployed baseline on the
environment's holdout, or reuse the verdict of an identical earlier evaluation.

What binds the proof to the merge:
- the candidate is scored only if the store's bytes have the digest the proposal's
  hydrator.metadata names (the digest the rendered manifests pin);
- the baseline is the deployed version only if its bytes still have the deployed digest; one
  that does not is a failed check, never "first deployment";
- the holdout is a local file (one in an object store is fetched into promoter's cache by
  digest first), digested as it is now, and refused unless it has the digest the
  environment's `evaluation.holdoutDigest` pins, when it pins one;
- the worker reports the digests of the bytes it loaded and read (models from a private copy
  checked against those digests, the holdout hashed as it is parsed); a verdict whose digests
  differ from what the proposal names is a failure, never a pass;
- verdicts are reused only from promoter's own `VerdictStore`, keyed by those digests and by the
  exact evaluation policy and model settings of the dry commit: a status or comment anyone
  can write is output, never input.
The report is one PR comment, edited in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from promoter.config.schema import EnvironmentSpec, ModelSpec
from promoter.domain.model_versions import ModelVersion
from promoter.domain.pull_requests import PullRequest, StatusState
from promoter.errors import BadInputError, ForgeError
from promoter.model_store import HoldoutSource
from promoter.policy import EVALUATION_CONTEXT, GateResult, fit_description
from promoter.promotion.context import PromotionContext, Target
from promoter.promotion.evaluator import Evaluator
from promoter.promotion.verdicts import (
    StoredVerdict,
    VerdictStore,
    pull_report_key,
    verdict_key,
)
from promoter.render.metadata import DeployedModel

log = logging.getLogger(__name__)

REPORT_COMMENT_KEY = "evaluation-report"


@dataclass(frozen=True, slots=True)
class EvaluationVerdict:
    """What the evaluation gate decided about one proposal head."""

    gate: GateResult
    evaluated: bool
    """True when the model was scored in this call (not reused from an earlier one)."""
    needs_approval: bool
    """The report asks a person to decide (an inconclusive result the policy allows)."""


class _BaselineMismatch(Exception):
    """The deployed version's bytes in the store are not the ones the environment runs."""


class EvaluationGate:
    """Judges a proposal's candidate model; writes the report comment and check run."""

    def __init__(self, context: PromotionContext, evaluator: Evaluator,
                 verdicts: VerdictStore, holdouts: HoldoutSource) -> None:
        self._ctx = context
        self._evaluator = evaluator
        self._verdicts = verdicts
        self._holdouts = holdouts

    def judge(self, target: Target, pull: PullRequest, promo: DeployedModel) -> EvaluationVerdict:
        """Score the candidate against the deployed baseline, or reuse the recorded verdict
        of an evaluation of exactly the same inputs (see the module docstring)."""
        ctx = self._ctx
        env = target.environment
        try:
            spec = ctx.model_spec(promo.model, target.dry)
            located = self._holdouts.locate(
                env.evaluation.holdout.format(model=promo.model),
                digest=env.evaluation.pinned_digest(promo.model),
                pinned_by=f"evaluation.holdoutDigest in environments/{env.name}.yaml")
            holdout = located.path
            candidate = ctx.store.get(promo.model, promo.version)
            if candidate.digest != promo.digest:
                return _failed(f"{promo.model} v{promo.version} changed in the store since it "
                               f"was proposed ({candidate.digest[:19]})")
            try:
                baseline = self._baseline(env)
            except _BaselineMismatch as exc:
                return _failed(str(exc))
            holdout_digest = located.digest
            key = _verdict_key(target, spec, candidate, baseline, holdout_digest)
            stored = self._verdicts.get(key) if holdout_digest is not None else None
            if stored is not None:
                self._upsert_report(pull.number, stored.report_markdown)
                self._remember_for_pull(pull, stored)
                return _verdict(stored, evaluated=False)
            report = self._evaluator.evaluate(
                candidate=candidate, baseline=baseline, holdout=holdout, model=spec,
                policy=target.policy.evaluation, environment=env.name,
            )
        except BadInputError as exc:
            log.warning("evaluation of PR #%s failed: %s", pull.number, exc.message)
            self._upsert_report(pull.number, f"## Evaluation could not run\n\n{exc}\n")
            # Paths relative to promoter.yaml: the 140-character status must keep the reason.
            reason = exc.message.replace(f"{ctx.settings.base_dir}/", "")
            return _failed(f"evaluation could not run: {reason}", evaluated=True)
        markdown = report.to_markdown()
        self._upsert_report(pull.number, markdown)
        mismatch = _read_other_bytes(report, candidate=candidate, baseline=baseline,
                                     holdout_digest=holdout_digest)
        if mismatch is not None:
            log.error("evaluation of PR #%s is void: %s", pull.number, mismatch)
            return _failed(mismatch, evaluated=True)
        verdict = StoredVerdict(
            passed=bool(report.passed), summary=fit_description(report.summary_line()),
            needs_approval=bool(report.needs_approval), report_markdown=markdown,
            candidate_digest=candidate.digest,
            baseline_digest=baseline.digest if baseline else None,
            holdout_digest=str(holdout_digest), report_json=report.to_json_dict())
        self._verdicts.put(key, verdict)
        self._remember_for_pull(pull, verdict)
        state = StatusState.SUCCESS if verdict.passed else StatusState.FAILURE
        check_runs = ctx.forge.capabilities.check_runs
        if check_runs is not None:
            try:
                check_runs.publish_check_run(pull.head_sha, name=EVALUATION_CONTEXT,
                                             state=state, title=verdict.summary,
                                             summary=markdown,
                                             details_url=self._page(pull.number))
            except ForgeError as exc:
                # Only GitHub Apps may create check runs; the status and comment still say it.
                log.warning("no check run for PR #%s: %s", pull.number, exc.message)
        return _verdict(verdict, evaluated=True)

    def report(self, number: int) -> str | None:
        """The Markdown evaluation report on PR `number`, as a reader of the PR sees it."""
        comment = next((c for c in self._ctx.forge.list_comments(number)
                        if c.key == REPORT_COMMENT_KEY), None)
        return None if comment is None else comment.body.rstrip() + "\n"

    def report_data(self, number: int, head_sha: str) -> dict[str, Any] | None:
        """The JSON report (`EvaluationReport.to_json_dict()`) that promoter recorded when it
        judged PR `number` at `head_sha`, or None (never judged there, or judged before
        reports were kept). Read from promoter's own verdict store, never from the forge: a
        comment anyone can edit must not draw the plots a release manager decides on."""
        stored = self._verdicts.get(pull_report_key(number, head_sha))
        return None if stored is None else stored.report_json

    # --- internals ----------------------------------------------------------------------------

    def _remember_for_pull(self, pull: PullRequest, verdict: StoredVerdict) -> None:
        key = pull_report_key(pull.number, pull.head_sha)
        if self._verdicts.get(key) != verdict:
            self._verdicts.put(key, verdict)

    def _baseline(self, env: EnvironmentSpec) -> ModelVersion | None:
        """The deployed version as the baseline; None only before the first deployment.

        Raises _BaselineMismatch when its bytes in the store are no longer the deployed
        ones: skipping the vsBaseline checks then would let a regression through."""
        ctx = self._ctx
        deployed = ctx.deployed(env)
        if deployed is None:
            return None
        baseline = ctx.store.get(deployed.model, deployed.version)
        if baseline.digest != deployed.digest:
            raise _BaselineMismatch(
                f"baseline {deployed.model} v{deployed.version} in the store is not what "
                f"{env.name} runs ({baseline.digest[:19]} != {deployed.digest[:19]})")
        return baseline

    def _page(self, number: int) -> str | None:
        """The promotion's page on the dashboard, when `service.publicUrl` is set."""
        public_url = self._ctx.settings.settings.service.public_url
        return None if public_url is None else f"{public_url}/promotions/{number}"

    def _upsert_report(self, number: int, markdown: str) -> None:
        forge = self._ctx.forge
        page = self._page(number)
        if page is not None:
            markdown = markdown.rstrip("\n") + f"\n\n[Open this promotion in promoter]({page})\n"
        current = next((c for c in forge.list_comments(number)
                        if c.key == REPORT_COMMENT_KEY), None)
        if current is None or current.body != markdown:
            forge.upsert_comment(number, key=REPORT_COMMENT_KEY, body=markdown)


def _verdict(stored: StoredVerdict, *, evaluated: bool) -> EvaluationVerdict:
    state = StatusState.SUCCESS if stored.passed else StatusState.FAILURE
    return EvaluationVerdict(GateResult(EVALUATION_CONTEXT, state, stored.summary),
                             evaluated=evaluated, needs_approval=stored.needs_approval)


def _failed(description: str, *, evaluated: bool = False) -> EvaluationVerdict:
    gate = GateResult(EVALUATION_CONTEXT, StatusState.FAILURE, fit_description(description))
    return EvaluationVerdict(gate, evaluated=evaluated, needs_approval=False)


def _read_other_bytes(report: Any, *, candidate: ModelVersion, baseline: ModelVersion | None,
                      holdout_digest: str | None) -> str | None:
    """Why the report is not about the bytes the proposal names, or None if it is.

    The worker reports what it loaded and read; anything swapped while it ran (and perhaps
    swapped back) shows up here as a different digest."""
    if report.candidate.digest != candidate.digest:
        return (f"the candidate changed while it was evaluated (read "
                f"{str(report.candidate.digest)[:19]}, proposed {candidate.digest[:19]})")
    if baseline is not None and (report.baseline is None
                                 or report.baseline.digest != baseline.digest):
        return "the baseline changed while it was evaluated"
    if holdout_digest is None or report.holdout.digest != holdout_digest:
        return "the holdout changed while it was evaluated"
    return None


def _verdict_key(target: Target, spec: ModelSpec, candidate: ModelVersion,
                 baseline: ModelVersion | None, holdout_digest: str | None) -> str:
    """Identify one evaluation: the same key means scoring again would give the same verdict."""
    return verdict_key({
        "environment": target.environment.name,
        "candidate": candidate.digest,
        "baseline": baseline.digest if baseline else None,
        "holdout": holdout_digest,
        "policy": target.policy.evaluation.model_dump(mode="json"),
        "model": spec.model_dump(mode="json"),
    })
