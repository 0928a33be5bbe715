"""The promotion service: propose, reconcile, approve and report promotions.

Everything promoter knows about a promotion is derived from three places: git (environment
branches and their `hydrator.metadata`), the forge (pull requests, statuses, reviews) and the
model store. The service keeps no state of its own, so any command can be re-run after a crash
and continues where the last one stopped.

Order of writes, and why it is safe:
1. The proposal commit is built without moving any ref, then `<env>-next` is moved with a
   compare-and-swap on the sha promoter last wrote (a person's push is never silently lost).
2. The pull request is opened or updated in place (never duplicated). A crash between 1 and 2
   leaves `<env>-next` ahead of the PR; the next propose or reconcile takes that commit over
   if it is byte for byte what promoter would write, and treats anything else as a push.
3. Gates are written as commit statuses on the proposal head, only when they change.
4. The forge merges only if the head is still the commit the gates saw.
Environment branches only ever move forward, through the forge's merge.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from promoter.change_windows import decide_change_window
from promoter.cluster.errors import ClusterError
from promoter.cluster.gate import (
    UPSTREAM_ROLLOUT_CONTEXT,
    decide_upstream_rollout,
    rollout_status,
)
from promoter.cluster.port import ClusterReader, RolloutPhase, RolloutState
from promoter.config.loader import DryConfig, LoadedSettings, load_dry_config
from promoter.config.schema import EnvironmentSpec, ModelSpec, PolicySpec, SoakPolicy
from promoter.errors import (
    ApprovalError,
    BadInputError,
    ConfigError,
    ForgeError,
    NotMergeableError,
    PromoterError,
    PromotionError,
    StaleHeadError,
)
from promoter.forge.base import (
    CommitStatus,
    Forge,
    PullRequest,
    PullRequestState,
    Review,
    ReviewRecorder,
    ReviewState,
    StatusState,
)
from promoter.forge.capabilities import (
    CheckRunPublisher,
    ExternalChecksReader,
    TeamDirectory,
)
from promoter.gitops.port import GitOpsRepository, Signature
from promoter.gitops.source import GitTreeSource
from promoter.model_store import ModelStore, ModelVersion
from promoter.policy import (
    EVALUATION_CONTEXT,
    EXTERNAL_CHECKS_CONTEXT,
    PROPOSAL_CONTEXT,
    GateResult,
    decide,
    decide_approvals,
    decide_soak,
    decide_upstream,
    fit_description,
)
from promoter.promotion.evaluator import Evaluator
from promoter.promotion.hydrate import hydrate, model_spec
from promoter.promotion.phase import PromotionFacts, PromotionPhase, derive_phase, read_facts
from promoter.promotion.results import (
    EnvironmentStatus,
    PromotionState,
    ProposalOutcome,
    ProposalResult,
    ReconcileOutcome,
    RolloutCheck,
)
from promoter.promotion.rollback import RollbackService
from promoter.render import RenderedManifests
from promoter.render.metadata import (
    METADATA_FILE,
    DeployedModel,
    HydratorMetadata,
    MetadataError,
)

log = logging.getLogger(__name__)

PROMOTER_LABEL = "promoter"
ROLLBACK_LABEL = "rollback"
"""Rollback PRs (promoter.promotion.rollback) restore an earlier render: they are not judged
by the evaluation gate and are merged by the rollback path, never re-hydrated here."""
REPORT_COMMENT_KEY = "evaluation-report"
_CACHE_MARKER = "<!-- promoter:evaluation-key "
_NEEDS_APPROVAL = " needs-approval"
_DRY_CACHE_SIZE = 8
"""Dry commits whose loaded configuration is kept (the head, and a few it moved from)."""
BOT = Signature(name="promoter", email="promoter@noreply.invalid")
"""Author of the commits promoter writes (hydrated manifests, merges)."""

ENV_BRANCH_README = b"""# Environment branch, written by promoter

