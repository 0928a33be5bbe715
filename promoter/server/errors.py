"""Promoter's typed errors as HTTP answers: `{"error": message, "fix": fix}` with a status
that says whose move it is. Never a 500 for something the caller or the config got wrong."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from promoter.errors import (
    ApprovalError,
    BadInputError,
    ConcurrentUpdateError,
    ConfigError,
    ForgeError,
    NotMergeableError,
    PromoterError,
    PullRequestNotFoundError,
    StaleHeadError,
)


class ApiError(Exception):
    """An HTTP error the server itself decides (auth, unknown environment)."""

    def __init__(self, status: int, message: str, *, fix: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fix = fix
        self.headers = headers


def http_status(exc: PromoterError) -> int:
    """The status code of a PromoterError, most specific type first."""
    if isinstance(exc, PullRequestNotFoundError):
        return 404
    if isinstance(exc, ApprovalError):
        return 422  # understood, refused by the environment's policy
    if isinstance(exc, ConfigError):
        return 503  # the dry source or promoter.yaml is broken: not the caller's fault
    if isinstance(exc, StaleHeadError | NotMergeableError | ConcurrentUpdateError):
        return 409
    if isinstance(exc, BadInputError):
        return 400
    if isinstance(exc, ForgeError):
        return 409
    return 503  # git or another dependency failed; retrying later may work


def error_body(message: str, fix: str | None) -> dict[str, str | None]:
    return {"error": message, "fix": fix}


def install_error_handlers(app: FastAPI) -> None:
    async def promoter_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PromoterError)
        return JSONResponse(error_body(exc.message, exc.fix), status_code=http_status(exc))

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(error_body(exc.message, exc.fix), status_code=exc.status,
                            headers=exc.headers)

    app.add_exception_handler(PromoterError, promoter_error)
    app.add_exception_handler(ApiError, api_error)
