"""The HTTP app: GitHub webhooks, the REST API, health and metrics.

`create_app` takes everything it uses as arguments (no globals, no I/O at import): the
promotion service, the scheduler that runs reconciles, and the secrets. Choosing and building
those is the composition root's job (`promoter.wiring.build_app` and `build_server`). Routes
answer from the request thread with the models of `promoter.server.answers`; reconciles run
on the scheduler's workers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from promoter.errors import PromoterError
from promoter.promotion.dora import DEFAULT_WINDOW, parse_until, parse_window
from promoter.promotion.history import DEFAULT_LIMIT
from promoter.server.answers import (
    EnvironmentAnswer,
    EnvironmentsAnswer,
    HealthAnswer,
    PromotionAnswer,
    PromotionDetailAnswer,
    PromotionsAnswer,
    ReadyAnswer,
    ReviewAnswer,
    WebhookAnswer,
)
from promoter.server.deliveries import DeliveryMemory
from promoter.server.errors import ApiError, error_body, install_error_handlers
from promoter.server.history_answers import DoraAnswer, HistoryAnswer
from promoter.server.jobs import ReconcileJobs
from promoter.server.limits import BodyLimitMiddleware
from promoter.server.metrics import CONTENT_TYPE, ServerMetrics
from promoter.server.ports import PromotionPort
from promoter.server.routing import MalformedPayloadError, repository_name, route
from promoter.server.scheduler import Scheduler
from promoter.server.signature import SIGNATURE_HEADER, verify
from promoter.server.tokens import TOKENS_FILE_ENV, USER_PATTERN, ApiTokens

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024
"""GitHub caps webhook payloads at 25 MB."""
MAX_REQUEST_BYTES = 64 * 1024
"""Every other body (the REST API's are a few bytes of JSON)."""
WEBHOOK_PATH = "/webhooks/github"


@dataclass(frozen=True, slots=True)
class ServerParts:
    """What the routes use, kept on `app.state.parts` (one per app, no module globals)."""

    service: PromotionPort
    scheduler: Scheduler
    jobs: ReconcileJobs
    metrics: ServerMetrics
    deliveries: DeliveryMemory
    webhook_secret: bytes
    api_tokens: ApiTokens | None
    repository: str | None
    dry_branch: str
    require_auth_for_reads: bool = False
    """`service.requireAuthForReads`: the API's GETs need a bearer token too."""


# The dependencies are `async def` although they do not await: FastAPI runs a plain `def`
# dependency on its thread pool, a thread hop per request for reading an attribute.


async def get_parts(request: Request) -> ServerParts:
    parts: ServerParts = request.app.state.parts
    return parts


async def get_service(request: Request) -> PromotionPort:
    parts: ServerParts = request.app.state.parts
    return parts.service


PartsDep = Annotated[ServerParts, Depends(get_parts)]
ServiceDep = Annotated[PromotionPort, Depends(get_service)]

_bearer = HTTPBearer(auto_error=False, description=(
    "A token from the tokens file ($PROMOTER_API_TOKENS_FILE or service.apiTokensFile); "
    "the review is recorded as the user that file gives the token to."))


async def authenticate(parts: PartsDep, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The user of the request's bearer token: mutating endpoints act as that user.

    Without a tokens file they are off (403), so a server never accepts approvals that no
    one can be held to.
    """
    if parts.api_tokens is None:
        raise ApiError(403, "approvals over HTTP are disabled on this server",
                       fix=f"set ${TOKENS_FILE_ENV} (or service.apiTokensFile) to a file of "
                           "hashed tokens (`promoter token new USER`) and restart, or use "
                           "`promoter approve`")
    user = parts.api_tokens.user_for(credentials.credentials) if credentials else None
    if user is None:
        raise ApiError(401, "missing or unknown bearer token",
                       fix="send Authorization: Bearer <your token>; the operator issues "
                           "tokens with `promoter token new USER`",
                       headers={"WWW-Authenticate": "Bearer"})
    return user


TokenUserDep = Annotated[str, Depends(authenticate)]


async def read_guard(parts: PartsDep, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Where `service.requireAuthForReads` says so, every API call needs a known token."""
    if parts.require_auth_for_reads:
        await authenticate(parts, credentials)


def create_app(service: PromotionPort, *, webhook_secret: bytes, scheduler: Scheduler,
               jobs: ReconcileJobs, metrics: ServerMetrics, api_tokens: ApiTokens | None = None,
               repository: str | None = None, dry_branch: str = "main",
               deliveries: DeliveryMemory | None = None,
               max_webhook_bytes: int = MAX_WEBHOOK_BYTES,
               max_request_bytes: int = MAX_REQUEST_BYTES,
               require_auth_for_reads: bool = False) -> FastAPI:
    """The FastAPI app. Starts `scheduler` on startup and shuts it down on exit.

    `repository` (`owner/name`) limits the webhooks acted on; None accepts any repository.
    `api_tokens` says who may approve/reject, and as whom; None turns them off. Bodies over
    `max_webhook_bytes` (webhooks) or `max_request_bytes` (everything else) get 413 while
    they stream in, before the signature or the token is looked at.
    """
    if not webhook_secret:
        raise ValueError("the webhook secret must not be empty")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        log.info("reconcile scheduler started")
        try:
            yield
        finally:
            scheduler.shutdown()
            log.info("reconcile scheduler stopped")

    app = FastAPI(title="promoter", summary="GitOps promotion of TensorFlow models",
                  version="1", lifespan=lifespan)
    app.state.parts = ServerParts(
        service=service, scheduler=scheduler, jobs=jobs, metrics=metrics,
        deliveries=deliveries or DeliveryMemory(), webhook_secret=webhook_secret,
        api_tokens=api_tokens, repository=repository, dry_branch=dry_branch,
        require_auth_for_reads=require_auth_for_reads)
    install_error_handlers(app)

    def body_limit(path: str) -> int:
        return max_webhook_bytes if path == WEBHOOK_PATH else max_request_bytes

    def too_large(path: str, limit: int) -> Response:
        if path == WEBHOOK_PATH:
            metrics.webhook("unverified", "too_large")
            return _answer(413, "rejected", f"payload over {limit} bytes")
        return JSONResponse(error_body(f"request body over {limit} bytes",
                                       "approve/reject need no body; nothing here takes more "
                                       "than a few bytes of JSON"), status_code=413)

    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit, refusal=too_large)
    app.include_router(_health_router())
    app.include_router(_webhook_router())
    app.include_router(_api_router(), prefix="/api/v1", dependencies=[Depends(read_guard)])
    return app


# --- health and metrics -----------------------------------------------------------------------


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> HealthAnswer:
        """The process answers."""
        return HealthAnswer(status="ok")

    @router.get("/readyz", response_model=ReadyAnswer,
                responses={503: {"description": "not ready, with the reason"}})
    def readyz(parts: PartsDep) -> Any:
        """The configuration loads from the dry branch, the repository answers, workers run."""
        try:
            sha, dry = parts.service.dry_config()
        except PromoterError as exc:
            return JSONResponse({"status": "unready", **error_body(exc.message, exc.fix)},
                                status_code=503)
        if not parts.scheduler.alive:
            return JSONResponse({"status": "unready",
                                 **error_body("the reconcile workers are not running", None)},
                                status_code=503)
        return ReadyAnswer(status="ready", dry_sha=sha, environments=list(dry.environments))

    @router.get("/metrics", response_class=Response)
    def metrics(parts: PartsDep) -> Response:
        """Prometheus text exposition of this server's registry."""
        return Response(parts.metrics.exposition(), media_type=CONTENT_TYPE)

    return router


# --- webhooks ---------------------------------------------------------------------------------


def _webhook_router() -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    answer: dict[str, Any] = {"model": WebhookAnswer}

    @router.post(WEBHOOK_PATH, status_code=202, response_model=WebhookAnswer, responses={
        200: {**answer, "description": "ping, or a redelivery already processed"},
        400: {**answer, "description": "malformed payload or headers"},
        401: {**answer, "description": "missing or bad X-Hub-Signature-256"},
        413: {**answer, "description": "body over the cap, 25 MiB by default (refused while "
                                       "it streams in, before the signature is checked)"},
        503: {**answer, "description": "shutting down: not recorded, redeliver later"},
    })
    async def github_webhook(
        request: Request, parts: PartsDep,
        x_github_event: Annotated[str | None, Header()] = None,
        x_github_delivery: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """Verify, de-duplicate and route one GitHub delivery; the reconcile runs later."""
        metrics = parts.metrics
        body = await request.body()  # bounded: BodyLimitMiddleware read it, under the cap
        # The signature is checked on the raw bytes before anything else is trusted: event
        # name and delivery id are headers an attacker can set too.
        if not verify(parts.webhook_secret, body, request.headers.get(SIGNATURE_HEADER)):
            metrics.webhook("unverified", "unauthorized")
            log.warning("webhook rejected: missing or bad %s", SIGNATURE_HEADER,
                        extra={"delivery": x_github_delivery})
            return _answer(401, "rejected", f"missing or bad {SIGNATURE_HEADER}")
        event = x_github_event or ""
        if not event or not x_github_delivery:
            metrics.webhook(event or "unknown", "malformed")
            return _answer(400, "rejected", "X-GitHub-Event and X-GitHub-Delivery are required")
        fields = {"delivery": x_github_delivery, "event": event}
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            metrics.webhook(event, "malformed")
            log.warning("webhook body is not JSON: %s", exc, extra=fields)
            return _answer(400, "rejected", "the body is not JSON")
        except RecursionError:
            # Signed, so from whoever holds the secret, but still not GitHub's: its payloads
            # nest a few levels. The parser's recursion limit is the depth limit; hitting it
            # is this request's error, not the server's (it was a 500).
            metrics.webhook(event, "malformed")
            log.warning("webhook body nests too deeply to parse", extra=fields)
            return _answer(400, "rejected", "the body's JSON nests too deeply")
        if not parts.scheduler.alive:
            # Not remembered as delivered: GitHub's redelivery after the restart must work.
            metrics.webhook(event, "unavailable")
            return _answer(503, "rejected", "the server is shutting down; redeliver later")
        if not parts.deliveries.first_time(x_github_delivery):
            metrics.webhook(event, "duplicate")
            metrics.duplicate_deliveries.inc()
            log.info("redelivery of %s ignored", x_github_delivery, extra=fields)
            return _answer(200, "duplicate", "this delivery was already processed")
        if event == "ping":
            metrics.webhook(event, "pong")
            return _answer(200, "pong", "webhook configured")
        repo = repository_name(payload)
        if parts.repository and (repo or "").lower() != parts.repository.lower():
            metrics.webhook(event, "ignored")
            log.warning("webhook for repository %s ignored: this server serves %s", repo,
                        parts.repository, extra=fields)
            return _answer(202, "ignored", f"repository {repo} is not {parts.repository}")
        try:
            routing = route(event, payload, dry_branch=parts.dry_branch)
        except MalformedPayloadError as exc:
            metrics.webhook(event, "malformed")
            log.warning("webhook %s malformed: %s", event, exc, extra=fields)
            return _answer(400, "rejected", str(exc))
        if not routing.triggers:
            metrics.webhook(event, "ignored")
            log.info("webhook %s ignored: %s", event, routing.reason, extra=fields)
            return _answer(202, "ignored", routing.reason)
        scheduled = []
        for trigger in routing.triggers:
            job = parts.jobs.for_trigger(trigger)
            parts.scheduler.submit(job)
            scheduled.append(job.name)
        metrics.webhook(event, "scheduled")
        log.info("webhook %s: %s; scheduled %s", event, routing.reason, ", ".join(scheduled),
                 extra={**fields, **({"pr": routing.triggers[0].number}
                                     if routing.triggers[0].number else {})})
        return _answer(202, "scheduled", routing.reason, jobs=scheduled)

    return router


def _answer(status: int, outcome: str, reason: str, *,
            jobs: list[str] | None = None) -> JSONResponse:
    """A webhook's answer: the status code says accepted or not, the body what it led to."""
    body = WebhookAnswer(status=outcome, reason=reason, jobs=jobs)
    return JSONResponse(body.model_dump(mode="json", by_alias=True, exclude_none=True),
                        status_code=status)


# --- REST API ---------------------------------------------------------------------------------


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


def _api_router() -> APIRouter:
    router = APIRouter(tags=["api"])

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

    def review(number: int, body: ReviewRequest | None, user: str, parts: ServerParts, *,
               reject: bool) -> ReviewAnswer:
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

    refusals: dict[int | str, dict[str, Any]] = {
        401: {"description": "missing or unknown bearer token"},
        403: {"description": "no tokens file configured (approvals over HTTP are off), or "
                             "the body names a user other than the token's"},
        404: {"description": "no such pull request"},
        422: {"description": "the token's user may not review (policy), or a bad body"},
    }

    @router.post("/promotions/{number}/approve", responses=refusals)
    def approve(number: int, parts: PartsDep, user: TokenUserDep,
                body: ReviewRequest | None = None) -> ReviewAnswer:
        """Approve a promotion on the local forge as the bearer token's user."""
        return review(number, body, user, parts, reject=False)

    @router.post("/promotions/{number}/reject", responses=refusals)
    def reject(number: int, parts: PartsDep, user: TokenUserDep,
               body: ReviewRequest | None = None) -> ReviewAnswer:
        """Request changes on a promotion on the local forge as the bearer token's user."""
        return review(number, body, user, parts, reject=True)

    return router
