"""What the routes depend on: the app's parts and the bearer token's user.

Apart from `app` so that the routers (`webhooks`, `api`) and the factory that includes them
share one definition of the per-app state without importing each other. The dependencies
are `async def` although they do not await: FastAPI runs a plain `def` dependency on its
thread pool, a thread hop per request for reading an attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from promoter.server.deliveries import DeliveryMemory
from promoter.server.errors import ApiError
from promoter.server.jobs import ReconcileJobs
from promoter.server.metrics import ServerMetrics
from promoter.server.ports import PromotionPort
from promoter.server.scheduler import Scheduler
from promoter.server.tokens import TOKENS_FILE_ENV, ApiTokens


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

