"""Proposing: hydrate a model version for an environment and open or update its pull request.

Order of writes, and why it is safe:
1. The proposal commit is built without moving any ref, then `<env>-next` is moved with a
   compare-and-swap on the sha promoter last wrote (a person's push is never silently lost).
2. The pull request is opened or updated in place (never duplicated). A crash between 1 and 2
   leaves `<env>-next` ahead of the PR; the next propose or reconcile takes that commit over
   if it is byte for byte what promoter would write, and treats anything else as a push.
"""

from __future__ import annotations

import logging
from functools import partial

from promoter.config.schema import EnvironmentSpec
from promoter.domain.model_versions import ModelVersion
from promoter.domain.pull_requests import PullRequest
from promoter.errors import PromotionError
from promoter.policy import decide_upstream
from promoter.promotion.authorship import authors_of, merge_authors, require_author_name
from promoter.promotion.context import PromotionContext, Target
from promoter.promotion.conventions import (
    BOT,
    ENV_BRANCH_README,
    PROMOTER_LABEL,
    ROLLBACK_LABEL,
)
from promoter.promotion.hydrate import hydrate
from promoter.promotion.own_proposals import OwnProposals
from promoter.promotion.results import ProposalOutcome, ProposalPlan, ProposalResult
from promoter.promotion.rollback_commits import is_rollback_commit
from promoter.render import RenderedManifests
from promoter.render.metadata import METADATA_FILE

log = logging.getLogger(__name__)

REPLACED_COMMENT_KEY = "replaced-commit"
"""The PR comment that says a commit on `<env>-next` was not promoter's and was not used."""

FOREIGN_PUSH_COMMENT_KEY = "foreign-push"
"""The PR comment that says someone else pushed to `<env>-next` and promoter stopped."""


class ForeignPushError(PromotionError):
    """Someone other than promoter pushed to a proposal branch: promoter will not overwrite
    it. `propose` says so on the PR (`comment`) before raising."""

    def __init__(self, message: str, *, fix: str, pull_number: int, comment: str) -> None:
        super().__init__(message, fix=fix)
        self.pull_number = pull_number
        self.comment = comment


