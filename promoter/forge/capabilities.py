"""Optional forge capabilities beyond the `Forge` port, and the record that says which a forge
has.

Each forge declares what it offers in `Forge.capabilities`, a `ForgeCapabilities` with one
field per capability (the object that provides it, or None): the promotion service asks the
record, never `isinstance`, so a wrapper (the metrics decorator) states exactly the
capabilities of what it wraps without building classes at run time. This module imports no
forge library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from promoter.domain.pull_requests import PullRequest, Review, ReviewState, StatusState


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
class ReviewRecorder(Protocol):
    """Recording reviews by hand: the local forge only (on GitHub, people review on GitHub)."""

    def submit_review(self, number: int, *, user: str, state: ReviewState) -> Review:
        """Record `user`'s review on the PR's current head sha."""
        ...


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
                          summary: str, text: str | None = None,
                          details_url: str | None = None) -> int:
        """Publish a report (Markdown `summary`/`text`) as the check run `name` on `sha`,
        editing the run of that name if there is one; `details_url` is where the run's
        "Details" link goes (the promotion's page)."""
        ...


@dataclass(frozen=True, slots=True)
class ForgeCapabilities:
    """What a forge offers beyond the `Forge` port: for each capability, the object that
    provides it, or None where the forge has none."""

    reviews: ReviewRecorder | None = None
    """Reviews recorded through promoter (`promoter approve`, the API): the local forge."""
    external_checks: ExternalChecksReader | None = None
    """Other tools' required checks, which hold the merge."""
    team_directory: TeamDirectory | None = None
    """Members of an approver team count as named approvers."""
    check_runs: CheckRunPublisher | None = None
    """The evaluation report as a check run (GitHub Apps)."""
