"""What people say on a GitHub pull request: their reviews, promoter's own keyed comments,
and who is on the approver team.

The review and comment half of the `Forge` port (`list_reviews`, `upsert_comment`,
`list_comments`) and the `TeamDirectory` capability (`team_members_among`), kept apart from
the pull-request operations in `github`: these are what the approvals gate and the report
read and write, and none of them depends on the signed pull marker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from promoter.domain.pull_requests import Comment, Review, ReviewState, login_key
from promoter.errors import ForgeError
from promoter.forge.github_calls import (
    GitHubCalls,
    _aware,
    _github_exception,
    _transport_exceptions,
)
from promoter.forge.github_markers import _KEY_PATTERN, _comment_key, _to_comment

_REVIEW_STATES = {s.value: s for s in ReviewState}


class GitHubReviews(GitHubCalls):
    """Mixin of `GitHubForge`: reviews and comments of the PRs of `_repo`, and membership of
    `_approver_team`."""

    _approver_team: str | None

    def list_reviews(self, number: int) -> list[Review]:
        """Every submitted review of the PR, oldest first (pending drafts are left out)."""
        with self._calls(f"reading reviews of #{number}", number=number):
            raws = list(self._repo.get_pull(number).get_reviews())
            reviews = []
            for r in raws:
                state = _REVIEW_STATES.get(r.state)
                if state is None or r.submitted_at is None or r.user is None:
                    continue  # PENDING: a draft its author has not submitted
                reviews.append(Review(user=r.user.login, state=state,
                                      commit_sha=r.commit_id or "",
                                      submitted_at=_aware(r.submitted_at)))
        reviews.sort(key=lambda r: r.submitted_at)
        return reviews

    def upsert_comment(self, number: int, *, key: str, body: str) -> Comment:
        """Create promoter's comment `key` on PR `number`, or edit it in place."""
        if not _KEY_PATTERN.match(key):
            raise ValueError(f"invalid comment key {key!r}")
        full = f"{body}\n\n<!-- promoter:key={key} -->"
        with self._calls(f"writing comment {key} on #{number}", number=number):
            issue = self._issue(number)
            for raw in issue.get_comments():
                if _comment_key(raw.body) == key:
                    if raw.body != full:
                        raw.edit(full)
                    return _to_comment(raw, key)
            return _to_comment(issue.create_comment(full), key)

    def list_comments(self, number: int) -> list[Comment]:
        """Promoter's comments on PR `number` (those with a key marker), oldest first."""
        with self._calls(f"reading comments of #{number}", number=number):
            raws = list(self._issue(number).get_comments())
        return [_to_comment(r, key) for r in raws if (key := _comment_key(r.body)) is not None]

    def team_members_among(self, users: Iterable[str], *, team: str | None = None
                           ) -> frozenset[str]:
        """Those of `users` who are *active* members of `team` (`org/slug`, default: the
        approver team); one `GET /orgs/{org}/teams/{slug}/memberships/{user}` per user.
        A pending invitation or a 404 is not membership.

        Logins are case-insensitive on GitHub: spellings of one login (`Rita`, ` rita`) are
        asked about once, and each spelling given is returned if that login is a member.
        """
        team = team or self._approver_team
        if team is None:
            return frozenset()
        org, _, slug = team.partition("/")
        spellings: dict[str, set[str]] = {}
        for user in users:
            if user.strip():
                spellings.setdefault(login_key(user), set()).add(user)
        found: set[str] = set()
        for key in sorted(spellings):
            login = min(spellings[key]).strip()
            try:
                membership = (self._client.get_organization(org).get_team_by_slug(slug)
                              .get_team_membership(login))
                if membership.state == "active":
                    found |= spellings[key]
            except _github_exception() as exc:
                if getattr(exc, "status", None) == 404:
                    continue
                raise self._error(exc, f"checking {login}'s membership of {team}") from exc
            except _transport_exceptions() as exc:
                raise ForgeError(f"checking team membership: GitHub unreachable: "
                                 f"{type(exc).__name__}") from exc
        return frozenset(found)

    def _issue(self, number: int) -> Any:
        """The PR as an issue: labels and comments are issue resources on GitHub."""
        return self._repo.get_issue(number)
