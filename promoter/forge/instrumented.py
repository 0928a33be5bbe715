"""A `Forge` decorator that reports every call: operation, result and duration.

`promoter serve` wraps its forge in one so `/metrics` can count forge calls and errors by
operation without the adapters knowing about Prometheus (this module imports no metrics
library: it calls back). The benchmarks use the same wrapper to count forge writes.

What is counted is calls of the port, not HTTP requests: on GitHub one port call may be several
API requests (pagination, retries inside the adapter).

The optional capabilities (`promoter.forge.capabilities`) are read from the forge's
`capabilities` record, so the wrapper's record has exactly the capabilities of the forge it
wraps, each wrapped to report its calls too: a wrapper that always had check runs would make
the service publish them on a forge that cannot, and one that never had them would silently
turn them off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from promoter.domain.pull_requests import (
    Comment,
    CommitStatus,
    PullRequest,
    Review,
    ReviewState,
    StatusState,
)
from promoter.errors import PromoterError
from promoter.forge.base import Forge
from promoter.forge.capabilities import ExternalChecks, ForgeCapabilities

T = TypeVar("T")
W = TypeVar("W", bound="_Instrumented")

OnCall = Callable[[str, str, float], None]
"""`on_call(operation, result, seconds)`: `operation` is the method name, `result` is `ok`, the
class name of the PromoterError raised (e.g. `StaleHeadError`, `ForgeError`), or `unexpected`
for any other exception. It must not raise: it runs on the reconcile's path."""

OK = "ok"
UNEXPECTED = "unexpected"

WRITE_OPERATIONS = frozenset({
    "open_or_update_pull_request", "set_status", "upsert_comment", "merge", "close",
    "submit_review", "publish_check_run",
})
"""Operations that change something on the forge (the rest only read)."""


class _Instrumented:
    """The wrapped forge and the timing of one call, shared by the port and capability parts."""

    def __init__(self, forge: object, *, on_call: OnCall) -> None:
        self._forge: Any = forge  # the forge, or the provider of one of its capabilities
        self._on_call = on_call

    @property
    def wrapped(self) -> Forge:
        """The forge every call is forwarded to."""
        forge: Forge = self._forge
        return forge

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._forge!r})"

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            value = call()
        except PromoterError as exc:
            self._on_call(operation, type(exc).__name__, time.perf_counter() - start)
            raise
        except Exception:
            self._on_call(operation, UNEXPECTED, time.perf_counter() - start)
            raise
        self._on_call(operation, OK, time.perf_counter() - start)
        return value


class InstrumentedForge(_Instrumented):
    """The `Forge` port, forwarded and reported, with the wrapped forge's capabilities."""

    def __init__(self, forge: Forge, *, on_call: OnCall) -> None:
        super().__init__(forge, on_call=on_call)
        inner = forge.capabilities
        self._capabilities = ForgeCapabilities(
            reviews=_wrap(inner.reviews, _ReviewRecording, on_call),
            external_checks=_wrap(inner.external_checks, _ExternalChecksReading, on_call),
            team_directory=_wrap(inner.team_directory, _TeamLookup, on_call),
            check_runs=_wrap(inner.check_runs, _CheckRunPublishing, on_call))

    @property
    def capabilities(self) -> ForgeCapabilities:
        return self._capabilities

    def open_or_update_pull_request(
        self, *, head: str, base: str, title: str, body: str, author: str,
        labels: Sequence[str],
    ) -> PullRequest:
        return self._call("open_or_update_pull_request", lambda: (
            self._forge.open_or_update_pull_request(head=head, base=base, title=title,
                                                    body=body, author=author, labels=labels)))

    def get_pull_request(self, number: int) -> PullRequest:
        return self._call("get_pull_request", lambda: self._forge.get_pull_request(number))

    def find_open_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        return self._call("find_open_pull_request",
                          lambda: self._forge.find_open_pull_request(head=head, base=base))

    def list_open_pull_requests(self, *, label: str | None = None) -> list[PullRequest]:
        return self._call("list_open_pull_requests",
                          lambda: self._forge.list_open_pull_requests(label=label))

    def find_last_closed_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        return self._call("find_last_closed_pull_request",
                          lambda: self._forge.find_last_closed_pull_request(head=head,
                                                                            base=base))

    def set_status(self, sha: str, status: CommitStatus) -> None:
        self._call("set_status", lambda: self._forge.set_status(sha, status))

    def list_statuses(self, sha: str) -> list[CommitStatus]:
        return self._call("list_statuses", lambda: self._forge.list_statuses(sha))

    def list_reviews(self, number: int) -> list[Review]:
        return self._call("list_reviews", lambda: self._forge.list_reviews(number))

    def upsert_comment(self, number: int, *, key: str, body: str) -> Comment:
        return self._call("upsert_comment",
                          lambda: self._forge.upsert_comment(number, key=key, body=body))

    def list_comments(self, number: int) -> list[Comment]:
        return self._call("list_comments", lambda: self._forge.list_comments(number))

    def merge(self, number: int, *, expected_head: str, expected_base: str,
              message: str) -> str:
        return self._call("merge", lambda: self._forge.merge(
            number, expected_head=expected_head, expected_base=expected_base,
            message=message))

    def close(self, number: int, *, comment: str | None = None) -> None:
        self._call("close", lambda: self._forge.close(number, comment=comment))


class _ReviewRecording(_Instrumented):
    def submit_review(self, number: int, *, user: str, state: ReviewState) -> Review:
        return self._call("submit_review",
                          lambda: self._forge.submit_review(number, user=user, state=state))


class _ExternalChecksReading(_Instrumented):
    def external_checks_state(self, pull: PullRequest) -> ExternalChecks:
        return self._call("external_checks_state",
                          lambda: self._forge.external_checks_state(pull))


class _TeamLookup(_Instrumented):
    def team_members_among(self, users: Iterable[str], *, team: str | None = None
                           ) -> frozenset[str]:
        return self._call("team_members_among",
                          lambda: self._forge.team_members_among(users, team=team))


class _CheckRunPublishing(_Instrumented):
    def publish_check_run(self, sha: str, *, name: str, state: StatusState, title: str,
                          summary: str, text: str | None = None,
                          details_url: str | None = None) -> int:
        return self._call("publish_check_run", lambda: self._forge.publish_check_run(
            sha, name=name, state=state, title=title, summary=summary, text=text,
            details_url=details_url))


def instrument_forge(forge: Forge, *, on_call: OnCall) -> InstrumentedForge:
    """Wrap `forge` so every call, of the port and of its capabilities, is reported to
    `on_call`; the wrapper's `capabilities` has exactly those of `forge`."""
    return InstrumentedForge(forge, on_call=on_call)


def _wrap(part: object | None, wrapper: type[W], on_call: OnCall) -> W | None:
    """`part` (a capability's provider) wrapped to report its calls; None stays None."""
    return None if part is None else wrapper(part, on_call=on_call)
