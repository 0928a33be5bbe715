"""What GitHub says about a commit: commit statuses, required checks and check runs.

The status half of the `Forge` port (`set_status`, `list_statuses`) and two capabilities
beyond it (`external_checks_state`, `publish_check_run`), kept apart from the pull-request
operations in `github`: these read and write per commit, not per pull request, and only here
does promoter's `identity` decide whose statuses are believed.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from promoter.domain.pull_requests import CommitStatus, PullRequest, StatusState, login_key
from promoter.errors import ForgeError, ForgeIdentityError
from promoter.forge.capabilities import ExternalChecks
from promoter.forge.github_calls import GitHubCalls, _github_exception, _transport_exceptions

PROMOTER_CONTEXT_PREFIX = "promoter/"
"""Statuses promoter sets itself; not 'external' checks."""
_PASSING_CONCLUSIONS = {"success", "neutral", "skipped"}


class GitHubChecks(GitHubCalls):
    """Mixin of `GitHubForge`: statuses and checks of the commits of `_repo`, as `_identity`."""

    _identity: str

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
                                                 target_url=s.target_url,
                                                 created_at=s.created_at)
        except _github_exception() as exc:
            if getattr(exc, "status", None) in (404, 422):
                return []
            raise self._error(exc, f"reading statuses of {sha[:12]}") from exc
        except _transport_exceptions() as exc:
            raise ForgeError(f"reading statuses of {sha[:12]}: GitHub unreachable: "
                             f"{type(exc).__name__}") from exc
        return [latest[c] for c in sorted(latest)]

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
                          summary: str, text: str | None = None,
                          details_url: str | None = None) -> int:
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
        if details_url is not None:
            fields["details_url"] = details_url
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

    def _is_identity(self, login: str) -> bool:
        """Whether `login` is promoter's own (GitHub logins are case-insensitive)."""
        return bool(login.strip()) and login_key(login) == login_key(self._identity)


def _fit(text: str) -> str:
    return text if len(text) <= 140 else text[:139] + "…"

