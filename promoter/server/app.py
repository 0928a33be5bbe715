"""The HTTP app: GitHub webhooks, the REST API, health and metrics.

`create_app` takes everything it uses as arguments (no globals, no I/O at import): the
promotion service, the scheduler that runs reconciles, and the secrets. Choosing and building
those is the composition root's job (`promoter.wiring.build_app` and `build_server`). This
module puts the app together (state, body caps, error handlers, the lifespan that runs the
scheduler) and serves health and metrics; the routes are `webhooks` and `api`, and what they
depend on `dependencies`. Routes answer from the request thread with the models of
`promoter.server.answers`; reconciles run on the scheduler's workers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.responses import JSONResponse

from promoter.errors import PromoterError
from promoter.server.answers import HealthAnswer, ReadyAnswer
from promoter.server.api import api_router
from promoter.server.deliveries import DeliveryMemory
from promoter.server.dependencies import PartsDep, ServerParts, read_guard
from promoter.server.errors import error_body, install_error_handlers
from promoter.server.jobs import ReconcileJobs
from promoter.server.limits import BodyLimitMiddleware
from promoter.server.metrics import CONTENT_TYPE, ServerMetrics
from promoter.server.ports import PromotionPort
from promoter.server.scheduler import Scheduler
from promoter.server.tokens import ApiTokens
from promoter.server.webhooks import WEBHOOK_PATH, webhook_answer, webhook_router

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024
"""GitHub caps webhook payloads at 25 MB."""
MAX_REQUEST_BYTES = 64 * 1024
"""Every other body (the REST API's are a few bytes of JSON)."""


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
            return webhook_answer(413, "rejected", f"payload over {limit} bytes")
        return JSONResponse(error_body(f"request body over {limit} bytes",
                                       "approve/reject need no body; nothing here takes more "
                                       "than a few bytes of JSON"), status_code=413)

    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit, refusal=too_large)
    app.include_router(_health_router())
    app.include_router(webhook_router())
    app.include_router(api_router(), prefix="/api/v1", dependencies=[Depends(read_guard)])
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

