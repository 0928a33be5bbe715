"""`SqliteSessionStore`: the dashboard's sessions in one SQLite file of promoter's state
directory, so every `promoter serve` process on it (several workers, or one after a restart)
knows the same logins, and a logout ends the session in all of them at once.

The cookie holds a random session id (256 bits); the file holds only its SHA-256, the user,
the session's CSRF token and when it expires (wall-clock seconds: it must mean the same in
another process). Someone who can read the file cannot log in with what it holds, and a
cookie that was changed, made up or logged out finds no row. Expired rows are deleted as new
sessions start; beyond `max_sessions` the oldest are.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from promoter.dashboard.sessions import MAX_SESSIONS, SESSION_SECONDS, Session
from promoter.errors import PromoterError

log = logging.getLogger(__name__)

_SCHEMA = """CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL,
    expires_at REAL NOT NULL)"""
_BUSY_TIMEOUT_S = 10.0


class SessionStoreError(PromoterError):
    """The sessions file cannot be opened or written."""


class SqliteSessionStore:
    """Live sessions in the SQLite file `path` (created with its directory if missing);
    `clock` is wall-clock seconds (`time.time`)."""

    def __init__(self, path: Path, *, ttl_s: float = SESSION_SECONDS,
                 max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.time) -> None:
        self._path = Path(path)
        self._ttl = ttl_s
        self._max = max_sessions
        self._clock = clock
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionStoreError(f"cannot create {self._path.parent}: {exc.strerror}",
                                    fix="check the directory's permissions") from exc
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(_SCHEMA)

    @property
    def path(self) -> Path:
        return self._path

    def start(self, user: str) -> Session:
        """A new session for `user`, written before the cookie is sent."""
        now = self._clock()
        session = Session(id=secrets.token_urlsafe(32), user=user,
                          csrf=secrets.token_urlsafe(32), expires_at=now + self._ttl)
        with self._connection() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                         (_key(session.id), user, session.csrf, session.expires_at))
            conn.execute("DELETE FROM sessions WHERE id_sha256 IN (SELECT id_sha256 FROM "
                         "sessions ORDER BY expires_at DESC LIMIT -1 OFFSET ?)", (self._max,))
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, changed, ended or expired)."""
        if not session_id:
            return None
        try:
            with self._connection() as conn:
                row = conn.execute("SELECT user, csrf, expires_at FROM sessions WHERE "
                                   "id_sha256 = ?", (_key(session_id),)).fetchone()
        except SessionStoreError as exc:
            # A page still shows, as to someone logged out; the login says what is wrong.
            log.error("cannot read the dashboard's sessions: %s", exc.message)
            return None
        if row is None or row[2] <= self._clock():
            return None
        return Session(id=session_id, user=row[0], csrf=row[1], expires_at=row[2])

    def end(self, session_id: str | None) -> None:
        """End the session (a logout) for every process that reads this file."""
        with self._connection() as conn:
            conn.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_key(session_id or ""),))

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S)) as conn, conn:
                yield conn  # the inner `with conn`: one transaction, committed on success
        except sqlite3.Error as exc:
            raise SessionStoreError(
                f"dashboard sessions {self._path}: {exc}",
                fix=f"check that {self._path} is writable; moving it away logs everyone "
                    "out and is otherwise harmless") from exc


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
