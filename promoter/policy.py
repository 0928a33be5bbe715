"""Policy decisions: pure functions from facts (reviews, deployments, reports) to gate results.

Each gate becomes one commit status on the proposal's head (`promoter/<gate>`), so a forge's
branch protection can require them one by one, and a person can see which gate holds a
promotion back. Nothing here performs I/O: the promotion service gathers the facts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from promoter.config.schema import ApprovalPolicy, SoakPolicy, span_seconds
from promoter.domain.pull_requests import Review, ReviewState, StatusState, login_key
from promoter.render.metadata import DeployedModel

EVALUATION_CONTEXT = "promoter/evaluation"
APPROVALS_CONTEXT = "promoter/approvals"
UPSTREAM_CONTEXT = "promoter/upstream"
EXTERNAL_CHECKS_CONTEXT = "promoter/external-checks"
"""Mirrors the base branch's required checks that other tools own (GitHub only)."""
SOAK_CONTEXT = "promoter/soak"
PROPOSAL_CONTEXT = "promoter/proposal"
"""Set to error when a proposal cannot be judged at all (e.g. edited outside promoter)."""

DESCRIPTION_LIMIT = 140
"""GitHub truncates commit status descriptions at 140 characters."""


@dataclass(frozen=True, slots=True)
class GateResult:
    context: str
    """Commit status context, e.g. `promoter/approvals`."""
    state: StatusState
    """SUCCESS passes; PENDING waits (e.g. for a person); FAILURE and ERROR block."""
    description: str
    """One line for the status, at most 140 characters."""

    @property
    def passed(self) -> bool:
        return self.state is StatusState.SUCCESS


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """Whether a promotion may merge now, and why not."""

    gates: tuple[GateResult, ...]
    auto_merge: bool

    @property
    def all_passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def should_merge(self) -> bool:
        return self.all_passed and self.auto_merge

    @property
    def blocked(self) -> bool:
        """A gate failed: waiting will not help, the proposal must change."""
        return any(g.state in (StatusState.FAILURE, StatusState.ERROR) for g in self.gates)

    def waiting_on(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


def decide(gates: Sequence[GateResult], *, auto_merge: bool) -> PolicyDecision:
    return PolicyDecision(gates=tuple(gates), auto_merge=auto_merge)


def decide_approvals(
    policy: ApprovalPolicy, *, reviews: Sequence[Review], author: str, head_sha: str,
    ignored_users: Sequence[str] = (),
) -> GateResult:
    """Count the approvals that hold for `head_sha`.

    A review counts only if its user is a named approver, is not the promotion's `author` (or
    one of `ignored_users`, e.g. promoter's own identity), and was given on the current head: a
    new proposal commit needs fresh approvals. Each user's latest review on the head decides
    their vote, so an approval can be withdrawn by requesting changes. A "changes requested"
    vote from an approver blocks whatever the count.

    Users are compared by `login_key` (trimmed, case-insensitive), as GitHub compares logins:
    `Rita` approving a promotion `rita` proposed is the author approving, and one person
    reviewing under two spellings is one vote.
    """
    if policy.required == 0:
        return GateResult(APPROVALS_CONTEXT, StatusState.SUCCESS, "no approval required")
    excluded = {login_key(author), *(login_key(u) for u in ignored_users)}
    eligible = {login_key(a) for a in policy.approvers} - excluded
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: r.submitted_at):
        user = login_key(review.user)
        if user in eligible and review.commit_sha == head_sha and review.state in (
            ReviewState.APPROVED, ReviewState.CHANGES_REQUESTED, ReviewState.DISMISSED,
        ):
            latest[user] = review
    objecting = sorted(r.user.strip() for r in latest.values()
                       if r.state is ReviewState.CHANGES_REQUESTED)
    if objecting:
        return GateResult(APPROVALS_CONTEXT, StatusState.FAILURE,
                          fit_description(f"changes requested by {', '.join(objecting)}"))
    approved = sorted(r.user.strip() for r in latest.values() if r.state is ReviewState.APPROVED)
    if len(approved) >= policy.required:
        return GateResult(APPROVALS_CONTEXT, StatusState.SUCCESS,
                          fit_description(f"approved by {', '.join(approved)}"))
    may_approve = {login_key(a): a.strip() for a in policy.approvers
                   if login_key(a) not in excluded}
    names = ", ".join(sorted(may_approve.values())) or "nobody (the author cannot approve)"
    return GateResult(
        APPROVALS_CONTEXT, StatusState.PENDING,
        fit_description(f"{len(approved)} of {policy.required} approvals; may approve: {names}"),
    )


