"""Automatic proposals: gather discovery's facts, ask the pure core, and propose.

`promoter discover` runs one pass; `promoter serve` runs one before every periodic resync, so a
new version flows into the first environment, and on through the environments listed in
`autoPropose`, without a person. The rules are in promoter.promotion.discovery; this module
only reads (the service's status, the model store, the environment branches' history, the
forge's record of closed proposals) and calls `PromotionService.propose` for each decision,
so every proposal is validated and gated exactly like one a person makes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from promoter.cluster.errors import ClusterError
from promoter.cluster.port import RolloutPhase
from promoter.config.loader import DryConfig
from promoter.config.schema import EnvironmentSpec, Settings
from promoter.domain.model_versions import StoredVersion
from promoter.errors import PromoterError
from promoter.model_store import ModelStore
from promoter.promotion.discovery import (
    AutoProposal,
    DiscoveryPlan,
    EnvironmentFacts,
    OpenProposal,
    Rollout,
    VersionRef,
    plan_proposals,
)
from promoter.promotion.results import EnvironmentStatus, ProposalPlan, ProposalResult
from promoter.promotion.rollback import RollbackService
from promoter.promotion.service import PromotionService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProposalAttempt:
    """One automatic proposal and what came of it."""

    proposal: AutoProposal
    result: ProposalResult | None
    """None when proposing failed (see `error`)."""
    error: PromoterError | None = None


@dataclass(frozen=True, slots=True)
class PlannedProposal:
    """One automatic proposal and what `propose` would do with it (its own plan)."""

    proposal: AutoProposal
    plan: ProposalPlan | None
    """None when propose would refuse (see `error`)."""
    error: PromoterError | None = None


@dataclass(frozen=True, slots=True)
class DiscoveryPreview:
    """What one discovery pass would do now, found by reading only."""

    plan: DiscoveryPlan
    proposals: tuple[PlannedProposal, ...]

    @property
    def failed(self) -> tuple[PlannedProposal, ...]:
        return tuple(p for p in self.proposals if p.error is not None)


@dataclass(frozen=True, slots=True)
class DiscoveryRun:
    """One discovery pass: the plan and each proposal's outcome."""

    plan: DiscoveryPlan
    attempts: tuple[ProposalAttempt, ...]

    @property
    def failed(self) -> tuple[ProposalAttempt, ...]:
        return tuple(a for a in self.attempts if a.error is not None)