class Proposer:
    """Writes proposals: one commit on `<env>-next` and one pull request per environment."""

    def __init__(self, context: PromotionContext) -> None:
        self._ctx = context
        self.own = OwnProposals(context)
        """What promoter's proposals hold, and whether a commit is one (reconciles ask)."""

    def propose(self, *, environment: str, model: str, version: int,
                author: str) -> ProposalResult:
        """Hydrate `model` `version` for `environment` and open or update its pull request:
        carry out `plan` (the same call a dry run makes, so the two cannot disagree).

        Everything is validated before the first write: a bad config, an unknown model or
        version, a version not deployed upstream, or a template error raise BadInputError and
        leave every branch and the forge as they were. A foreign push on the proposal branch
        is said on the PR (one comment), then refused with ForeignPushError.
        """
        ctx = self._ctx
        try:
            plan = self.plan(environment=environment, model=model, version=version,
                             author=author)
        except ForeignPushError as exc:
            ctx.forge.upsert_comment(exc.pull_number, key=FOREIGN_PUSH_COMMENT_KEY,
                                     body=exc.comment)
            raise
        target = ctx.target(environment)
        env = target.environment
        candidate = plan.candidate
        if plan.outcome is ProposalOutcome.ALREADY_DEPLOYED:
            log.info("%s already renders %s v%s; nothing to propose", env.branch, model, version)
            return ProposalResult(
                environment=env.name, model=model, version=version, digest=plan.digest,
                outcome=plan.outcome, pull_request=None, commit=None, changed_files=(),
            )
        env_head = plan.base_head or self._create_environment_branch(env)
        commit = plan.commit
        if commit is None:
            commit = ctx.repo.create_commit(
                files=plan.files, parents=[env_head], author=BOT,
                message=self.own.commit_message(target, candidate, env_head, plan.authors),
            )
            # Lease on what promoter last saw: a concurrent proposal makes this fail, and
            # nothing is overwritten.
            ctx.repo.update_branch(env.proposal_branch, commit, expected=plan.proposal_head,
                                   fast_forward_only=False)
        pull = ctx.forge.open_or_update_pull_request(
            head=env.proposal_branch, base=env.branch,
            title=f"Promote {model} v{version} to {env.name}",
            body=self._pull_body(target, candidate, list(plan.changed_files), commit),
            author=plan.pull_author or require_author_name(author),
            labels=[PROMOTER_LABEL, f"env:{env.name}", f"model:{model}"],
        )
        if plan.replaces is not None:
            ctx.forge.upsert_comment(pull.number, key=REPLACED_COMMENT_KEY, body=(
                f"⚠️ `{env.proposal_branch}` held `{plan.replaces}`, which is not byte for "
                f"byte what promoter renders for {model} v{version}; promoter did not take it "
                f"over and proposes its own render `{commit}` instead."))
            log.warning("%s held %s, not promoter's render; replaced by %s",
                        env.proposal_branch, plan.replaces[:12], commit[:12])
        log.info("proposed %s v%s to %s as PR #%s (%s)", model, version, env.name,
                 pull.number, plan.outcome)
        return ProposalResult(
            environment=env.name, model=model, version=version, digest=plan.digest,
            outcome=plan.outcome, pull_request=pull, commit=commit,
            changed_files=plan.changed_files,
        )

    def plan(self, *, environment: str, model: str, version: int,
             author: str) -> ProposalPlan:
        """What `propose` would do now, found by reading only: nothing is written.

        Raises what `propose` raises before its first write: BadInputError subclasses for bad
        input (config, model, version, templates, a version not deployed upstream, an open
        rollback) and ForeignPushError when someone else pushed to the proposal branch.
        """
        ctx = self._ctx
        author = require_author_name(author)
        target = ctx.target(environment)
        hydrated = hydrate(target.dry, ctx.settings.settings, ctx.store,
                           environment=environment, model=model, version=version,
                           config_file=str(ctx.settings.path))
        env, candidate, rendered = target.environment, hydrated.version, hydrated.manifests
        upstream = target.upstream
        upstream_gate = decide_upstream(
            model=model, version=version, digest=candidate.digest,
            promotes_from=env.promotes_from,
            upstream=ctx.deployed(upstream) if upstream else None,
        )
        if not upstream_gate.passed:
            raise PromotionError(
                f"cannot propose {model} v{version} to {env.name}: {upstream_gate.description}",
                fix=f"promote {model} v{version} to {env.promotes_from} first",
            )
        files = self.own.files_of(target, rendered, candidate)

        env_head = ctx.repo.branch_head(env.branch)
        deployed = ctx.metadata_at(env_head, where=env.branch) if env_head else None
        plan = partial(ProposalPlan, environment=env.name, model=model, version=version,
                       digest=candidate.digest, head_branch=env.proposal_branch,
                       base_branch=env.branch, base_head=env_head, candidate=candidate,
                       files=files)
        if deployed is not None and deployed.deployed.manifests_digest == rendered.digest():
            return plan(outcome=ProposalOutcome.ALREADY_DEPLOYED, pull_request=None,
                        pull_author=None, proposal_head=None, commit=None, replaces=None,
                        changed_files=(), authors=(author,))
        changed = tuple(self._changed_files(env_head, rendered))

        existing = ctx.forge.find_open_pull_request(head=env.proposal_branch, base=env.branch)
        # Told by its head commit (the label alone can be removed by anyone who may triage);
        # the label still blocks, which closing the PR could do anyway.
        if existing is not None and (ROLLBACK_LABEL in existing.labels or (
                existing.head_sha and is_rollback_commit(ctx.repo, existing.head_sha))):
            raise PromotionError(
                f"a rollback of {env.name} is open as PR #{existing.number}",
                fix="merge or close the rollback first; a promotion would overwrite it",
            )
        next_head = ctx.repo.branch_head(env.proposal_branch)
        # Everyone who authored a revision stays an author (none of them may approve).
        authors = merge_authors(authors_of(ctx.repo, existing) if existing else (), [author])
        # A commit already on `<env>-next` is reused only if it is exactly what this call
        # would write: its metadata alone proves nothing (anyone can copy it). A branch that
        # does not exist yet has no commit of promoter's on it.
        adoptable = (env_head is not None and next_head is not None and self.own.is_own_commit(
            next_head, env_head, files, target, candidate, authors))
        if (existing is not None and next_head is not None and next_head != existing.head_sha
                and not adoptable):
            # Not a commit a killed `propose` left (that one is exactly what promoter writes).
            raise _foreign_push(env, existing, next_head)
        outcome, replaces = self._outcome(existing, next_head=next_head, env_head=env_head,
                                          adoptable=adoptable)
        return plan(outcome=outcome, pull_request=existing.number if existing else None,
                    pull_author=existing.author if existing else None,
                    proposal_head=next_head, commit=next_head if adoptable else None,
                    replaces=replaces, changed_files=changed, authors=authors)

    # --- internals ----------------------------------------------------------------------------

    def _outcome(self, existing: PullRequest | None, *, next_head: str | None,
                 env_head: str | None, adoptable: bool
                 ) -> tuple[ProposalOutcome, str | None]:
        """What proposing does to the PR, and the commit on `<env>-next` it does not take
        over (one that looked like a proposal, said on the PR), if any."""
        if adoptable:
            return (ProposalOutcome.OPENED if existing is None
                    else ProposalOutcome.UNCHANGED if existing.head_sha == next_head
                    else ProposalOutcome.UPDATED), None
        outcome = ProposalOutcome.UPDATED if existing else ProposalOutcome.OPENED
        if (existing is None and next_head is not None and env_head is not None
                and self._ctx.repo.commit_info(next_head).parents == (env_head,)):
            return outcome, next_head  # it looked like a proposal: say it was not taken
        return outcome, None

    def _create_environment_branch(self, env: EnvironmentSpec) -> str:
        """Start an environment branch with a README, so the first promotion has a base."""
        repo = self._ctx.repo
        commit = repo.create_commit(
            files={"README.md": ENV_BRANCH_README}, parents=[], author=BOT,
            message=f"Start environment branch for {env.name}",
        )
        repo.update_branch(env.branch, commit, expected=None, fast_forward_only=True)
        log.info("created environment branch %s", env.branch)
        return commit

    def _changed_files(self, env_head: str | None,
                       rendered: RenderedManifests) -> list[str]:
        """Rendered files that differ from `env_head` (None: a branch still to be created,
        which holds no manifest)."""
        repo = self._ctx.repo
        if env_head is None:
            return sorted(rendered.files)
        current = {p: repo.read_file(env_head, p)
                   for p in repo.list_files(env_head)
                   if p not in (METADATA_FILE, "README.md")}
        paths = sorted(set(current) | set(rendered.files))
        return [p for p in paths if current.get(p) != rendered.files.get(p)]

    def _pull_body(self, target: Target, candidate: ModelVersion, changed: list[str],
                   commit: str) -> str:
        env = target.environment
        deployed = self._ctx.deployed(env)
        now = (f"{deployed.model} v{deployed.version} (`{deployed.digest[:19]}`)" if deployed
               else "nothing yet (first deployment)")
        changes = "\n".join(f"- `{p}`" for p in changed) or "- (no manifest changes)"
        return (
            f"Promotes **{candidate.name} v{candidate.version}** to **{env.name}**.\n\n"
            f"| | |\n|---|---|\n"
            f"| Model | `{candidate.name}` |\n"
            f"| Version | {candidate.version} |\n"
            f"| Digest | `{candidate.digest}` |\n"
            f"| From | {env.promotes_from or '(model store)'} |\n"
            f"| Deployed now | {now} |\n"
            f"| Dry source | `{target.dry_sha}` |\n"
            f"| Proposal commit | `{commit}` |\n"
            f"| Policy | `policies/{env.policy}.yaml` |\n\n"
            f"Rendered files that change:\n{changes}\n"
        )


def _foreign_push(env: EnvironmentSpec, existing: PullRequest,
                  next_head: str) -> ForeignPushError:
    """The refusal of a proposal branch someone else pushed to, with the PR comment that
    says so."""
    return ForeignPushError(
        f"{env.proposal_branch} is at {next_head[:12]} but promoter last wrote "
        f"{existing.head_sha[:12]}: someone else pushed to the proposal branch",
        fix=f"look at the extra commits on {env.proposal_branch}, then close "
            f"PR #{existing.number} and delete the branch to start over",
        pull_number=existing.number, comment=(
            f"⚠️ `{env.proposal_branch}` is at `{next_head}`, but promoter last wrote "
            f"`{existing.head_sha}`. Promoter will not overwrite a push it did not "
            "make: review those commits, then close this PR and delete the branch to "
            "start over."))
