"""Structured logs: JSON lines for machines, plain lines for people, secrets never written.

Lines about a promotion carry `environment`, `pr` and `promotion` (`<model> v<version>`)
fields. They come from `extra=` on the call, or from `log_context(...)`, which the reconcile
scheduler sets around every job so the promotion service's own log lines carry them too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

CONTEXT_FIELDS = ("environment", "pr", "promotion", "branch", "job", "delivery", "event")
"""Fields that `log_context` and `extra=` may set, in the order JSON lines show them."""

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "promoter_log_context", default=None)

REDACTED = "[redacted]"


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log record emitted in this thread (or task) inside the block."""
    current = _context.get() or {}
    token = _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copy the `log_context` fields onto each record, without overriding `extra=`."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _Redacting:
    """Replaces every configured secret in a formatted line, as a last line of defence.

    The server never passes secrets to a logger on purpose; this catches the accident (a
    header dumped in a debug line, an exception message quoting a token).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def __init__(self, *, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._redact = _Redacting(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message [environment=dev pr=7]` for a terminal."""

    def __init__(self, *, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self._redact = _Redacting(secrets)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS
                          if getattr(record, k, None) is not None)
        if fields:
            first, _, rest = text.partition("\n")
            text = f"{first} [{fields}]" + (f"\n{rest}" if rest else "")
        return self._redact(text)


def make_handler(*, stream: TextIO | None = None, json_lines: bool | None = None,
                 secrets: Iterable[str] = ()) -> logging.Handler:
    """A handler writing to `stream` (stderr): JSON lines unless it is a terminal.

    `secrets` are replaced by `[redacted]` wherever they would appear.
    """
    stream = stream if stream is not None else sys.stderr
    if json_lines is None:
        json_lines = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    secrets = tuple(secrets)
    handler.setFormatter(JsonFormatter(secrets=secrets) if json_lines
                         else TextFormatter(secrets=secrets))
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(*, level: int = logging.INFO, stream: TextIO | None = None,
                      json_lines: bool | None = None, secrets: Iterable[str] = ()) -> None:
    """Route the root logger (promoter's and uvicorn's loggers) through one handler.

    Called once by `promoter serve`; replaces handlers the CLI's basicConfig installed.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(stream=stream, json_lines=json_lines, secrets=secrets))
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
