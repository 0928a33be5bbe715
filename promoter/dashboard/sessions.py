"""Browser sessions of the dashboard: who is logged in, and the CSRF token of their forms.

A person logs in with their REST API token (`promoter token new USER`); the server keeps the
session (a random id in the cookie, nothing else), so the token itself never goes back to the
browser. `promoter serve` keeps sessions in its state directory (`session_db`), so they
outlive a restart and every worker process knows them; `SessionStore` keeps them in this
process's memory (tests, and apps built without a state directory).

Every form that changes something carries the session's CSRF token in a hidden field,
compared in constant time with the session's (the synchronizer token pattern); the login
form, which has no session yet, carries a token that must equal a cookie set with the form
(double submit). The cookies are `HttpOnly` (no script reads them), `Secure` (sent over
HTTPS only; browsers treat `http://localhost` as secure, so a port-forward works) and
`SameSite=Strict` (never sent with a request another site starts).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

SESSION_COOKIE = "promoter_session"
LOGIN_COOKIE = "promoter_login_csrf"
SESSION_SECONDS = 8 * 3600
"""A working day: then the person logs in again."""
MAX_SESSIONS = 10_000
"""Beyond this many live sessions the oldest is ended: logins cannot exhaust memory."""


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user: str
    """The user the tokens file gives the token that logged in."""
    csrf: str
    """The token every form of this session must send back."""
    expires_at: float


def same_token(given: str | None, expected: str | None) -> bool:
    """True if both are set and equal; constant time in their contents."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class Sessions(Protocol):
    """Where the dashboard's sessions are kept (`SessionStore`, `SqliteSessionStore`)."""

    def start(self, user: str) -> Session:
        """A new session for `user` (a login: any earlier session id stays someone else's)."""
        ...

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, ended or expired)."""
        ...

    def end(self, session_id: str | None) -> None:
        """End the session (a logout): its id is never accepted again."""
        ...


class SessionStore:
    """Live sessions by id, in this process's memory; `clock` is monotonic seconds."""

    def __init__(self, *, ttl_s: float = SESSION_SECONDS, max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, user: str) -> Session:
        """A new session for `user` (a login: any earlier session id stays someone else's)."""
        session = Session(id=secrets.token_urlsafe(32), user=user,
                          csrf=secrets.token_urlsafe(32), expires_at=self._clock() + self._ttl)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, ended or expired)."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires_at <= self._clock():
                del self._sessions[session_id]
                return None
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)
