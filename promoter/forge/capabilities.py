"""Optional forge capabilities beyond the `Forge` port, for forges that have them (GitHub).

The promotion service checks for them with `isinstance` (the protocols are runtime-checkable),
so the local forge needs none of them and this module imports no forge library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from promoter.domain.pull_requests import PullRequest, StatusState


@dataclass(frozen=True, slots=True)
class ExternalChecks:
    """The required checks of a pull request's base branch that promoter does not own."""

    state: StatusState
    """SUCCESS: every required check passed (or none is required); PENDING: some have not
    finished or not reported; FAILURE: at least one failed."""
    description: str
    """One line for a commit status, at most 140 characters."""
    failing: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()


@runtime_checkable
class ExternalChecksReader(Protocol):
    def external_checks_state(self, pull: PullRequest) -> ExternalChecks:
        """The state of the base branch's required checks on the PR's head, promoter's own
        (`promoter/...`) excluded. Promoter must not merge unless it is SUCCESS."""
        ...


@runtime_checkable
class TeamDirectory(Protocol):
    def team_members_among(self, users: Iterable[str], *, team: str | None = None
                           ) -> frozenset[str]:
        """Those of `users` who are active members of `team` (`org/slug`; default: the
        configured approver team)."""
        ...


@runtime_checkable
class CheckRunPublisher(Protocol):
    def publish_check_run(self, sha: str, *, name: str, state: StatusState, title: str,
                          summary: str, text: str | None = None) -> int:
        """Publish a report (Markdown `summary`/`text`) as the check run `name` on `sha`,
        editing the run of that name if there is one."""
        ...
