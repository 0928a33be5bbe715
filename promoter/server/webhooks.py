"""`POST /webhooks/github`: verify, parse, de-duplicate and route one GitHub delivery.

The one route that takes a body from outside the operator's control, so its checks run in
an order that trusts nothing early: the signature over the raw bytes first, then the headers,
then the JSON (with promoter's own nesting limit, `json_depth`), then the delivery id and the
repository. What the delivery calls for is decided by `routing` (pure); the reconciles run
later on the scheduler's workers, never in the request.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from promoter.server.answers import WebhookAnswer
from promoter.server.dependencies import PartsDep, ServerParts
from promoter.server.json_depth import MAX_JSON_DEPTH, JsonTooDeepError, load_json
from promoter.server.routing import MalformedPayloadError, repository_name, route
from promoter.server.signature import SIGNATURE_HEADER, verify

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/github"


def webhook_router() -> APIRouter:
    """The webhook route, with its answers documented in the OpenAPI document."""
    router = APIRouter(tags=["webhooks"])
    answer: dict[str, Any] = {"model": WebhookAnswer}

    @router.post(WEBHOOK_PATH, status_code=202, response_model=WebhookAnswer, responses={
        200: {**answer, "description": "ping, or a redelivery already processed"},
        400: {**answer, "description": "malformed payload or headers, or JSON nesting "
                                       f"deeper than {MAX_JSON_DEPTH} levels"},
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
        body = await request.body()  # bounded: BodyLimitMiddleware read it, under the cap
        refused = _unverified(parts, body, request.headers.get(SIGNATURE_HEADER),
                              event=x_github_event, delivery=x_github_delivery)
        if refused is not None:
            return refused
        # _unverified refused a delivery without them
        assert x_github_event is not None
        assert x_github_delivery is not None
        event, fields = x_github_event, {"delivery": x_github_delivery,
                                         "event": x_github_event}
        payload = _parse(parts, body, event=event, fields=fields)
        if isinstance(payload, JSONResponse):
            return payload
        if not parts.scheduler.alive:
            # Not remembered as delivered: GitHub's redelivery after the restart must work.
            parts.metrics.webhook(event, "unavailable")
            return webhook_answer(503, "rejected",
                                  "the server is shutting down; redeliver later")
        if not parts.deliveries.first_time(x_github_delivery):
            parts.metrics.webhook(event, "duplicate")
            parts.metrics.duplicate_deliveries.inc()
            log.info("redelivery of %s ignored", x_github_delivery, extra=fields)
            return webhook_answer(200, "duplicate", "this delivery was already processed")
        if event == "ping":
            parts.metrics.webhook(event, "pong")
            return webhook_answer(200, "pong", "webhook configured")
        return _schedule(parts, payload, event=event, fields=fields)

    return router


def _unverified(parts: ServerParts, body: bytes, signature: str | None, *,
                event: str | None, delivery: str | None) -> JSONResponse | None:
    """The refusal of a delivery whose signature or headers are wrong; None if they are
    right. The signature is checked on the raw bytes before anything else is trusted: event
    name and delivery id are headers an attacker can set too."""
    if not verify(parts.webhook_secret, body, signature):
        parts.metrics.webhook("unverified", "unauthorized")
        log.warning("webhook rejected: missing or bad %s", SIGNATURE_HEADER,
                    extra={"delivery": delivery})
        return webhook_answer(401, "rejected", f"missing or bad {SIGNATURE_HEADER}")
    if not event or not delivery:
        parts.metrics.webhook(event or "unknown", "malformed")
        return webhook_answer(400, "rejected",
                              "X-GitHub-Event and X-GitHub-Delivery are required")
    return None


def _parse(parts: ServerParts, body: bytes, *, event: str,
           fields: dict[str, Any]) -> Any:
    """The payload of a verified delivery, or the 400 that refuses it: not JSON, or nested
    deeper than `MAX_JSON_DEPTH` (refused before it is parsed: signed, so from whoever holds
    the secret, but not GitHub's, whose payloads nest a few levels)."""
    try:
        return load_json(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        parts.metrics.webhook(event, "malformed")
        log.warning("webhook body is not JSON: %s", exc, extra=fields)
        return webhook_answer(400, "rejected", "the body is not JSON")
    except JsonTooDeepError:
        parts.metrics.webhook(event, "malformed")
        log.warning("webhook body nests deeper than %d levels", MAX_JSON_DEPTH, extra=fields)
        return webhook_answer(400, "rejected", "the body's JSON nests too deeply")


def _schedule(parts: ServerParts, payload: Any, *, event: str,
              fields: dict[str, Any]) -> JSONResponse:
    """Route a new delivery of the served repository to the reconciles it calls for and
    submit them; a delivery for another repository, or one that changes no promotion, is
    ignored (202, with the reason)."""
    metrics = parts.metrics
    repo = repository_name(payload)
    if parts.repository and (repo or "").lower() != parts.repository.lower():
        metrics.webhook(event, "ignored")
        log.warning("webhook for repository %s ignored: this server serves %s", repo,
                    parts.repository, extra=fields)
        return webhook_answer(202, "ignored",
                              f"repository {repo} is not {parts.repository}")
    try:
        routing = route(event, payload, dry_branch=parts.dry_branch)
    except MalformedPayloadError as exc:
        metrics.webhook(event, "malformed")
        log.warning("webhook %s malformed: %s", event, exc, extra=fields)
        return webhook_answer(400, "rejected", str(exc))
    if not routing.triggers:
        metrics.webhook(event, "ignored")
        log.info("webhook %s ignored: %s", event, routing.reason, extra=fields)
        return webhook_answer(202, "ignored", routing.reason)
    scheduled = []
    for trigger in routing.triggers:
        job = parts.jobs.for_trigger(trigger)
        parts.scheduler.submit(job)
        scheduled.append(job.name)
    metrics.webhook(event, "scheduled")
    log.info("webhook %s: %s; scheduled %s", event, routing.reason, ", ".join(scheduled),
             extra={**fields, **({"pr": routing.triggers[0].number}
                                 if routing.triggers[0].number else {})})
    return webhook_answer(202, "scheduled", routing.reason, jobs=scheduled)


def webhook_answer(status: int, outcome: str, reason: str, *,
                   jobs: list[str] | None = None) -> JSONResponse:
    """A webhook's answer: the status code says accepted or not, the body what it led to."""
    body = WebhookAnswer(status=outcome, reason=reason, jobs=jobs)
    return JSONResponse(body.model_dump(mode="json", by_alias=True, exclude_none=True),
                        status_code=status)
