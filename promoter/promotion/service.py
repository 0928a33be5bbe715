"""The promotion service: propose, reconcile, approve and report promotions.

Everything promoter knows about a promotion is derived from three places: git (environment
branches and their `hydrator.metadata`), the forge (pull requests, statuses, reviews) and the
model store. The service keeps no state of its own, so any command can be re-run after a crash
and continues where the last one stopped.

This is a facade over the parts that do the work, each in its own module:
`proposing` (hydrate and open the PR), `reconciling` (gates, statuses, merge), `gates` and
`evaluation_gate` (what each gate decides), `rollouts` (health read back, rollbacks) and
`approving` (reviews on the local forge). They share one `PromotionContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from promoter.cluster.errors import ClusterError
from promoter.cluster.gate import ROLLOUT_CONTEXT
from promoter.cluster.port import ClusterReader, RolloutState
from promoter.config.loader import DryConfig, LoadedSettings
from promoter.config.schema import EnvironmentSpec
from promoter.domain.pull_requests import PullRequest, PullRequestState, Review
from promoter.errors import ForgeError
from promoter.forge.base import Forge
from promoter.gitops.port import GitOpsRepository
from promoter.model_store import HoldoutSource, ModelStore
from promoter.model_store.holdouts import Holdouts
from promoter.policy import GateResult
from promoter.promotion.approving import Approver
from promoter.promotion.context import PromotionContext
from promoter.promotion.dora import DoraFigures, Window, dora_figures
from promoter.promotion.evaluation_gate import EvaluationGate
from promoter.promotion.evaluator import Evaluator
from promoter.promotion.gate_order import in_pipeline_order
from promoter.promotion.gates import GateRunner
from promoter.promotion.history import DEFAULT_LIMIT, EnvironmentHistory
from promoter.promotion.history_reader import HistoryReader, completion_times
from promoter.promotion.merging import EnvironmentMerger
from promoter.promotion.phase import PromotionFacts, PromotionPhase, derive_phase, read_facts
from promoter.promotion.proposing import Proposer
from promoter.promotion.reconciling import Reconciler
from promoter.promotion.results import (
    EnvironmentStatus,
    PromotionRecord,
    ProposalPlan,
    ProposalResult,
    ReconcileOutcome,
    RolloutCheck,
)
from promoter.promotion.rollback import RollbackResult, RollbackService
from promoter.promotion.rollback_commits import is_rollback_commit
from promoter.promotion.rollback_gate import RollbackGate
from promoter.promotion.rollouts import RolloutWatcher
from promoter.promotion.verdicts import MemoryVerdictStore, VerdictStore
from promoter.render.metadata import DeployedModel, MetadataError


class PromotionService:
    """Promotions of model versions through the environments, on any forge."""

    def __init__(
        self, *, settings: LoadedSettings, repo: GitOpsRepository, forge: Forge,
        store: ModelStore, evaluator: Evaluator,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        identity: str = "promoter", cluster: ClusterReader | None = None,
        rollbacks: RollbackService | None = None, verdicts: VerdictStore | None = None,
        holdouts: HoldoutSource | None = None,
    ) -> None:
        """`cluster` (optional) reads rollouts back: with it, an environment promotes only
        from a healthy upstream rollout, merges ask Flux/Argo CD to sync now, and a failed
        rollout is rolled back through `rollbacks`. Without it (the demo), promotions gate on
        git and the forge only. `verdicts` is where evaluation verdicts are recorded and
        reused from (default: this process's memory, so a new process scores again).
        `holdouts` finds each environment's holdout (default: local paths relative to
        promoter.yaml, objects cached in ~/.cache/promoter/holdouts)."""
        self._ctx = PromotionContext(settings=settings, repo=repo, forge=forge, store=store,
                                     clock=clock, identity=identity, cluster=cluster)
        self._proposer = Proposer(self._ctx)
        if holdouts is None:
            holdouts = Holdouts(resolve=settings.resolve,
                                cache_dir=Path.home() / ".cache" / "promoter" / "holdouts")
        self._evaluation = EvaluationGate(self._ctx, evaluator,
                                          verdicts if verdicts is not None
                                          else MemoryVerdictStore(), holdouts)
        # The one way this service merges into an environment branch (it asks for the sync).
        merger = EnvironmentMerger(forge, cluster, clock)
        self._rollouts = RolloutWatcher(self._ctx, rollbacks, merger)
        self._rollback_gate = RollbackGate(self._ctx, rollbacks, merger)
        self._reconciler = Reconciler(
            self._ctx, self._proposer, GateRunner(self._ctx, self._evaluation, self._rollouts),
            self._rollouts, self._rollback_gate, merger)
        self._approver = Approver(self._ctx)
        self._history = HistoryReader(self._ctx)

    @property
    def forge(self) -> Forge:
        """The forge this service writes pull requests, statuses and comments to."""
        return self._ctx.forge

    @property
    def identity(self) -> str:
        """Who promoter is on the forge; its own reviews never count as approvals."""
        return self._ctx.identity

    # --- reading ------------------------------------------------------------------------------

    def dry_config(self) -> tuple[str, DryConfig]:
        """The dry source at the head of the protected dry branch, and that commit."""
        return self._ctx.dry_config()

    def deployed(self, environment: EnvironmentSpec) -> DeployedModel | None:
        """The model version the environment branch renders now, or None before the first."""
        return self._ctx.deployed(environment)

    def status(self, *, rollouts: bool = False, health: bool = False) -> list[EnvironmentStatus]:
        """Per environment, in promotion order: what is deployed and what is proposed; with
        `rollouts`, also the cluster's reading of each branch head (serving's verdict and
        training's state; a cluster that cannot be read is `rollout_error`, never raised).
        Off by default: the HTTP API calls this on every request and need not read the
        cluster each time. With `health`, also the `promoter/rollout` status promoter last
        published on each branch head (one forge read per environment, no cluster read)."""
        ctx = self._ctx
        _, dry = ctx.dry_config()
        environments = list(dry.environments.values())
        # Git is read in two processes for all environments (every branch head at one
        # moment, every hydrator.metadata in one batch), not five per environment.
        heads = ctx.repo.branch_heads()
        found = self._open_promotions(environments)
        proposals = ctx.metadata_batch([(pull.head_sha, pull.head_branch) if pull else None
                                        for pull, _ in found])
        deployments = ctx.metadata_batch([(heads[env.branch], env.branch)
                                          if env.branch in heads else None
                                          for env in environments])
        result = []
        for env, (pull, promotion_error), proposal, deployment in zip(
                environments, found, proposals, deployments, strict=True):
            if isinstance(deployment, MetadataError):
                raise deployment
            proposed = None
            gates: tuple[GateResult, ...] = ()
            phase = None
            if pull is not None:
                if proposal is not None and not isinstance(proposal, MetadataError):
                    proposed = proposal.deployed
                statuses = tuple(ctx.forge.list_statuses(pull.head_sha))
                # In the order they are decided, not the forge's (by name).
                gates = in_pipeline_order(GateResult(s.context, s.state, s.description)
                                          for s in statuses)
                phase = derive_phase(PromotionFacts(pull.state, statuses))
            rollout, rollout_error = None, None
            if rollouts:
                try:
                    rollout = self._rollouts.rollout_of(env)
                except ClusterError as exc:
                    rollout_error = exc.message
            head = heads.get(env.branch)
            head_rollout = None
            if health and head is not None:
                head_rollout = next((s.state for s in ctx.forge.list_statuses(head)
                                     if s.context == ROLLOUT_CONTEXT), None)
            result.append(EnvironmentStatus(
                environment=env.name, branch=env.branch, head=head, head_rollout=head_rollout,
                deployed=deployment.deployed if deployment is not None else None,
                open_promotion=pull, proposed=proposed, gates=gates, phase=phase,
                rollout=rollout, rollout_error=rollout_error, promotion_error=promotion_error,
            ))
        return result

    def _open_promotions(self, environments: list[EnvironmentSpec]
                         ) -> list[tuple[PullRequest | None, str | None]]:
        """Each environment's open promotion PR, or (None, why it could not be read), from
        one listing of the forge's open PRs (one request, not one per environment).

        One unreadable (or untrusted) PR must not hide every other environment: an untrusted
        PR is listed without its head, and reading it by number raises the error that says
        why it is not acted on, shown for its environment alone."""
        forge = self._ctx.forge
        try:
            listed = forge.list_open_pull_requests()
        except ForgeError as exc:
            return [(None, exc.message) for _ in environments]
        by_branches: dict[tuple[str, str], PullRequest] = {}
        for listed_pull in listed:  # oldest first: the one `find_open_pull_request` answers
            by_branches.setdefault((listed_pull.head_branch, listed_pull.base_branch),
                                   listed_pull)
        found: list[tuple[PullRequest | None, str | None]] = []
        for env in environments:
            pull: PullRequest | None = by_branches.get((env.proposal_branch, env.branch))
            if pull is not None and not pull.head_sha:
                try:
                    pull = forge.get_pull_request(pull.number)
                except ForgeError as exc:
                    found.append((None, exc.message))
                    continue
            found.append((pull, None))
        return found

    def closed_proposal(self, environment: EnvironmentSpec) -> DeployedModel | None:
        """The version of `environment`'s last promotion proposal, if a person closed it
        without merging; None if there is none.

        Decided by the forge's record, never by `<env>-next` (anyone who can push there can
        plant any hydrator.metadata): the newest PR from `<env>-next` into the environment
        branch that is no longer open must be CLOSED (not merged), not a rollback (read from its
        head commit, `is_rollback_commit`: a label is anyone's to edit), and its
        recorded head must be promoter's own render of the version it names
        (`OwnProposals.own_proposal_at`). One forge request (`find_last_closed_pull_request`)."""
        pull = self._ctx.forge.find_last_closed_pull_request(
            head=environment.proposal_branch, base=environment.branch)
        if (pull is None or pull.state is not PullRequestState.CLOSED or not pull.head_sha
                or is_rollback_commit(self._ctx.repo, pull.head_sha)):
            return None
        return self._proposer.own.own_proposal_at(self._ctx.target(environment.name),
                                                  pull.head_sha)

    def promotion_phase(self, number: int) -> PromotionPhase:
        """Where PR `number` stands (open, merged or closed), derived from the forge and git.

        Nothing is stored: the same answer comes back after a restart. Raises
        PullRequestNotFoundError for an unknown number.
        """
        pull = self._ctx.forge.get_pull_request(number)
        return derive_phase(read_facts(pull, repo=self._ctx.repo, forge=self._ctx.forge))

    def pipelines(self) -> list[EnvironmentStatus]:
        """`status` with the rollout health of every branch head: what the dashboard shows."""
        return self.status(health=True)

    def promotion(self, number: int) -> PromotionRecord:
        """PR `number` (open, merged or closed) with its phase, gates, reviews and report.

        The phase is `derive_phase` over `read_facts`, as `promotion_phase` and `status` say
        it. Raises PullRequestNotFoundError for an unknown number."""
        ctx = self._ctx
        pull = ctx.forge.get_pull_request(number)
        phase = derive_phase(read_facts(pull, repo=ctx.repo, forge=ctx.forge))
        target = ctx.target_for_branch(pull.base_branch)
        statuses = ctx.forge.list_statuses(pull.head_sha)
        try:
            meta = ctx.metadata_at(pull.head_sha, where=pull.head_branch)
        except MetadataError:
            meta = None
        return PromotionRecord(
            pull=pull, environment=target.environment.name if target else None, phase=phase,
            gates=tuple(GateResult(s.context, s.state, s.description) for s in statuses
                        if s.context.startswith("promoter/")),
            proposed=meta.deployed if meta else None,
            deployed=ctx.deployed(target.environment) if target else None,
            reviews=tuple(ctx.forge.list_reviews(number)),
            report_markdown=self._evaluation.report(number),
            report=self._evaluation.report_data(number, pull.head_sha))

    def evaluation_report(self, number: int) -> str | None:
        """The Markdown evaluation report on PR `number`, as a reader of the PR sees it."""
        return self._evaluation.report(number)

    # --- writing ------------------------------------------------------------------------------

    def propose(self, *, environment: str, model: str, version: int,
                author: str) -> ProposalResult:
        """Hydrate `model` `version` for `environment` and open or update its pull request
        (see `Proposer.propose`: nothing is written when the input is bad)."""
        return self._proposer.propose(environment=environment, model=model, version=version,
                                      author=author)

    def plan_proposal(self, *, environment: str, model: str, version: int,
                      author: str) -> ProposalPlan:
        """What `propose` would do now, by reading only (see `Proposer.plan`): `propose`
        carries out exactly this plan."""
        return self._proposer.plan(environment=environment, model=model, version=version,
                                   author=author)

    def reconcile(self) -> list[ReconcileOutcome]:
        """Run the gates of every open promotion and merge those that pass."""
        return self._reconciler.reconcile()

    def reconcile_pull(self, number: int) -> ReconcileOutcome:
        """Run one promotion's gates, record them as statuses, and merge when they pass."""
        return self._reconciler.reconcile_pull(number)

    def approve(self, number: int, *, user: str, reject: bool = False) -> Review:
        """Record a release manager's approval (or change request) on the local forge."""
        return self._approver.approve(number, user=user, reject=reject)

    def request_rollback(self, environment: str, *, to_version: int | None, reason: str,
                         author: str) -> RollbackResult:
        """Open (or refresh) a rollback PR of `environment` for `author`, if the policy lets
        them ask; it merges through `reconcile` once its approvals pass (RollbackGate)."""
        return self._rollback_gate.request(environment, to_version=to_version, reason=reason,
                                           author=author)

    # --- rollouts -----------------------------------------------------------------------------

    def check_rollouts(self) -> list[RolloutCheck]:
        """Read every environment's rollout back, publish it, roll back failed ones."""
        return self._rollouts.check_rollouts()

    def rollout_of(self, environment: EnvironmentSpec) -> RolloutState | None:
        """The cluster's reading of `environment`'s branch head (see RolloutWatcher)."""
        return self._rollouts.rollout_of(environment)

    # --- history and DORA ---------------------------------------------------------------------

    def history(self, *, environment: str | None = None,
                limit: int = DEFAULT_LIMIT) -> list[EnvironmentHistory]:
        """Every merge and rollback per environment (newest first, at most `limit` each), with
        who proposed and approved, the digests, and the times, read from git and the forge
        (`promoter.promotion.history`). BadInputError for an unknown `environment`."""
        return self._history.history(environment=environment, limit=limit)

    def dora(self, *, window: timedelta, end: datetime | None = None,
             environment: str | None = None) -> list[DoraFigures]:
        """DORA figures per model and environment over the `window` ending at `end` (now by
        default): see `promoter.promotion.dora` for what each counts."""
        histories = self.history(environment=environment)
        span = Window.ending(end or self._ctx.clock(), window)
        models = {d.model for h in histories for d in h.deployments}
        return dora_figures(histories, completed=completion_times(self._ctx.store, models),
                            window=span)