Every commit here is rendered from the dry source (see hydrator.metadata) and reaches this
branch only through a promotion pull request. Do not commit here by hand.
"""


@dataclass(frozen=True, slots=True)
class _Target:
    """An environment and everything the dry source says about it."""

    dry_sha: str
    dry: DryConfig
    environment: EnvironmentSpec
    policy: PolicySpec


class PromotionService:
    """Promotions of model versions through the environments, on any forge."""

    def __init__(
        self, *, settings: LoadedSettings, repo: GitOpsRepository, forge: Forge,
        store: ModelStore, evaluator: Evaluator,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        identity: str = "promoter", cluster: ClusterReader | None = None,
        rollbacks: RollbackService | None = None,
    ) -> None:
        """`cluster` (optional) reads rollouts back: with it, an environment promotes only
        from a healthy upstream rollout, merges ask Flux/Argo CD to sync now, and a failed
        rollout is rolled back through `rollbacks`. Without it (the demo), promotions gate on
        git and the forge only."""
        self._cluster = cluster
        self._rollbacks = rollbacks
        self._settings = settings
        self._repo = repo
        self._forge = forge
        self._store = store
        self._evaluator = evaluator
        self._clock = clock
        self._identity = identity
        # The dry source at a commit never changes and DryConfig is immutable: parsing it
        # once per commit, not on every call, is what lets one instance run 150 environments
        # (benchmarks/scale.py).
        self._dry_cache: dict[str, DryConfig] = {}
        self._dry_lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------------

    def dry_config(self) -> tuple[str, DryConfig]:
        """Load environments, policies and templates from the head of the dry branch.

        Always from the protected dry branch at one exact commit, never from a proposal: a
        pull request cannot change the gate it is judged by.
        """
        branch = self._settings.settings.repository.dry_branch
        sha = self._repo.branch_head(branch)
        if sha is None:
            raise ConfigError(
                str(self._settings.path), f"the repository has no branch {branch!r}",
                field="repository.dryBranch",
                fix=f"commit the dry source (promoter.yaml, environments/, policies/, "
                    f"manifests/) to {branch!r} or change repository.dryBranch",
            )
        with self._dry_lock:
            cached = self._dry_cache.get(sha)
        if cached is None:
            cached = load_dry_config(GitTreeSource(self._repo, sha), self._settings.settings)
            with self._dry_lock:
                if len(self._dry_cache) >= _DRY_CACHE_SIZE:
                    self._dry_cache.pop(next(iter(self._dry_cache)))
                self._dry_cache[sha] = cached
        return sha, cached

    def deployed(self, environment: EnvironmentSpec) -> DeployedModel | None:
        """The model version the environment branch renders now, or None before the first."""
        head = self._repo.branch_head(environment.branch)
        metadata = self._metadata_at(head, where=environment.branch)
        return metadata.deployed if metadata else None

    def status(self) -> list[EnvironmentStatus]:
        """Per environment, in promotion order: what is deployed and what is proposed."""
        _, dry = self.dry_config()
        result = []
        for env in dry.environments.values():
            head = self._repo.branch_head(env.branch)
            pull = self._forge.find_open_pull_request(head=env.proposal_branch, base=env.branch)
            proposed = None
            gates: tuple[GateResult, ...] = ()
            phase = None
            if pull is not None:
                try:
                    meta = self._metadata_at(pull.head_sha, where=pull.head_branch)
                    proposed = meta.deployed if meta else None
                except MetadataError:
                    proposed = None
                statuses = tuple(self._forge.list_statuses(pull.head_sha))
                gates = tuple(GateResult(s.context, s.state, s.description) for s in statuses)
                phase = derive_phase(PromotionFacts(pull.state, statuses))
            result.append(EnvironmentStatus(
                environment=env.name, branch=env.branch, head=head,
                deployed=self.deployed(env),
                open_promotion=pull, proposed=proposed, gates=gates, phase=phase,
            ))
        return result

    def promotion_phase(self, number: int) -> PromotionPhase:
        """Where PR `number` stands (open, merged or closed), derived from the forge and git.

        Nothing is stored: the same answer comes back after a restart. Raises
        PullRequestNotFoundError for an unknown number.
        """
        pull = self._forge.get_pull_request(number)
        return derive_phase(read_facts(pull, repo=self._repo, forge=self._forge))

    def evaluation_report(self, number: int) -> str | None:
        """The Markdown evaluation report on PR `number`, as a reader of the PR sees it."""
        comment = next((c for c in self._forge.list_comments(number)
                        if c.key == REPORT_COMMENT_KEY), None)
        if comment is None:
            return None
        return "\n".join(line for line in comment.body.splitlines()
                         if not line.startswith(_CACHE_MARKER)).rstrip() + "\n"

    # --- propose ------------------------------------------------------------------------------

    def propose(self, *, environment: str, model: str, version: int,
                author: str) -> ProposalResult:
        """Hydrate `model` `version` for `environment` and open or update its pull request.

        Everything is validated before the first write: a bad config, an unknown model or
        version, a version not deployed upstream, or a template error raise BadInputError and
        leave every branch and the forge as they were.
        """
        target = self._target(environment)
        hydrated = hydrate(target.dry, self._settings.settings, self._store,
                           environment=environment, model=model, version=version,
                           config_file=str(self._settings.path))
        env, candidate, rendered = target.environment, hydrated.version, hydrated.manifests
        upstream_gate = decide_upstream(
            model=model, version=version, digest=candidate.digest,
            promotes_from=env.promotes_from,
            upstream=self.deployed(target.dry.environment(env.promotes_from))
            if env.promotes_from else None,
        )
        if not upstream_gate.passed:
            raise PromotionError(
                f"cannot propose {model} v{version} to {env.name}: {upstream_gate.description}",
                fix=f"promote {model} v{version} to {env.promotes_from} first",
            )
        files = self._proposal_files(target, rendered, candidate)

        env_head = self._repo.branch_head(env.branch) or self._create_environment_branch(env)
        deployed = self._metadata_at(env_head, where=env.branch)
        changed = self._changed_files(env_head, rendered)
        if deployed is not None and deployed.deployed.manifests_digest == rendered.digest():
            log.info("%s already renders %s v%s; nothing to propose", env.branch, model, version)
            return ProposalResult(
                environment=env.name, model=model, version=version, digest=candidate.digest,
                outcome=ProposalOutcome.ALREADY_DEPLOYED, pull_request=None, commit=None,
                changed_files=(),
            )

        existing = self._forge.find_open_pull_request(head=env.proposal_branch, base=env.branch)
        if existing is not None and ROLLBACK_LABEL in existing.labels:
            raise PromotionError(
                f"a rollback of {env.name} is open as PR #{existing.number}",
                fix="merge or close the rollback first; a promotion would overwrite it",
            )
        next_head = self._repo.branch_head(env.proposal_branch)
        if (existing is not None and next_head is not None and next_head != existing.head_sha
                and not self._is_interrupted_write(next_head, env_head, rendered, files)):
            self._forge.upsert_comment(existing.number, key="foreign-push", body=(
                f"⚠️ `{env.proposal_branch}` is at `{next_head}`, but promoter last wrote "
                f"`{existing.head_sha}`. Promoter will not overwrite a push it did not make: "
                "review those commits, then close this PR and delete the branch to start over."
            ))
            raise PromotionError(
                f"{env.proposal_branch} is at {next_head[:12]} but promoter last wrote "
                f"{existing.head_sha[:12]}: someone else pushed to the proposal branch",
                fix=f"look at the extra commits on {env.proposal_branch}, then close "
                    f"PR #{existing.number} and delete the branch to start over",
            )

        commit = next_head if self._is_current_proposal(next_head, env_head, rendered) else None
        if commit is None:
            commit = self._repo.create_commit(
                files=files, parents=[env_head], author=BOT,
                message=self._commit_message(target, candidate, env_head),
            )
            # Lease on what promoter last saw: a concurrent proposal makes this fail, and
            # nothing is overwritten.
            self._repo.update_branch(env.proposal_branch, commit, expected=next_head,
                                     fast_forward_only=False)
            outcome = ProposalOutcome.UPDATED if existing else ProposalOutcome.OPENED
        elif existing is not None:
            unchanged = existing.head_sha == commit
            outcome = ProposalOutcome.UNCHANGED if unchanged else ProposalOutcome.UPDATED
        else:
            outcome = ProposalOutcome.OPENED

        pull = self._forge.open_or_update_pull_request(
            head=env.proposal_branch, base=env.branch,
            title=f"Promote {model} v{version} to {env.name}",
            body=self._pull_body(target, candidate, changed, commit),
            author=existing.author if existing else author,
            labels=[PROMOTER_LABEL, f"env:{env.name}", f"model:{model}"],
        )
        log.info("proposed %s v%s to %s as PR #%s (%s)", model, version, env.name,
                 pull.number, outcome)
        return ProposalResult(
            environment=env.name, model=model, version=version, digest=candidate.digest,
            outcome=outcome, pull_request=pull, commit=commit, changed_files=tuple(changed),
        )

    # --- reconcile ----------------------------------------------------------------------------

    def reconcile(self) -> list[ReconcileOutcome]:
        """Run the gates of every open promotion and merge those that pass.

        Idempotent: gates are re-derived from git, the forge and the store; statuses and the
        report comment are written only when they change, and a model is scored again only
        when the candidate, baseline, holdout or policy changed.
        """
        _, dry = self.dry_config()
        for check in self.check_rollouts():
            if check.state is not None:
                log.info("rollout of %s@%s: %s", check.environment, check.commit[:12],
                         check.state.phase)
        by_branch = {env.branch: env for env in dry.environments.values()}
        outcomes = []
        for pull in self._forge.list_open_pull_requests(label=PROMOTER_LABEL):
            env = by_branch.get(pull.base_branch)
            if env is None or pull.head_branch != env.proposal_branch:
                log.warning("PR #%s targets %s, which no environment uses; skipped",
                            pull.number, pull.base_branch)
                continue
            if ROLLBACK_LABEL in pull.labels:
                continue
            try:
                outcomes.append(self.reconcile_pull(pull.number))
            except PromoterError as exc:
                # One broken promotion must not stop the others; its error is on the PR.
                log.error("reconcile of PR #%s failed: %s", pull.number, exc.message)
                outcomes.append(ReconcileOutcome(
                    pull.number, env.name, "?", 0, PromotionState.BLOCKED, (),
                    note=f"reconcile failed: {exc.message}"))
        return outcomes

    def reconcile_pull(self, number: int) -> ReconcileOutcome:
        """Run one promotion's gates, record them as statuses, and merge when they pass."""
        pull = self._forge.get_pull_request(number)
        if ROLLBACK_LABEL in pull.labels:
            raise PromotionError(f"PR #{number} is a rollback; promoter reconciles it only "
                                 "through `promoter rollback`")
        dry_sha, dry = self.dry_config()
        env = next((e for e in dry.environments.values() if e.branch == pull.base_branch), None)
        if env is None:
            raise PromotionError(f"PR #{number} does not target an environment branch")
        target = _Target(dry_sha, dry, env, dry.policy_for(env))
        if pull.state is not PullRequestState.OPEN:
            # A webhook's job may run after a resync already merged (or a person closed) the
            # PR: there is nothing left to do, and that is not an error.
            return self._finished(pull, env)
        proposed = self._metadata_at(pull.head_sha, where=pull.head_branch)
        if proposed is None:
            return self._halt(pull, env, "the proposal has no hydrator.metadata")
        promo = proposed.deployed

        head_now = self._repo.branch_head(pull.head_branch)
        if head_now != pull.head_sha:
            finished = self._finish_interrupted_proposal(pull, env, head_now)
            if finished is not None:
                return finished
            return self._halt(pull, env, f"{pull.head_branch} moved to "
                              f"{(head_now or 'nothing')[:12]} outside promoter", promo)
        env_head = self._repo.branch_head(env.branch)
        if env_head is None or not self._repo.is_ancestor(env_head, pull.head_sha):
            # The environment moved (another merge, a rollback): re-render on top of it, so
            # the gates judge what would really be merged.
            result = self.propose(environment=env.name, model=promo.model,
                                  version=promo.version, author=pull.author)
            if result.pull_request is None:
                self._forge.close(number, comment=f"{env.name} already runs this version.")
                return ReconcileOutcome(number, env.name, promo.model, promo.version,
                                        PromotionState.MERGED, (), note="already deployed")
            return self.reconcile_pull(result.pull_request.number)

        gates, evaluated = self._run_gates(target, pull, promo)
        decision = decide(gates, auto_merge=target.policy.auto_merge)
        self._publish(pull.head_sha, gates)
        if decision.should_merge:
            try:
                merge_sha = self._forge.merge(
                    number, expected_head=pull.head_sha,
                    message=f"Promote {promo.model} v{promo.version} to {env.name} "
                            f"(#{number})\n\nDigest: {promo.digest}\n",
                )
            except (StaleHeadError, NotMergeableError) as exc:
                # Not retried blindly: the next reconcile re-evaluates whatever is there now.
                log.warning("PR #%s not merged: %s", number, exc)
                return ReconcileOutcome(number, env.name, promo.model, promo.version,
                                        PromotionState.WAITING, tuple(gates), None, evaluated,
                                        note=f"not merged: {exc.message}")
            log.info("merged PR #%s: %s v%s is now in %s", number, promo.model,
                     promo.version, env.name)
            self._request_sync(env)
            return ReconcileOutcome(number, env.name, promo.model, promo.version,
                                    PromotionState.MERGED, tuple(gates), merge_sha, evaluated,
                                    proposed_at=pull.created_at)
        state = (PromotionState.BLOCKED if decision.blocked
                 else PromotionState.READY if decision.all_passed else PromotionState.WAITING)
        return ReconcileOutcome(number, env.name, promo.model, promo.version, state,
                                tuple(gates), None, evaluated)

    def _finish_interrupted_proposal(self, pull: PullRequest, env: EnvironmentSpec,
                                     head_now: str | None) -> ReconcileOutcome | None:
        """Reconcile the proposal a killed `propose` left on `pull`'s head branch, if that is
        what moved the branch; None if it holds anything else (the caller halts).

        `propose` moves `<env>-next`, then updates the PR: a crash in between leaves the
        branch ahead of the PR with no one to re-run the command when the proposal came from
        a reconcile (the environment moved) or a webhook. Proposing the version that commit
        names again takes the commit over only if it is byte for byte what promoter writes
        (`_is_interrupted_write`); otherwise propose refuses, as for any foreign push.
        """
        if head_now is None:
            return None
        env_head = self._repo.branch_head(env.branch)
        if env_head is None or self._repo.commit_info(head_now).parents != (env_head,):
            return None  # not a proposal on the environment as it is now: a person's commits
        try:
            meta = self._metadata_at(head_now, where=pull.head_branch)
        except MetadataError:
            return None
        if meta is None:
            return None
        try:
            result = self.propose(environment=env.name, model=meta.deployed.model,
                                  version=meta.deployed.version, author=pull.author)
        except PromotionError as exc:
            log.warning("PR #%s: %s", pull.number, exc.message)
            return None
        if result.pull_request is None or result.pull_request.head_sha != head_now:
            return None
        log.info("PR #%s: took over %s, which an interrupted proposal wrote", pull.number,
                 head_now[:12])
        return self.reconcile_pull(result.pull_request.number)

    # --- approve ------------------------------------------------------------------------------

    def approve(self, number: int, *, user: str, reject: bool = False) -> Review:
        """Record a release manager's approval (or change request) on the local forge.

        Refused with ApprovalError, recording nothing, when `user` is not an approver of the
        environment's policy or is the promotion's author.
        """
        if not isinstance(self._forge, ReviewRecorder):
            raise ForgeError("this forge takes reviews on its own site, not from the CLI",
                             fix="review the pull request on the forge")
        pull = self._forge.get_pull_request(number)
        _, dry = self.dry_config()
        env = next((e for e in dry.environments.values() if e.branch == pull.base_branch), None)
        if env is None:
            raise ApprovalError(f"PR #{number} is not a promotion pull request")
        approvals = dry.policy_for(env).approvals
        if user == pull.author:
            raise ApprovalError(
                f"{user} proposed PR #{number} and cannot approve it",
                fix="ask another release manager: " + ", ".join(approvals.approvers or ["-"]),
            )
        if user not in approvals.approvers:
            named = ", ".join(approvals.approvers) or "nobody"
            raise ApprovalError(
                f"{user} may not approve promotions to {env.name}",
                fix=f"policies/{env.policy}.yaml names the approvers: {named}",
            )
        state = ReviewState.CHANGES_REQUESTED if reject else ReviewState.APPROVED
        return self._forge.submit_review(number, user=user, state=state)

    # --- rollouts ---------------------------------------------------------------------------

    def check_rollouts(self) -> list[RolloutCheck]:
        """Read every environment's rollout of its branch head back from the cluster, publish
        it as the `promoter/rollout` status on that commit, and roll back a failed or
        timed-out one (per the environment's `delivery` settings).

        A rollout still progressing after `delivery.healthTimeoutSeconds` since the commit
        counts as timed out. An unreadable cluster is reported, never a reason to roll back.
        """
        if self._cluster is None:
            return []
        _, dry = self.dry_config()
        checks = []
        for env in dry.environments.values():
            head = self._repo.branch_head(env.branch)
            if head is None or self.deployed(env) is None:
                continue
            try:
                state = self._cluster.rollout_state(env, commit=head)
            except ClusterError as exc:
                log.warning("rollout of %s@%s unreadable: %s", env.branch, head[:12],
                            exc.message)
                checks.append(RolloutCheck(env.name, head, None, None, exc.message))
                continue
            state = self._with_deadline(env, state)
            status = rollout_status(state)
            current = {s.context: s for s in self._forge.list_statuses(head)}
            if current.get(status.context) != status:
                self._forge.set_status(head, status)
            rollback, error = None, None
            if state.phase in (RolloutPhase.FAILED, RolloutPhase.TIMED_OUT) and self._rollbacks:
                try:
                    rollback = self._rollbacks.after_rollout(env, state, author=self._identity)
                except PromoterError as exc:
                    # E.g. the first deployment failed: nothing earlier to restore. A person
                    # must act; the other environments' promotions must still go on.
                    error = f"automatic rollback not possible: {exc.message}"
                    log.error("%s: rollout of %s %s; %s", env.name, head[:12], state.phase,
                              error)
            checks.append(RolloutCheck(env.name, head, state, rollback, error))
        return checks

    def rollout_of(self, environment: EnvironmentSpec) -> RolloutState | None:
        """The cluster's reading of `environment`'s branch head (TIMED_OUT once past its
        `healthTimeoutSeconds`), for the upstream-rollout gate and discovery; None without a
        cluster reader or an environment branch. Raises ClusterError when it cannot tell."""
        head = self._repo.branch_head(environment.branch)
        if self._cluster is None or head is None:
            return None
        return self._with_deadline(environment,
                                   self._cluster.rollout_state(environment, commit=head))

    def _with_deadline(self, env: EnvironmentSpec, state: RolloutState) -> RolloutState:
        if state.done:
            return state
        since = self._repo.commit_info(state.commit).authored_at
        waited = (self._clock() - since).total_seconds()
        limit = env.delivery.health_timeout_seconds
        if waited <= limit:
            return state
        return replace(state, phase=RolloutPhase.TIMED_OUT,
                       reason=f"not healthy {int(waited)} s after the merge (limit {limit} s): "
                              f"{state.reason}")

    def _upstream_rollout_gate(self, upstream_env: EnvironmentSpec
                               ) -> tuple[GateResult, RolloutState | str | None]:
        """The upstream-rollout gate, and what it read: the state, or why it could not."""
        try:
            state = self.rollout_of(upstream_env)
        except ClusterError as exc:
            # Not knowing is not a failure of the model: wait, and say why.
            return GateResult(UPSTREAM_ROLLOUT_CONTEXT, StatusState.PENDING,
                              fit_description(f"cannot read {upstream_env.name}'s rollout: "
                                              f"{exc.message}")), exc.message
        return decide_upstream_rollout(state), state

    def _soak_gate(self, policy: SoakPolicy, upstream_env: EnvironmentSpec | None,
                   promo: DeployedModel, rollout: RolloutState | str | None) -> GateResult:
        """How long `promo` has run in the upstream environment.

        Counted from the merge that brought this exact version (same digest) there, found by
        walking the upstream branch's first parents; re-renders of the same version keep the
        clock running. With a cluster, also from when the rollout there last became healthy:
        a version that was unhealthy for a while has not soaked meanwhile.
        """
        now = self._clock()
        if upstream_env is None:
            return decide_soak(policy, promotes_from=None, since=None, basis="", now=now)
        merged_at = self._first_merge_of(upstream_env, promo)
        name = upstream_env.name
        if merged_at is None:
            return decide_soak(policy, promotes_from=name, since=None, now=now,
                               basis=f"{promo.model} v{promo.version} does not run there")
        if self._cluster is None:
            return decide_soak(policy, promotes_from=name, since=merged_at, now=now,
                               basis="since its merge")
        if isinstance(rollout, str) or rollout is None:
            return decide_soak(policy, promotes_from=name, since=None, now=now,
                               basis=f"its rollout cannot be read: {rollout or 'no commit'}")
        if rollout.phase is not RolloutPhase.HEALTHY:
            return decide_soak(policy, promotes_from=name, since=None, now=now,
                               basis=f"its rollout is {rollout.phase}")
        since = max(merged_at, rollout.healthy_since or merged_at)
        return decide_soak(policy, promotes_from=name, since=since, now=now,
                           basis="since healthy")

    def _first_merge_of(self, env: EnvironmentSpec, promo: DeployedModel,
                        limit: int = 200) -> datetime | None:
        """When `env`'s branch first rendered `promo` in its current, unbroken run."""
        wanted = (promo.model, promo.version, promo.digest)
        sha = self._repo.branch_head(env.branch)
        since = None
        for _ in range(limit):
            if sha is None:
                break
            meta = self._metadata_at(sha, where=env.branch)
            if meta is None or (meta.deployed.model, meta.deployed.version,
                                meta.deployed.digest) != wanted:
                break
            info = self._repo.commit_info(sha)
            since = info.committed_at
            sha = info.parents[0] if info.parents else None
        return since

    def _request_sync(self, env: EnvironmentSpec) -> None:
        if self._cluster is None:
            return
        try:
            self._cluster.request_reconcile(env, requested_at=self._clock().isoformat())
        except ClusterError as exc:
            log.warning("could not ask %s's controller to sync now: %s (it will at its "
                        "next interval)", env.name, exc.message)

    # --- internals ----------------------------------------------------------------------------

    def _target(self, environment: str) -> _Target:
        sha, dry = self.dry_config()
        env = dry.environment(environment)
        return _Target(sha, dry, env, dry.policy_for(env))

    def _model_spec(self, model: str) -> ModelSpec:
        return model_spec(self._settings.settings, model, config_file=str(self._settings.path))

    def _metadata_at(self, commit: str | None, *, where: str) -> HydratorMetadata | None:
        if commit is None:
            return None
        raw = self._repo.read_file(commit, METADATA_FILE)
        if raw is None:
            return None
        return HydratorMetadata.from_json(raw, where=f"{where}@{commit[:12]}")

    def _create_environment_branch(self, env: EnvironmentSpec) -> str:
        """Start an environment branch with a README, so the first promotion has a base."""
        commit = self._repo.create_commit(
            files={"README.md": ENV_BRANCH_README}, parents=[], author=BOT,
            message=f"Start environment branch for {env.name}",
        )
        self._repo.update_branch(env.branch, commit, expected=None, fast_forward_only=True)
        log.info("created environment branch %s", env.branch)
        return commit

    def _proposal_files(self, target: _Target, rendered: RenderedManifests,
                        candidate: ModelVersion) -> dict[str, bytes]:
        dry_commit = self._repo.commit_info(target.dry_sha)
        metadata = HydratorMetadata(
            repo_url=self._repo.url, dry_sha=target.dry_sha,
            author=f"{dry_commit.author.name} <{dry_commit.author.email}>",
            date=dry_commit.authored_at.isoformat(), subject=dry_commit.subject,
            body=dry_commit.body,
            deployed=DeployedModel(
                environment=target.environment.name, model=candidate.name,
                version=candidate.version, digest=candidate.digest, model_uri=candidate.uri,
                promoted_from=target.environment.promotes_from,
                manifests_digest=rendered.digest(),
            ),
        )
        return {**rendered.files, "README.md": ENV_BRANCH_README,
                METADATA_FILE: metadata.to_json()}

    def _is_current_proposal(self, next_head: str | None, env_head: str,
                             rendered: RenderedManifests) -> bool:
        """True if `<env>-next` already holds exactly this rendering on top of `env_head`."""
        if next_head is None:
            return False
        info = self._repo.commit_info(next_head)
        if info.parents != (env_head,):
            return False
        meta = self._metadata_at(next_head, where="proposal")
        return meta is not None and meta.deployed.manifests_digest == rendered.digest()

    def _is_interrupted_write(self, next_head: str, env_head: str,
                              rendered: RenderedManifests, files: Mapping[str, bytes]) -> bool:
        """True if `next_head` is byte for byte the proposal this call would write.

        `propose` moves `<env>-next` before it updates the pull request; a crash in between
        leaves the branch ahead of the PR's recorded head, which looks like someone else's
        push. A commit on the environment head with exactly the files promoter would write
        is taken over: nothing anyone wrote is lost. Anything else stays a foreign push.
        """
        return (self._is_current_proposal(next_head, env_head, rendered)
                and self._repo.list_files(next_head) == sorted(files)
                and all(self._repo.read_file(next_head, path) == data
                        for path, data in files.items()))

    def _changed_files(self, env_head: str, rendered: RenderedManifests) -> list[str]:
        current = {p: self._repo.read_file(env_head, p)
                   for p in self._repo.list_files(env_head)
                   if p not in (METADATA_FILE, "README.md")}
        paths = sorted(set(current) | set(rendered.files))
        return [p for p in paths if current.get(p) != rendered.files.get(p)]

    def _commit_message(self, target: _Target, candidate: ModelVersion, env_head: str) -> str:
        return (
            f"Hydrate {candidate.name} v{candidate.version} for {target.environment.name}\n\n"
            f"Model digest: {candidate.digest}\n"
            f"Dry source: {target.dry_sha}\n"
            f"Environment branch: {target.environment.branch}@{env_head}\n"
        )

    def _pull_body(self, target: _Target, candidate: ModelVersion, changed: list[str],
                   commit: str) -> str:
        env = target.environment
        deployed = self.deployed(env)
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

    def _run_gates(self, target: _Target, pull: PullRequest,
                   promo: DeployedModel) -> tuple[list[GateResult], bool]:
        env = target.environment
        upstream = decide_upstream(
            model=promo.model, version=promo.version, digest=promo.digest,
            promotes_from=env.promotes_from,
            upstream=self.deployed(target.dry.environment(env.promotes_from))
            if env.promotes_from else None,
        )
        evaluation, evaluated, needs_approval = self._evaluation_gate(target, pull, promo)
        reviews = self._forge.list_reviews(pull.number)
        approval_policy = target.policy.approvals
        if needs_approval and approval_policy.required == 0:
            # The evaluation was inconclusive and the policy lets a person decide.
            approval_policy = approval_policy.model_copy(update={"required": 1})
        if isinstance(self._forge, TeamDirectory) and reviews:
            # Members of the forge's approver team count as named approvers.
            team = self._forge.team_members_among({r.user for r in reviews})
            approval_policy = approval_policy.model_copy(
                update={"approvers": tuple(sorted(set(approval_policy.approvers) | team))})
        approvals = decide_approvals(
            approval_policy, reviews=reviews, author=pull.author, head_sha=pull.head_sha,
            ignored_users=[self._identity],
        )
        gates = [upstream, evaluation, approvals]
        upstream_env = (target.dry.environment(env.promotes_from) if env.promotes_from
                        else None)
        upstream_rollout: RolloutState | str | None = None
        if self._cluster is not None and upstream_env is not None:
            rollout_gate, upstream_rollout = self._upstream_rollout_gate(upstream_env)
            gates.append(rollout_gate)
        if target.policy.soak is not None:
            gates.append(self._soak_gate(target.policy.soak, upstream_env, promo,
                                         upstream_rollout))
        if target.policy.schedule is not None:
            gates.append(decide_change_window(target.policy.schedule, self._clock()))
        if isinstance(self._forge, ExternalChecksReader):
            # Other tools' required checks: promoter never merges past a failing or pending one.
            checks = self._forge.external_checks_state(pull)
            gates.append(GateResult(EXTERNAL_CHECKS_CONTEXT, checks.state,
                                    fit_description(checks.description)))
        return gates, evaluated

    def _evaluation_gate(self, target: _Target, pull: PullRequest,
                         promo: DeployedModel) -> tuple[GateResult, bool, bool]:
        """Score the candidate against the deployed baseline, or reuse the earlier verdict.

        Returns (gate, scored in this call, the report asks for a person's approval). The
        verdict is reused only if the cache key in promoter's report comment matches: same
        proposal head, baseline, holdout contents and evaluation policy.
        """
        env = target.environment
        spec = self._model_spec(promo.model)
        holdout = self._settings.resolve(env.evaluation.holdout.format(model=promo.model))
        try:
            candidate = self._store.get(promo.model, promo.version)
            if candidate.digest != promo.digest:
                return self._failed(f"{promo.model} v{promo.version} changed in the store since "
                                    f"it was proposed ({candidate.digest[:19]})"), False, False
            baseline = self._baseline(env)
            key = _cache_key(pull.head_sha, baseline, holdout, target.policy)
            cached = self._cached_verdict(pull, key)
            if cached is not None:
                return cached[0], False, cached[1]
            report = self._evaluator.evaluate(
                candidate=candidate, baseline=baseline, holdout=holdout, model=spec,
                policy=target.policy.evaluation, environment=env.name,
            )
        except BadInputError as exc:
            log.warning("evaluation of PR #%s failed: %s", pull.number, exc.message)
            self._upsert_report(pull.number, f"## Evaluation could not run\n\n{exc}\n", key=None)
            # Paths relative to promoter.yaml: the 140-character status must keep the reason.
            reason = exc.message.replace(f"{self._settings.base_dir}/", "")
            return self._failed(f"evaluation could not run: {reason}"), True, False
        needs_approval = report.needs_approval
        self._upsert_report(pull.number, report.to_markdown(),
                            key=f"{key}{_NEEDS_APPROVAL if needs_approval else ''}")
        state = StatusState.SUCCESS if report.passed else StatusState.FAILURE
        if isinstance(self._forge, CheckRunPublisher):
            try:
                self._forge.publish_check_run(
                    pull.head_sha, name=EVALUATION_CONTEXT, state=state,
                    title=fit_description(report.summary_line()), summary=report.to_markdown())
            except ForgeError as exc:
                # Only GitHub Apps may create check runs; the status and comment still say it.
                log.warning("no check run for PR #%s: %s", pull.number, exc.message)
        gate = GateResult(EVALUATION_CONTEXT, state, fit_description(report.summary_line()))
        return gate, True, needs_approval

    def _baseline(self, env: EnvironmentSpec) -> ModelVersion | None:
        deployed = self.deployed(env)
        if deployed is None:
            return None
        baseline = self._store.get(deployed.model, deployed.version)
        if baseline.digest != deployed.digest:
            log.warning("%s v%s in the store no longer matches what %s runs; no baseline",
                        deployed.model, deployed.version, env.name)
            return None
        return baseline

    def _cached_verdict(self, pull: PullRequest, key: str) -> tuple[GateResult, bool] | None:
        comment = next((c for c in self._forge.list_comments(pull.number)
                        if c.key == REPORT_COMMENT_KEY), None)
        if comment is None:
            return None
        if f"{_CACHE_MARKER}{key}{_NEEDS_APPROVAL} -->" in comment.body:
            needs_approval = True
        elif f"{_CACHE_MARKER}{key} -->" in comment.body:
            needs_approval = False
        else:
            return None
        status = next((s for s in self._forge.list_statuses(pull.head_sha)
                       if s.context == EVALUATION_CONTEXT), None)
        if status is None or status.state not in (StatusState.SUCCESS, StatusState.FAILURE):
            return None
        return GateResult(EVALUATION_CONTEXT, status.state, status.description), needs_approval

    def _upsert_report(self, number: int, markdown: str, *, key: str | None) -> None:
        body = markdown if key is None else f"{markdown}\n{_CACHE_MARKER}{key} -->\n"
        current = next((c for c in self._forge.list_comments(number)
                        if c.key == REPORT_COMMENT_KEY), None)
        if current is None or current.body != body:
            self._forge.upsert_comment(number, key=REPORT_COMMENT_KEY, body=body)

    def _publish(self, sha: str, gates: list[GateResult]) -> None:
        current = {s.context: s for s in self._forge.list_statuses(sha)}
        for gate in gates:
            old = current.get(gate.context)
            if old is None or (old.state, old.description) != (gate.state, gate.description):
                self._forge.set_status(sha, CommitStatus(gate.context, gate.state,
                                                         gate.description))

    def _finished(self, pull: PullRequest, env: EnvironmentSpec) -> ReconcileOutcome:
        try:
            meta = self._metadata_at(pull.head_sha, where=pull.head_branch)
        except MetadataError:
            meta = None
        model, version = (meta.deployed.model, meta.deployed.version) if meta else ("?", 0)
        if pull.state is PullRequestState.MERGED:
            return ReconcileOutcome(pull.number, env.name, model, version,
                                    PromotionState.MERGED, (), note="already merged")
        return ReconcileOutcome(pull.number, env.name, model, version, PromotionState.BLOCKED,
                                (), note="closed without merging")

    def _halt(self, pull: PullRequest, env: EnvironmentSpec, reason: str,
              promo: DeployedModel | None = None) -> ReconcileOutcome:
        log.warning("PR #%s halted: %s", pull.number, reason)
        gate = GateResult(PROPOSAL_CONTEXT, StatusState.ERROR, fit_description(reason))
        self._publish(pull.head_sha, [gate])
        return ReconcileOutcome(pull.number, env.name, promo.model if promo else "?",
                                promo.version if promo else 0, PromotionState.BLOCKED,
                                (gate,), note=reason)

    @staticmethod
    def _failed(description: str) -> GateResult:
        return GateResult(EVALUATION_CONTEXT, StatusState.FAILURE, fit_description(description))


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
