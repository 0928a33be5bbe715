"""History and audit of environment branches: every merge and rollback, and who did what. Pure.

An environment branch only moves through promoter's guarded merges, so its first-parent
history is the list of deployments (every commit there that holds `hydrator.metadata`; one
pushed by hand shows too, with no PR): each merge commit names its pull request in its subject
(`... (#12)`), carries `Rollback-of`/`Restores` trailers when it is a rollback, and its tree
holds the `hydrator.metadata` of what it deployed. The forge adds who proposed (the PR's
author and every `Proposed-by` trailer of the merged head), who reviewed and on which head,
the evaluation's summary, and the `promoter/rollout` status with the time promoter recorded
it (when it saw the rollout healthy or failed).

`history_reader` gathers those facts through the ports (`MergeFacts`); this module turns them
into `Deployment` values and links rollbacks to what they rolled back. Nothing here reads git
or the forge.

What is trusted: a PR is attached to a merge only when the forge says that PR merged as that
very commit into that branch, so a subject naming another PR attaches nothing. The rollout
time is when promoter recorded the status (at most one rollout-check interval after the
controller's own time); a commit replaced before its rollout was read has none.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from promoter.cluster.gate import ROLLOUT_CONTEXT
from promoter.domain.pull_requests import (
    CommitStatus,
    PullRequest,
    Review,
    ReviewState,
    StatusState,
    login_key,
)
from promoter.gitops.port import CommitInfo
from promoter.policy import EVALUATION_CONTEXT
from promoter.promotion.authorship import authors_in, merge_authors
from promoter.promotion.conventions import RESTORES, ROLLBACK_OF
from promoter.render.metadata import HydratorMetadata

DEFAULT_LIMIT = 200
"""Merges read per environment by default: months of daily promotions, a few hundred forge
calls on GitHub."""

_PULL_NUMBER = re.compile(r"\(#(?P<number>[0-9]{1,9})\)\s*$")
_TRAILERS = re.compile(rf"^(?P<key>{ROLLBACK_OF}|{RESTORES}): (?P<sha>[0-9a-f]{{40}})$",
                       re.MULTILINE)


class DeploymentKind(enum.StrEnum):
    PROMOTION = "promotion"
    """A promotion PR merged: a (possibly new) version rendered from the dry source."""
    ROLLBACK = "rollback"
    """A rollback PR merged: an earlier commit's tree restored."""


def pull_number_in(subject: str) -> int | None:
    """The PR number a merge commit's subject ends with (`Promote churn v3 to prod (#12)`)."""
    match = _PULL_NUMBER.search(subject)
    return None if match is None else int(match["number"])


