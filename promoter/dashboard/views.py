"""What the pages show, as plain values built from the service's answers. Pure.

The templates only lay these out: every label, colour class and order is decided here, where
a test can check it without a browser. Nothing here derives a phase or a verdict: phases come
from `promoter.promotion.phase` through the service (`EnvironmentStatus.phase`,
`PromotionRecord.phase`), verdicts from the gates' statuses and the evaluation report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from promoter.domain.pull_requests import StatusState
from promoter.policy import GateResult, soak_progress
from promoter.promotion.phase import PromotionPhase
from promoter.promotion.results import EnvironmentStatus
from promoter.render.metadata import DeployedModel

SOAK_CONTEXT = "promoter/soak"

_GOOD = {PromotionPhase.READY, PromotionPhase.HEALTHY, PromotionPhase.MERGED}
_BAD = {PromotionPhase.BLOCKED, PromotionPhase.FAILED, PromotionPhase.ROLLED_BACK}
_STATE_TONE = {StatusState.SUCCESS: "good", StatusState.PENDING: "wait",
               StatusState.FAILURE: "bad", StatusState.ERROR: "bad"}
_STATE_WORD = {StatusState.SUCCESS: "passed", StatusState.PENDING: "pending",
               StatusState.FAILURE: "failed", StatusState.ERROR: "error"}
_HEALTH_WORD = {StatusState.SUCCESS: "healthy", StatusState.PENDING: "rolling out",
                StatusState.FAILURE: "failed", StatusState.ERROR: "failed"}


def phase_tone(phase: PromotionPhase | None) -> str:
    """The colour class of a phase: good, bad, wait, or none."""
    if phase is None:
        return "none"
    if phase in _GOOD:
        return "good"
    if phase in _BAD:
        return "bad"
    return "none" if phase is PromotionPhase.CLOSED else "wait"


def phase_words(phase: PromotionPhase | None) -> str:
    """`waiting_for_approval` -> `waiting for approval`."""
    return "" if phase is None else str(phase).replace("_", " ")


def short_digest(digest: str | None) -> str:
    """`sha256:` and the first 12 hex digits: enough to tell versions apart on a page."""
    if not digest:
        return ""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}:{hexdigest[:12]}" if hexdigest else digest[:19]


@dataclass(frozen=True, slots=True)
class GateView:
    """One gate's latest verdict, as a row."""

    name: str
    """The context without `promoter/`, e.g. `approvals`."""
    context: str
    state: str
    """passed, pending, failed or error."""
    tone: str
    description: str
    progress: int | None = None
    """A soak's progress in percent, read from its status (`soak_progress`); None for
    other gates."""

    @classmethod
    def of(cls, gate: GateResult) -> GateView:
        progress = soak_progress(gate)
        return cls(name=gate.context.removeprefix("promoter/"), context=gate.context,
                   state=_STATE_WORD[gate.state], tone=_STATE_TONE[gate.state],
                   description=gate.description,
                   progress=None if progress is None else round(progress * 100))