def decide_upstream(
    *, model: str, version: int, digest: str, promotes_from: str | None,
    upstream: DeployedModel | None,
) -> GateResult:
    """The version must be the one deployed in the environment this one promotes from.

    Checked when proposing and again before merging: if the upstream environment rolled
    back meanwhile, the promotion must not go on.
    """
    if promotes_from is None:
        return GateResult(UPSTREAM_CONTEXT, StatusState.SUCCESS,
                          "first environment: any version from the store may be proposed")
    if upstream is None:
        return GateResult(UPSTREAM_CONTEXT, StatusState.FAILURE,
                          fit_description(f"nothing is deployed in {promotes_from} yet"))
    if upstream.model != model or upstream.version != version:
        return GateResult(
            UPSTREAM_CONTEXT, StatusState.FAILURE,
            fit_description(f"{promotes_from} runs {upstream.model} v{upstream.version}, "
                 f"not {model} v{version}"),
        )
    if upstream.digest != digest:
        return GateResult(
            UPSTREAM_CONTEXT, StatusState.FAILURE,
            fit_description(f"{model} v{version} in {promotes_from} has digest "
                            f"{upstream.digest[:19]}, the store has {digest[:19]}: "
                            "the version was modified"),
        )
    return GateResult(UPSTREAM_CONTEXT, StatusState.SUCCESS,
                      fit_description(f"{model} v{version} is deployed in {promotes_from}"))


def decide_soak(
    policy: SoakPolicy, *, promotes_from: str | None, since: datetime | None, basis: str,
    now: datetime,
) -> GateResult:
    """Pass once the version has run in the upstream environment for `policy.duration`.

    `since` is when the soak started (None: the version does not run there, or not healthily,
    so the clock has not started); `basis` says what it was counted from, for the person
    reading the status. Waiting is PENDING: the periodic resync passes the gate in time.
    """
    if promotes_from is None:
        return GateResult(SOAK_CONTEXT, StatusState.SUCCESS,
                          "first environment: nothing to soak in")
    if since is None:
        return GateResult(SOAK_CONTEXT, StatusState.PENDING, fit_description(
            f"soak of {policy.duration} in {promotes_from} has not started: {basis}"))
    soaked = now - since
    needed = timedelta(seconds=policy.seconds)
    if soaked >= needed:
        return GateResult(SOAK_CONTEXT, StatusState.SUCCESS, fit_description(
            f"ran {_span(soaked)} in {promotes_from} {basis} (at least {policy.duration})"))
    ready_at = (since + needed).strftime("%Y-%m-%d %H:%M %Z").strip()
    return GateResult(SOAK_CONTEXT, StatusState.PENDING, fit_description(
        f"ran {_span(soaked)} of {policy.duration} in {promotes_from} {basis}; "
        f"passes at {ready_at}"))


_SOAK_RAN = re.compile(r"^ran ([0-9dhm]+) of ([0-9dhms]+) in ")
_SOAK_DONE = re.compile(r"^ran [0-9dhm]+ in .*\(at least ([0-9dhms]+)\)$")
_SOAK_NOT_STARTED = re.compile(r"^soak of ([0-9dhms]+) in .* has not started")


def soak_progress(gate: GateResult) -> float | None:
    """How far the soak `decide_soak` described in `gate` has run, from 0.0 to 1.0; None
    for any other gate, or a description it did not write (cut, or by someone else).

    Read back from the status promoter published, so the dashboard shows what the gate
    decided, never a second computation of it."""
    if gate.context != SOAK_CONTEXT:
        return None
    text = gate.description
    if gate.state is StatusState.SUCCESS:
        return 1.0 if _SOAK_DONE.match(text) or text.startswith("first environment") else None
    if _SOAK_NOT_STARTED.match(text):
        return 0.0
    ran = _SOAK_RAN.match(text)
    if ran is None:
        return None
    needed = span_seconds(ran.group(2))
    return min(1.0, span_seconds(ran.group(1)) / needed) if needed else None


def _span(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return (f"{days}d" if days else "") + (f"{hours}h" if hours or days else "") + f"{mins}m"


def fit_description(text: str) -> str:
    """Cut `text` to a commit status description's 140 characters, marking the cut."""
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"