@dataclass(frozen=True, slots=True)
class MergeFacts:
    """What the reader gathered about one merge commit of an environment branch."""

    environment: str
    commit: CommitInfo
    """The merge commit on the environment branch."""
    metadata: HydratorMetadata | None
    """`hydrator.metadata` at the merge; None when it has none (then it is no deployment)."""
    previous: HydratorMetadata | None
    """`hydrator.metadata` at the merge's first parent: what ran before."""
    pull: PullRequest | None
    """The PR the forge says merged as this commit; None when it names none or another."""
    head: CommitInfo | None = None
    """The merged proposal head (the merge's second parent)."""
    reviews: tuple[Review, ...] = ()
    head_statuses: tuple[CommitStatus, ...] = ()
    """Statuses on the merged head: the gates as they stood at the merge."""
    merge_statuses: tuple[CommitStatus, ...] = ()
    """Statuses on the merge commit: `promoter/rollout` once its rollout was read."""


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """One review of a deployment's PR."""

    user: str
    state: ReviewState
    commit_sha: str
    """The head the reviewer saw."""
    submitted_at: datetime
    on_merged_head: bool
    """True when `commit_sha` is the head that merged: only such an approval counted."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """One merge on an environment branch, with its audit trail."""

    environment: str
    kind: DeploymentKind
    merge_sha: str
    merged_at: datetime
    """When the branch took the merge (the merge commit's committer date)."""
    model: str
    version: int
    digest: str
    """`sha256:` digest of the SavedModel the merge deploys."""
    manifests_digest: str
    promoted_from: str | None
    previous_version: int | None
    """The version that ran before the merge; None for the first deployment."""
    previous_digest: str | None
    pull_number: int | None
    """The PR (None when the forge does not confirm one merged as this commit)."""
    title: str | None
    proposed_by: tuple[str, ...]
    """The PR's author and every `Proposed-by` of the merged head; () without a PR."""
    proposed_at: datetime | None
    """When the PR was opened."""
    head_sha: str | None
    """The merged proposal head (what the gates judged and approvals had to be on); None
    without a confirmed PR."""
    reviews: tuple[ReviewRecord, ...]
    evaluation_state: StatusState | None
    """The `promoter/evaluation` status on the merged head; None for rollbacks and without."""
    evaluation_summary: str | None
    rollout_state: StatusState | None
    """The `promoter/rollout` status of the merge commit; None when never read."""
    rollout_description: str | None
    rollout_recorded_at: datetime | None
    """When promoter recorded `rollout_state` (the forge's time of the status)."""
    rolls_back: str | None = None
    """For a rollback: the environment commit it rolled back (`Rollback-of`)."""
    restores: str | None = None
    """For a rollback: the earlier commit whose tree it restored (`Restores`)."""
    rolled_back_by: str | None = None
    """The merge of the rollback that took this deployment out, if one did."""

    @property
    def approvers(self) -> tuple[str, ...]:
        """Who approved the merged head, in order, each once (proposers excluded)."""
        proposers = {login_key(p) for p in self.proposed_by}
        return merge_authors(r.user for r in self.reviews if r.state is ReviewState.APPROVED
                             and r.on_merged_head and login_key(r.user) not in proposers)

    @property
    def healthy_at(self) -> datetime | None:
        """When promoter recorded its `promoter/rollout` status as healthy: its first healthy
        reading, unless the status changed since. None when not (yet) healthy or unknown."""
        healthy = self.rollout_state is StatusState.SUCCESS
        return self.rollout_recorded_at if healthy else None

    @property
    def failed_at(self) -> datetime | None:
        """When promoter saw its rollout fail or time out; None when it did not."""
        failed = self.rollout_state in (StatusState.FAILURE, StatusState.ERROR)
        return self.rollout_recorded_at if failed else None

    @property
    def failed(self) -> bool:
        """Its rollout failed, or a rollback took it out (a change failure)."""
        return self.failed_at is not None or self.rolled_back_by is not None

    @property
    def proposal_to_merge_seconds(self) -> float | None:
        if self.proposed_at is None:
            return None
        return (self.merged_at - self.proposed_at).total_seconds()

    @property
    def merge_to_healthy_seconds(self) -> float | None:
        healthy = self.healthy_at
        return None if healthy is None else (healthy - self.merged_at).total_seconds()


@dataclass(frozen=True, slots=True)
class EnvironmentHistory:
    """One environment's deployments, newest first."""

    environment: str
    branch: str
    deployments: tuple[Deployment, ...]
    truncated: bool
    """True when the branch has more merges than were read: older ones are missing."""


def deployment_of(facts: MergeFacts) -> Deployment | None:
    """The deployment `facts` record; None for a merge without `hydrator.metadata`."""
    meta = facts.metadata
    if meta is None:
        return None
    trailers = {m["key"]: m["sha"] for m in _TRAILERS.finditer(facts.commit.body)}
    pull = facts.pull
    head_sha = pull.head_sha if pull is not None else None
    kind = DeploymentKind.ROLLBACK if ROLLBACK_OF in trailers else DeploymentKind.PROMOTION
    evaluation = _status(facts.head_statuses, EVALUATION_CONTEXT)
    rollout = _status(facts.merge_statuses, ROLLOUT_CONTEXT)
    proposed_by: tuple[str, ...] = ()
    if pull is not None:
        proposed_by = merge_authors([pull.author],
                                    authors_in(facts.head.body) if facts.head else ())
    deployed, before = meta.deployed, facts.previous.deployed if facts.previous else None
    return Deployment(
        environment=facts.environment, kind=kind, merge_sha=facts.commit.sha,
        merged_at=facts.commit.committed_at, model=deployed.model, version=deployed.version,
        digest=deployed.digest, manifests_digest=deployed.manifests_digest,
        promoted_from=deployed.promoted_from,
        previous_version=before.version if before else None,
        previous_digest=before.digest if before else None,
        pull_number=pull.number if pull else None, title=pull.title if pull else None,
        proposed_by=proposed_by, proposed_at=pull.created_at if pull else None,
        head_sha=head_sha,
        reviews=tuple(ReviewRecord(user=r.user, state=r.state, commit_sha=r.commit_sha,
                                   submitted_at=r.submitted_at,
                                   on_merged_head=r.commit_sha == head_sha)
                      for r in facts.reviews),
        evaluation_state=None if evaluation is None or kind is DeploymentKind.ROLLBACK
        else evaluation.state,
        evaluation_summary=None if evaluation is None or kind is DeploymentKind.ROLLBACK
        else evaluation.description,
        rollout_state=None if rollout is None else rollout.state,
        rollout_description=None if rollout is None else rollout.description,
        rollout_recorded_at=None if rollout is None else rollout.created_at,
        rolls_back=trailers.get(ROLLBACK_OF), restores=trailers.get(RESTORES))


def environment_history(facts: Sequence[MergeFacts]) -> tuple[Deployment, ...]:
    """The deployments of one environment branch, newest first (the order of `facts`, which
    the reader gives newest first), each rolled-back one linked to its rollback."""
    deployments = [d for d in map(deployment_of, facts) if d is not None]
    # Newest first, so an older rollback of the same commit overwrites: the first one counts.
    rolled_back = {d.rolls_back: d.merge_sha for d in deployments
                   if d.rolls_back is not None}
    return tuple(replace(d, rolled_back_by=rolled_back[d.merge_sha])
                 if d.merge_sha in rolled_back else d for d in deployments)


def _status(statuses: Sequence[CommitStatus], context: str) -> CommitStatus | None:
    return next((s for s in statuses if s.context == context), None)
