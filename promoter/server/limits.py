"""A cap on request bodies, enforced while they stream in, before any route sees them.

Why a middleware and not a check in the webhook route: a body must be bounded before anything
reads it whole, and both FastAPI (for a JSON body parameter) and the webhook's signature check
read it whole. Checking `Content-Length` alone is not enough: a chunked request has none, and
`request.body()` would buffer 600 MB to find out (issue #15). So this reads the ASGI `receive`
stream itself, counts, and answers 413 the moment the running total passes the cap, or at once
when the declared `Content-Length` already does. It runs before, and knows nothing of, the
signature or the bearer token: an unauthenticated sender is bounded as well as any other.

The body, once complete and within the cap, is handed to the app as one message; the app then
sees an ordinary request. A refused request's connection is closed (`Connection: close`): the
rest of the body is never read, so the sender cannot make the server drain it either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

Refusal = Callable[[str, int], Response]
"""`refusal(path, limit)`: the 413 response to send for a body over `limit` bytes on `path`."""


class BodyLimitMiddleware:
    """Refuse a request whose body is over `limit_for(path)` bytes, reading at most that much
    plus one `receive` message: uvicorn hands over what it has buffered since the last one,
    which it keeps under about 64 KiB plus one socket read by pausing the socket."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int],
                 refusal: Refusal) -> None:
        self.app = app
        self.limit_for = limit_for
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limit_for(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, path, limit, f"Content-Length {declared}")
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: there is no one to answer
            body: bytes = message.get("body", b"")
            total += len(body)
            if total > limit:
                await self._refuse(scope, receive, send, path, limit, f"{total} bytes so far")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        del chunks
        await self.app(scope, _replay(whole, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, path: str, limit: int,
                      seen: str) -> None:
        log.warning("request body over %d bytes refused (%s, %s)", limit, path, seen)
        response = self.refusal(path, limit)
        response.headers["Connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length, or None without one (chunked) or with one the HTTP server would
    already have refused as malformed."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then the real stream (for disconnects)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
