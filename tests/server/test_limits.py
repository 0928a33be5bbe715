"""Request bodies are capped while they stream in (issue #15), over real HTTP on loopback.

The app is wrapped in an ASGI layer that counts the body bytes it pulls from uvicorn, so the
tests see how much the server read, not only what it answered: a cap checked after reading
the whole body would answer 413 too, and fail here on the count.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from promoter.server.app import MAX_REQUEST_BYTES, MAX_WEBHOOK_BYTES
from promoter.server.runner import serve_in_thread
from promoter.wiring import build_app
from tests.server.support import (
    SECRET,
    FakeService,
    as_promotion,
    body_of,
    example,
    signed_headers,
    wait_until,
)

CAP = 64 * 1024
CHUNK = 16 * 1024
SLACK = 256 * 1024
"""What uvicorn may hand over in one message beyond the cap: it buffers 64 KiB before it
pauses reading, plus what one socket read (asyncio: up to 256 KiB) brought in."""


@dataclass
class CountingApp:
    """Passes everything through; records, per request, the body bytes the app received."""

    app: ASGIApp
    reads: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        total = 0

        async def counted() -> Message:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
            return message

        try:
            await self.app(scope, counted, send)
        finally:
            self.reads.append((scope["path"], total))


@dataclass
class Served:
    url: str
    counting: CountingApp
    service: FakeService

    def reads(self, requests: int) -> list[tuple[str, int]]:
        """The counts, once `requests` requests have returned (after their answer was sent)."""
        assert wait_until(lambda: len(self.counting.reads) >= requests)
        return self.counting.reads


@pytest.fixture
def served() -> Iterator[Served]:
    service = FakeService()
    app = build_app(service, webhook_secret=SECRET, resync_interval_s=None,
                    max_webhook_bytes=CAP, max_request_bytes=CAP // 4)
    counting = CountingApp(app)
    with serve_in_thread(counting) as url:
        yield Served(url, counting, service)
    assert not app.state.parts.scheduler.alive


@dataclass(frozen=True)
class Sent:
    status_line: str
    body: bytes
    sent: int
    """Body bytes the client had sent when the answer came (or the server closed)."""


def post_chunked(url: str, path: str, *, total: int, chunk: int = CHUNK,
                 headers: dict[str, str] | None = None, timeout_s: float = 20.0) -> Sent:
    """POST `total` bytes with `Transfer-Encoding: chunked` (no Content-Length), `chunk`
    bytes at a time, and stop sending as soon as the server answers."""
    address = urlsplit(url)
    assert address.hostname == "127.0.0.1"
    sock = socket.create_connection((address.hostname, address.port or 80), timeout=10)
    try:
        # A small send buffer, so the client cannot hand the kernel megabytes at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, chunk)
        head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                     f"Transfer-Encoding: chunked\r\n{head}\r\n".encode())
        frame = f"{chunk:x}\r\n".encode() + b"[" * chunk + b"\r\n"
        sent = 0
        deadline = time.monotonic() + timeout_s
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break  # the server answered before the body ended
            if writable:
                try:
                    sock.sendall(frame)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += chunk
        else:
            if sent >= total:
                sock.sendall(b"0\r\n\r\n")
        return _read_response(sock, sent)
    finally:
        sock.close()


def post_declared(url: str, path: str, *, length: int) -> Sent:
    """Send only the headers of a POST declaring `length` bytes, and wait for the answer."""
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname or "", address.port or 80), timeout=5)
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                     f"Content-Length: {length}\r\nContent-Type: application/json\r\n\r\n"
                     .encode())
        return _read_response(sock, 0)
    finally:
        sock.close()


def _read_response(sock: socket.socket, sent: int) -> Sent:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, f"the server closed without answering: {data!r}"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines
                  if line.lower().startswith("content-length:"))
    while len(body) < length:
        part = sock.recv(65536)
        assert part, "the server closed in the middle of its answer"
        body += part
    return Sent(lines[0], body, sent)


def test_defaults() -> None:
    assert MAX_WEBHOOK_BYTES == 25 * 1024 * 1024  # GitHub's own limit
    assert MAX_REQUEST_BYTES == 64 * 1024


def test_an_unsigned_chunked_webhook_is_refused_while_it_streams(served: Served) -> None:
    total = 128 * CAP  # 8 MiB, no Content-Length, no signature
    answer = post_chunked(served.url, "/webhooks/github", total=total, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "big-1",
        "Content-Type": "application/json"})
    assert answer.status_line == "HTTP/1.1 413 Request Entity Too Large"
    assert answer.body == b'{"status":"rejected","reason":"payload over 65536 bytes"}'
    assert answer.sent < total  # answered before the client had finished
    ((path, read),) = served.reads(1)
    assert path == "/webhooks/github"
    assert CAP < read <= CAP + SLACK, read  # stopped at the cap, not at the end of the body

    # ...and keeps serving: health, metrics and a real delivery.
    body = body_of(as_promotion(example("pull_request", "synchronize"), number=5))
    with httpx.Client(base_url=served.url, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        accepted = client.post("/webhooks/github", content=body,
                               headers=signed_headers(body, "pull_request"))
        metrics = client.get("/metrics").text
    assert accepted.status_code == 202
    assert 'promoter_webhook_deliveries_total{event="unverified",result="too_large"} 1.0' \
        in metrics


def test_an_api_body_is_capped_before_the_token_is_checked(served: Served) -> None:
    total = 64 * (CAP // 4)  # 1 MiB at an API cap of 16 KiB, no Authorization header
    answer = post_chunked(served.url, "/api/v1/promotions/7/approve", total=total,
                          chunk=4096, headers={"Content-Type": "application/json"})
    assert answer.status_line == "HTTP/1.1 413 Request Entity Too Large"
    assert answer.body.startswith(b'{"error":"request body over 16384 bytes"')
    ((_, read),) = served.reads(1)
    assert read <= CAP // 4 + SLACK, read
    assert served.service.calls_of("approve") == []


@pytest.mark.parametrize("path", ["/webhooks/github", "/api/v1/promotions/7/approve"])
def test_a_content_length_over_the_cap_is_refused_before_reading(
        served: Served, path: str) -> None:
    # Only headers are sent: a server that waited for the body would time out here.
    answer = post_declared(served.url, path, length=600 * 1024 * 1024)
    assert answer.status_line == "HTTP/1.1 413 Request Entity Too Large"
    assert served.reads(1) == [(path, 0)]


def test_bodies_under_the_cap_pass_whole(served: Served) -> None:
    payload = as_promotion(example("pull_request", "synchronize"), number=9)
    payload["padding"] = "x" * (CAP - len(body_of(payload)) - 20)
    body = body_of(payload)
    assert CAP - 100 < len(body) <= CAP
    with httpx.Client(base_url=served.url, timeout=10) as client:
        def chunks() -> Iterator[bytes]:  # chunked, in pieces
            for start in range(0, len(body), 1000):
                yield body[start:start + 1000]

        streamed = client.post("/webhooks/github", content=chunks(),
                               headers=signed_headers(body, "pull_request"))
    assert streamed.status_code == 202, streamed.text
    assert served.reads(1) == [("/webhooks/github", len(body))]
