"""The plumbing under `GitHubForge`: PyGithub's and the transport's exceptions, translated.

Every call `GitHubForge` makes goes through `GitHubCalls._calls`, which turns a
`GithubException` (or a `requests` error) raised inside into promoter's errors, chained: 404 on a
pull request -> PullRequestNotFoundError, anything else -> ForgeError. Messages carry GitHub's
`message`, never request headers, so a token cannot leak through an error. It is kept apart from
the operations so that the translation rules are read (and changed) in one place, and so that
the status/check-run half (`github_checks`) and the pull-request half (`github`) share it.
The `github` library is imported lazily, as everywhere in the adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from promoter.errors import ForgeError, PullRequestNotFoundError

if TYPE_CHECKING:
    import github
    import github.Repository


class GitHubCalls:
    """Base of `GitHubForge`: the client, the repository and the error translation."""

    _client: github.Github
    _repo: github.Repository.Repository
    _full_name: str

    @contextmanager
    def _calls(self, what: str, *, number: int | None = None) -> Iterator[None]:
        """Translate PyGithub's and the transport's exceptions raised inside into ours."""
        try:
            yield
        except _github_exception() as exc:
            raise self._error(exc, what, number=number) from exc
        except _transport_exceptions() as exc:
            raise ForgeError(f"{what}: GitHub could not be reached ({type(exc).__name__})",
                             fix="run the command again; promoter resumes where it stopped"
                             ) from exc

    def _error(self, exc: Exception, what: str, *, number: int | None = None) -> ForgeError:
        status = getattr(exc, "status", None)
        if status == 404 and number is not None:
            return PullRequestNotFoundError(f"no pull request #{number} in {self._full_name}",
                                            fix="list the open ones with `promoter status`")
        fix = None
        if status in (401, 403):
            fix = "check promoter's GitHub credentials and their permissions on the repository"
        return ForgeError(f"{what}: GitHub answered {status}: {_message(exc)}", fix=fix)


def _github_exception() -> type[Exception]:
    from github import GithubException

    return GithubException


def _transport_exceptions() -> tuple[type[Exception], ...]:
    import requests

    return (requests.RequestException,)


def _message(exc: Exception) -> str:
    """GitHub's `message` (and error details) from the answer's body; never headers."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        text = str(data.get("message") or "")
        details = [e.get("message") or e.get("code") for e in data.get("errors") or []
                   if isinstance(e, dict)]
        if details:
            text += " (" + "; ".join(str(d) for d in details if d) + ")"
        return text or "no message"
    return str(data)[:200] if data else "no message"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

