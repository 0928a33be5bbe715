"""Run an app with uvicorn on a loopback socket in a background thread (tests, benchmarks).

`promoter serve` uses `uvicorn.run` in the main thread instead; this exists so a caller can
talk to the real HTTP server from the same process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp


@contextmanager
def serve_in_thread(app: ASGIApp, *, host: str = "127.0.0.1",
                    startup_timeout_s: float = 10.0) -> Iterator[str]:
    """Serve `app` (a FastAPI app, or any ASGI app, e.g. one wrapping it to watch what it
    reads) on an ephemeral port of `host`; yields the base URL, stops on exit."""
    import uvicorn

    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says it is TCP; without it every keep-alive request waits ~40 ms
    # for a delayed ACK (Nagle's algorithm on the response's second write).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=10, backlog=2048)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