class AutoProposer:
    """Runs discovery passes over one promotion service and model store."""

    def __init__(self, *, service: PromotionService, store: ModelStore, settings: Settings,
                 rollbacks: RollbackService, author: str = "promoter",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`settings` is promoter.yaml (the models' `promotion`); `rollbacks` are the
        service's own rollbacks (read only here); proposals are made as
        `author`, promoter's identity on the forge, so its reviews never count."""
        self._service = service
        self._store = store
        self._settings = settings
        self._rollbacks = rollbacks
        self._author = author
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """True when some model lists environments in `promotion.autoPropose`."""
        return any(m.promotion.auto_propose for m in self._settings.models)

    def plan(self) -> DiscoveryPlan:
        """What a pass would propose now, and why the others wait. Writes nothing."""
        if not self.enabled:
            return DiscoveryPlan((), ())
        _, dry = self._service.dry_config()
        statuses = {s.environment: s for s in self._service.status()}
        if set(statuses) != set(dry.environments):
            # The dry branch moved between the two reads: the next pass sees one revision.
            log.warning("discovery skipped: the environments changed while it read them")
            return DiscoveryPlan((), ())
        environments = self._facts(dry, statuses)
        feeds = {e.name for e in environments if e.promotes_from is None}
        store: dict[str, list[StoredVersion]] = {}
        for model in self._settings.models:
            if feeds & set(model.promotion.auto_propose):
                store[model.name] = self._store.scan_versions(model.name)
        plan = plan_proposals(models=self._settings.models, environments=environments,
                              store=store, now=self._clock())
        for held in plan.held:
            log.debug("discovery: %s %s%s waits: %s", held.environment, held.model,
                      f" v{held.version}" if held.version is not None else "", held.reason)
        return plan

    def preview(self) -> DiscoveryPreview:
        """What `run` would do now: the plan, and for each proposal the proposer's own plan
        (`PromotionService.plan_proposal`, which `propose` carries out) or the error
        `propose` would raise. Writes nothing."""
        plan = self.plan()
        planned = []
        for proposal in plan.proposals:
            try:
                planned.append(PlannedProposal(proposal, self._service.plan_proposal(
                    environment=proposal.environment, model=proposal.model,
                    version=proposal.version, author=self._author)))
            except PromoterError as exc:
                planned.append(PlannedProposal(proposal, None, exc))
        return DiscoveryPreview(plan, tuple(planned))

    def run(self) -> DiscoveryRun:
        """Plan, then propose each decision. A failed proposal is logged and recorded, and
        the others still run: one broken model must not hold back the rest."""
        plan = self.plan()
        attempts = []
        for proposal in plan.proposals:
            try:
                result = self._service.propose(
                    environment=proposal.environment, model=proposal.model,
                    version=proposal.version, author=self._author)
            except PromoterError as exc:
                log.error("automatic proposal of %s v%s to %s failed: %s", proposal.model,
                          proposal.version, proposal.environment, exc.message)
                attempts.append(ProposalAttempt(proposal, None, exc))
                continue
            number = result.pull_request.number if result.pull_request else None
            log.info("proposed %s v%s to %s (PR #%s, %s): %s", proposal.model,
                     proposal.version, proposal.environment, number, result.outcome,
                     proposal.reason)
            attempts.append(ProposalAttempt(proposal, result))
        return DiscoveryRun(plan, tuple(attempts))

    # --- facts ------------------------------------------------------------------------------

    def _facts(self, dry: DryConfig,
               statuses: dict[str, EnvironmentStatus]) -> list[EnvironmentFacts]:
        """Each environment in promotion order, read only as far as some rule needs it."""
        targets = {name for m in self._settings.models for name in m.promotion.auto_propose}
        upstreams = {env.promotes_from for env in dry.environments.values()
                     if env.name in targets and env.promotes_from is not None}
        facts = []
        for env in dry.environments.values():
            status = statuses[env.name]
            running = status.deployed
            deployed = _ref(running.model, running.version) if running else None
            facts.append(EnvironmentFacts(
                name=env.name, promotes_from=env.promotes_from, deployed=deployed,
                open_proposal=_open_proposal(status, rollbacks=self._rollbacks),
                rollout=self._rollout(env) if env.name in upstreams and deployed else None,
                rolled_back=self._rolled_back(env) if env.name in targets else frozenset(),
                closed_proposal=self._closed_proposal(env, status)
                if env.name in targets else None,
            ))
        return facts

    def _rollout(self, env: EnvironmentSpec) -> Rollout | None:
        try:
            state = self._service.rollout_of(env)
        except ClusterError as exc:
            # Not knowing is not healthy: wait for the next pass.
            return Rollout(healthy=False, reason=f"cannot read it: {exc.message}")
        if state is None:
            return None
        return Rollout(healthy=state.phase is RolloutPhase.HEALTHY,
                       reason=f"{state.phase}: {state.reason}")

    def _rolled_back(self, env: EnvironmentSpec) -> frozenset[VersionRef]:
        return frozenset(_ref(model, version)
                         for model, version in self._rollbacks.rolled_back_versions(env))

    def _closed_proposal(self, env: EnvironmentSpec,
                         status: EnvironmentStatus) -> VersionRef | None:
        """The last proposal to `env`, if no PR is open and the forge records that PR as
        closed without merging at promoter's own render (`PromotionService.closed_proposal`).
        What `<env>-next` holds now does not count: anyone who can push there could plant a
        commit naming any version."""
        if status.open_promotion is not None:
            return None
        try:
            closed = self._service.closed_proposal(env)
        except PromoterError as exc:
            # Not knowing is no closed proposal: the proposal itself is still gated.
            log.warning("discovery: cannot read %s's closed proposals: %s", env.name,
                        exc.message)
            return None
        return _ref(closed.model, closed.version) if closed is not None else None


def _open_proposal(status: EnvironmentStatus, *,
                   rollbacks: RollbackService) -> OpenProposal | None:
    pull = status.open_promotion
    if pull is None:
        return None
    proposed = status.proposed
    # From the PR's recorded head commit, not its `rollback` label, which anyone who may
    # label the PR can add (freezing discovery) or remove (to propose over a rollback).
    return OpenProposal(number=pull.number,
                        proposes=_ref(proposed.model, proposed.version) if proposed else None,
                        rollback=rollbacks.is_rollback(pull))


def _ref(model: str, version: int) -> VersionRef:
    return VersionRef(model=model, version=version)
