"""A fake GitHub REST API on 127.0.0.1, for the real PyGithub client to talk to.

Its git side is a real repository (through promoter's `LocalGitRepository`): branch heads are
read from it, and merges write a real merge commit and move the base branch (fast-forward,
compare-and-swap), so "the head moved" and "the base moved" are real.

Honesty: every response object starts from GitHub's documented example for the operation
(`components/examples` in `promoter/schemas/github/github-subset.json`), rebased on the URL the
client uses (PyGithub asserts every `url` has its base URL's scheme, host and port), with the
fake's state written over it. Every response it sends is recorded (`responses`) and the
`fake_github` fixture validates them all against the description at teardown.

Faults: `fail_next(method, path_regex, status, ...)` makes the next matching request answer
with that status (a 502, a secondary rate limit 403 with or without Retry-After); such answers
are recorded as injected and checked as `basic-error` bodies.

Counting: `requests` lists every `(METHOD, path)` received, for API-call budgets.

Who: each token acts as a login (`tokens`; `add_user` makes one for a person or another tool),
and what it writes records it, as GitHub does: a status's `creator`, a comment's `user`, a
check run's `app` (an installation token acts as `<app slug>[bot]`).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from promoter.errors import ConcurrentUpdateError
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import Signature
from tests.github.openapi import DESCRIPTION, RecordedResponse, example

DOCS = "https://docs.github.com/rest"
_REPO = "/repos/{owner}/{repo}"
GITHUB_SIGNATURE = Signature(name="GitHub", email="noreply@github.com")


@functools.cache
def _simple_pull_fields() -> frozenset[str]:
    schemas = json.loads(DESCRIPTION.read_text())["components"]["schemas"]
    return frozenset(schemas["pull-request-simple"]["properties"])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "documentation_url": DOCS}, status)


def _not_found() -> JSONResponse:
    return _error(404, "Not Found")


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    after: bool = False
    """Do the request, then answer the fault: the answer was lost on the way back."""


@dataclass
class _App:
    app_id: int
    installation_id: int
    public_key: str
    token_ttl: timedelta
    issued: list[str] = field(default_factory=list)


class FakeGitHub:
    """State and HTTP face of one fake GitHub repository `owner/name` over `repo_path`."""

    def __init__(self, repo_path: Path, *, owner: str = "acme", name: str = "gitops",
                 bot: str = "promoter-bot", token: str = "ghp_fake_token_0123456789",
                 path_prefix: str = "") -> None:
        self.git = LocalGitRepository(repo_path)
        self.owner, self.name, self.bot = owner, name, bot
        self.base_url = ""
        self.path_prefix = path_prefix
        """`/api/v3` serves the API the way GitHub Enterprise Server does."""
        self.lock = threading.RLock()
        self.tokens: dict[str, str] = {token: bot}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.check_runs: dict[str, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.required_checks: dict[str, list[str]] = {}
        self.teams: dict[tuple[str, str], dict[str, str]] = {}
        self.app: _App | None = None
        self.requests: list[tuple[str, str]] = []
        self.responses: list[RecordedResponse] = []
        self._faults: list[_Fault] = []
        self._examples: dict[str, Any] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1000)
        self._numbers = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def html_root(self) -> str:
        """Where the site's pages are: the server's root, without the API's `/api/v3` (a
        GitHub Enterprise Server's `html_url`s are `https://HOST/OWNER/NAME/...`)."""
        return self.base_url.removesuffix(self.path_prefix) if self.path_prefix else self.base_url

    # -- test controls -----------------------------------------------------------------------

    def fail_next(self, method: str, path: str, status: int, *, message: str = "Server Error",
                  headers: dict[str, str] | None = None, times: int = 1,
                  after_doing_it: bool = False) -> None:
        """The next `times` requests matching `method` and the regex `path` answer `status`
        (with `after_doing_it`, the request is carried out first and only its answer lost)."""
        for _ in range(times):
            self._faults.append(_Fault(method.upper(), re.compile(path), status, headers or {},
                                       {"message": message, "documentation_url": DOCS},
                                       after=after_doing_it))

    def add_review(self, number: int, *, user: str, state: str, commit: str | None = None) -> None:
        """`user` submits a review (`APPROVED`, `CHANGES_REQUESTED`, ...) on the PR's head."""
        with self.lock:
            pull = self._settled(number)
            assert pull is not None, number
            self.reviews.setdefault(number, []).append({
                "id": next(self._ids), "user": user, "state": state, "body": "",
                "commit_id": commit or pull["head_sha"], "submitted_at": _iso(_now())})

    def add_check_run(self, sha: str, *, name: str, status: str = "completed",
                      conclusion: str | None = "success", app: str = "ci-app") -> None:
        """A check run the GitHub App `app` (its slug; default: another tool's) created."""
        with self.lock:
            self.check_runs.setdefault(sha, []).insert(0, {
                "id": next(self._ids), "sha": sha, "name": name, "status": status,
                "conclusion": conclusion if status == "completed" else None, "app": app})

    def add_external_status(self, sha: str, *, context: str, state: str,
                            creator: str = "ci-bot") -> None:
        """A status `creator` (default: another tool's bot) set on `sha`."""
        with self.lock:
            self._add_status(sha, {"state": state, "context": context,
                                   "description": f"{context}: {state}"}, creator=creator)

    def add_user(self, login: str) -> str:
        """A token that acts as `login` (a person with write access, another tool's bot):
        what it writes is recorded as created by `login`."""
        with self.lock:
            token = f"ghp_user_{login}_{next(self._ids)}"
            self.tokens[token] = login
            return token

    def set_team(self, org: str, slug: str, members: dict[str, str]) -> None:
        """Team `org/slug` with `{user: "active" | "pending"}`."""
        self.teams[(org, slug)] = dict(members)

    def enable_app(self, *, app_id: int, installation_id: int, public_key_pem: str,
                   token_ttl: timedelta = timedelta(hours=1)) -> None:
        self.app = _App(app_id, installation_id, public_key_pem, token_ttl)

    def count(self, method: str | None = None) -> int:
        return sum(1 for m, _ in self.requests if method is None or m == method)

    # -- server ------------------------------------------------------------------------------

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it (Linux): without it Nagle's algorithm and delayed ACKs
        # hold every kept-alive answer's body back by 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}{self.path_prefix}"
        config = uvicorn.Config(_Recorder(self, self._build_app()), log_level="warning",
                                lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake GitHub did not start")
            time.sleep(0.01)
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- JSON objects ------------------------------------------------------------------------

    def _example(self, name: str) -> Any:
        cached = self._examples.get(name)
        if cached is None:
            value = example(name, self.base_url)
            text = json.dumps(value).replace("octocat/Hello-World", f"{self.owner}/{self.name}")
            cached = self._examples[name] = json.loads(text)
        return copy.deepcopy(cached)

    @property
    def _repo_url(self) -> str:
        return f"{self.base_url}/repos/{self.owner}/{self.name}"

    def _user(self, login: str) -> dict[str, Any]:
        if login in self._users:
            return copy.deepcopy(self._users[login])
        user = self._example("pull-request")["user"]
        text = json.dumps(user).replace("octocat", login)
        data = self._users[login] = json.loads(text)
        data.update(login=login, id=abs(hash(login)) % 10_000_000, type="User",
                    site_admin=False)
        return copy.deepcopy(data)

    def _label(self, name: str) -> dict[str, Any]:
        label = copy.deepcopy(self._example("pull-request")["labels"][0])
        label.update(name=name, url=f"{self._repo_url}/labels/{name}", default=False,
                     description="", id=abs(hash(name)) % 10_000_000)
        return label

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        n = pull["number"]
        data = self._example("pull-request")
        url = f"{self._repo_url}/pulls/{n}"
        issue = f"{self._repo_url}/issues/{n}"
        html = f"{self.html_root}/{self.owner}/{self.name}/pull/{n}"
        base_sha = self.git.branch_head(pull["base"]) or pull["head_sha"]
        for side, ref, sha in (("head", pull["head"], pull["head_sha"]),
                               ("base", pull["base"], base_sha)):
            data[side].update(ref=ref, sha=sha, label=f"{self.owner}:{ref}",
                              user=self._user(self.owner))
        merged = pull["merged_at"] is not None
        data.update(
            url=url, id=n * 7919, node_id=f"PR_{n}", html_url=html, diff_url=f"{html}.diff",
            patch_url=f"{html}.patch", issue_url=issue, commits_url=f"{url}/commits",
            review_comments_url=f"{url}/comments",
            review_comment_url=f"{self._repo_url}/pulls/comments{{/number}}",
            comments_url=f"{issue}/comments",
            statuses_url=f"{self._repo_url}/statuses/{pull['head_sha']}", number=n,
            state=pull["state"], locked=False, title=pull["title"], user=self._user(self.bot),
            body=pull["body"], labels=[self._label(name) for name in pull["labels"]],
            milestone=None, active_lock_reason=None, created_at=pull["created_at"],
            updated_at=pull["updated_at"], closed_at=pull["closed_at"],
            merged_at=pull["merged_at"], merge_commit_sha=pull["merge_commit_sha"],
            assignee=None, assignees=[], requested_reviewers=[], requested_teams=[],
            author_association="NONE", auto_merge=None, draft=False, merged=merged,
            mergeable=None if merged else True, rebaseable=None,
            mergeable_state="unknown" if merged else "clean",
            merged_by=self._user(self.bot) if merged else None,
            comments=sum(1 for c in self.comments.values() if c["issue"] == n),
            review_comments=0, maintainer_can_modify=False, commits=1, additions=1,
            deletions=0, changed_files=1,
        )
        data["_links"] = {
            "self": {"href": url}, "html": {"href": html}, "issue": {"href": issue},
            "comments": {"href": f"{issue}/comments"},
            "review_comments": {"href": f"{url}/comments"},
            "review_comment": {"href": f"{self._repo_url}/pulls/comments{{/number}}"},
            "commits": {"href": f"{url}/commits"},
            "statuses": {"href": f"{self._repo_url}/statuses/{pull['head_sha']}"},
        }
        return data

    def _comment_json(self, comment: dict[str, Any]) -> dict[str, Any]:
        data = self._example("issue-comment")
        data.update(id=comment["id"], node_id=f"IC_{comment['id']}",
                    url=f"{self._repo_url}/issues/comments/{comment['id']}",
                    html_url=(f"{self.html_root}/{self.owner}/{self.name}/pull/"
                              f"{comment['issue']}#issuecomment-{comment['id']}"),
                    body=comment["body"], user=self._user(comment["user"]),
                    created_at=comment["created_at"], updated_at=comment["updated_at"],
                    issue_url=f"{self._repo_url}/issues/{comment['issue']}",
                    author_association="NONE", performed_via_github_app=None)
        data.pop("reactions", None)
        return data

    def _status_json(self, status: dict[str, Any], *, simple: bool) -> dict[str, Any]:
        data = self._example("status")
        data.update(id=status["id"], node_id=f"ST_{status['id']}", state=status["state"],
                    description=status["description"], target_url=status["target_url"],
                    context=status["context"], created_at=status["created_at"],
                    updated_at=status["created_at"],
                    url=f"{self._repo_url}/statuses/{status['sha']}",
                    creator=self._user(status["creator"]))
        if simple:
            data.pop("creator")
        return data

    # -- git and PR state --------------------------------------------------------------------

    def _settled(self, number: int) -> dict[str, Any] | None:
        """The PR, with its head following the branch while open, and recorded as merged if
        its head already reached its base (GitHub does the same)."""
        pull = self.pulls.get(number)
        if pull is None or pull["state"] != "open":
            return pull
        live = self.git.branch_head(pull["head"])
        if live is not None and live != pull["head_sha"]:
            pull["head_sha"] = live
            pull["updated_at"] = _iso(_now())
        base = self.git.branch_head(pull["base"])
        if base is not None and self.git.is_ancestor(pull["head_sha"], base):
            commit = base
            while True:
                parents = self.git.commit_info(commit).parents
                if not parents or not self.git.is_ancestor(pull["head_sha"], parents[0]):
                    break
                commit = parents[0]
            now = _iso(_now())
            pull.update(state="closed", merged_at=now, closed_at=now, updated_at=now,
                        merge_commit_sha=commit)
        return pull

    def _add_status(self, sha: str, body: dict[str, Any], *, creator: str) -> dict[str, Any]:
        status = {"id": next(self._ids), "sha": sha, "state": body["state"],
                  "context": body.get("context") or "default",
                  "description": body.get("description"),
                  "target_url": body.get("target_url"), "created_at": _iso(_now()),
                  "creator": creator}
        self.statuses.setdefault(sha, []).insert(0, status)
        return status

    def _full_sha(self, ref: str) -> str | None:
        try:
            return self.git.commit_info(self.git.branch_head(ref) or ref).sha
        except Exception:
            return None

    # -- HTTP --------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        """The route table, in GitHub's order of resources (the order of registration
        matters where paths overlap: `/branches/{branch:path}/protection/...` comes first)."""
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        for routes in (self._auth_routes, self._pulls_routes, self._pull_routes,
                       self._merge_route, self._review_and_comment_routes,
                       self._status_routes, self._check_run_routes, self._branch_routes,
                       self._team_routes):
            routes(app)
        return app

    def _ours(self, owner: str, name: str) -> bool:
        return (owner, name) == (self.owner, self.name)

    def _check_run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        data = self._example("check-run")
        data.update(id=run["id"], name=run["name"], status=run["status"],
                    conclusion=run["conclusion"], head_sha=run["sha"],
                    node_id=f"CR_{run['id']}", external_id="",
                    url=f"{self._repo_url}/check-runs/{run['id']}",
                    html_url=f"{self.html_root}/{self.owner}/{self.name}/runs/{run['id']}",
                    details_url=run.get("details_url"), started_at=_iso(_now()),
                    completed_at=_iso(_now()) if run["conclusion"] else None,
                    pull_requests=[])
        slug = run["app"]
        data["app"].update(id=abs(hash(slug)) % 10_000_000, slug=slug, name=slug,
                           node_id=f"A_{slug}")
        data["output"].update(title=run.get("title"), summary=run.get("summary"),
                              text=run.get("text"), annotations_count=0,
                              annotations_url=f"{self._repo_url}/check-runs/"
                                              f"{run['id']}/annotations")
        return data

    def _auth_routes(self, app: FastAPI) -> None:
        """Installation access tokens (GitHub App authentication)."""
        @app.post("/app/installations/{installation_id}/access_tokens")
        def access_token(installation_id: int, request: Request) -> Response:
            with self.lock:
                claims = self._app_claims(request)
                if self.app is None or claims is None:
                    return _error(401, "A JSON web token could not be decoded")
                if installation_id != self.app.installation_id:
                    return _not_found()
                token = f"ghs_installation_{len(self.app.issued)}_{next(self._ids)}"
                self.app.issued.append(token)
                self.tokens[token] = f"{self.bot}[bot]"
                data = self._example("installation-token")
                data.update(token=token, expires_at=_iso(_now() + self.app.token_ttl))
                data.pop("repositories", None)
                return JSONResponse(data, 201)

    def _pulls_routes(self, app: FastAPI) -> None:
        """Listing and opening pull requests, with GitHub's validation errors."""
        @app.get(_REPO + "/pulls")
        def list_pulls(owner: str, repo: str, request: Request) -> Response:
            if not self._ours(owner, repo):
                return _not_found()
            q = request.query_params
            with self.lock:
                pulls = [self._settled(n) for n in sorted(self.pulls)]
                state = q.get("state", "open")
                out = [p for p in pulls if p is not None
                       and (state == "all" or p["state"] == state)
                       and ("head" not in q or f"{self.owner}:{p['head']}" == q["head"])
                       and ("base" not in q or p["base"] == q["base"])]
                if q.get("direction", "desc") == "desc":
                    out.reverse()
                # Lists hold `pull-request-simple` objects: no `merged`, `mergeable`, ...
                # (a client reading those from a listed PR would fetch each PR again).
                keep = _simple_pull_fields()
                return JSONResponse([{k: v for k, v in self._pull_json(p).items() if k in keep}
                                     for p in out])

        @app.post(_REPO + "/pulls")
        async def create_pull(owner: str, repo: str, request: Request) -> Response:
            if not self._ours(owner, repo):
                return _not_found()
            body = await request.json()
            with self.lock:
                head, base = body.get("head", ""), body.get("base", "")
                head = head.split(":", 1)[1] if ":" in head else head
                head_sha, base_sha = self.git.branch_head(head), self.git.branch_head(base)
                if head_sha is None or base_sha is None:
                    return JSONResponse({"message": "Validation Failed", "documentation_url":
                                         DOCS, "errors": [{"resource": "PullRequest",
                                                           "field": "head" if head_sha is None
                                                           else "base", "code": "invalid"}]},
                                        422)
                for n in self.pulls:
                    p = self._settled(n)
                    if p and p["state"] == "open" and (p["head"], p["base"]) == (head, base):
                        return JSONResponse({"message": "Validation Failed",
                                             "documentation_url": DOCS, "errors": [{
                                                 "resource": "PullRequest", "code": "custom",
                                                 "message": "A pull request already exists "
                                                 f"for {self.owner}:{head}."}]}, 422)
                if self.git.is_ancestor(head_sha, base_sha):
                    return JSONResponse({"message": "Validation Failed",
                                         "documentation_url": DOCS, "errors": [{
                                             "resource": "PullRequest", "code": "custom",
                                             "message": f"No commits between {base} and "
                                             f"{head}"}]}, 422)
                now = _iso(_now())
                number = next(self._numbers)
                self.pulls[number] = {
                    "number": number, "head": head, "base": base, "head_sha": head_sha,
                    "title": body["title"], "body": body.get("body"), "state": "open",
                    "labels": [], "created_at": now, "updated_at": now, "closed_at": None,
                    "merged_at": None, "merge_commit_sha": None}
                return JSONResponse(self._pull_json(self.pulls[number]), 201)

    def _pull_routes(self, app: FastAPI) -> None:
        """Reading and editing one pull request."""
        @app.get(_REPO + "/pulls/{number}")
        def get_pull(owner: str, repo: str, number: int) -> Response:
            with self.lock:
                pull = self._settled(number) if self._ours(owner, repo) else None
                return JSONResponse(self._pull_json(pull)) if pull else _not_found()

        @app.patch(_REPO + "/pulls/{number}")
        async def edit_pull(owner: str, repo: str, number: int, request: Request) -> Response:
            body = await request.json()
            with self.lock:
                pull = self._settled(number) if self._ours(owner, repo) else None
                if pull is None:
                    return _not_found()
                for key in ("title", "body"):
                    if key in body:
                        pull[key] = body[key]
                if body.get("state") == "closed" and pull["state"] == "open":
                    pull["state"], pull["closed_at"] = "closed", _iso(_now())
                pull["updated_at"] = _iso(_now())
                return JSONResponse(self._pull_json(pull))

    def _merge_route(self, app: FastAPI) -> None:
        """Merging, guarded on the head sha, the base and the required checks."""
        @app.put(_REPO + "/pulls/{number}/merge")
        async def merge(owner: str, repo: str, number: int, request: Request) -> Response:
            body = await request.json() if await request.body() else {}
            with self.lock:
                pull = self._settled(number) if self._ours(owner, repo) else None
                if pull is None:
                    return _not_found()
                if pull["state"] != "open":
                    return _error(405, "Pull Request is not mergeable")
                if body.get("sha") and body["sha"] != pull["head_sha"]:
                    return _error(409, "Head branch was modified. Review and try the merge "
                                 "again.")
                method = body.get("merge_method", "merge")
                if method not in ("merge", "squash"):
                    return _error(405, f"{method} merges are not allowed on this repository")
                base_sha = self.git.branch_head(pull["base"])
                if base_sha is None or not self.git.is_ancestor(base_sha, pull["head_sha"]):
                    return _error(405, "Base branch was modified. Review and try the merge "
                                 "again.")
                missing = self._unsatisfied_checks(pull)
                if missing:
                    return _error(405, f"Required status check \"{missing[0]}\" is expected.")
                head = pull["head_sha"]
                files = {p: self.git.read_file(head, p) or b"" for p in self.git.list_files(head)}
                title = body.get("commit_title") or f"Merge pull request #{number}"
                message = title + ("\n\n" + body["commit_message"]
                                   if body.get("commit_message") else "")
                parents = [base_sha, head] if method == "merge" else [base_sha]
                sha = self.git.create_commit(files=files, parents=parents, message=message,
                                             author=GITHUB_SIGNATURE)
                try:
                    self.git.update_branch(pull["base"], sha, expected=base_sha,
                                           fast_forward_only=True)
                except ConcurrentUpdateError:
                    return _error(405, "Base branch was modified. Review and try the merge "
                                 "again.")
                now = _iso(_now())
                pull.update(state="closed", merged_at=now, closed_at=now, updated_at=now,
                            merge_commit_sha=sha)
                return JSONResponse({"sha": sha, "merged": True,
                                     "message": "Pull Request successfully merged"})

    def _review_and_comment_routes(self, app: FastAPI) -> None:
        """Reviews, issue comments and labels."""
        @app.get(_REPO + "/pulls/{number}/reviews")
        def reviews(owner: str, repo: str, number: int) -> Response:
            with self.lock:
                pull = self._settled(number) if self._ours(owner, repo) else None
                if pull is None:
                    return _not_found()
                out = []
                template = self._example("pull-request-review-items")[0]
                for r in self.reviews.get(number, []):
                    data = copy.deepcopy(template)
                    data.update(id=r["id"], node_id=f"PRR_{r['id']}", user=self._user(r["user"]),
                                body=r["body"], state=r["state"], commit_id=r["commit_id"],
                                submitted_at=r["submitted_at"], author_association="MEMBER",
                                html_url=(f"{self.html_root}/{self.owner}/{self.name}/pull/"
                                          f"{number}#pullrequestreview-{r['id']}"),
                                pull_request_url=f"{self._repo_url}/pulls/{number}")
                    data["_links"] = {"html": {"href": data["html_url"]},
                                      "pull_request": {"href": data["pull_request_url"]}}
                    out.append(data)
                return JSONResponse(out)

        @app.get(_REPO + "/issues/{number}/comments")
        def list_comments(owner: str, repo: str, number: int) -> Response:
            with self.lock:
                if not self._ours(owner, repo) or number not in self.pulls:
                    return _not_found()
                out = [self._comment_json(c) for c in sorted(self.comments.values(),
                                                             key=lambda c: c["id"])
                       if c["issue"] == number]
                return JSONResponse(out)

        @app.post(_REPO + "/issues/{number}/comments")
        async def create_comment(owner: str, repo: str, number: int,
                                 request: Request) -> Response:
            body = await request.json()
            with self.lock:
                if not self._ours(owner, repo) or number not in self.pulls:
                    return _not_found()
                now = _iso(_now())
                comment = {"id": next(self._ids), "issue": number, "body": body["body"],
                           "user": self._login(request), "created_at": now, "updated_at": now}
                self.comments[comment["id"]] = comment
                return JSONResponse(self._comment_json(comment), 201)

        @app.patch(_REPO + "/issues/comments/{comment_id}")
        async def edit_comment(owner: str, repo: str, comment_id: int,
                               request: Request) -> Response:
            body = await request.json()
            with self.lock:
                comment = self.comments.get(comment_id) if self._ours(owner, repo) else None
                if comment is None:
                    return JSONResponse({"message": "Validation Failed",
                                         "documentation_url": DOCS}, 422)
                comment.update(body=body["body"], updated_at=_iso(_now()))
                return JSONResponse(self._comment_json(comment))

        @app.post(_REPO + "/issues/{number}/labels")
        async def add_labels(owner: str, repo: str, number: int, request: Request) -> Response:
            body = await request.json()
            names = body.get("labels", []) if isinstance(body, dict) else body
            with self.lock:
                pull = self.pulls.get(number) if self._ours(owner, repo) else None
                if pull is None:
                    return _not_found()
                added = [n for n in names if n not in pull["labels"]]
                if added:
                    pull["labels"].extend(added)
                    pull["updated_at"] = _iso(_now())
                return JSONResponse([self._label(n) for n in pull["labels"]])

    def _status_routes(self, app: FastAPI) -> None:
        """Commit statuses: created, listed with their creator, combined."""
        @app.post(_REPO + "/statuses/{sha}")
        async def create_status(owner: str, repo: str, sha: str, request: Request) -> Response:
            body = await request.json()
            with self.lock:
                full = self._full_sha(sha) if self._ours(owner, repo) else None
                if full is None or full != sha:
                    return _error(422, f"No commit found for SHA: {sha}")
                status = self._add_status(full, body, creator=self._login(request))
                return JSONResponse(self._status_json(status, simple=False), 201)

        @app.get(_REPO + "/commits/{ref}/statuses")
        def list_statuses(owner: str, repo: str, ref: str, request: Request) -> Response:
            """Every status on the commit, newest first, with its `creator`; paginated with
            a `Link` header as GitHub does (`per_page` at most 100)."""
            q = request.query_params
            per_page = min(max(int(q.get("per_page", 30)), 1), 100)
            page = max(int(q.get("page", 1)), 1)
            with self.lock:
                sha = self._full_sha(ref) if self._ours(owner, repo) else None
                every = self.statuses.get(sha or "", [])
                chunk = every[(page - 1) * per_page:page * per_page]
                out = [self._status_json(s, simple=False) for s in chunk]
            headers = {}
            if page * per_page < len(every):
                url = f"{self._repo_url}/commits/{ref}/statuses"
                headers["Link"] = (f'<{url}?per_page={per_page}&page={page + 1}>; rel="next"')
            return JSONResponse(out, headers=headers)

        @app.get(_REPO + "/commits/{ref}/status")
        def combined_status(owner: str, repo: str, ref: str) -> Response:
            with self.lock:
                sha = self._full_sha(ref) if self._ours(owner, repo) else None
                if sha is None:
                    return _not_found()
                latest: dict[str, dict[str, Any]] = {}
                for s in self.statuses.get(sha, []):
                    latest.setdefault(s["context"], s)
                states = {s["state"] for s in latest.values()}
                state = ("failure" if states & {"failure", "error"}
                         else "pending" if "pending" in states or not states else "success")
                data = self._example("combined-commit-status")
                data.update(state=state, sha=sha, total_count=len(latest),
                            statuses=[self._status_json(s, simple=True)
                                      for s in latest.values()],
                            commit_url=f"{self._repo_url}/commits/{sha}",
                            url=f"{self._repo_url}/commits/{sha}/status")
                return JSONResponse(data)

    def _check_run_routes(self, app: FastAPI) -> None:
        """Check runs, owned by the app whose installation token made them."""
        @app.post(_REPO + "/check-runs")
        async def create_check_run(owner: str, repo: str, request: Request) -> Response:
            body = await request.json()
            with self.lock:
                sha = self._full_sha(body.get("head_sha", "")) if self._ours(owner, repo) else None
                if sha is None:
                    return _not_found()
                if not self._login(request).endswith("[bot]"):
                    return _error(403, "You must authenticate via a GitHub App.")
                # An installation token acts as `<app slug>[bot]`; the run is that app's.
                run: dict[str, Any] = {"id": next(self._ids), "name": body["name"],
                                       "sha": sha, "status": "queued", "conclusion": None,
                                       "app": self._login(request).removesuffix("[bot]")}
                _apply_check_run(run, body)
                self.check_runs.setdefault(sha, []).insert(0, run)
                return JSONResponse(self._check_run_json(run), 201)

        @app.patch(_REPO + "/check-runs/{run_id}")
        async def edit_check_run(owner: str, repo: str, run_id: int,
                                 request: Request) -> Response:
            body = await request.json()
            with self.lock:
                run = next((r for runs in self.check_runs.values() for r in runs
                            if r["id"] == run_id), None)
                if run is None or not self._ours(owner, repo):
                    return _not_found()
                _apply_check_run(run, body)
                return JSONResponse(self._check_run_json(run))

        @app.get(_REPO + "/commits/{ref}/check-runs")
        def check_runs(owner: str, repo: str, ref: str, request: Request) -> Response:
            with self.lock:
                sha = self._full_sha(ref) if self._ours(owner, repo) else None
                name = request.query_params.get("check_name")
                out = [self._check_run_json(r) for r in self.check_runs.get(sha or "", [])
                       if name is None or r["name"] == name]
                page = self._example("check-run-paginated")
                page.update(total_count=len(out), check_runs=out)
                return JSONResponse(page)

    def _branch_routes(self, app: FastAPI) -> None:
        """Branches, their required checks, and comparisons."""
        @app.get(_REPO + "/branches/{branch:path}/protection/required_status_checks")
        def required_checks(owner: str, repo: str, branch: str) -> Response:
            with self.lock:
                if not self._ours(owner, repo) or branch not in self.required_checks:
                    return _error(404, "Branch not protected")
                data = self._example("status-check-policy")
                url = f"{self._repo_url}/branches/{branch}/protection/required_status_checks"
                contexts = self.required_checks[branch]
                data.update(url=url, contexts_url=f"{url}/contexts", strict=False,
                            contexts=contexts,
                            checks=[{"context": c, "app_id": None} for c in contexts])
                return JSONResponse(data)

        @app.get(_REPO + "/branches/{branch:path}")
        def get_branch(owner: str, repo: str, branch: str) -> Response:
            with self.lock:
                sha = self.git.branch_head(branch) if self._ours(owner, repo) else None
                if sha is None:
                    return _error(404, "Branch not found")
                data = self._example("branch-get")
                data["name"] = branch
                data["commit"]["sha"] = sha
                data["commit"]["url"] = f"{self._repo_url}/commits/{sha}"
                data["protected"] = branch in self.required_checks
                return JSONResponse(data)

        @app.get(_REPO + "/compare/{basehead:path}")
        def compare(owner: str, repo: str, basehead: str) -> Response:
            base, _, head = basehead.partition("...")
            with self.lock:
                base_sha = self._full_sha(base) if self._ours(owner, repo) else None
                head_sha = self._full_sha(head) if self._ours(owner, repo) else None
                if base_sha is None or head_sha is None:
                    return _not_found()
                ahead = self._count(base_sha, head_sha)
                behind = self._count(head_sha, base_sha)
                status = ("identical" if ahead == behind == 0 else "ahead" if behind == 0
                          else "behind" if ahead == 0 else "diverged")
                data = self._example("commit-comparison")
                data.update(status=status, ahead_by=ahead, behind_by=behind,
                            total_commits=ahead, commits=[],
                            url=f"{self._repo_url}/compare/{basehead}")
                data.pop("files", None)
                return JSONResponse(data)

    def _team_routes(self, app: FastAPI) -> None:
        """Team memberships (the approver team)."""
        @app.get("/orgs/{org}/teams/{slug}/memberships/{user}")
        def membership(org: str, slug: str, user: str) -> Response:
            with self.lock:
                # Logins are case-insensitive on GitHub, in URLs too.
                members = {u.casefold(): s for u, s in self.teams.get((org, slug), {}).items()}
                state = members.get(user.casefold())
                if state is None:
                    return Response(status_code=404)
                data = self._example("team-membership-response-if-user-is-a-team-maintainer")
                data.update(state=state, role="member",
                            url=f"{self.base_url}/teams/1/memberships/{user}")
                return JSONResponse(data)

    def _count(self, since: str, until: str) -> int:
        """Commits reachable from `until` but not from `since`."""
        out = self.git._git("rev-list", "--count", until, f"^{since}")[1]
        return int(out.strip())

    def _unsatisfied_checks(self, pull: dict[str, Any]) -> list[str]:
        required = self.required_checks.get(pull["base"], [])
        latest: dict[str, str] = {}
        for s in self.statuses.get(pull["head_sha"], []):
            latest.setdefault(s["context"], s["state"])
        for run in self.check_runs.get(pull["head_sha"], []):
            if run["conclusion"] == "success":
                latest.setdefault(run["name"], "success")
        return [c for c in required if latest.get(c) != "success"]

    def _login(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        return self.tokens.get(header.split(" ", 1)[-1], "anonymous")

    def _app_claims(self, request: Request) -> dict[str, Any] | None:
        header = request.headers.get("authorization", "")
        if self.app is None or not header.startswith("Bearer "):
            return None
        try:
            claims: dict[str, Any] = jwt.decode(header.removeprefix("Bearer "),
                                                self.app.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return None
        if str(claims.get("iss")) != str(self.app.app_id):
            return None
        if claims["exp"] - claims["iat"] > 660:
            return None  # GitHub refuses JWTs valid for more than 10 minutes
        return claims

    def authorized(self, path: str, header: str) -> bool:
        if path.startswith("/app/"):
            return True  # checked by the route (a JWT, not a token)
        scheme, _, credential = header.partition(" ")
        return scheme.lower() in ("token", "bearer") and credential in self.tokens


def _apply_check_run(run: dict[str, Any], body: dict[str, Any]) -> None:
    for key in ("status", "conclusion", "details_url"):
        if key in body:
            run[key] = body[key]
    if run["status"] != "completed":
        run["conclusion"] = None
    output = body.get("output") or {}
    for key in ("title", "summary", "text"):
        if key in output:
            run[key] = output[key]


class _Recorder:
    """ASGI middleware: counts requests, injects faults, checks auth, records responses."""

    def __init__(self, fake: FakeGitHub, app: Callable[..., Any]) -> None:
        self.fake = fake
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        fake = self.fake
        if fake.path_prefix:
            if not path.startswith(fake.path_prefix + "/"):
                await self._reply(send, method, path, 404, {"message": "Not Found"}, {},
                                  injected=True)
                return
            path = path.removeprefix(fake.path_prefix)
            scope = {**scope, "path": path, "raw_path": path.encode()}
        with fake.lock:
            fake.requests.append((method, path))
            fault = next((f for f in fake._faults
                          if f.method == method and f.path.search(path)), None)
            if fault is not None:
                fake._faults.remove(fault)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if fault is not None:
            if fault.after:
                async def discard(message: dict[str, Any]) -> None:
                    return None

                await self.app(scope, receive, discard)
            await self._reply(send, method, path, fault.status, fault.body, fault.headers,
                              injected=True)
            return
        if not fake.authorized(path, headers.get("authorization", "")):
            await self._reply(send, method, path, 401, {"message": "Bad credentials",
                                                        "documentation_url": DOCS}, {},
                              injected=True)
            return
        status_holder: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    with fake.lock:
                        fake.responses.append(RecordedResponse(
                            method, path, status_holder["status"], b"".join(chunks)))
            await send(message)

        await self.app(scope, receive, capture)

    async def _reply(self, send: Any, method: str, path: str, status: int, body: dict[str, Any],
                     headers: dict[str, str], *, injected: bool) -> None:
        raw = json.dumps(body).encode()
        with self.fake.lock:
            self.fake.responses.append(RecordedResponse(method, path, status, raw,
                                                        injected=injected))
        head = [(b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode())]
        head += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": raw})