@dataclass(frozen=True, slots=True)
class EnvironmentNode:
    """One environment in a pipeline's graph."""

    name: str
    promotes_from: str | None
    depth: int
    """Steps from the pipeline's first environment (its column)."""
    deployed: DeployedModel | None
    deployed_digest: str
    health: str
    """healthy, rolling out, failed, or `not reported` (no rollout status on the head)."""
    health_tone: str
    promotion_number: int | None
    promotion_version: str
    """E.g. `churn v2`; empty without an open promotion."""
    phase: str
    phase_tone: str
    gates: tuple[GateView, ...]
    soak: GateView | None
    """The soak gate of the open promotion, when its policy has one."""
    error: str | None
    """Why the open promotion could not be read."""


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Environments joined by `promotesFrom`, from one first environment down."""

    models: tuple[str, ...]
    """The models deployed or proposed in it (an environment branch holds one model)."""
    columns: tuple[tuple[EnvironmentNode, ...], ...]
    """Environments by depth, each column in configuration order."""

    @property
    def title(self) -> str:
        return ", ".join(self.models) if self.models else "no model deployed yet"

    @property
    def key(self) -> str:
        """A stable id for the page's anchors: the first environment's name."""
        return self.columns[0][0].name


def pipelines(edges: Mapping[str, str | None],
              statuses: Sequence[EnvironmentStatus]) -> tuple[Pipeline, ...]:
    """The pipelines of `edges` (environment -> the one it promotes from, in configuration
    order) with each environment's status, in the order of their first environments.

    An environment whose `promotesFrom` names no environment of `edges` starts a pipeline of
    its own, so a status is never dropped."""
    by_name = {s.environment: s for s in statuses}
    roots: dict[str, str] = {}
    depth: dict[str, int] = {}
    for name, parent in edges.items():
        if parent is None or parent not in roots:
            roots[name], depth[name] = name, 0
        else:
            roots[name], depth[name] = roots[parent], depth[parent] + 1
    members: dict[str, list[str]] = {}
    for name in edges:
        if name in by_name:
            members.setdefault(roots[name], []).append(name)
    result = []
    for names in members.values():
        nodes = [_node(by_name[n], edges.get(n), depth[n]) for n in names]
        models = dict.fromkeys(m for n in nodes for m in _models(n))
        columns = tuple(tuple(n for n in nodes if n.depth == d)
                        for d in range(max(n.depth for n in nodes) + 1))
        result.append(Pipeline(models=tuple(models), columns=tuple(c for c in columns if c)))
    return tuple(result)


def _models(node: EnvironmentNode) -> list[str]:
    found = [node.deployed.model] if node.deployed else []
    if node.promotion_version:
        found.append(node.promotion_version.rsplit(" v", 1)[0])
    return found


def _node(status: EnvironmentStatus, parent: str | None, depth: int) -> EnvironmentNode:
    pull, proposed = status.open_promotion, status.proposed
    gates = tuple(GateView.of(g) for g in status.gates if g.context.startswith("promoter/"))
    health = status.head_rollout
    return EnvironmentNode(
        name=status.environment, promotes_from=parent, depth=depth, deployed=status.deployed,
        deployed_digest=short_digest(status.deployed.digest if status.deployed else None),
        health=_HEALTH_WORD[health] if health else "not reported",
        health_tone=_STATE_TONE[health] if health else "none",
        promotion_number=pull.number if pull else None,
        promotion_version=f"{proposed.model} v{proposed.version}" if pull and proposed
        else ("unreadable proposal" if pull else ""),
        phase=phase_words(status.phase), phase_tone=phase_tone(status.phase),
        gates=gates, soak=next((g for g in gates if g.context == SOAK_CONTEXT), None),
        error=status.promotion_error)


# --- the evaluation report -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckView:
    name: str
    metric: str
    verdict: str
    tone: str
    reason: str
    slice: str | None


_VERDICT_TONE = {"pass": "good", "fail": "bad", "inconclusive": "wait", "skipped": "none"}


def checks(report: Mapping[str, Any]) -> tuple[CheckView, ...]:
    """The report's checks in its own order (failing slice checks first, then policy order,
    then budgets)."""
    return tuple(CheckView(name=str(c["name"]), metric=str(c["metric"]),
                           verdict=str(c["verdict"]),
                           tone=_VERDICT_TONE.get(str(c["verdict"]), "none"),
                           reason=str(c["reason"]), slice=c.get("slice"))
                 for c in report.get("checks", ()))


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One metric of both models, for the metrics table."""

    name: str
    candidate: float | None
    baseline: float | None


def metric_rows(report: Mapping[str, Any]) -> tuple[MetricRow, ...]:
    candidate = report["candidate"]["metrics"]
    baseline = (report.get("baseline") or {}).get("metrics") or {}
    return tuple(MetricRow(name, candidate.get(name), baseline.get(name))
                 for name in candidate)


def number(value: float | None, digits: int = 4) -> str:
    """A metric for a table cell: up to `digits` significant decimals, or an en dash."""
    if value is None:
        return "\u2013"
    return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"


def baseline_label(deployed: DeployedModel | None, report: Mapping[str, Any]) -> str:
    """Which version the report's baseline was: the one deployed now when the digests agree
    (the report names only the digest and a private copy's directory)."""
    baseline = report.get("baseline")
    if not baseline:
        return "none: a first deployment is checked against absolute bounds only"
    if deployed is not None and deployed.digest == baseline.get("digest"):
        return f"{deployed.model} v{deployed.version} (deployed now)"
    return "the version deployed when it was evaluated"


def duration(seconds: float | None) -> str:
    """`3d 4h`, `2h 5m`, `12m`, `45s`; an en dash when unknown."""
    if seconds is None:
        return "\u2013"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    minutes, _ = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def percent(rate: float | None) -> str:
    return "\u2013" if rate is None else f"{rate:.0%}"


def when(moment: datetime | None) -> str:
    """A time for a table, in UTC to the minute."""
    return "\u2013" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
