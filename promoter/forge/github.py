"""`GitHubForge`: the `Forge` port on GitHub (or GitHub Enterprise Server), through PyGithub.

This is the only module that calls the `github` library (with `github_auth`, which builds the
client). Every `GithubException` is translated at this boundary into promoter's errors, chained:
404 on a pull request -> PullRequestNotFoundError, 409 on merge -> StaleHeadError, 405 on merge
-> NotMergeableError, anything else -> ForgeError. Messages carry GitHub's `message`, never
request headers, so a token cannot leak through an error.

What GitHub does not keep, promoter keeps in hidden HTML comments:
- the PR body ends with `<!-- promoter:pull {"author": ..., "head": ..., "sig": ...} -->`:
  who proposed the promotion (the PR's GitHub author is promoter's own identity) and the head
  sha promoter last opened or updated the PR with. GitHub's PR head follows the branch, but the
  port's `head_sha` is what promoter saw, so a push behind promoter's back is noticed
  (StaleHeadError) instead of merged unseen;
- each of promoter's comments ends with `<!-- promoter:key=KEY -->`, so it is found and edited
  in place instead of added again.
Both markers are stripped from the bodies the port returns.

Anyone with write access can edit a PR's description, so the pull marker is signed:
`sig` is HMAC-SHA256, under a key only promoter holds (`forge.github.markerKeyEnv`/`File`, or
derived from the App's private key), of the repository, the PR's head and base branches, the
author and the head sha. A PR whose marker is missing or does not verify is untrusted: reading
it (`get_pull_request`, `find_open_pull_request`) raises UntrustedPullRequestError, writing
it (`open_or_update_pull_request`, `merge`) refuses without writing, and `list_open_pull_requests`
lists it with an empty `author` and `head_sha`, so nothing can take it for a usable proposal.
A valid marker copied to another PR of the same branches says only what promoter signed (this
author proposed that commit there), as reopening the PR it came from would. Nothing else in a
PR's title or description is trusted.

Calls. Creates look before they create (a retried POST cannot duplicate a pull request or a
comment), writes are skipped when nothing changed, and objects are lazy (`Github(lazy=True)`),
so a read of one field does not fetch a whole object first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promoter.domain.pull_requests import (
    Comment,
    CommitStatus,
    PullRequest,
    PullRequestState,
    Review,
    ReviewState,
    StatusState,
    login_key,
)
from promoter.errors import (
    ForgeError,
    ForgeIdentityError,
    NotMergeableError,
    PullRequestNotFoundError,
    StaleHeadError,
    UntrustedPullRequestError,
)
from promoter.forge.capabilities import ExternalChecks, ForgeCapabilities

if TYPE_CHECKING:
    import github
    import github.PullRequest

log = logging.getLogger(__name__)

CLOSE_COMMENT_KEY = "close-reason"
"""Same key as `promoter.forge.local.CLOSE_COMMENT_KEY`."""
PROMOTER_CONTEXT_PREFIX = "promoter/"
"""Statuses promoter sets itself; not 'external' checks."""
_PULL_MARKER = re.compile(r"\n*<!-- promoter:pull (\{[^\n]*?\}) -->(?:\s*\Z)?")
"""The pull marker, wherever it is (a person may add text below it); the last one counts."""
_MARKER_LABEL = b"promoter:pull-marker:v1\n"
"""Prefix of every signed message: a MAC for this purpose is never valid for another."""
_KEY_MARKER = re.compile(r"\n*<!-- promoter:key=([A-Za-z0-9_.:/-]+) -->\s*\Z")
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:/-]+$")
_REVIEW_STATES = {s.value: s for s in ReviewState}
_PASSING_CONCLUSIONS = {"success", "neutral", "skipped"}


@dataclass(frozen=True, slots=True)
class _PullMeta:
    """A pull marker whose signature verified."""

    author: str
    """Who proposed the promotion."""
    head: str
    """The head sha promoter last opened or updated the PR with."""


class GitHubForge:
    """The `Forge` port over the GitHub repository `repository` (`owner/name`).

    `client` is a PyGithub `Github` built with `lazy=True` (see `github_auth.build_client`).
    `marker_key` signs and verifies the pull markers (see the module docstring; from
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

    # -- statuses, reviews, comments ---------------------------------------------------------

    def set_status(self, sha: str, status: CommitStatus) -> None:
        """Create a commit status on `sha` (GitHub keeps the latest per context).

        Raises ForgeIdentityError if GitHub records the status as created by another login
        than `identity`: `list_statuses` would never see promoter's own statuses again, so
        every gate would wait forever. The status was written; the configuration is wrong.
        """
        payload: dict[str, Any] = {"state": StatusState(status.state).value,
                                   "description": status.description[:140],
                                   "context": status.context}
        if status.target_url is not None:
            payload["target_url"] = status.target_url
        with self._calls(f"setting status {status.context} on {sha[:12]}"):
            _, data = self._client.requester.requestJsonAndCheck(
                "POST", f"{self._repo.url}/statuses/{urllib.parse.quote(sha, safe='')}",
                input=payload)
        creator = ((data or {}).get("creator") or {}).get("login")
        if not isinstance(creator, str) or not self._is_identity(creator):
            raise ForgeIdentityError(
                f"GitHub records promoter's statuses as created by {creator or 'nobody'}, "
                f"but promoter trusts only statuses by {self._identity.strip()}",
                fix=f"set forge.github.identity to {creator} (the login of promoter's "
                    "credentials) in promoter.yaml" if creator else
                    "check promoter's GitHub credentials")

    def list_statuses(self, sha: str) -> list[CommitStatus]:
        """The latest status per context on `sha`, sorted by context ([] for no commit).

        Promoter's own contexts (`promoter/...`) count only when promoter's `identity`
        created them (logins compared case-insensitively): anyone with write access can post
        a status named `promoter/evaluation`, and the service reads these statuses back as
        verdicts (e.g. a cached evaluation). Such a foreign status is skipped, so promoter's
        own latest status of that context, if any, is returned. Other tools' contexts are
        returned whoever set them, as before. Reads `GET .../commits/{sha}/statuses` (every
        status, newest first, with its creator; the combined status has no creator).
        """
        from github.CommitStatus import CommitStatus as RawStatus
        from github.PaginatedList import PaginatedList

        url = f"{self._repo.url}/commits/{urllib.parse.quote(sha, safe='')}/statuses"
        latest: dict[str, CommitStatus] = {}
        try:
            for s in PaginatedList(RawStatus, self._client.requester, url, {"per_page": 100}):
                if s.context in latest:
                    continue  # newest first: a context's first status is its latest
                if s.context.startswith(PROMOTER_CONTEXT_PREFIX) and not self._is_identity(
                        s.creator.login if s.creator is not None else ""):
                    continue
                latest[s.context] = CommitStatus(context=s.context, state=StatusState(s.state),
                                                 description=s.description or "",
                                                 target_url=s.target_url)
        except _github_exception() as exc:
            if getattr(exc, "status", None) in (404, 422):
                return []
            raise self._error(exc, f"reading statuses of {sha[:12]}") from exc
        except _transport_exceptions() as exc:
            raise ForgeError(f"reading statuses of {sha[:12]}: GitHub unreachable: "
                             f"{type(exc).__name__}") from exc
        return [latest[c] for c in sorted(latest)]

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

    # -- capabilities beyond the port --------------------------------------------------------

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

    def external_checks_state(self, pull: PullRequest) -> ExternalChecks:
        """The required checks of `pull`'s base branch protection on the PR's live head,
        promoter's own `promoter/...` contexts excluded.

        FAILURE if one failed, PENDING if one has not reported or not finished, SUCCESS
        otherwise (also when the branch is unprotected or requires nothing else). Commit
        statuses and check runs both count, by context / check name.
        """
        base = urllib.parse.quote(pull.base_branch, safe="")
        with self._calls(f"reading required checks of {pull.base_branch}"):
            try:
                _, data = self._client.requester.requestJsonAndCheck(
                    "GET", f"{self._repo.url}/branches/{base}/protection/required_status_checks")
            except _github_exception() as exc:
                if getattr(exc, "status", None) != 404:
                    raise
                data = {}  # not protected, or no required checks
            required = set(data.get("contexts") or [])
            required |= {c["context"] for c in data.get("checks") or []}
            required = {c for c in required if not c.startswith(PROMOTER_CONTEXT_PREFIX)}
            if not required:
                return ExternalChecks(StatusState.SUCCESS, "no external checks required")
            commit = self._repo.get_commit(pull.head_sha)
            states: dict[str, str] = {}
            for s in commit.get_combined_status().statuses:
                states.setdefault(s.context, s.state)  # newest first
            for run in commit.get_check_runs():
                if run.status != "completed":
                    verdict = "pending"
                elif (run.conclusion or "") in _PASSING_CONCLUSIONS:
                    verdict = "success"
                else:
                    verdict = "failure"
                if states.get(run.name) != "failure":  # any failing run of a name fails it
                    states[run.name] = verdict
        failing = tuple(sorted(c for c in required if states.get(c) in ("failure", "error")))
        pending = tuple(sorted(c for c in required
                               if c not in failing and states.get(c) != "success"))
        if failing:
            return ExternalChecks(StatusState.FAILURE,
                                  _fit("required check failing: " + ", ".join(failing)),
                                  failing, pending)
        if pending:
            return ExternalChecks(StatusState.PENDING,
                                  _fit("waiting for required check: " + ", ".join(pending)),
                                  failing, pending)
        return ExternalChecks(StatusState.SUCCESS,
                              _fit("required checks passed: " + ", ".join(sorted(required))))

    def publish_check_run(self, sha: str, *, name: str, state: StatusState, title: str,
                          summary: str, text: str | None = None) -> int:
        """Publish a report as the check run `name` on `sha` (Checks API), edited in place if
        a run of that name exists there already; return its id.

        SUCCESS/FAILURE/ERROR complete the run (`success` / `failure`); PENDING leaves it
        `in_progress`. GitHub accepts check runs from GitHub Apps only; with a token it
        answers 403, which becomes a ForgeError (use commit statuses, which every token can
        write). Summary and text are cut to GitHub's 65,535 characters. Only a run promoter's
        App created (`<slug>[bot]` is `identity`) is edited; another App's run of the same
        name is left alone.
        """
        output: dict[str, str] = {"title": title[:1000], "summary": summary[:65535]}
        if text is not None:
            output["text"] = text[:65535]
        fields: dict[str, Any] = {"output": output}
        if state is StatusState.PENDING:
            fields["status"] = "in_progress"
        else:
            fields["status"] = "completed"
            fields["conclusion"] = "success" if state is StatusState.SUCCESS else "failure"
            fields["completed_at"] = datetime.now(UTC)
        with self._calls(f"publishing check run {name} on {sha[:12]}"):
            for run in self._repo.get_commit(sha).get_check_runs(check_name=name):
                # Another App may publish a run of the same name: never take it for ours
                # (GitHub would refuse the edit, and the report would be lost).
                if run.name == name and run.app is not None and self._is_identity(
                        f"{run.app.slug}[bot]"):
                    run.edit(**fields)
                    return int(run.id)
            created = self._repo.create_check_run(name=name, head_sha=sha, **fields)
            return int(created.id)

    # -- helpers -----------------------------------------------------------------------------

    def _signature(self, *, head_branch: str, base_branch: str, author: str,
                   head: str) -> str:
        """HMAC-SHA256 (hex) of what a pull marker vouches for, bound to this repository
        (names compared as GitHub does, case-insensitively) and the PR's branches."""
        message = json.dumps({"repository": self._full_name.casefold(),
                              "head_branch": head_branch, "base_branch": base_branch,
                              "author": author, "head": head},
                             sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hmac.new(self._marker_key, _MARKER_LABEL + message.encode(),
                        hashlib.sha256).hexdigest()

    def _with_marker(self, body: str, *, head_branch: str, base_branch: str, author: str,
                     head: str) -> str:
        sig = self._signature(head_branch=head_branch, base_branch=base_branch,
                              author=author, head=head)
        meta = json.dumps({"author": author, "head": head, "sig": sig}, sort_keys=True)
        return f"{_without_pull_marker(body)}\n\n<!-- promoter:pull {meta} -->"

    def _verified(self, raw: github.PullRequest.PullRequest) -> _PullMeta | None:
        """The PR's pull marker if its signature verifies for this PR's branches, else None
        (no marker, not JSON, a field missing, or signed for something else)."""
        markers = list(_PULL_MARKER.finditer(raw.body or ""))
        if not markers:
            return None
        try:
            data = json.loads(markers[-1].group(1))
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        author, head, sig = data.get("author"), data.get("head"), data.get("sig")
        if not (isinstance(author, str) and isinstance(head, str) and isinstance(sig, str)
                and author and head):
            return None
        expected = self._signature(head_branch=raw.head.ref, base_branch=raw.base.ref,
                                   author=author, head=head)
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            return None
        return _PullMeta(author=author, head=head)

    def _untrusted(self, raw: github.PullRequest.PullRequest) -> UntrustedPullRequestError:
        number = raw.number
        why = ("does not verify" if _PULL_MARKER.search(raw.body or "")
               else "is missing")
        log.warning("pull request #%d: its promoter marker %s; not acted on", number, why)
        return UntrustedPullRequestError(
            f"pull request #{number}: promoter's signed marker in its description {why}, so "
            "who proposed it and which head promoter wrote cannot be trusted; promoter does "
            "not act on it",
            fix=f"close #{number} and propose the promotion again (if forge.github's marker "
                "key or the App key changed, every open promotion needs this)")

    def _is_identity(self, login: str) -> bool:
        """Whether `login` is promoter's own (GitHub logins are case-insensitive)."""
        return bool(login.strip()) and login_key(login) == login_key(self._identity)

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

    def _issue(self, number: int) -> Any:
        return self._repo.get_issue(number)

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
        )

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


def _without_pull_marker(body: str) -> str:
    return _PULL_MARKER.sub("", body)


def _comment_key(body: str | None) -> str | None:
    match = _KEY_MARKER.search(body or "")
    return match.group(1) if match else None


def _to_comment(raw: Any, key: str) -> Comment:
    return Comment(id=raw.id, key=key, body=_KEY_MARKER.sub("", raw.body or ""),
                   updated_at=_aware(raw.updated_at))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _fit(text: str) -> str:
    return text if len(text) <= 140 else text[:139] + "…"

