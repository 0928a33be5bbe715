"""The REST API under `/api/v1`: environments, promotions, history, DORA, and reviews.

Reads answer from the service with the models of `answers` and `history_answers`, so the
OpenAPI document describes them; approve and reject act as the bearer token's user
(`dependencies.authenticate`) and schedule the reconcile their review calls for.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from promoter.promotion.dora import DEFAULT_WINDOW, parse_until, parse_window
from promoter.promotion.history import DEFAULT_LIMIT
from promoter.server.answers import (
    EnvironmentAnswer,
    EnvironmentsAnswer,
    PromotionAnswer,
    PromotionDetailAnswer,
    PromotionsAnswer,
    ReviewAnswer,
)
from promoter.server.dependencies import PartsDep, ServerParts, ServiceDep, TokenUserDep
from promoter.server.errors import ApiError
from promoter.server.history_answers import DoraAnswer, HistoryAnswer
from promoter.server.ports import PromotionPort
from promoter.server.tokens import USER_PATTERN

log = logging.getLogger(__name__)


class ReviewRequest(BaseModel):
    """Optional body of approve/reject. The reviewer is the token's user, never this field."""

    user: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=USER_PATTERN.pattern,
        description="Optional: the user the caller expects to act as. The review is always "
                    "recorded as the bearer token's user; a different name here is refused "
                    "(403), so a client that names a user learns when it holds someone "
                    "else's token.")


def _promotions(service: PromotionPort) -> list[PromotionAnswer]:
    return PromotionAnswer.all_of(service.status())


RolloutsQuery = Annotated[bool, Query(
    description="Also read each environment's rollout from the cluster (serving's verdict "
                "and training's state, as `promoter status` shows them); off by default, so "
                "that a plain request does not call the cluster.")]


def api_router() -> APIRouter:
    """The API's routes, to be included under `/api/v1`: what runs where, the history and
    DORA figures, and reviews."""
    router = APIRouter(tags=["api"])
    _add_status_routes(router)
    _add_history_routes(router)
    _add_review_routes(router)
    return router


def _add_status_routes(router: APIRouter) -> None:
    @router.get("/environments")
    def environments(service: ServiceDep, rollouts: RolloutsQuery = False) -> EnvironmentsAnswer:
        """Every environment in promotion order: what is deployed, and the open promotion."""
        return EnvironmentsAnswer.of(service.status(rollouts=rollouts))

    @router.get("/environments/{name}", responses={404: {"description": "no such environment"}})
    def environment(name: str, service: ServiceDep,
                    rollouts: RolloutsQuery = False) -> EnvironmentAnswer:
        for env in EnvironmentsAnswer.of(service.status(rollouts=rollouts)).environments:
            if env.name == name:
                return env
        raise ApiError(404, f"no environment named {name!r}",
                       fix="GET /api/v1/environments lists them")

    @router.get("/promotions")
    def promotions(service: ServiceDep) -> PromotionsAnswer:
        """Open promotion pull requests with their gates."""
        return PromotionsAnswer(promotions=_promotions(service))

    @router.get("/promotions/{number}",
                responses={404: {"description": "not an open promotion"}})
    def promotion(number: int, service: ServiceDep) -> PromotionDetailAnswer:
        """One open promotion: its gates and the evaluation report (Markdown)."""
        found = next((p for p in _promotions(service) if p.number == number), None)
        if found is None:
            raise ApiError(404, f"PR #{number} is not an open promotion",
                           fix="GET /api/v1/promotions lists the open ones")
        return PromotionDetailAnswer(**dict(found),
                                     evaluation_report=service.evaluation_report(number))


def _add_history_routes(router: APIRouter) -> None:
    @router.get("/history", responses={400: {"description": "no such environment"}})
    def history(service: ServiceDep, environment: str | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_LIMIT) -> HistoryAnswer:
        """Every merge and rollback per environment, newest first: who proposed and approved
        (on which head), the evaluation, the digests, proposal -> merge -> healthy."""
        return HistoryAnswer.of(service.history(environment=environment, limit=limit))

    @router.get("/dora", responses={400: {"description": "a bad window or environment"}})
    def dora(service: ServiceDep, window: str = DEFAULT_WINDOW, until: str | None = None,
             environment: str | None = None) -> DoraAnswer:
        """DORA figures per model and environment over the window (`30d`, `12h`, `2w`)
        ending `until` (RFC 3339 with offset; now by default): deployment frequency, lead
        time, change failure rate, time to restore."""
        length, end = parse_window(window), None if until is None else parse_until(until)
        return DoraAnswer.of(window, service.dora(window=length, end=end,
                                                  environment=environment))


_REVIEW_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown bearer token"},
    403: {"description": "no tokens file configured (approvals over HTTP are off), or "
                         "the body names a user other than the token's"},
    404: {"description": "no such pull request"},
    422: {"description": "the token's user may not review (policy), or a bad body"},
}


def _review(number: int, body: ReviewRequest | None, user: str, parts: ServerParts, *,
            reject: bool) -> ReviewAnswer:
    """Record the token user's review and reconcile the promotion its approvals gate
    changed; a body naming another user is refused (403)."""
    if body is not None and body.user is not None and body.user != user:
        raise ApiError(403, f"this token belongs to {user}; it cannot act as {body.user}",
                       fix=f"leave out \"user\" (the review is recorded as {user}), or "
                           f"send {body.user}'s own token")
    result = parts.service.approve(number, user=user, reject=reject)
    log.info("%s %s PR #%s over the API", user,
             "requested changes on" if reject else "approved", number,
             extra={"pr": number})
    pull = next((p for p in _promotions(parts.service) if p.number == number), None)
    if pull is not None:  # the approvals gate changed: reconcile now
        parts.scheduler.submit(parts.jobs.pull(number, branch=pull.branch))
    return ReviewAnswer.of(number, result)


def _add_review_routes(router: APIRouter) -> None:
    @router.post("/promotions/{number}/approve", responses=_REVIEW_REFUSALS)
    def approve(number: int, parts: PartsDep, user: TokenUserDep,
                body: ReviewRequest | None = None) -> ReviewAnswer:
        """Approve a promotion on the local forge as the bearer token's user."""
        return _review(number, body, user, parts, reject=False)

    @router.post("/promotions/{number}/reject", responses=_REVIEW_REFUSALS)
    def reject(number: int, parts: PartsDep, user: TokenUserDep,
               body: ReviewRequest | None = None) -> ReviewAnswer:
        """Request changes on a promotion on the local forge as the bearer token's user."""
        return _review(number, body, user, parts, reject=True)
