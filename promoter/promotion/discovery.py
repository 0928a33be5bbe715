"""Discovery: which model versions promoter proposes by itself, decided from plain values.

`models[].promotion.autoPropose` in promoter.yaml lists the environments a model is proposed to
without a person (`ModelPromotionSpec`):

- an environment that promotes from nothing (the first) gets the newest *complete* version in
  the model store: `saved_model.pb` and `variables/` present, and nothing in the directory
  changed for `settleSeconds` or the store's completion marker is in it;
- a later environment gets the version its upstream environment runs, once that rollout is
  healthy where a cluster reader is configured.

Only forward, and only once: a version is proposed only if it is newer than what the
environment runs and than what is already proposed there; never over an open rollback; never
again after a rollback took it out of the environment or a person closed its proposal
unmerged; and never over another model's deployment or proposal. Everything else waits for
`promoter propose`.

`plan_proposals` does no I/O, so every rule is tested with values; `AutoProposer`
(promoter.promotion.autopropose) gathers the facts and calls the service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from promoter.config.schema import ModelSpec
from promoter.domain.model_versions import StoredVersion


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A model version, as an environment branch or a proposal names it."""

    model: str
    version: int

    def __str__(self) -> str:
        return f"{self.model} v{self.version}"


@dataclass(frozen=True, slots=True)
class OpenProposal:
    """The open pull request of an environment (there is at most one: `<env>-next`)."""

    number: int
    proposes: VersionRef | None
    """What it would deploy; None when its hydrator.metadata cannot be read."""
    rollback: bool
    """A rollback PR (label `rollback`): the environment is being restored, hands off."""


@dataclass(frozen=True, slots=True)
class Rollout:
    """The cluster's verdict on an environment's branch head."""

    healthy: bool
    reason: str
    """One line, e.g. the upstream-rollout gate's description."""


@dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    """What discovery needs to know about one environment."""

    name: str
    promotes_from: str | None
    """The environment it promotes from; None for one fed from the model store."""
    deployed: VersionRef | None
    """What the environment branch renders now; None before the first promotion."""
    open_proposal: OpenProposal | None = None
    rollout: Rollout | None = None
    """The rollout of the branch head; None when no cluster reader is configured (then git
    alone decides) or when nobody asked (it is read only for upstream environments)."""
    rolled_back: frozenset[VersionRef] = frozenset()
    """Versions that rollbacks took out of this environment since its last promotion."""
    closed_proposal: VersionRef | None = None
    """The last proposal to the environment, when the forge records its pull request as
    closed without merging at promoter's own render: a person said no to it. Never read from
    `<env>-next` alone (anyone who can push there can plant any metadata)."""


@dataclass(frozen=True, slots=True)
class AutoProposal:
    """One proposal promoter should make by itself."""

    environment: str
    model: str
    version: int
    reason: str
    """Why, for the CLI and the log (e.g. "new complete version in the model store")."""


@dataclass(frozen=True, slots=True)
class Held:
    """An environment listed in autoPropose that gets no proposal now, and why."""

    environment: str
    model: str
    version: int | None
    """The version that was considered, if one was."""
    reason: str


@dataclass(frozen=True, slots=True)
class DiscoveryPlan:
    """What one discovery pass would do."""

    proposals: tuple[AutoProposal, ...]
    held: tuple[Held, ...]


def plan_proposals(*, models: Sequence[ModelSpec], environments: Sequence[EnvironmentFacts],
                   store: Mapping[str, Sequence[StoredVersion]],
                   now: datetime) -> DiscoveryPlan:
    """Decide the proposals of one discovery pass.

    `environments` are in promotion order; `store` has the scanned version directories of
    each model fed from the store (a model missing from it has none); `now` is compared with
    each directory's last change for the settle period. At most one proposal per environment:
    an environment has one proposal branch, so a second model would replace the first's.
    """
    by_name = {env.name: env for env in environments}
    proposals: list[AutoProposal] = []
    held: list[Held] = []
    for env in environments:
        for model in models:
            if env.name not in model.promotion.auto_propose:
                continue
            if any(p.environment == env.name for p in proposals):
                held.append(Held(env.name, model.name, None,
                                 "another model is proposed here in this pass"))
                continue
            if env.promotes_from is None:
                candidate, why, notes = _newest_in_store(model, store.get(model.name, ()), now)
            else:
                candidate, why, notes = _from_upstream(model, by_name[env.promotes_from])
            held.extend(Held(env.name, model.name, version, note) for version, note in notes)
            if candidate is None:
                continue
            blocked = _blocked(env, candidate)
            if blocked is not None:
                held.append(Held(env.name, model.name, candidate.version, blocked))
                continue
            if env.open_proposal is not None and env.open_proposal.proposes is not None:
                why += f"; replaces PR #{env.open_proposal.number} ({env.open_proposal.proposes})"
            proposals.append(AutoProposal(env.name, model.name, candidate.version, why))
    return DiscoveryPlan(tuple(proposals), tuple(held))


