"""The REST API's answers as pydantic models: the OpenAPI document at /docs is built from them.

Each model is built from the promotion service's plain values (`promoter.promotion.results`)
by its `of` constructor, so the routes only choose what to answer and the shape is written
down once. JSON names are camelCase (`openPromotion`, `promotedFrom`), as the API has always
answered; `promoter status --json` prints the same `EnvironmentsAnswer`. This module imports
pydantic only, never FastAPI, so the CLI can use it without loading the HTTP stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from promoter.cluster.port import RolloutState
from promoter.domain.pull_requests import Review, ReviewState, StatusState
from promoter.policy import GateResult
from promoter.promotion.phase import PromotionPhase
from promoter.promotion.results import EnvironmentStatus
from promoter.render.metadata import DeployedModel


class Answer(BaseModel):
    """Base of every answer: camelCase in JSON, snake_case in Python, and frozen (an answer
    is built once from the service's values and then only serialized)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def as_json(self) -> dict[str, object]:
        """The JSON object the API sends (camelCase names, enums as their values)."""
        return self.model_dump(mode="json", by_alias=True)


class GateAnswer(Answer):
    context: str = Field(description="Commit status context, e.g. `promoter/approvals`.")
    state: StatusState
    description: str

    @classmethod
    def of(cls, gate: GateResult) -> GateAnswer:
        return cls(context=gate.context, state=gate.state, description=gate.description)


class DeployedAnswer(Answer):
    """The model version an environment branch deploys (its `hydrator.metadata`)."""

    model: str
    version: int
    digest: str = Field(description="`sha256:` content digest of the SavedModel directory.")
    promoted_from: str | None = Field(
        description="The environment the version came from; null for the first one.")

    @classmethod
    def of(cls, deployed: DeployedModel) -> DeployedAnswer:
        return cls(model=deployed.model, version=deployed.version, digest=deployed.digest,
                   promoted_from=deployed.promoted_from)


class OpenPromotionAnswer(Answer):
    """An environment's open promotion pull request and its latest gates."""

    number: int
    head: str = Field(description="The pull request's head commit, which the gates are on.")
    author: str
    phase: PromotionPhase | None
    model: str | None = Field(description="What it would deploy; null when its "
                                          "hydrator.metadata does not say.")
    version: int | None
    gates: list[GateAnswer]


class TrainingAnswer(Answer):
    """Training's state beside a rollout: reported only, never part of serving's verdict."""

    phase: str = Field(description="disabled, pending, progressing, healthy, failed or "
                                   "unknown (its objects could not be read).")
    reason: str


class RolloutAnswer(Answer):
    """The cluster's reading of an environment branch's head (`promoter health`'s verdict)."""

    environment: str
    commit: str
    phase: str = Field(description="Serving's verdict: pending, progressing, healthy, "
                                   "failed (timed_out only from a wait).")
    reason: str
    observed_revision: str | None
    training: TrainingAnswer | None = Field(
        description="The training part's state for the same commit; null when not read.")

    @classmethod
    def of(cls, state: RolloutState) -> RolloutAnswer:
        training = state.training
        return cls(environment=state.environment, commit=state.commit, phase=str(state.phase),
                   reason=state.reason, observed_revision=state.observed_revision,
                   training=None if training is None else TrainingAnswer(
                       phase=str(training.phase), reason=training.reason))


class EnvironmentAnswer(Answer):
    name: str
    branch: str
    head: str | None = Field(description="The environment branch's commit; null before the "
                                         "first promotion.")
    deployed: DeployedAnswer | None
    open_promotion: OpenPromotionAnswer | None
    promotion_error: str | None = Field(
        default=None, description="Why the open promotion could not be read (e.g. its signed "
                                  "marker does not verify); null when it could.")
    rollout: RolloutAnswer | None = Field(
        default=None, description="With `?rollouts=true` and a `cluster:` in promoter.yaml: "
                                  "serving's rollout and training's state; else null.")
    rollout_error: str | None = Field(
        default=None, description="Why the rollout could not be read, when it was asked for.")

    @classmethod
    def of(cls, env: EnvironmentStatus) -> EnvironmentAnswer:
        pull = env.open_promotion
        proposed = env.proposed
        return cls(
            name=env.environment, branch=env.branch, head=env.head,
            deployed=None if env.deployed is None else DeployedAnswer.of(env.deployed),
            open_promotion=None if pull is None else OpenPromotionAnswer(
                number=pull.number, head=pull.head_sha, author=pull.author, phase=env.phase,
                model=proposed.model if proposed else None,
                version=proposed.version if proposed else None,
                gates=[GateAnswer.of(g) for g in env.gates]),
            promotion_error=env.promotion_error,
            rollout=None if env.rollout is None else RolloutAnswer.of(env.rollout),
            rollout_error=env.rollout_error)


class EnvironmentsAnswer(Answer):
    """Every environment in promotion order."""

    environments: list[EnvironmentAnswer]

    @classmethod
    def of(cls, statuses: Sequence[EnvironmentStatus]) -> EnvironmentsAnswer:
        return cls(environments=[EnvironmentAnswer.of(env) for env in statuses])


class PromotionAnswer(OpenPromotionAnswer):
    """An open promotion with the environment it promotes to and what that runs now."""

    environment: str
    branch: str
    deployed: DeployedAnswer | None

    @classmethod
    def all_of(cls, statuses: Sequence[EnvironmentStatus]) -> list[PromotionAnswer]:
        """The open promotions among `statuses`, in promotion order."""
        out = []
        for env in EnvironmentsAnswer.of(statuses).environments:
            pull = env.open_promotion
            if pull is not None:
                out.append(cls(**dict(pull), environment=env.name, branch=env.branch,
                               deployed=env.deployed))
        return out


class PromotionsAnswer(Answer):
    promotions: list[PromotionAnswer]


class PromotionDetailAnswer(PromotionAnswer):
    evaluation_report: str | None = Field(
        description="The evaluation report (Markdown); null before the first evaluation.")


class ReviewAnswer(Answer):
    """The review recorded by approve/reject, as the forge holds it."""

    number: int
    user: str = Field(description="The bearer token's user, whatever the request body said.")
    state: ReviewState
    commit: str = Field(description="The head commit the review was given on.")
    submitted_at: str = Field(json_schema_extra={"format": "date-time"},
                              description="ISO 8601, as the forge recorded it.")

    @classmethod
    def of(cls, number: int, review: Review) -> ReviewAnswer:
        # isoformat, not pydantic's datetime: the API has always answered `+00:00`, not `Z`.
        return cls(number=number, user=review.user, state=review.state,
                   commit=review.commit_sha, submitted_at=review.submitted_at.isoformat())


class ReadyAnswer(Answer):
    status: str = Field(description="`ready`.")
    dry_sha: str = Field(description="The dry branch commit the configuration was read from.")
    environments: list[str]


class HealthAnswer(Answer):
    status: str = Field(description="`ok`.")


class WebhookAnswer(Answer):
    """What a delivery led to. `jobs` is there only when reconciles were scheduled."""

    status: str = Field(description="scheduled, ignored, duplicate, pong or rejected.")
    reason: str
    jobs: list[str] | None = None
