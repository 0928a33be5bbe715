"""The history and DORA answers of the REST API (and of `promoter dora -o json`), as pydantic
models so the OpenAPI document describes them. Built from the pure values of
`promoter.promotion.history` and `promoter.promotion.dora` by their `of` constructors; JSON
names are camelCase like every other answer (`promoter.server.answers.Answer`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import Field

from promoter.domain.pull_requests import ReviewState, StatusState
from promoter.promotion.dora import DoraFigures
from promoter.promotion.history import Deployment, DeploymentKind, EnvironmentHistory
from promoter.server.answers import Answer


class ReviewRecordAnswer(Answer):
    user: str
    state: ReviewState
    commit_sha: str = Field(description="The proposal head the reviewer saw.")
    submitted_at: datetime
    on_merged_head: bool = Field(
        description="The review was given on the head that merged: only such approvals count.")


class DeploymentAnswer(Answer):
    """One merge into an environment branch: a promotion or a rollback."""

    kind: DeploymentKind
    merge_sha: str
    merged_at: datetime
    model: str
    version: int
    digest: str = Field(description="`sha256:` digest of the SavedModel it deploys.")
    manifests_digest: str
    promoted_from: str | None
    previous_version: int | None = Field(description="What ran before; null for the first.")
    previous_digest: str | None
    pull_number: int | None = Field(
        description="The PR the forge says merged as this commit; null when it names none.")
    title: str | None
    proposed_by: list[str] = Field(
        description="The PR's author and every `Proposed-by` of the merged head.")
    approvers: list[str] = Field(description="Who approved the merged head (not proposers).")
    proposed_at: datetime | None
    head_sha: str | None = Field(description="The merged proposal head.")
    reviews: list[ReviewRecordAnswer]
    evaluation_state: StatusState | None
    evaluation_summary: str | None
    rollout_state: StatusState | None = Field(
        description="The `promoter/rollout` status of the merge commit; null if never read.")
    rollout_description: str | None
    rollout_recorded_at: datetime | None
    healthy_at: datetime | None = Field(description="When promoter saw its rollout healthy.")
    failed_at: datetime | None = Field(description="When promoter saw its rollout fail.")
    proposal_to_merge_seconds: float | None
    merge_to_healthy_seconds: float | None
    rolls_back: str | None = Field(description="A rollback's `Rollback-of` commit.")
    restores: str | None = Field(description="A rollback's `Restores` commit.")
    rolled_back_by: str | None = Field(description="The rollback merge that took this out.")

    @classmethod
    def of(cls, d: Deployment) -> DeploymentAnswer:
        return cls(
            kind=d.kind, merge_sha=d.merge_sha, merged_at=d.merged_at, model=d.model,
            version=d.version, digest=d.digest, manifests_digest=d.manifests_digest,
            promoted_from=d.promoted_from, previous_version=d.previous_version,
            previous_digest=d.previous_digest, pull_number=d.pull_number, title=d.title,
            proposed_by=list(d.proposed_by), approvers=list(d.approvers),
            proposed_at=d.proposed_at, head_sha=d.head_sha,
            reviews=[ReviewRecordAnswer(user=r.user, state=r.state, commit_sha=r.commit_sha,
                                        submitted_at=r.submitted_at,
                                        on_merged_head=r.on_merged_head) for r in d.reviews],
            evaluation_state=d.evaluation_state, evaluation_summary=d.evaluation_summary,
            rollout_state=d.rollout_state, rollout_description=d.rollout_description,
            rollout_recorded_at=d.rollout_recorded_at, healthy_at=d.healthy_at,
            failed_at=d.failed_at, proposal_to_merge_seconds=d.proposal_to_merge_seconds,
            merge_to_healthy_seconds=d.merge_to_healthy_seconds, rolls_back=d.rolls_back,
            restores=d.restores, rolled_back_by=d.rolled_back_by)


class EnvironmentHistoryAnswer(Answer):
    environment: str
    branch: str
    truncated: bool = Field(description="More merges exist than were read (`limit`).")
    deployments: list[DeploymentAnswer] = Field(description="Newest first.")


class HistoryAnswer(Answer):
    environments: list[EnvironmentHistoryAnswer]

    @classmethod
    def of(cls, histories: Sequence[EnvironmentHistory]) -> HistoryAnswer:
        return cls(environments=[EnvironmentHistoryAnswer(
            environment=h.environment, branch=h.branch, truncated=h.truncated,
            deployments=[DeploymentAnswer.of(d) for d in h.deployments]) for h in histories])


class DoraFiguresAnswer(Answer):
    """DORA figures of one model in one environment (`promoter.promotion.dora`)."""

    model: str
    environment: str
    window_start: datetime
    window_end: datetime
    deployments: int = Field(description="Promotions merged in the window.")
    deployments_per_day: float
    rollbacks: int
    lead_time_seconds: float | None = Field(
        description="Median version complete in the store -> rollout healthy; null when "
                    "no promotion in the window was measured.")
    lead_time_samples: int
    change_failures: int
    change_failure_rate: float | None = Field(
        description="Failed or rolled-back promotions / promotions; null without promotions.")
    time_to_restore_seconds: float | None = Field(
        description="Median failure -> next deployment healthy; null without a measured one.")
    restore_samples: int
    unrestored: int
    unmeasured_failures: int
    complete: bool = Field(description="False when older merges were not read: undercounts.")

    @classmethod
    def of(cls, f: DoraFigures) -> DoraFiguresAnswer:
        return cls(model=f.model, environment=f.environment, window_start=f.window.start,
                   window_end=f.window.end, deployments=f.deployments,
                   deployments_per_day=f.deployments_per_day, rollbacks=f.rollbacks,
                   lead_time_seconds=f.lead_time_seconds,
                   lead_time_samples=f.lead_time_samples, change_failures=f.change_failures,
                   change_failure_rate=f.change_failure_rate,
                   time_to_restore_seconds=f.time_to_restore_seconds,
                   restore_samples=f.restore_samples, unrestored=f.unrestored,
                   unmeasured_failures=f.unmeasured_failures, complete=f.complete)


class DoraAnswer(Answer):
    window: str = Field(description="The window asked for, e.g. `30d`.")
    figures: list[DoraFiguresAnswer]

    @classmethod
    def of(cls, window: str, figures: Sequence[DoraFigures]) -> DoraAnswer:
        return cls(window=window, figures=[DoraFiguresAnswer.of(f) for f in figures])
