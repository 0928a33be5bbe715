"""What the promotion service answers: plain values the CLI and the HTTP API format."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from promoter.cluster.port import RolloutState
from promoter.domain.model_versions import ModelVersion
from promoter.domain.pull_requests import PullRequest, Review, StatusState
from promoter.errors import PromoterError
from promoter.policy import GateResult
from promoter.promotion.phase import PromotionPhase
from promoter.render.metadata import DeployedModel


class ProposalOutcome(enum.StrEnum):
    OPENED = "opened"
    """A new proposal commit and a new pull request."""
    UPDATED = "updated"
    """A new proposal commit on an already open pull request."""
    UNCHANGED = "unchanged"
    """The open proposal already renders exactly this; nothing was written."""
    ALREADY_DEPLOYED = "already-deployed"
    """The environment branch already renders exactly this; nothing was written."""


@dataclass(frozen=True, slots=True)
class ProposalResult:
    environment: str
    model: str
    version: int
    digest: str
    outcome: ProposalOutcome
    pull_request: PullRequest | None
    """None only when the version is already deployed."""
    commit: str | None
    """The proposal commit on `<env>-next`, if there is one."""
    changed_files: tuple[str, ...]
    """Rendered files that differ from the environment branch."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalPlan:
    """What `propose` would do now, decided by reading only (`Proposer.plan`); `propose`
    carries out exactly this plan, so a dry run and the real command cannot disagree."""

    environment: str
    model: str
    version: int
    digest: str
    outcome: ProposalOutcome
    """What `propose` would report."""
    head_branch: str
    """The proposal branch, `<env>-next`."""
    base_branch: str
    base_head: str | None
    """The environment branch's commit the proposal sits on; None: the branch does not exist
    yet, and propose first creates it (one commit with a README)."""
    pull_request: int | None
    """The open PR it would update or leave as it is; None: it would open one (or, for
    ALREADY_DEPLOYED, none is needed)."""
    pull_author: str | None
    """Who opened that PR: its author stays, whoever proposes now."""
    proposal_head: str | None
    """Where the proposal branch is now: the lease its update is made under."""
    commit: str | None
    """The commit already on the proposal branch that propose would use as it is (byte for
    byte its render, e.g. left by an interrupted propose); None: it writes a new commit (or,
    for ALREADY_DEPLOYED, nothing)."""
    replaces: str | None
    """A commit on the proposal branch that looks like a proposal but is not promoter's
    render: propose writes its own instead and says so on the PR."""
    changed_files: tuple[str, ...]
    """Rendered files that differ from the environment branch."""
    authors: tuple[str, ...]
    """Everyone who proposed a revision of the PR, this proposer included."""
    candidate: ModelVersion
    """The version as the store describes it (the manifests pin its digest)."""
    files: Mapping[str, bytes] = field(repr=False, compare=False)
    """Every file of the proposal commit (manifests, README, hydrator.metadata)."""

    @property
    def writes_commit(self) -> bool:
        """True if propose would write a new proposal commit and move the branch to it."""
        return self.outcome is not ProposalOutcome.ALREADY_DEPLOYED and self.commit is None


class PromotionState(enum.StrEnum):
    WAITING = "waiting"
    """Some gate is pending (e.g. an approval)."""
    BLOCKED = "blocked"
    """A gate failed; the proposal must change."""
    READY = "ready"
    """Every gate passed but auto-merge is off: a person merges."""
    MERGED = "merged"


@dataclass(frozen=True, slots=True)
class OutcomeError:
    """A PromoterError met while reconciling one promotion, kept as plain values."""

    message: str
    fix: str | None = None
    exit_code: int = 1
    """The error's `PromoterError.exit_code`: 2 for bad input (a template broken on the dry
    branch), 1 for a refusal by git or the forge."""

    @classmethod
    def of(cls, exc: PromoterError, *, prefix: str = "") -> OutcomeError:
        return cls(message=prefix + exc.message, fix=exc.fix, exit_code=exc.exit_code)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileOutcome:
    pull_number: int
    environment: str
    model: str | None
    """None when the proposal does not say (no or unreadable hydrator.metadata)."""
    version: int | None
    state: PromotionState
    gates: tuple[GateResult, ...]
    merge_sha: str | None = None
    evaluated: bool = False
    """True when the model was scored in this run (not reused from an earlier run)."""
    note: str | None = None
    """Why the state is what it is, when the gates alone do not say (e.g. head moved)."""
    proposed_at: datetime | None = None
    """When the pull request was opened; set on merges, so the server can time proposal ->
    merge without asking the forge again."""
    error: OutcomeError | None = None
    """Why promoter could not do its part (git or the forge refused the merge, the reconcile
    failed): a failure to report, unlike a gate's verdict. None when it did its part."""


@dataclass(frozen=True, slots=True)
class EnvironmentStatus:
    environment: str
    branch: str
    head: str | None
    """The environment branch's commit; None before the first promotion."""
    deployed: DeployedModel | None
    open_promotion: PullRequest | None
    proposed: DeployedModel | None
    """What the open promotion would deploy."""
    gates: tuple[GateResult, ...]
    """The open promotion's latest gate statuses."""
    phase: PromotionPhase | None = None
    """The open promotion's phase, derived from its gates; None when there is none."""
    rollout: RolloutState | None = None
    """The cluster's reading of the branch head (serving's verdict, training's state beside
    it), when asked for and a cluster is configured; see `rollout_error`."""
    rollout_error: str | None = None
    """Why the rollout could not be read, when it was asked for."""
    promotion_error: str | None = None
    """Why the open promotion could not be read (e.g. a PR whose signed marker does not
    verify); the other environments are still reported."""
    head_rollout: StatusState | None = None
    """The `promoter/rollout` status on the branch head (what promoter last published from
    the cluster's reading), when asked for (`status(health=True)`); None without one."""


@dataclass(frozen=True, slots=True)
class PromotionRecord:
    """One promotion pull request, open or not, with everything its page shows."""

    pull: PullRequest
    environment: str | None
    """The environment whose branch the PR targets; None if no environment uses it now."""
    phase: PromotionPhase
    """Derived by `derive_phase`, as everywhere else."""
    gates: tuple[GateResult, ...]
    """The latest `promoter/*` statuses on its head."""
    proposed: DeployedModel | None
    """What it deploys, from the head's hydrator.metadata."""
    deployed: DeployedModel | None
    """What the environment branch runs now (the baseline while the PR is open)."""
    reviews: tuple[Review, ...]
    report_markdown: str | None
    """The evaluation report comment, as the PR shows it."""
    report: dict[str, object] | None
    """The report promoter recorded when it judged this head (its verdict store), or None."""


@dataclass(frozen=True, slots=True)
class RolloutCheck:
    """One environment's rollout of its branch head, as read back from the cluster."""

    environment: str
    commit: str
    state: RolloutState | None
    """None when the cluster could not be read (see `error`)."""
    rollback: object | None
    """The RollbackResult when a rollback PR was opened or merged because of this state."""
    error: str | None
    """Why the cluster could not be read, or why the automatic rollback could not be made
    (e.g. the first deployment failed: there is nothing earlier to restore)."""