def _newest_in_store(model: ModelSpec, versions: Sequence[StoredVersion], now: datetime
                     ) -> tuple[VersionRef | None, str, list[tuple[int | None, str]]]:
    """The newest complete, settled version, why it qualifies, and notes on newer ones that
    do not (yet)."""
    settle = model.promotion.settle_seconds
    notes: list[tuple[int | None, str]] = []
    for stored in sorted(versions, key=lambda v: v.version, reverse=True):
        missing = stored.missing()
        if missing is not None:
            notes.append((stored.version, f"not a complete SavedModel yet: {missing}"))
            continue
        if stored.sealed:
            return (VersionRef(model.name, stored.version),
                    "new complete version in the model store (its completion marker is "
                    "there)", notes[:1])
        assert stored.last_changed is not None  # complete implies it was read
        age = (now - stored.last_changed).total_seconds()
        if age < settle:
            notes.append((stored.version, f"changed {_seconds(max(age, 0.0))} ago; waiting "
                                          f"until it is unchanged for {_seconds(settle)}"))
            continue
        return (VersionRef(model.name, stored.version),
                f"new complete version in the model store (unchanged for {_seconds(age)})",
                notes[:1])
    if not notes:
        notes.append((None, "no version in the model store"))
    return None, "", notes[:1]


def _from_upstream(model: ModelSpec, upstream: EnvironmentFacts
                   ) -> tuple[VersionRef | None, str, list[tuple[int | None, str]]]:
    """The version the upstream environment runs, if it may move on."""
    running = upstream.deployed
    if upstream.open_proposal is not None and upstream.open_proposal.rollback:
        return None, "", [(running.version if running else None,
                           f"{upstream.name} is being rolled back "
                           f"(PR #{upstream.open_proposal.number})")]
    if running is None or running.model != model.name:
        return None, "", [(None, f"{upstream.name} runs no version of {model.name}")]
    if upstream.rollout is not None and not upstream.rollout.healthy:
        return None, "", [(running.version, f"{upstream.name}'s rollout is not healthy: "
                                            f"{upstream.rollout.reason}")]
    health = " (rollout healthy)" if upstream.rollout is not None else ""
    return running, f"{upstream.name} runs {running}{health}", []


def _blocked(env: EnvironmentFacts, candidate: VersionRef) -> str | None:
    """Why `candidate` must not be proposed to `env` now; None if it may."""
    pull = env.open_proposal
    if pull is not None and pull.rollback:
        return f"PR #{pull.number} is rolling {env.name} back; promoter does not propose over it"
    if candidate in env.rolled_back:
        return (f"{candidate} was rolled back out of {env.name}; `promoter propose` it by hand "
                "once it is fixed")
    deployed = env.deployed
    if deployed is not None:
        if deployed.model != candidate.model:
            return (f"{env.name} runs {deployed}; promoter does not replace another model by "
                    "itself")
        if deployed.version >= candidate.version:
            return (f"{env.name} already runs {deployed}" if deployed == candidate
                    else f"{env.name} runs {deployed}, newer than v{candidate.version}")
    if pull is not None:
        proposed = pull.proposes
        if proposed is None:
            return f"PR #{pull.number} is open and what it proposes cannot be read"
        if proposed.model != candidate.model:
            return f"PR #{pull.number} proposes {proposed}; promoter does not replace it"
        if proposed.version >= candidate.version:
            return (f"PR #{pull.number} already proposes {proposed}" if proposed == candidate
                    else f"PR #{pull.number} proposes {proposed}, newer than "
                         f"v{candidate.version}")
    if env.closed_proposal == candidate:
        return (f"its proposal to {env.name} was closed without merging; `promoter propose` "
                "it by hand to try again")
    return None


def _seconds(value: float) -> str:
    return f"{value:.0f} s"
