"""`GitHubForge`: the `Forge` port on GitHub (or GitHub Enterprise Server), through PyGithub.

This module and its siblings `github_calls`, `github_checks`, `github_reviews` and
`github_markers` are the only ones that call the `github` library (with `github_auth`,
which builds the client). Every `GithubException` is translated at this boundary into
promoter's errors, chained: 404 on a pull request -> PullRequestNotFoundError, 409 on merge
-> StaleHeadError, 405 on merge -> NotMergeableError, anything else -> ForgeError. Messages
carry GitHub's `message`, never request headers, so a token cannot leak through an error.

What GitHub does not keep (who proposed a promotion, the head promoter saw, which comment is
which), promoter keeps in hidden, signed markers in the PR body and its comments: see
`github_markers`. A PR whose marker is missing or does not verify is untrusted: reading
it (`get_pull_request`, `find_open_pull_request`) raises UntrustedPullRequestError, writing
it (`open_or_update_pull_request`, `merge`) refuses without writing, and `list_open_pull_requests`
lists it with an empty `author` and `head_sha`, so nothing can take it for a usable proposal.
Statuses and check runs are in `github_checks`; reviews, promoter's comments and the
approver team in `github_reviews`; the error translation in `github_calls`.

Calls. Creates look before they create (a retried POST cannot duplicate a pull request or a
comment), writes are skipped when nothing changed, and objects are lazy (`Github(lazy=True)`),
so a read of one field does not fetch a whole object first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from promoter.domain.pull_requests import (
    PullRequest,
    PullRequestState,
)
from promoter.errors import (
    ForgeError,
    NotMergeableError,
    StaleHeadError,
)
from promoter.forge.capabilities import ForgeCapabilities
from promoter.forge.github_calls import (
    _aware,
    _github_exception,
    _message,
    _transport_exceptions,
)
from promoter.forge.github_checks import GitHubChecks
from promoter.forge.github_markers import (
    PullMarkers,
    _without_pull_marker,
)
from promoter.forge.github_reviews import GitHubReviews

if TYPE_CHECKING:
    import github
    import github.PullRequest

log = logging.getLogger(__name__)

CLOSE_COMMENT_KEY = "close-reason"
"""Same key as `promoter.forge.local.CLOSE_COMMENT_KEY`."""


class GitHubForge(GitHubChecks, GitHubReviews, PullMarkers):
    """The `Forge` port over the GitHub repository `repository` (`owner/name`).

    `client` is a PyGithub `Github` built with `lazy=True` (see `github_auth.build_client`).
    `marker_key` signs and verifies the pull markers (see `github_markers`; from
    `github_auth.marker_key`). `identity` is the login promoter acts as (its reviews never
    count; only its statuses are promoter's); `merge_method` is GitHub's (`merge`, `squash`,
    `rebase`); `approver_team` (`org/slug`) is the default team of `team_members_among`.
    """

    def __init__(self, client: github.Github, repository: str, *, marker_key: bytes,
                 merge_method: str = "merge", identity: str = "promoter",
                 approver_team: str | None = None) -> None:
        if merge_method not in ("merge", "squash", "rebase"):
            raise ValueError(f"unknown merge method {merge_method!r}")
        if len(marker_key) < 16:
            raise ValueError("the marker key must be at least 16 bytes")
        self._marker_key = marker_key
        self._client = client
        self._full_name = repository
        self._owner = repository.split("/", 1)[0]
        self._repo = client.get_repo(repository)
        self._merge_method = merge_method
        self._identity = identity
        self._approver_team = approver_team

    @property
    def capabilities(self) -> ForgeCapabilities:
        """Other tools' required checks, the approver team and check runs; reviews happen
        on GitHub itself, so none are recorded through promoter."""
        return ForgeCapabilities(external_checks=self, team_directory=self, check_runs=self)

    def __repr__(self) -> str:
        return f"GitHubForge({self._full_name!r})"

    @property
    def repository(self) -> str:
        return self._full_name

    # -- pull requests -----------------------------------------------------------------------

    def open_or_update_pull_request(
        self, *, head: str, base: str, title: str, body: str, author: str,
        labels: Sequence[str],
    ) -> PullRequest:
        """Return the open PR from `head` into `base`, creating it if there is none.

        Looks before it creates; a create that GitHub refuses because the PR already exists
        (e.g. a retry) finds and updates that PR. Title, body and the head marker are written
        only if they changed; missing labels are added (labels are never removed). An existing
        PR keeps the author its marker names. Raises UntrustedPullRequestError, writing
        nothing, if that marker does not verify: signing it again would vouch for whatever an
        edit put there.
        """
        if isinstance(labels, str):
            raise TypeError("labels must be a sequence of label names, not one string")
        if head == base:
            raise ForgeError(f"cannot open a pull request from {head} into itself")
        wanted = sorted(set(labels))
        existing = self._find_open_raw(head, base)
        if existing is None:
            existing = self._create(head=head, base=base, title=title, body=body, author=author)
        with self._calls(f"updating pull request #{existing.number}", number=existing.number):
            meta = self._verified(existing)
            if meta is None:
                raise self._untrusted(existing)
            full_body = self._with_marker(body, head_branch=existing.head.ref,
                                          base_branch=existing.base.ref, author=meta.author,
                                          head=existing.head.sha)
            if existing.title != title or (existing.body or "") != full_body:
                existing.edit(title=title, body=full_body)
            have = {label.name for label in existing.labels}
            missing = [name for name in wanted if name not in have]
            if missing:
                self._issue(existing.number).add_to_labels(*missing)
                # Adding labels moves updated_at: read the PR as it is now.
                existing = self._repo.get_pull(existing.number)
                existing.state  # noqa: B018  # completes the lazy object inside the guard
            # else: after a PATCH, PyGithub's object already holds GitHub's answer.
        return self._to_pull(existing)

    def get_pull_request(self, number: int) -> PullRequest:
        """The PR `number`; raises PullRequestNotFoundError if there is none, and
        UntrustedPullRequestError if its marker does not verify."""
        return self._to_pull(self._load(number))

    def find_open_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        """The open PR from `head` into `base`, or None; UntrustedPullRequestError if its
        marker does not verify."""
        raw = self._find_open_raw(head, base)
        return self._to_pull(raw) if raw is not None else None

    def list_open_pull_requests(self, *, label: str | None = None) -> list[PullRequest]:
        """Open PRs, oldest first; only those carrying `label` when it is given.

        One untrusted PR must not hide the others: it is listed with an empty `author` and
        `head_sha` (no branch is ever at ""), and reading it by number raises
        UntrustedPullRequestError, which says why it is not acted on.
        """
        with self._calls("listing open pull requests"):
            raws = list(self._repo.get_pulls(state="open", sort="created", direction="asc"))
            pulls = [self._to_pull(r, listed=True) for r in raws]
        pulls.sort(key=lambda p: (p.created_at, p.number))
        return [p for p in pulls if label is None or label in p.labels]

    def find_last_closed_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        """The newest closed (or merged) PR from `head` into `base`: one
        `GET .../pulls?state=closed&head=&base=&sort=created&direction=desc`, first page.
        Its `head_sha` is the head promoter's signed marker records (GitHub keeps a closed
        PR's head where it was, but the marker is what promoter wrote); empty when the marker
        does not verify."""
        with self._calls(f"looking for the last closed pull request from {head} into {base}"):
            pulls = self._repo.get_pulls(state="closed", head=f"{self._owner}:{head}",
                                         base=base, sort="created", direction="desc")
            raw = next(iter(pulls), None)
            if raw is None or (raw.head.ref, raw.base.ref) != (head, base):
                return None
            return self._to_pull(raw, listed=True)

    def close(self, number: int, *, comment: str | None = None) -> None:
        """Close an open PR without merging; a closed one stays closed. ForgeError if merged."""
        raw = self._load(number)
        with self._calls(f"closing pull request #{number}", number=number):
            if raw.merged:
                raise ForgeError(f"pull request #{number} is already merged; it cannot be closed")
            if raw.state == "closed":
                return
            if comment is not None:
                self.upsert_comment(number, key=CLOSE_COMMENT_KEY, body=comment)
            raw.edit(state="closed")
        log.info("closed pull request #%d", number)

    def merge(self, number: int, *, expected_head: str, expected_base: str,
              message: str) -> str:
        """Merge PR `number` only if its head is still `expected_head`; return the merge sha.

        Checks first, without writing: the PR is open (else NotMergeableError; a PR already
        merged at `expected_head` returns its merge sha, so a retry is harmless), its head on
        GitHub and the head promoter recorded are `expected_head` (else StaleHeadError), and
        the base branch is an ancestor of the head (else NotMergeableError: GitHub would merge
        a base the gates never saw). UntrustedPullRequestError if the marker recording that
        head does not verify. Then `PUT .../merge` with `sha=expected_head`, so GitHub
        itself refuses (409) if the head moves in between; 405 means not mergeable.
        """
        raw = self._load(number)
        with self._calls(f"merging pull request #{number}", number=number):
            meta = self._verified(raw)
            if meta is None:
                raise self._untrusted(raw)
            recorded = meta.head
            if raw.merged:
                if recorded == expected_head and raw.merge_commit_sha:
                    return str(raw.merge_commit_sha)
                raise NotMergeableError(
                    f"pull request #{number} was already merged at {recorded[:12]}, "
                    f"not {expected_head[:12]}")
            if raw.state != "open":
                raise NotMergeableError(f"pull request #{number} is {raw.state}",
                                        fix="propose the promotion again")
            live, base = raw.head.sha, raw.base.ref
            if base != expected_base:
                raise NotMergeableError(
                    f"pull request #{number} now targets {base}, not {expected_base}; nothing "
                    "was merged (someone changed its base)",
                    fix="close it; promoter proposes into the environment branch again")
            if live != expected_head:
                raise StaleHeadError(
                    f"{raw.head.ref} is at {live[:12]}, not {expected_head[:12]} that was "
                    f"evaluated; #{number} was not merged",
                    fix="let promoter re-evaluate the new head")
            if recorded != expected_head:
                raise StaleHeadError(
                    f"#{number} was last updated at {recorded[:12]}, not "
                    f"{expected_head[:12]}; it was not merged",
                    fix="update the pull request (propose again) and re-evaluate")
            comparison = self._repo.compare(base, expected_head)
            if comparison.behind_by:
                raise NotMergeableError(
                    f"{base} moved ({comparison.behind_by} commit(s)) since #{number} was "
                    "proposed; the proposal does not contain it",
                    fix="propose the promotion again from the branch as it is now")
        title, _, rest = message.partition("\n")
        try:
            result = raw.merge(commit_title=title, commit_message=rest.strip("\n"),
                               merge_method=self._merge_method, sha=expected_head)
        except _github_exception() as exc:
            status = getattr(exc, "status", None)
            text = _message(exc)
            if status == 409:
                raise StaleHeadError(
                    f"#{number}'s head moved before GitHub merged it ({text}); nothing merged",
                    fix="let promoter re-evaluate the new head") from exc
            done = self._merged_at(number, expected_head) if status == 405 else None
            if done is not None:
                # Our own earlier PUT was done but its answer lost (retried after a 5xx).
                return done
            if status == 405:
                raise NotMergeableError(
                    f"GitHub cannot merge #{number}: {text} (its base moved, it conflicts, or "
                    "branch protection is not satisfied)",
                    fix="let promoter re-evaluate; propose again if the base moved") from exc
            raise self._error(exc, f"merging pull request #{number}", number=number) from exc
        except _transport_exceptions() as exc:
            raise ForgeError(f"merging pull request #{number}: GitHub unreachable: "
                             f"{type(exc).__name__}") from exc
        log.info("merged pull request #%d into %s as %s", number, base, result.sha)
        return str(result.sha)

    # -- helpers -----------------------------------------------------------------------------

    def _create(self, *, head: str, base: str, title: str, body: str,
                author: str) -> github.PullRequest.PullRequest:
        with self._calls(f"opening a pull request from {head} into {base}"):
            try:
                branch = self._repo.get_branch(head)
                head_sha = branch.commit.sha
            except _github_exception() as exc:
                if getattr(exc, "status", None) == 404:
                    raise ForgeError(
                        f"head branch {head!r} does not exist in {self._full_name}",
                        fix="push the proposal branch first, then open the pull request",
                    ) from exc
                raise
            try:
                raw = self._repo.create_pull(
                    base=base, head=head, title=title,
                    body=self._with_marker(body, head_branch=head, base_branch=base,
                                           author=author, head=head_sha))
            except _github_exception() as exc:
                if getattr(exc, "status", None) != 422:
                    raise
                again = self._find_open_raw(head, base)
                if again is not None and "already exists" in json.dumps(
                        getattr(exc, "data", "")):
                    return again  # our own earlier create, e.g. retried after a timeout
                raise ForgeError(f"GitHub refused a pull request from {head} into {base}: "
                                 f"{_message(exc)}",
                                 fix=f"push the change to {head} first") from exc
        log.info("opened pull request #%d: %s -> %s", raw.number, head, base)
        return raw

    def _find_open_raw(self, head: str, base: str) -> github.PullRequest.PullRequest | None:
        with self._calls(f"looking for an open pull request from {head} into {base}"):
            for raw in self._repo.get_pulls(state="open", head=f"{self._owner}:{head}",
                                            base=base):
                if raw.head.ref == head and raw.base.ref == base:
                    return raw
        return None

    def _merged_at(self, number: int, expected_head: str) -> str | None:
        """The merge sha if PR `number` is merged with `expected_head` as its head."""
        raw = self._load(number)
        with self._calls(f"reading pull request #{number}", number=number):
            meta = self._verified(raw)
            if (meta is not None and raw.merged and meta.head == expected_head
                    and raw.merge_commit_sha):
                return str(raw.merge_commit_sha)
        return None

    def _load(self, number: int) -> github.PullRequest.PullRequest:
        with self._calls(f"reading pull request #{number}", number=number):
            raw = self._repo.get_pull(number)
            raw.state  # noqa: B018  # completes the lazy object (GET) inside the guard
            return raw

    def _to_pull(self, raw: github.PullRequest.PullRequest, *,
                 listed: bool = False) -> PullRequest:
        """The port's view of `raw`; raises UntrustedPullRequestError if its marker does not
        verify, unless `listed` (then author and head are empty: see
        `list_open_pull_requests`)."""
        meta = self._verified(raw)
        if meta is None and not listed:
            raise self._untrusted(raw)
        # `merged_at`, not `merged`: listed PRs lack `merged`, and reading it would fetch
        # every listed PR again (lazy completion).
        if raw.merged_at is not None:
            state = PullRequestState.MERGED
        elif raw.state == "closed":
            state = PullRequestState.CLOSED
        else:
            state = PullRequestState.OPEN
        return PullRequest(
            number=raw.number, head_branch=raw.head.ref, base_branch=raw.base.ref,
            head_sha=meta.head if meta else "", title=raw.title,
            body=_without_pull_marker(raw.body or ""),
            author=meta.author if meta else "",
            state=state, labels=tuple(sorted({label.name for label in raw.labels})),
            created_at=_aware(raw.created_at),
            updated_at=_aware(raw.updated_at or raw.created_at),  # None: never edited
            merge_sha=raw.merge_commit_sha if state is PullRequestState.MERGED else None,
            web_url=raw.html_url or None,
        )
